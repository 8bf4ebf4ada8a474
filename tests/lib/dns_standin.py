#!/usr/bin/python3
"""A stand-in DNS responder for the capture tests (tests/lib/pod.sh).

Answers every A query with one fixed address (TTL 5), every other type with NOERROR and no records (NODATA),
over UDP and TCP on each --listen address, and counts what it answered: after each query it rewrites
--count-file with "total udp tcp" and appends "proto qtype qname" to --log-file. With --accept ADDR:PORT it
also accepts TCP connections there and writes "aegis-accept <local addr>\n" to each, which stands in for the
outbound listener (15001).

It exits by itself after --max-seconds so that a test that dies without its teardown leaves nothing running.
Only the standard library; runs as any user (the pod tests run it as UID 1337).
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
counts = {"udp": 0, "tcp": 0}


def parse_addr(s):
    """'127.0.0.1:15053' or '[::1]:15053' -> (family, host, port)."""
    if s.startswith("["):
        host, _, port = s[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = s.rpartition(":")
    return socket.AF_INET, host, int(port)


def parse_question(msg):
    """Returns (qname, qtype, end offset of the question) or None."""
    if len(msg) < 12 or struct.unpack("!H", msg[4:6])[0] < 1:
        return None
    labels, off = [], 12
    while off < len(msg) and len(labels) < 128:
        n = msg[off]
        off += 1
        if n == 0:
            break
        if n & 0xC0:
            return None
        labels.append(msg[off:off + n].decode("ascii", "replace"))
        off += n
    if off + 4 > len(msg):
        return None
    qtype = struct.unpack("!H", msg[off:off + 2])[0]
    return ".".join(labels), qtype, off + 4


def answer(msg, addr_bytes):
    q = parse_question(msg)
    if q is None:
        return None
    qname, qtype, qend = q
    qid, flags = struct.unpack("!HH", msg[0:4])
    rd = flags & 0x0100
    is_a = qtype == 1
    header = struct.pack("!HHHHHH", qid, 0x8400 | rd | 0x0080, 1, 1 if is_a else 0, 0, 0)
    body = msg[12:qend]
    if is_a:
        body += struct.pack("!HHHIH", 0xC00C, 1, 1, 5, 4) + addr_bytes
    return header + body, qname, qtype


def record(args, proto, qname, qtype):
    with lock:
        counts[proto] += 1
        tmp = args.count_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %d %d\n" % (counts["udp"] + counts["tcp"], counts["udp"], counts["tcp"]))
        os.replace(tmp, args.count_file)
        if args.log_file:
            with open(args.log_file, "a") as f:
                f.write("%s %d %s\n" % (proto, qtype, qname))


def serve_udp(sock, args, addr_bytes):
    while True:
        msg, peer = sock.recvfrom(4096)
        r = answer(msg, addr_bytes)
        if r is None:
            continue
        record(args, "udp", r[1], r[2])
        sock.sendto(r[0], peer)


def recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def serve_tcp_conn(conn, args, addr_bytes):
    conn.settimeout(5)
    try:
        for _ in range(64):
            hdr = recv_exact(conn, 2)
            if hdr is None:
                break
            msg = recv_exact(conn, struct.unpack("!H", hdr)[0])
            if msg is None:
                break
            r = answer(msg, addr_bytes)
            if r is None:
                break
            record(args, "tcp", r[1], r[2])
            conn.sendall(struct.pack("!H", len(r[0])) + r[0])
    except OSError:
        pass
    finally:
        conn.close()


def serve_tcp(sock, args, addr_bytes):
    while True:
        conn, _ = sock.accept()
        threading.Thread(target=serve_tcp_conn, args=(conn, args, addr_bytes), daemon=True).start()


def serve_accept(sock):
    while True:
        conn, _ = sock.accept()
        try:
            local = conn.getsockname()
            conn.sendall(("aegis-accept %s:%d\n" % (local[0], local[1])).encode())
        except OSError:
            pass
        conn.close()


def bind(family, kind, host, port):
    s = socket.socket(family, kind)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    if kind == socket.SOCK_STREAM:
        s.listen(64)
    return s


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", action="append", default=[], help="ADDR:PORT or [ADDR]:PORT, UDP and TCP")
    p.add_argument("--accept", action="append", default=[], help="ADDR:PORT, TCP accept-and-greet")
    p.add_argument("--answer", required=True, help="IPv4 address given to every A query")
    p.add_argument("--count-file", required=True)
    p.add_argument("--log-file")
    p.add_argument("--ready-file", help="created once every socket is bound")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()

    addr_bytes = socket.inet_pton(socket.AF_INET, args.answer)
    record_init = args.count_file + ".tmp"
    with open(record_init, "w") as f:
        f.write("0 0 0\n")
    os.replace(record_init, args.count_file)

    threads = []
    for spec in args.listen:
        fam, host, port = parse_addr(spec)
        threads.append(threading.Thread(target=serve_udp, args=(bind(fam, socket.SOCK_DGRAM, host, port), args,
                                                                 addr_bytes), daemon=True))
        threads.append(threading.Thread(target=serve_tcp, args=(bind(fam, socket.SOCK_STREAM, host, port), args,
                                                                 addr_bytes), daemon=True))
    for spec in args.accept:
        fam, host, port = parse_addr(spec)
        threads.append(threading.Thread(target=serve_accept, args=(bind(fam, socket.SOCK_STREAM, host, port),),
                                        daemon=True))
    for t in threads:
        t.start()
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("%d\n" % os.getpid())
    time.sleep(args.max_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
