#!/usr/bin/env python3
"""Driver of bench/mesh.sh (the mesh data-path benchmark; method in bench/README.md, "Mesh data path").

mesh.sh installs, builds and makes the certificates; this script makes the network namespaces, starts the
servers and, round after round, each proxy pair in turn, runs the workloads through it, reads the proxies'
CPU from /proc and writes the report. Everything it starts is its own child, stopped by PID; its
namespaces (<rid>-*) are deleted in a finally block and on SIGTERM/SIGINT.

Topology, one pair of namespaces per proxy kind, identical apart from what runs in them:

  <rid>-<net>-a  client side: lo, eth0 10.254.K.1/30, default route via B; the clients and proxy A
  <rid>-<net>-b  server side: lo, eth0 10.254.K.2/30; proxy B, iperf3 -s and an nginx HTTP server, both on
                 127.0.0.1 (so that only the proxies can reach them from A)

Aegis (K=1): both pods have aegis-iptables capture; the client connects to the Service VIP 10.96.77.10,
which A's OUTPUT rules send to proxy A's 15001; proxy A routes it to the WorkloadEntry 10.254.1.2 and
carries it over mTLS (direct: to 10.254.1.2:<port>, captured by B's rules into 15006; HBONE: to :15008).
nginx (K=2) and HAProxy (K=3): no capture; the client connects to proxy A on 127.0.0.1, proxy A speaks TLS
1.3 with a client certificate to proxy B on 10.254.K.2, proxy B verifies it and connects to 127.0.0.1.
"""
import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
VIP = "10.96.77.10"
NETS = {"aegis": 1, "nginx": 2, "haproxy": 3}
IPERF_PORT, HTTP_PORT = 5201, 8080
PEER_PORTS = {IPERF_PORT: (15201, 25201), HTTP_PORT: (18080, 28080)}
PROXY_CORE, LOAD_CORE = "0", "1"

# name -> (net, workloads); the *-full variants measure only new connections, with TLS session
# resumption turned off in proxy A (Aegis's outbound side does not resume sessions; the peers do by default).
ALL_PAIRS = {
    "aegis-hbone": ("aegis", ("bulk", "warm", "paced", "conn")),
    "aegis-direct": ("aegis", ("bulk", "warm", "paced", "conn")),
    "nginx": ("nginx", ("bulk", "warm", "paced", "conn")),
    "haproxy": ("haproxy", ("bulk", "warm", "paced", "conn")),
    "nginx-full": ("nginx", ("conn",)),
    "haproxy-full": ("haproxy", ("conn",)),
    # What-ifs, only with --aegis-nodelay: aegis-proxy with bench/mesh_nodelay.so preloaded (TCP_NODELAY on
    # the sockets its listeners accept). Not the shipped behaviour.
    "aegis-hbone-nodelay": ("aegis", ("bulk", "warm", "paced", "conn")),
    "aegis-direct-nodelay": ("aegis", ("bulk", "warm", "paced", "conn")),
}
DEFAULT_PAIRS = "aegis-hbone,aegis-direct,nginx,haproxy,nginx-full,haproxy-full"

procs = []  # every Proc started, for the final clean-up
namespaces = []


def say(msg):
    print("[mesh_bench %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


class Proc:
    """A process started in a namespace, pinned; ip netns exec, nice, taskset and setpriv all exec, so the
    PID recorded is the program's own."""

    def __init__(self, name, ns, core, argv, log, uid=None):
        pre = ["ip", "netns", "exec", ns, "nice", "-n", "-10", "taskset", "-c", core]
        if uid is not None:
            pre += ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"]
        self.name, self.log = name, log
        with open(log, "ab") as f:
            self.p = subprocess.Popen(pre + argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.pid = self.p.pid
        procs.append(self)

    def cpu(self):
        """utime+stime in seconds (all threads, live and exited)."""
        with open("/proc/%d/stat" % self.pid) as f:
            s = f.read()
        rest = s[s.rindex(")") + 2:].split()
        return (int(rest[11]) + int(rest[12])) / CLK_TCK

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self in procs:
            procs.remove(self)


def sh(*argv, check=True, timeout=60, **kw):
    return subprocess.run(list(argv), check=check, timeout=timeout, **kw)


def in_ns(ns, core, argv, timeout):
    """Runs a load in a namespace on a core at nice -10; returns its stdout (bounded by timeout)."""
    cmd = ["ip", "netns", "exec", ns, "nice", "-n", "-10", "taskset", "-c", core] + argv
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    return r.stdout, r.stderr, r.returncode


def core0_busy():
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % PROXY_CORE):
                v = [int(x) for x in line.split()[1:]]
                return (sum(v[:8]) - v[3] - v[4]) / CLK_TCK
    return 0.0


# ---- namespaces and servers -------------------------------------------------------------------------------

def ns_names(rid, net):
    return "%s-%s-a" % (rid, net), "%s-%s-b" % (rid, net)


def make_net(rid, net):
    k = NETS[net]
    a, b = ns_names(rid, net)
    for ns in (a, b):
        sh("ip", "netns", "add", ns)
        namespaces.append(ns)
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", b)
    sh("ip", "-n", a, "addr", "add", "10.254.%d.1/30" % k, "dev", "eth0")
    sh("ip", "-n", b, "addr", "add", "10.254.%d.2/30" % k, "dev", "eth0")
    sh("ip", "-n", a, "link", "set", "eth0", "up")
    sh("ip", "-n", b, "link", "set", "eth0", "up")
    # The Service VIP must be routable from A for connect() to reach the OUTPUT hook (Kubernetes: the node).
    sh("ip", "-n", a, "route", "add", "default", "via", "10.254.%d.2" % k)
    return a, b


def delete_nets():
    for ns in list(namespaces):
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        subprocess.run(["ip", "netns", "del", ns], check=False)
        namespaces.remove(ns)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o644)


def start_servers(run, net, b):
    d = "%s/srv-%s" % (run, net)
    os.makedirs(d + "/www", exist_ok=True)
    os.makedirs(d + "/tmp", exist_ok=True)
    write(d + "/www/index.html", "x" * 99 + "\n")
    t = d + "/tmp"
    write(d + "/nginx.conf", """daemon off; master_process off; worker_processes 1;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; default_type text/plain;
  keepalive_requests 100000000; keepalive_timeout 600s;
  client_body_temp_path %(t)s/body; proxy_temp_path %(t)s/proxy; fastcgi_temp_path %(t)s/fcgi;
  uwsgi_temp_path %(t)s/uwsgi; scgi_temp_path %(t)s/scgi;
  server { listen 127.0.0.1:%(port)d; root %(d)s/www; }
}
""" % {"d": d, "t": t, "port": HTTP_PORT})
    Proc("http-" + net, b, LOAD_CORE, ["nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"],
         d + "/http.log")
    Proc("iperf3-" + net, b, LOAD_CORE, ["iperf3", "-s", "-B", "127.0.0.1", "-p", str(IPERF_PORT)],
         d + "/iperf3.log")


# ---- proxy pairs ----------------------------------------------------------------------------------------

def aegis_config(run):
    write(run + "/mesh.yaml", """# bench/mesh.sh: one Service, its one workload in pod B, mutual TLS.
apiVersion: v1
kind: Service
metadata: {name: bench-server, namespace: default}
spec:
  clusterIP: %(vip)s
  ports:
  - {name: tcp-iperf, port: %(ip)d, protocol: TCP, targetPort: %(ip)d}
  - {name: http, port: %(hp)d, protocol: TCP, targetPort: %(hp)d}
  selector: {app: bench-server}
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: {name: bench-server-b, namespace: default}
spec:
  address: 10.254.1.2
  labels: {app: bench-server}
  serviceAccount: bench-server
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: bench-server, namespace: default}
spec:
  host: bench-server.default.svc.cluster.local
  trafficPolicy:
    tls: {mode: ISTIO_MUTUAL}
""" % {"vip": VIP, "ip": IPERF_PORT, "hp": HTTP_PORT})
    write(run + "/resolv.conf", "nameserver 10.254.1.2\nsearch default.svc.cluster.local\n")


def nginx_confs(run, reuse):
    k = NETS["nginx"]
    out = {}
    for side in ("a", "b"):
        d = "%s/nginx-%s" % (run, side)
        os.makedirs(d, exist_ok=True)
        c = "%s/certs-%s" % (run, side)
        servers = []
        for app, (pa, pb) in PEER_PORTS.items():
            if side == "a":
                servers.append("  server { listen 127.0.0.1:%d; proxy_pass 10.254.%d.2:%d; }" % (pa, k, pb))
            else:
                servers.append("  server { listen 10.254.%d.2:%d ssl; proxy_pass 127.0.0.1:%d; }" % (k, pb, app))
        if side == "a":
            tls = """  proxy_ssl on; proxy_ssl_protocols TLSv1.3;
  proxy_ssl_certificate %(c)s/cert-chain.pem; proxy_ssl_certificate_key %(c)s/key.pem;
  proxy_ssl_trusted_certificate %(c)s/root-cert.pem; proxy_ssl_verify on; proxy_ssl_verify_depth 4;
  proxy_ssl_name bench-server.default.svc; proxy_ssl_session_reuse %(reuse)s;""" % {
                "c": c, "reuse": "on" if reuse else "off"}
        else:
            tls = """  ssl_protocols TLSv1.3;
  ssl_certificate %(c)s/cert-chain.pem; ssl_certificate_key %(c)s/key.pem;
  ssl_client_certificate %(c)s/root-cert.pem; ssl_verify_client on; ssl_verify_depth 4;""" % {"c": c}
        write(d + "/nginx.conf", """load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off; master_process off; worker_processes 1;
pid %(d)s/nginx.pid; error_log %(d)s/error.log warn;
events { worker_connections 4096; }
stream {
%(tls)s
%(servers)s
}
""" % {"d": d, "tls": tls, "servers": "\n".join(servers)})
        out[side] = ["nginx", "-p", d, "-e", d + "/error.log", "-c", d + "/nginx.conf"]
    return out


def haproxy_confs(run, reuse):
    k = NETS["haproxy"]
    out = {}
    for side in ("a", "b"):
        c = "%s/certs-%s" % (run, side)
        parts = ["""global
  nbthread 1
  maxconn 4096
defaults
  mode tcp
  timeout connect 5s
  timeout client 600s
  timeout server 600s
"""]
        for app, (pa, pb) in PEER_PORTS.items():
            if side == "a":
                parts.append("""listen p%(app)d
  bind 127.0.0.1:%(pa)d
  server b 10.254.%(k)d.2:%(pb)d ssl crt %(c)s/combined.pem ca-file %(c)s/root-cert.pem verify required verifyhost bench-server.default.svc ssl-min-ver TLSv1.3%(reuse)s
""" % {"app": app, "pa": pa, "pb": pb, "k": k, "c": c, "reuse": "" if reuse else " no-ssl-reuse"})
            else:
                parts.append("""listen p%(app)d
  bind 10.254.%(k)d.2:%(pb)d ssl crt %(c)s/combined.pem ca-file %(c)s/root-cert.pem verify required ssl-min-ver TLSv1.3
  server s 127.0.0.1:%(app)d
""" % {"app": app, "pb": pb, "k": k, "c": c})
        path = "%s/haproxy-%s.cfg" % (run, side)
        write(path, "".join(parts))
        out[side] = ["haproxy", "-db", "-f", path]
    return out


class Pair:
    def __init__(self, name, args, transports):
        self.name = name
        self.net, self.workloads = ALL_PAIRS[name]
        self.a_ns, self.b_ns = ns_names(args.rid, self.net)
        self.args = args
        self.transports = transports
        self.a = self.b = None

    def target(self, app):
        if self.net == "aegis":
            return VIP, app
        return "127.0.0.1", PEER_PORTS[app][0]

    def start(self, rnd):
        run = self.args.run
        log = "%s/logs/%s-r%d" % (run, self.name, rnd)
        if self.net == "aegis":
            extra = []
            if self.transports:
                extra = ["--mesh-transport", self.name.split("-")[1]]
            for side in ("a", "b"):
                argv = [self.args.bin + "/aegis-proxy", "--config", run + "/mesh.yaml", "--mesh", "--cert-dir",
                        "%s/certs-%s" % (run, side), "--namespace", "default", "--dns-listen", "127.0.0.1:15053",
                        "--resolv-conf", run + "/resolv.conf", "--no-watch"] + extra
                if self.name.endswith("-nodelay"):
                    argv = ["env", "LD_PRELOAD=" + self.args.nodelay_lib] + argv
                ns = self.a_ns if side == "a" else self.b_ns
                p = Proc("aegis-" + side, ns, PROXY_CORE, argv, "%s-%s.log" % (log, side), uid=1337)
                setattr(self, side, p)
            for side in ("a", "b"):
                p = getattr(self, side)
                if not wait_for(lambda: '"aegis-proxy ready"' in read(p.log) or not p.alive(), 30) or not p.alive():
                    raise RuntimeError("aegis-proxy %s did not start: %s" % (side, read(p.log)[-600:]))
        else:
            reuse = not self.name.endswith("-full")
            confs = (nginx_confs if self.net == "nginx" else haproxy_confs)(run, reuse)
            self.b = Proc(self.net + "-b", self.b_ns, PROXY_CORE, confs["b"], log + "-b.log")
            self.a = Proc(self.net + "-a", self.a_ns, PROXY_CORE, confs["a"], log + "-a.log")
        # The whole path answers: one request through it (also the readiness check of the peers).
        host, port = self.target(HTTP_PORT)

        def through():
            out, _, _ = in_ns(self.a_ns, LOAD_CORE, [self.args.load, "conn", host, str(port), "-n", "1", "-d", "2"], 10)
            return "requests=1 " in out
        if not wait_for(through, 30):
            raise RuntimeError("no request went through %s: A: %s B: %s" % (
                self.name, read(log + "-a.log")[-600:], read(log + "-b.log")[-600:]))

    def stop(self):
        for p in (self.a, self.b):
            if p is not None:
                p.stop()
        self.a = self.b = None

    def aegis_metric(self, name):
        out, _, _ = in_ns(self.a_ns, LOAD_CORE, ["curl", "-s", "--max-time", "5",
                                                 "http://127.0.0.1:15000/stats/prometheus"], 10)
        total = 0.0
        for line in out.splitlines():
            if line.startswith(name) and (len(line) == len(name) or line[len(name)] in " {"):
                total += float(line.split()[-1])
        return total


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def wait_for(cond, secs):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.1)
    return False


def kv(line):
    return {k: float(v) for k, v in re.findall(r"(\w+)=([0-9.]+)", line)}


# ---- workloads ------------------------------------------------------------------------------------------

def measure(pair, fn):
    """Runs fn() and returns (its result, A+B CPU seconds, other CPU seconds on the proxies' core)."""
    c0, busy0 = pair.a.cpu() + pair.b.cpu(), core0_busy()
    t0 = time.time()
    res = fn()
    wall = time.time() - t0
    cpu = pair.a.cpu() + pair.b.cpu() - c0
    other = max(0.0, core0_busy() - busy0 - cpu)
    return res, cpu, other / wall if wall > 0 else 0.0


def w_bulk(pair, a):
    host, port = pair.target(IPERF_PORT)

    def run():
        out, err, rc = in_ns(pair.a_ns, LOAD_CORE, ["iperf3", "-c", host, "-p", str(port), "-t", str(a.seconds),
                                                    "-J"], a.seconds + 30)
        j = json.loads(out)
        if "error" in j:
            raise RuntimeError("iperf3: %s" % j["error"])
        return j["end"]["sum_received"]
    r, cpu, other = measure(pair, run)
    gb = r["bytes"] / 1e9
    return {"gbit_s": r["bits_per_second"] / 1e9, "bytes": r["bytes"], "cpu_s": cpu,
            "cpu_s_per_gb": cpu / gb if gb > 0 else None, "other_core0": other}


def w_warm(pair, a):
    host, port = pair.target(HTTP_PORT)

    def run():
        out, err, rc = in_ns(pair.a_ns, LOAD_CORE, ["wrk", "-t1", "-c16", "-d%ds" % a.seconds, "--latency",
                                                    "http://%s:%d/" % (host, port)], a.seconds + 30)
        m = re.search(r"(\d+) requests in", out)
        if not m:
            raise RuntimeError("wrk: %s %s" % (out, err))
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        p99 = re.search(r"^\s+99%\s+([0-9.]+)(us|ms|s)", out, re.M)
        scale = {"us": 1, "ms": 1000, "s": 1e6}
        return {"requests": int(m.group(1)),
                "errors": (sum(int(x) for x in errs.groups()) if errs else 0) + (int(non2xx.group(1)) if non2xx else 0),
                "p99_us": float(p99.group(1)) * scale[p99.group(2)] if p99 else None}
    r, cpu, other = measure(pair, run)
    r.update({"rps": r["requests"] / a.seconds, "cpu_s": cpu, "cpu_us_per_req": cpu * 1e6 / max(1, r["requests"]),
              "other_core0": other})
    return r


def w_paced(pair, a):
    host, port = pair.target(HTTP_PORT)

    def run():
        out, err, rc = in_ns(pair.a_ns, LOAD_CORE, [a.load, "rr", host, str(port), "-c", "16", "-r", str(a.rate),
                                                    "-d", str(a.seconds)], a.seconds + 30)
        if "requests=" not in out:
            raise RuntimeError("mesh_load rr: %s %s" % (out, err))
        return kv(out)
    r, cpu, other = measure(pair, run)
    r.update({"cpu_s": cpu, "cpu_us_per_req": cpu * 1e6 / max(1, r["requests"]), "other_core0": other})
    return r


def w_conn(pair, a):
    host, port = pair.target(HTTP_PORT)

    def run():
        out, err, rc = in_ns(pair.a_ns, LOAD_CORE, [a.load, "conn", host, str(port), "-n", str(a.conns), "-d",
                                                    "20"], 60)
        if "requests=" not in out:
            raise RuntimeError("mesh_load conn: %s %s" % (out, err))
        return kv(out)
    r, cpu, other = measure(pair, run)
    r.update({"cpu_s": cpu, "cpu_ms_per_conn": cpu * 1e3 / max(1, r["requests"]), "other_core0": other})
    return r


WORKLOADS = {"bulk": w_bulk, "warm": w_warm, "paced": w_paced, "conn": w_conn}


# ---- perf ----------------------------------------------------------------------------------------------

def perf_profile(pair, a, out_path):
    """perf record -e cpu-clock -g on proxy A during a warm (wrk) run, a bulk (iperf3) run and a new-connection run."""
    text = []
    for wl in ("warm", "bulk", "conn"):
        data = "%s-%s.data" % (out_path[:-4], wl)
        for attempt in range(3):
            # Up to 3 attempts: a workload that fails (the HBONE bulk reset, bench/README.md) is profiled again.
            rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-g", "-p", str(pair.a.pid), "-o",
                                    data, "--", "sleep", str(a.seconds + 1)], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            time.sleep(0.5)
            try:
                res = WORKLOADS[wl](pair, a)
            except (RuntimeError, ValueError, KeyError, OSError, subprocess.TimeoutExpired) as e:
                res = {"failed": str(e)[:200]}
            rec.wait(a.seconds + 30)
            if "failed" not in res:
                break
        if os.path.exists(data + ".old"):
            os.remove(data + ".old")  # perf record keeps the previous attempt's file under this name
        res = {k: round(v, 2) if isinstance(v, float) else v for k, v in res.items()}
        for sort in ("dso", "sym"):
            r = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children", "-g", "none",
                                "--sort", sort, "--percent-limit", "0.7"], capture_output=True, text=True, timeout=120)
            lines = [x for x in r.stdout.splitlines() if x.strip() and not x.startswith("#")]
            text.append("## proxy A (%s), %s workload, by %s (%s)\n" % (pair.name, wl, sort, json.dumps(res)))
            text += lines[:40 if sort == "sym" else 15]
            text.append("")
    write(out_path, "\n".join(text) + "\n")
    return text


def syscall_mix(pair, a):
    """strace -c -f during a warm (wrk) run on proxy A, during a new-connection run and during a bulk run on
    proxies A and B: system calls per request, per connection or per 64 KiB carried, by name. strace slows the proxy, which changes how much each
    call carries, so this is the call mix, not a cost."""
    out = {}
    for wl, sides in (("warm", ("a",)), ("conn", ("a", "b")), ("bulk", ("a", "b"))):
        tracers = {}
        for side in sides:
            path = "%s/strace-%s-%s-%s.txt" % (a.run, pair.name, wl, side)
            tracers[side] = (path, subprocess.Popen(
                ["strace", "-c", "-f", "-q", "-o", path, "-p", str(getattr(pair, side).pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        time.sleep(1)
        try:
            res = WORKLOADS[wl](pair, a)
        finally:
            for _, st in tracers.values():
                st.send_signal(signal.SIGINT)
        for side, (path, st) in tracers.items():
            try:
                st.wait(30)
            except subprocess.TimeoutExpired:
                st.kill()
                st.wait()
            calls = {}
            for line in read(path).splitlines():
                f = line.split()
                if len(f) >= 5 and re.match(r"^[0-9.]+$", f[0]) and f[-1] != "total":
                    calls[f[-1]] = int(f[3])
            n = max(1, res["bytes"] / 65536.0 if wl == "bulk" else res["requests"])
            top = sorted(calls.items(), key=lambda kv: -kv[1])[:8]
            out["%s_%s" % (wl, side)] = {"requests": n, "per_req": sum(calls.values()) / n,
                                         "top": [(k, v / n) for k, v in top]}
    return out


# ---- report --------------------------------------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 100:
        return "%.0f" % v
    return ("%%.%df" % nd) % v


def report(a, results, pairs, transports_note, perf_text, strace_mix, failures, started):
    R = {}  # pair -> workload -> metric -> median
    for p in pairs:
        R[p] = {}
        for wl in ALL_PAIRS[p][1]:
            rows = [results[r][p][wl] for r in range(len(results)) if p in results[r] and wl in results[r][p]]
            if not rows:
                continue
            R[p][wl] = {k: med([x.get(k) for x in rows]) for k in rows[0]}
            R[p][wl]["per_round"] = rows
    peers = [p for p in ("nginx", "haproxy") if p in R]

    def best(wl, key, lower=True):
        vals = [(R[p][wl][key], p) for p in peers if wl in R[p] and R[p][wl].get(key) is not None]
        if not vals:
            return None, None
        return (min if lower else max)(vals)

    L = []
    L.append("# Mesh data path: Aegis vs nginx stream vs HAProxy, %s" % started)
    L.append("")
    L.append("Command: `%s`; commit %s; %d round(s), medians; bulk/warm/paced %d s, %d new connections, paced "
             "rate %d req/s over 16 connections. %s" % (a.command, a.commit, len(results), a.seconds, a.conns,
                                                         a.rate, transports_note))
    L.append("Machine: %s, %d cores; load average at start %s, at end %s." % (
        cpu_model(), os.cpu_count(), a.load_start, " ".join(open("/proc/loadavg").read().split()[:3])))
    L.append("")
    L.append("| pair | bulk Gbit/s | bulk CPU-s/GB | warm req/s (wrk -c16) | warm CPU µs/req | paced req/s | "
             "paced CPU µs/req | paced p50 / p99 µs | new conn CPU ms/conn | new conn p50 µs | max other load on core 0 |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for p in pairs:
        g = lambda wl, k: R[p].get(wl, {}).get(k)
        others = [g(wl, "other_core0") for wl in R[p]]
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | %s |" % (
            p, fmt(g("bulk", "gbit_s")), fmt(g("bulk", "cpu_s_per_gb")), fmt(g("warm", "rps")),
            fmt(g("warm", "cpu_us_per_req"), 1), fmt(g("paced", "rate")), fmt(g("paced", "cpu_us_per_req"), 1),
            fmt(g("paced", "p50_us"), 0), fmt(g("paced", "p99_us"), 0), fmt(g("conn", "cpu_ms_per_conn"), 3),
            fmt(g("conn", "p50_us"), 0), "%.0f%%" % (100 * max(o for o in others if o is not None))
            if any(o is not None for o in others) else "-"))
    L.append("")
    L.append("Errors (sum over rounds): " + ", ".join(
        "%s %d" % (p, sum(int(x.get("errors") or 0) for wl in R[p] for x in R[p][wl]["per_round"])) for p in pairs))
    if failures:
        L.append("")
        L.append("Failed workloads (left out of the medians):")
        L.append("")
        L += ["- " + f for f in failures]
    L.append("")
    L.append("Ratios, each Aegis transport ÷ the best peer in this run (CPU: lower is better; Gbit/s: higher "
             "is better), and against issue 7's targets:")
    L.append("")
    L.append("| Aegis | bulk Gbit/s | bulk CPU-s/GB (target ≤ 1.2) | warm CPU µs/req (target ≤ 22) | paced p99 | "
             "new conn CPU ms (target ≤ 0.15 over HBONE) |")
    L.append("|---|---:|---:|---:|---:|---:|")
    for p in [x for x in pairs if x.startswith("aegis")]:
        cells = []
        for wl, key, lower, target in (("bulk", "gbit_s", False, None), ("bulk", "cpu_s_per_gb", True, 1.2),
                                       ("warm", "cpu_us_per_req", True, 22), ("paced", "p99_us", True, None),
                                       ("conn", "cpu_ms_per_conn", True, 0.15)):
            v = R[p].get(wl, {}).get(key)
            bv, bp = best(wl, key, lower)
            if key == "cpu_ms_per_conn":
                # Against the peers as they run by default (with resumption) and with full handshakes.
                full = [(R[f]["conn"][key], f) for f in ("nginx-full", "haproxy-full") if f in R and "conn" in R[f]]
                s = "%s: %s× %s" % (fmt(v, 3), fmt(v / bv) if v and bv else "-", bp or "")
                if full:
                    fv, fp = min(full)
                    s += ", %s× %s" % (fmt(v / fv), fp)
            else:
                s = "%s: %s× %s" % (fmt(v, 1 if key != "gbit_s" else 2), fmt(v / bv) if v and bv else "-", bp or "")
            if target is not None and v is not None:
                s += " (%s× target)" % fmt(v / target)
            cells.append(s)
        L.append("| %s | %s |" % (p, " | ".join(cells)))
    L.append("")
    L.append("Per round (pair: bulk CPU-s/GB, warm CPU µs/req, paced p99 µs, conn CPU ms):")
    L.append("")
    for r, res in enumerate(results):
        parts = []
        for p in pairs:
            x = res.get(p, {})
            parts.append("%s %s/%s/%s/%s" % (p, fmt(x.get("bulk", {}).get("cpu_s_per_gb")),
                                             fmt(x.get("warm", {}).get("cpu_us_per_req"), 1),
                                             fmt(x.get("paced", {}).get("p99_us"), 0),
                                             fmt(x.get("conn", {}).get("cpu_ms_per_conn"), 3)))
        L.append("- round %d (order %s): %s" % (r + 1, " → ".join(res["_order"]), "; ".join(parts)))
    if strace_mix:
        L.append("")
        L.append("System calls per request (warm workload, proxy A), per new connection and per 64 KiB in bulk "
                 "(proxies A and B), `strace -c -f`; strace slows the proxy, so this is the call mix, not a cost:")
        L.append("")
        what = {"warm_a": "warm, A, per request", "conn_a": "new connection, A", "conn_b": "new connection, B",
                "bulk_a": "bulk, A, per 64 KiB", "bulk_b": "bulk, B, per 64 KiB"}
        for p, mix in strace_mix.items():
            for k, m in mix.items():
                L.append("- %s, %s: %.1f (%s)" % (p, what.get(k, k), m["per_req"],
                                                  ", ".join("%s %.2f" % kv for kv in m["top"])))
    if perf_text:
        L.append("")
        L.append("perf (proxy A, top entries; full text in the perf file next to this report):")
        L.append("")
        L.append("```")
        L += [x for x in perf_text if x][:70]
        L.append("```")
    return "\n".join(L) + "\n", R


def cpu_model():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--rid", required=True)
    ap.add_argument("--bin", required=True)
    ap.add_argument("--load", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="unknown")
    ap.add_argument("--command", default="bench/mesh.sh")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--conns", type=int, default=2000)
    ap.add_argument("--rate", type=int, default=3500)
    ap.add_argument("--pairs", default=DEFAULT_PAIRS)
    ap.add_argument("--aegis-nodelay", action="store_true")
    ap.add_argument("--nodelay-lib", default="")
    ap.add_argument("--no-perf", action="store_true")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.seconds, a.conns = 1, 2, 200
    a.load_start = " ".join(open("/proc/loadavg").read().split()[:3])
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    os.makedirs(a.run + "/logs", exist_ok=True)

    helptext = subprocess.run([a.bin + "/aegis-proxy", "--help"], capture_output=True, text=True).stdout
    transports = "--mesh-transport" in helptext and "hbone" in helptext
    pairs = [p for p in a.pairs.split(",") if p]
    for p in pairs:
        if p not in ALL_PAIRS:
            sys.exit("mesh_bench: unknown pair %s" % p)
    if a.aegis_nodelay:
        if not a.nodelay_lib:
            sys.exit("mesh_bench: --aegis-nodelay needs --nodelay-lib")
        pairs += [p + "-nodelay" for p in ("aegis-hbone", "aegis-direct") if p in pairs]
    if not transports:
        pairs = [p for p in pairs if not p.startswith("aegis-hbone")]
        note = ("aegis-proxy has no `--mesh-transport` in this build: HBONE was not measured; aegis-direct is the "
                "legacy direct mTLS path (to the endpoint's port, captured into 15006).")
    else:
        note = "aegis-hbone: `--mesh-transport hbone`; aegis-direct: `--mesh-transport direct`."
    say(note)

    def on_signal(sig, _):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results, perf_text, strace_mix, failures, keep_logs = [], [], {}, [], [False]
    try:
        aegis_config(a.run)
        nets = sorted({ALL_PAIRS[p][0] for p in pairs}, key=lambda n: NETS[n])
        for net in nets:
            an, bn = make_net(a.rid, net)
            start_servers(a.run, net, bn)
            if net == "aegis":
                for ns in (an, bn):
                    sh("ip", "netns", "exec", ns, a.bin + "/aegis-iptables", "apply", "--capture-dns", "off",
                       stdout=subprocess.DEVNULL)
        objs = {p: Pair(p, a, transports) for p in pairs}
        for rnd in range(a.rounds):
            order = pairs[rnd % len(pairs):] + pairs[:rnd % len(pairs)]
            res = {"_order": order}
            for p in order:
                pair = objs[p]
                say("round %d/%d: %s" % (rnd + 1, a.rounds, p))
                pair.start(rnd)
                try:
                    res[p] = {}
                    for wl in pair.workloads:
                        try:
                            res[p][wl] = WORKLOADS[wl](pair, a)
                        except (RuntimeError, ValueError, KeyError, OSError, subprocess.TimeoutExpired) as e:
                            # A failed workload is reported, not fatal: the others still run.
                            dead = [s for s, x in (("A", pair.a), ("B", pair.b)) if not x.alive()]
                            msg = "%s%s" % (str(e)[:300], " (proxy %s died)" % "+".join(dead) if dead else "")
                            failures.append("round %d, %s, %s: %s" % (rnd + 1, p, wl, msg))
                            say("  %s FAILED: %s" % (wl, msg))
                            keep_logs[0] = True
                            pair.stop()
                            pair.start(rnd)
                            continue
                        say("  %s %s" % (wl, json.dumps({k: round(v, 3) if isinstance(v, float) else v
                                                          for k, v in res[p][wl].items()})))
                    if pair.net == "aegis":
                        hs = pair.aegis_metric("aegis_mtls_handshakes_total")
                        res[p]["_mtls_handshakes_a"] = hs
                        if hs < 1:
                            raise RuntimeError("Aegis proxy A made no mTLS handshake: traffic was not meshed")
                finally:
                    pair.stop()
            results.append(res)
        if not a.no_perf and shutil.which("strace"):
            for p in [x for x in pairs if "bulk" in ALL_PAIRS[x][1]]:
                say("system calls of %s proxy A (strace -c)" % p)
                objs[p].start(98)
                try:
                    strace_mix[p] = syscall_mix(objs[p], a)
                except (RuntimeError, ValueError, KeyError, OSError, subprocess.TimeoutExpired) as e:
                    failures.append("strace run, %s: %s" % (p, str(e)[:200]))
                finally:
                    objs[p].stop()
        if not a.no_perf:
            target = "aegis-hbone" if "aegis-hbone" in objs else ("aegis-direct" if "aegis-direct" in objs else None)
            if target:
                say("perf profile of %s proxy A" % target)
                objs[target].start(99)
                try:
                    perf_text = perf_profile(objs[target], a, "%s/mesh-perf-%s.txt" % (a.out, stamp))
                finally:
                    objs[target].stop()
    finally:
        for p in list(procs):
            p.stop()
        delete_nets()
        if keep_logs[0]:
            # The proxies' logs of a run with failures outlive the scratch directory.
            shutil.copytree(a.run + "/logs", "%s/mesh-logs-%s" % (a.out, stamp), dirs_exist_ok=True)
            say("proxy logs kept in %s/mesh-logs-%s" % (a.out, stamp))
    text, medians = report(a, results, pairs, note, perf_text, strace_mix, failures, started)
    md = "%s/mesh-%s.md" % (a.out, stamp)
    write(md, text)
    with open("%s/mesh-%s.json" % (a.out, stamp), "w") as f:
        json.dump({"command": a.command, "commit": a.commit, "started": started, "rounds": results,
                   "syscalls": strace_mix, "failures": failures,
                   "medians": {p: {wl: {k: v for k, v in m.items() if k != "per_round"} for wl, m in R.items()}
                               for p, R in medians.items()}}, f, indent=1)
    print(text)
    say("report: %s" % md)


if __name__ == "__main__":
    main()
