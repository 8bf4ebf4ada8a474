#!/usr/bin/env python3
"""A scripted DNS peer for tests: answers on 127.0.0.1 UDP and TCP from a small zone, or misbehaves on
purpose (delay, drop, REFUSED, SERVFAIL, wrong ID, garbage, truncation over UDP), and counts queries.

    dnspeer.py --port 5300 [--zone zone.json] [--mode normal] [--mode-file F] [--counts F] [--ready F]

Zone file (JSON): {"www.example.test": {"A": ["10.0.0.1"], "MX": [[10, "mail.example.test"]],
"TXT": ["hello"], "AAAA": ["2001:db8::1"], "mode": "drop"}, "*": {...}}; a per-name "mode" overrides the
global one; "*" answers every other name except those starting with "nx".
Names not in the zone get NXDOMAIN, known names without the type NODATA, both with the zone's SOA
(TTL --soa-ttl, MINIMUM --soa-min). Modes: normal, delay (--delay-ms then normal), drop, refused,
servfail, wrongid (normal answer with ID+1), garbage (random bytes), tc (UDP: empty answer with TC=1;
TCP: normal), badq (answer for another name), nxdomain. --mode-file is re-read on every query, so a test
can change behaviour at run time (write "drop", later "normal"). The counts file is rewritten (atomically)
after every query: {"total": n, "udp": n, "tcp": n, "names": {"qname/TYPE": n}}.

Only the standard library: the test machines have no dnspython. Exits after --lifetime seconds.
"""
import argparse
import ipaddress
import json
import os
import random
import socket
import struct
import sys
import threading
import time

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16, "AAAA": 28, "SRV": 33,
         "DNSKEY": 48}
TYPE_NAMES = {v: k for k, v in TYPES.items()}


def wire_name(name):
    out = b""
    for label in name.strip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def parse_question(msg):
    """Returns (id, flags, qname_bytes_as_sent, qname_str, qtype, qclass, question_end, has_opt)."""
    if len(msg) < 12:
        raise ValueError("short")
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    if qd != 1:
        raise ValueError("qdcount")
    off = 12
    labels = []
    while True:
        length = msg[off]
        if length == 0:
            off += 1
            break
        if length & 0xC0:
            raise ValueError("compressed question")
        labels.append(msg[off + 1:off + 1 + length].decode("ascii", "replace"))
        off += 1 + length
    qname_raw = msg[12:off]
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    return qid, flags, qname_raw, ".".join(labels), qtype, qclass, off + 4, ar > 0


class Peer:
    def __init__(self, args):
        self.args = args
        self.zone = {}
        if args.zone:
            with open(args.zone) as f:
                self.zone = {k.lower().strip("."): v for k, v in json.load(f).items()}
        self.lock = threading.Lock()
        self.counts = {"total": 0, "udp": 0, "tcp": 0, "names": {}}

    def lookup(self, name):
        """The zone entry for name; "*" answers any name not in the zone except names starting "nx"."""
        name = name.lower()
        if name in self.zone:
            return self.zone[name]
        if "*" in self.zone and not name.startswith("nx"):
            return self.zone["*"]
        return None

    def mode_for(self, name):
        entry = self.zone.get(name.lower())
        if isinstance(entry, dict) and "mode" in entry:
            return entry["mode"]
        if self.args.mode_file and os.path.exists(self.args.mode_file):
            with open(self.args.mode_file) as f:
                m = f.read().strip()
                if m:
                    return m
        return self.args.mode

    def count(self, proto, name, qtype):
        with self.lock:
            c = self.counts
            c["total"] += 1
            c[proto] += 1
            key = "%s/%s" % (name.lower(), TYPE_NAMES.get(qtype, str(qtype)))
            c["names"][key] = c["names"].get(key, 0) + 1
            if self.args.counts:
                tmp = self.args.counts + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(c, f)
                os.replace(tmp, self.args.counts)

    def rdata(self, qtype, value):
        if qtype == 1:
            return socket.inet_aton(value)
        if qtype == 28:
            return ipaddress.IPv6Address(value).packed
        if qtype == 15:
            return struct.pack("!H", value[0]) + wire_name(value[1])
        if qtype == 16:
            data = value.encode()
            out = b""
            while True:
                out += bytes([min(len(data), 255)]) + data[:255]
                data = data[255:]
                if not data:
                    return out
        if qtype in (2, 5, 12):
            return wire_name(value)
        if qtype == 48:
            return struct.pack("!HBB", value[0], 3, value[1]) + bytes.fromhex(value[2])
        raise ValueError("type")

    def soa(self, name):
        parts = name.split(".")
        apex = ".".join(parts[-2:]) if len(parts) >= 2 else name
        rd = wire_name("ns1." + apex) + wire_name("hostmaster." + apex) + struct.pack(
            "!IIIII", 2026112501, 7200, 900, 1209600, self.args.soa_min)
        return wire_name(apex) + struct.pack("!HHIH", 6, 1, self.args.soa_ttl, len(rd)) + rd

    def answer(self, msg, proto):
        """Returns the bytes to send, or None to stay silent."""
        try:
            qid, flags, qname_raw, name, qtype, qclass, qend, has_opt = parse_question(msg)
        except (ValueError, IndexError, struct.error):
            return None
        self.count(proto, name, qtype)
        mode = self.mode_for(name)
        if mode == "drop":
            return None
        if mode == "garbage":
            return bytes(random.getrandbits(8) for _ in range(random.randint(1, 40)))
        rd = flags & 0x0100
        opt = b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0) if has_opt else b""
        base_flags = 0x8000 | 0x0080 | rd | (flags & 0x7800)
        question = qname_raw + struct.pack("!HH", qtype, qclass)

        def msg_of(rcode, answers=(), auth=b"", n_auth=0, tc=False, ident=qid, q=question):
            fl = base_flags | rcode | (0x0200 if tc else 0)
            hdr = struct.pack("!HHHHHH", ident, fl, 1, len(answers), n_auth, 1 if opt else 0)
            return hdr + q + b"".join(answers) + auth + opt

        if mode == "refused":
            return msg_of(5)
        if mode == "servfail":
            return msg_of(2)
        if mode == "tc" and proto == "udp":
            return msg_of(0, tc=True)
        entry = self.lookup(name)
        if mode == "nxdomain" or entry is None:
            return msg_of(3, auth=self.soa(name.lower()), n_auth=1)
        tname = TYPE_NAMES.get(qtype)
        values = entry.get(tname, []) if tname else []
        if not values:
            return msg_of(0, auth=self.soa(name.lower()), n_auth=1)
        rrs = []
        for v in values:
            rdata = self.rdata(qtype, v)
            rrs.append(b"\xc0\x0c" + struct.pack("!HHIH", qtype, qclass, self.args.ttl, len(rdata)) + rdata)
        if mode == "wrongid":
            return msg_of(0, rrs, ident=(qid + 1) & 0xFFFF)
        if mode == "badq":
            return msg_of(0, rrs, q=wire_name("other." + name) + struct.pack("!HH", qtype, qclass))
        out = msg_of(0, rrs)
        limit = 512 if not has_opt else 4096
        if proto == "udp" and len(out) > limit:
            return msg_of(0, tc=True)
        return out

    def delay(self, name):
        if self.mode_for(name) == "delay":
            time.sleep(self.args.delay_ms / 1000.0)

    def serve_udp(self, sock):
        while True:
            data, addr = sock.recvfrom(65535)

            def work(d=data, a=addr):
                try:
                    name = parse_question(d)[3]
                except (ValueError, IndexError, struct.error):
                    name = ""
                self.delay(name)
                out = self.answer(d, "udp")
                if out is not None:
                    sock.sendto(out, a)
            threading.Thread(target=work, daemon=True).start()

    def serve_tcp_conn(self, conn):
        try:
            while True:
                hdr = self.recv_exact(conn, 2)
                if hdr is None:
                    return
                data = self.recv_exact(conn, struct.unpack("!H", hdr)[0])
                if data is None:
                    return
                try:
                    name = parse_question(data)[3]
                except (ValueError, IndexError, struct.error):
                    name = ""
                self.delay(name)
                out = self.answer(data, "tcp")
                if out is not None:
                    conn.sendall(struct.pack("!H", len(out)) + out)
        except OSError:
            pass
        finally:
            conn.close()

    @staticmethod
    def recv_exact(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def serve_tcp(self, sock):
        while True:
            conn, _ = sock.accept()
            threading.Thread(target=self.serve_tcp_conn, args=(conn,), daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--zone")
    ap.add_argument("--mode", default="normal")
    ap.add_argument("--mode-file")
    ap.add_argument("--delay-ms", type=int, default=1000)
    ap.add_argument("--ttl", type=int, default=300)
    ap.add_argument("--soa-ttl", type=int, default=3600)
    ap.add_argument("--soa-min", type=int, default=60)
    ap.add_argument("--counts")
    ap.add_argument("--ready")
    ap.add_argument("--lifetime", type=float, default=120.0)
    args = ap.parse_args()
    if not args.addr.startswith("127.") and args.addr != "::1":
        sys.exit("dnspeer: loopback addresses only")
    peer = Peer(args)
    fam = socket.AF_INET6 if ":" in args.addr else socket.AF_INET
    udp = socket.socket(fam, socket.SOCK_DGRAM)
    udp.bind((args.addr, args.port))
    tcp = socket.socket(fam, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((args.addr, args.port))
    tcp.listen(64)
    threading.Thread(target=peer.serve_udp, args=(udp,), daemon=True).start()
    threading.Thread(target=peer.serve_tcp, args=(tcp,), daemon=True).start()
    if args.counts:
        with open(args.counts, "w") as f:
            json.dump(peer.counts, f)
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(args.lifetime)


if __name__ == "__main__":
    main()
