#!/usr/bin/env python3
"""A scripted Kubernetes API server on loopback (HTTPS) that replays recorded responses.

    kube_apiserver.py --scenario DIR --cert CERT --key KEY --port-file FILE --log FILE [--token T]

DIR/scenario.json says, per collection path, which recorded response each successive request gets
(docs/kubernetes.md, "Recordings", has the format). Not a mock of aegis-xds: it only plays back what a real
API server sent, plus the misbehaviour a test asks for (410 Gone, a dropped connection mid-stream).

Every request is appended to --log as one JSON line {"method", "path", "query", "auth", "served"}, so a
test can assert e.g. that a watch resumed with ?resourceVersion=110. GET /_control/release?gate=NAME
opens a gate that a watch stream waits at ({"_gate": NAME} in a .jsonl file); GET /_control/steps shows
how far each path's script has gone.
"""
import argparse
import json
import os
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EMPTY_LIST = {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}


class Script:
    def __init__(self, directory):
        self.dir = directory
        with open(os.path.join(directory, "scenario.json")) as f:
            spec = json.load(f)
        self.token = spec.get("token")
        self.routes = {p: list(steps) for p, steps in spec.get("routes", {}).items()}
        self.cursor = {p: 0 for p in self.routes}
        self.last_list = {}
        self.lock = threading.Lock()
        self.gates = {}
        self.stopping = threading.Event()

    def gate(self, name):
        with self.lock:
            return self.gates.setdefault(name, threading.Event())

    def next_step(self, path, is_watch):
        """The step this request gets: (step, consumed). A request of the wrong type (a list when the
        script expects a watch) is answered 500 and consumes nothing, so the mismatch is visible."""
        with self.lock:
            steps = self.routes.get(path)
            if steps is None:
                return ({"list": None} if not is_watch else {"watch": None}), False
            i = self.cursor[path]
            if i >= len(steps):
                if is_watch:
                    return {"watch": None}, False
                return {"list": self.last_list.get(path)}, False
            step = steps[i]
            step_is_watch = "watch" in step or step.get("on") == "watch"
            if step_is_watch != is_watch:
                return {"status": 500, "body": {"kind": "Status", "code": 500,
                                                "message": "scenario expected a %s at step %d" %
                                                ("watch" if step_is_watch else "list", i)}}, False
            self.cursor[path] = i + 1
            if "list" in step:
                self.last_list[path] = step["list"]
            return step, True

    def read(self, name):
        with open(os.path.join(self.dir, name), "rb") as f:
            return f.read()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-apiserver-replay"

    def log_message(self, fmt, *args):
        pass

    def record(self, served):
        u = urllib.parse.urlsplit(self.path)
        entry = {"method": self.command, "path": u.path, "query": u.query,
                 "auth": self.headers.get("Authorization", ""), "served": served, "t": time.time()}
        with self.server.log_lock:
            with open(self.server.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def send_json(self, code, obj):
        body = obj if isinstance(obj, (bytes, bytearray)) else json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def control(self, u):
        q = urllib.parse.parse_qs(u.query)
        script = self.server.script
        if u.path == "/_control/release":
            for g in q.get("gate", []):
                script.gate(g).set()
            self.send_json(200, {"released": q.get("gate", [])})
        elif u.path == "/_control/steps":
            with script.lock:
                self.send_json(200, dict(script.cursor))
        else:
            self.send_json(404, {"kind": "Status", "code": 404})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path.startswith("/_control/"):
            return self.control(u)
        script = self.server.script
        if script.token and self.headers.get("Authorization") != "Bearer " + script.token:
            self.record("401")
            return self.send_json(401, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                        "message": "Unauthorized", "reason": "Unauthorized", "code": 401})
        q = urllib.parse.parse_qs(u.query)
        is_watch = q.get("watch", ["0"])[0] in ("1", "true")
        step, _ = script.next_step(u.path, is_watch)
        if "status" in step:
            self.record("status %d" % step["status"])
            body = step.get("body", {"kind": "Status", "code": step["status"]})
            if isinstance(body, str):
                body = script.read(body)
            return self.send_json(step["status"], body)
        if not is_watch:
            self.record("list %s" % step["list"])
            return self.send_json(200, script.read(step["list"]) if step["list"] else EMPTY_LIST)
        self.record("watch %s" % step["watch"])
        self.stream(step["watch"])

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def client_gone(self):
        # A watching client sends nothing after its request: anything readable (a TLS close_notify, or
        # EOF) means it has gone.
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            return bool(r)
        except (OSError, ValueError):
            return True

    def wait(self, cond, timeout=None):
        """Waits for cond() while the client is connected and the server runs; False if it left."""
        end = None if timeout is None else time.time() + timeout
        while not cond():
            if self.server.script.stopping.is_set() or self.client_gone():
                return False
            if end is not None and time.time() >= end:
                return True
            time.sleep(0.05)
        return True

    def drop(self):
        # No terminating chunk and no TLS close_notify: the client sees the connection die mid-body.
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def stream(self, name):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        lines = script_lines(self.server.script, name) if name else []
        try:
            for line in lines:
                ctl = None
                if line.startswith(b'{"_'):
                    ctl = json.loads(line)
                if ctl is None:
                    self.chunk(line + b"\n")
                elif "_gate" in ctl:
                    g = self.server.script.gate(ctl["_gate"])
                    if not self.wait(g.is_set):
                        return
                elif "_sleep" in ctl:
                    if not self.wait(lambda: False, ctl["_sleep"]):
                        return
                elif "_drop" in ctl:
                    self.chunk(b'{"type":"ADDED","object":{"metadata":{"na')  # half an event
                    return self.drop()
                elif "_close" in ctl:
                    break
            else:
                self.wait(lambda: False)  # hang, like a watch with nothing to say
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True


def script_lines(script, name):
    return [l.rstrip(b"\r") for l in script.read(name).split(b"\n") if l.strip()]


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, ctx, **kw):
        self.ctx = ctx
        super().__init__(addr, Handler, **kw)

    def get_request(self):
        sock, addr = self.socket.accept()
        # The handshake runs in the handler's thread: a stuck client cannot block the accept loop.
        return self.ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    srv = Server(("127.0.0.1", 0), ctx)
    srv.script = Script(a.scenario)
    srv.log_path = a.log
    srv.log_lock = threading.Lock()
    open(a.log, "w").close()

    def stop(*_):
        srv.script.stopping.set()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    srv.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
