#!/usr/bin/env python3
"""Aegis DNS benchmark driver. Run it through bench/run.sh, which installs, builds and generates first.

Every server runs in the foreground as a child of this script, pinned to core 1 (`taskset -c 1`), with
its configuration in a temporary directory and a port of its own on 127.0.0.1; dnsperf runs pinned to
core 0. Servers are alternated: each round starts, measures and stops every server in turn (the order
rotates between rounds). Every load is bounded in count and time (dnsperf -n and -l), and every server
is stopped by its PID (SIGTERM, then SIGKILL) when its turn ends, on error and on Ctrl-C.

Per server and round:
  warm-up      one pass over the query file
  saturation   dnsperf with 4 clients, 100 queries outstanding: qps, server CPU busy, CPU us per query
  fixed load   dnsperf -Q <qps> -v: server CPU (utime+stime of the whole process tree from /proc) per
               answered query, latency percentiles from the per-query lines
  capped       the server's processes moved into a cgroup limited to 50% of one core: qps
  memory       VmRSS, VmHWM and Pss summed over the server's processes
Then a memory pass at every table size (start, one pass of queries, read /proc, stop), and optionally
the cache-hit phase (--cache). Results: Markdown on stdout and in OUT/results-<date>.md, raw numbers in
OUT/results-<date>.json.
"""
import argparse
import datetime
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CORE = "1"
LOAD_CORE = "0"

PORTS = {
    "aegis": 25301, "unbound": 25302, "nsd": 25303, "knot": 25304, "echo": 25305,
    "dnsdist-cache": 25306, "unbound-fwd": 25307, "upstream-nsd": 25308, "aegis-cache": 25309,
    "aegis-base": 25311,
}
ADMIN_PORT = 25310

TABLE_SERVERS = ["aegis", "unbound", "nsd", "knot", "echo"]
PEERS = ["unbound", "nsd", "knot"]
CACHE_SERVERS = ["aegis-cache", "dnsdist-cache", "unbound-fwd"]
CACHE_PEERS = ["dnsdist-cache", "unbound-fwd"]

LABEL = {
    "aegis": "Aegis (table)", "unbound": "unbound local-data", "nsd": "NSD", "knot": "Knot",
    "echo": "echo floor", "aegis-cache": "Aegis (cache)", "dnsdist-cache": "dnsdist packet cache",
    "unbound-fwd": "unbound forwarding cache", "aegis-base": "Aegis, baseline build (--aegis-base)",
}

STARTED = []  # every Server started, for cleanup
PID_FILE = None


def log(msg):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


# ---- /proc ---------------------------------------------------------------------------------------------

def ppid_map():
    m = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        m[int(d)] = int(rest[1])
    return m


def descendants(pid):
    m = ppid_map()
    out, todo = [pid], [pid]
    while todo:
        p = todo.pop()
        for c, pp in m.items():
            if pp == p and c not in out:
                out.append(c)
                todo.append(c)
    return out


def proc_starttime(pid):
    """Start time of a process (clock ticks after boot): tells a PID we started from a reused one."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rfind(")") + 2:].split()[19])


def proc_cpu_ticks(pid):
    """utime+stime of one process (all its threads, live and exited), in clock ticks."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    rest = s[s.rfind(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def proc_sched_ns(pid):
    """Time on CPU of the live threads of one process, in ns (schedstat): a finer cross-check."""
    total = 0
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return 0
    for t in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total


def proc_status_kib(pid, key):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def proc_pss_kib(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def core_busy_ticks(core):
    """Busy ticks of one CPU from /proc/stat (everything but idle and iowait)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%s " % core):
                v = [int(x) for x in line.split()[1:]]
                return sum(v[:8]) - v[3] - v[4]
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


# ---- cgroup (50% of a core) ----------------------------------------------------------------------------

class CpuCap:
    """A cgroup limited to 50% of one CPU: cgroup v1 cpu controller or cgroup v2 cpu.max."""

    def __init__(self):
        self.path = None
        self.kind = None
        cand = [("v1", "/sys/fs/cgroup/cpu"), ("v2", "/sys/fs/cgroup/unified"), ("v2", "/sys/fs/cgroup")]
        for kind, root in cand:
            probe = "cpu.cfs_quota_us" if kind == "v1" else "cpu.max"
            if kind == "v2" and not os.path.exists(os.path.join(root, "cgroup.controllers")):
                continue
            if kind == "v1" and not os.path.exists(os.path.join(root, probe)):
                continue
            path = os.path.join(root, "aegis-bench-%d" % os.getpid())
            try:
                os.mkdir(path)
                if kind == "v1":
                    with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
                        f.write("100000")
                    with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
                        f.write("50000")
                else:
                    with open(os.path.join(path, "cpu.max"), "w") as f:
                        f.write("50000 100000")
                self.path, self.kind, self.root = path, kind, root
                return
            except OSError:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        log("no writable cgroup cpu controller: the 50%-of-a-core runs are skipped")

    def original(self, pid):
        want = "cpu" if self.kind == "v1" else ""
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                _, ctrls, path = line.rstrip("\n").split(":", 2)
                if (self.kind == "v1" and want in ctrls.split(",")) or (self.kind == "v2" and ctrls == ""):
                    return os.path.join(self.root, path.lstrip("/"))
        return self.root

    def move(self, pids, dest):
        for p in pids:
            try:
                with open(os.path.join(dest, "cgroup.procs"), "w") as f:
                    f.write(str(p))
            except OSError:
                pass

    def close(self):
        if self.path:
            try:
                os.rmdir(self.path)
            except OSError as e:
                log("cannot remove cgroup %s: %s" % (self.path, e))


# ---- DNS probe -----------------------------------------------------------------------------------------

def dns_query(port, name, qtype=1, timeout=0.3):
    """One UDP query; returns (rcode, ancount, [A addresses]) or None on timeout."""
    qid = random.randrange(65536)
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(q, ("127.0.0.1", port))
        while True:
            data, _ = s.recvfrom(4096)
            if len(data) >= 12 and struct.unpack(">H", data[:2])[0] == qid:
                break
    except (socket.timeout, OSError):
        return None
    finally:
        s.close()
    flags, qd, an = struct.unpack(">HHH", data[2:8])
    addrs = []
    # Answers: skip the question, then read A records (names may be compressed).
    try:
        off = 12
        for _ in range(qd):
            while data[off] != 0 and data[off] < 0xC0:
                off += data[off] + 1
            off += 2 if data[off] >= 0xC0 else 1
            off += 4
        for _ in range(an):
            while data[off] != 0 and data[off] < 0xC0:
                off += data[off] + 1
            off += 2 if data[off] >= 0xC0 else 1
            t, _, _, rdlen = struct.unpack(">HHIH", data[off:off + 10])
            off += 10
            if t == 1 and rdlen == 4:
                addrs.append(socket.inet_ntoa(data[off:off + 4]))
            off += rdlen
    except (IndexError, struct.error):
        pass
    return flags & 0xF, an, addrs


# ---- servers -------------------------------------------------------------------------------------------

class Server:
    def __init__(self, name, argv, port, workdir, core=SERVER_CORE, expect=("svc-0.bench.example.com", "10.200.0.1")):
        self.name, self.argv, self.port, self.workdir, self.core = name, argv, port, workdir, core
        self.expect = expect
        self.proc = None
        self.pids = []
        self.starts = {}
        self.logpath = os.path.join(workdir, "%s.log" % name)

    def start(self, timeout=120.0):
        self.logf = open(self.logpath, "ab")
        self.t_start = time.monotonic()
        self.wall_start = time.time()
        self.proc = subprocess.Popen(NICE + ["taskset", "-c", self.core] + self.argv, stdout=self.logf,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.workdir,
                                     start_new_session=True)
        STARTED.append(self)
        if PID_FILE:
            with open(PID_FILE, "a") as f:
                f.write("%d\n" % self.proc.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s during start-up; log %s:\n%s" %
                                   (self.name, self.proc.returncode, self.logpath, self.log_tail()))
            r = dns_query(self.port, self.expect[0] if self.expect else "probe.bench.example.com", timeout=0.2)
            if r is not None and (self.expect is None or self.expect[1] in r[2]):
                self.ready_s = time.monotonic() - self.t_start
                time.sleep(0.3)  # let forked helpers (NSD's xfrd and server child) settle
                self.pids = descendants(self.proc.pid)
                self.starts = {p: proc_starttime(p) for p in self.pids}
                if PID_FILE:
                    with open(PID_FILE, "a") as f:
                        f.write("".join("%d\n" % p for p in self.pids))
                return
            time.sleep(0.05)
        raise RuntimeError("%s did not answer %s on port %d within %.0f s; log %s:\n%s" %
                           (self.name, self.expect, self.port, timeout, self.logpath, self.log_tail()))

    def log_tail(self):
        try:
            with open(self.logpath, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def live_pids(self):
        # Re-scan: a server may fork more children after start-up.
        pids = descendants(self.proc.pid)
        for p in pids:
            if p not in self.pids:
                self.pids.append(p)
                self.starts[p] = proc_starttime(p)
        return pids

    def cpu(self):
        pids = self.live_pids()
        return sum(proc_cpu_ticks(p) for p in pids), sum(proc_sched_ns(p) for p in pids)

    def mem(self):
        pids = self.live_pids()
        return {
            "rss_kib": sum(proc_status_kib(p, "VmRSS") for p in pids),
            "hwm_kib": sum(proc_status_kib(p, "VmHWM") for p in pids),
            "pss_kib": sum(proc_pss_kib(p) for p in pids),
            "procs": len(pids),
        }

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                log("%s (pid %d) ignored SIGTERM: SIGKILL" % (self.name, self.proc.pid))
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        # Helpers it forked (recorded PIDs only) that outlived it: give them 3 s to exit on their own.
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and any(
                p != self.proc.pid and proc_starttime(p) == self.starts.get(p) for p in self.pids):
            time.sleep(0.05)
        for p in self.pids:
            if p == self.proc.pid:
                continue
            st = proc_starttime(p)
            if st is None or st != self.starts.get(p):
                continue  # gone, or the PID now belongs to something else: leave it alone
            log("%s helper pid %d outlived the server: SIGKILL" % (self.name, p))
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.logf.close()
        self.proc = None
        if self in STARTED:
            STARTED.remove(self)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


UNBOUND_SERVER = """server:
    interface: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    num-threads: 1
    username: ""
    chroot: ""
    directory: "{d}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    module-config: "iterator"
"""


def unbound_server(name, d, port, body):
    """unbound on 127.0.0.1:port: the common server: settings, then body (the rest of its config)."""
    write(os.path.join(d, "unbound.conf"), UNBOUND_SERVER.format(port=port, d=d) + body +
          "remote-control:\n    control-enable: no\n")
    return Server(name, ["unbound", "-d", "-c", os.path.join(d, "unbound.conf")], port, d)


def make_server(name, n, gen, tmp, args, upstream_port=None):
    """Writes the configuration of one server for a table of n names; returns a Server (not started)."""
    port = PORTS[name]
    d = os.path.join(tmp, "%s-%d" % (name, n))
    os.makedirs(d, exist_ok=True)
    zone = os.path.join(gen, "bench.example.com-%d.zone" % n)
    if name in ("aegis", "aegis-base"):
        write(os.path.join(d, "resolv.conf"),
              "search bench.svc.cluster.local svc.cluster.local cluster.local\nnameserver 127.0.0.1\noptions ndots:5\n")
        argv = [args.aegis if name == "aegis" else args.aegis_base, "--config", os.path.join(gen, "aegis-%d" % n), "--dns-listen", "127.0.0.1:%d" % port,
                "--admin", "127.0.0.1:%d" % ADMIN_PORT, "--namespace", "bench",
                "--resolv-conf", os.path.join(d, "resolv.conf"), "--no-watch", "--log-level", "info"]
        return Server(name, argv, port, d)
    if name == "aegis-cache":
        write(os.path.join(d, "other.yaml"),
              "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: other\n  namespace: bench\n"
              "spec:\n  addresses:\n  - 10.201.255.1\n  hosts:\n  - other.example.org\n  location: MESH_EXTERNAL\n"
              "  ports:\n  - name: http\n    number: 80\n    protocol: HTTP\n  resolution: NONE\n")
        write(os.path.join(d, "resolv.conf"), "nameserver 127.0.0.1\n")
        argv = [args.aegis, "--config", os.path.join(d, "other.yaml"), "--dns-listen", "127.0.0.1:%d" % port,
                "--admin", "127.0.0.1:%d" % (ADMIN_PORT + 1), "--namespace", "bench",
                "--resolv-conf", os.path.join(d, "resolv.conf"), "--upstream", "127.0.0.1:%d" % upstream_port,
                "--no-watch", "--log-level", "info"]
        return Server(name, argv, port, d)
    if name == "echo":
        return Server(name, [args.echo, "127.0.0.1", str(port)], port, d, expect=None)
    if name == "unbound":
        return unbound_server(name, d, port, """    include: "{gen}/unbound-{n}.conf"
""".format(gen=gen, n=n))
    if name in ("nsd", "upstream-nsd"):
        # Debian's NSD rate-limits responses (RRL, 200 qps per source) by default: a benchmark from one
        # source would see drops, so RRL is off.
        write(os.path.join(d, "nsd.conf"), """server:
    ip-address: 127.0.0.1@{port}
    port: {port}
    do-ip6: no
    server-count: 1
    username: ""
    chroot: ""
    zonesdir: "{d}"
    database: ""
    zonelistfile: "{d}/zone.list"
    xfrdfile: "{d}/xfrd.state"
    xfrdir: "{d}"
    pidfile: "{d}/nsd.pid"
    logfile: "{d}/nsd-internal.log"
    verbosity: 0
    rrl-ratelimit: 0
    rrl-whitelist-ratelimit: 0
remote-control:
    control-enable: no
zone:
    name: bench.example.com
    zonefile: "{zone}"
""".format(port=port, d=d, zone=zone))
        core = LOAD_CORE if name == "upstream-nsd" else SERVER_CORE
        return Server(name, ["nsd", "-d", "-c", os.path.join(d, "nsd.conf")], port, d, core=core)
    if name == "knot":
        # journal-content none + zonefile-sync -1: Knot neither journals nor rewrites the zone file.
        write(os.path.join(d, "knot.conf"), """server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
log:
  - target: stderr
    any: warning
database:
    storage: "{d}/db"
control:
    listen: "{d}/knot.sock"
template:
  - id: default
    storage: "{d}"
    journal-content: none
    zonefile-sync: -1
    zonefile-load: whole
zone:
  - domain: bench.example.com
    file: "{zone}"
""".format(port=port, d=d, zone=zone))
        return Server(name, ["knotd", "-c", os.path.join(d, "knot.conf")], port, d)
    if name == "dnsdist-cache":
        # dnsdist batches only with setUDPMultipleMessagesVectorSize; offline it needs the security
        # poll switched off.
        write(os.path.join(d, "dnsdist.conf"), """setLocal("127.0.0.1:{port}")
setSecurityPollSuffix("")
setUDPMultipleMessagesVectorSize(32)
newServer({{address="127.0.0.1:{up}", checkName="bench.example.com.", checkType="SOA", checkInterval=30}})
pc = newPacketCache(500000, {{maxTTL=86400, minTTL=0}})
getPool(""):setCache(pc)
""".format(port=port, up=upstream_port))
        return Server(name, ["dnsdist", "--supervised", "--disable-syslog", "-C", os.path.join(d, "dnsdist.conf")],
                      port, d)
    if name == "unbound-fwd":
        # Forwarding to a loopback address needs do-not-query-localhost: no.
        return unbound_server(name, d, port, """    do-not-query-localhost: no
    qname-minimisation: no
    msg-cache-size: 128m
    rrset-cache-size: 256m
forward-zone:
    name: "bench.example.com."
    forward-addr: 127.0.0.1@{up}
""".format(up=upstream_port))
    raise ValueError(name)


# ---- dnsperf -------------------------------------------------------------------------------------------

NICE = []      # ["nice", "-n", "-10"] with --nice: servers and load ahead of other work on the machine
LOADGEN = None  # bench/loadgen binary, for the runs that must outrun dnsperf


def dnsperf(port, qfile, runs, seconds, qps=None, verbose_to=None, clients=4, outstanding=100, tool="dnsperf"):
    if tool == "loadgen":
        argv = NICE + ["taskset", "-c", LOAD_CORE, LOADGEN, "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                       "-n", str(runs), "-l", str(seconds), "-w", "64", "-b", "32", "-t", "2000"]
    else:
        argv = NICE + ["taskset", "-c", LOAD_CORE, "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", qfile,
                       "-n", str(runs), "-l", str(seconds), "-c", str(clients), "-q", str(outstanding), "-t", "2"]
    if qps:
        argv += ["-Q", str(qps)]
    if verbose_to:
        argv.append("-v")
    out = open(verbose_to, "w") if verbose_to else subprocess.PIPE
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, timeout=seconds + 60,
                       universal_newlines=True)
    wall = time.monotonic() - t0
    if verbose_to:
        out.close()
        with open(verbose_to) as f:
            text = f.read()
    else:
        text = p.stdout
    if p.returncode != 0:
        raise RuntimeError("dnsperf failed (%d): %s" % (p.returncode, p.stderr[-500:]))

    def num(pat, cast=float):
        m = re.search(pat, text)
        return cast(m.group(1)) if m else 0

    res = {
        "sent": num(r"Queries sent:\s+(\d+)", int),
        "completed": num(r"Queries completed:\s+(\d+)", int),
        "lost": num(r"Queries lost:\s+(\d+)", int),
        "qps": num(r"Queries per second:\s+([\d.]+)"),
        "run_s": num(r"Run time \(s\):\s+([\d.]+)"),
        "avg_lat_s": num(r"Average Latency \(s\):\s+([\d.]+)"),
        "wall_s": wall,
    }
    m = re.search(r"Response codes:\s+(.*)", text)
    res["rcodes"] = m.group(1).strip() if m else ""
    if verbose_to:
        lats = []
        for line in text.splitlines():
            if line.startswith("> "):
                try:
                    lats.append(float(line.rsplit(None, 1)[1]))
                except (ValueError, IndexError):
                    pass
        lats.sort()
        res["lat_n"] = len(lats)
        for pname, pv in (("p50", 50), ("p90", 90), ("p99", 99), ("p999", 99.9)):
            res[pname + "_us"] = lats[min(len(lats) - 1, int(len(lats) * pv / 100.0))] * 1e6 if lats else 0
        res["max_us"] = lats[-1] * 1e6 if lats else 0
        os.unlink(verbose_to)  # large; the percentiles are what we keep
    return res


def measure(srv, qfile, args, cap, tmp):
    """One round for one (started) server."""
    r = {"ready_s": round(srv.ready_s, 3)}
    dnsperf(srv.port, qfile, 1, 10)  # warm-up (and fills caches)

    def timed(**kw):
        c0, s0, b0, t0 = srv.cpu() + (core_busy_ticks(srv.core), time.monotonic())
        res = dnsperf(srv.port, qfile, **kw)
        c1, s1, b1, t1 = srv.cpu() + (core_busy_ticks(srv.core), time.monotonic())
        wall = t1 - t0
        cpu_s = (c1 - c0) / CLK_TCK
        res["server_cpu_s"] = cpu_s
        res["server_sched_s"] = (s1 - s0) / 1e9
        res["server_busy"] = cpu_s / res["run_s"] if res["run_s"] else 0
        res["us_per_q"] = cpu_s * 1e6 / res["completed"] if res["completed"] else 0
        # Whatever else ran on the server's core meanwhile (other processes, interrupts): noise.
        res["core_other_busy"] = max(0.0, ((b1 - b0) / CLK_TCK - cpu_s) / wall) if wall else 0
        return res

    r["sat"] = timed(runs=args.sat_runs, seconds=args.sat_seconds)
    r["fixed"] = timed(runs=args.fixed_runs, seconds=args.fixed_seconds, qps=args.fixed_qps,
                       verbose_to=os.path.join(tmp, "dnsperf-v.txt"))
    if cap.path:
        orig = cap.original(srv.proc.pid)
        pids = srv.live_pids()
        cap.move(pids, cap.path)
        try:
            r["capped"] = timed(runs=args.sat_runs * 5, seconds=args.cap_seconds,
                                tool="loadgen" if LOADGEN else "dnsperf")
        finally:
            cap.move(srv.live_pids(), orig)
    r["mem"] = srv.mem()
    return r


def run_one(name, n, gen, tmp, args, cap, upstream_port=None):
    srv = make_server(name, n, gen, tmp, args, upstream_port)
    srv.start()
    try:
        return measure(srv, os.path.join(gen, "queries-%d.txt" % n), args, cap, tmp)
    finally:
        srv.stop()


def memory_pass(name, n, gen, tmp, args):
    srv = make_server(name, n, gen, tmp, args)
    srv.start()
    try:
        dnsperf(srv.port, os.path.join(gen, "queries-%d.txt" % n), 1, 10)
        m = srv.mem()
        m["ready_s"] = round(srv.ready_s, 3)
        return m
    finally:
        srv.stop()


def profile_aegis(args, gen, tmp, out, ts):
    """perf record (cpu-clock: this VM exposes no hardware PMU) of aegis-proxy answering table hits at
    saturation; returns the top of `perf report` by symbol, and keeps the full report in out/."""
    srv = make_server("aegis", args.names, gen, tmp, args)
    srv.start()
    try:
        qfile = os.path.join(gen, "queries-%d.txt" % args.names)
        dnsperf(srv.port, qfile, 1, 10)
        data = os.path.join(tmp, "perf.data")
        rec = subprocess.Popen(["taskset", "-c", LOAD_CORE, "perf", "record", "-e", "cpu-clock", "-F", "4999", "-g",
                                "-o", data, "-p", str(srv.proc.pid), "--", "sleep", str(args.sat_seconds + 1)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.5)
        dnsperf(srv.port, qfile, args.sat_runs, args.sat_seconds)
        rec.wait(timeout=60)
    finally:
        srv.stop()
    reports = []
    for extra in (["--no-children", "--sort", "symbol"], ["--no-children", "--sort", "dso"],
                  ["--children", "--sort", "symbol"]):
        p = subprocess.run(["perf", "report", "-i", data, "--stdio", "-g", "none", "--percent-limit", "0.7"] + extra,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True, timeout=300)
        reports.append(p.stdout)
    full = os.path.join(out, "perf-aegis-%s.txt" % ts)
    write(full, "\n\n".join(reports))
    # The self-time table by symbol, without perf's comment header.
    top = [l for l in reports[0].splitlines() if l.strip() and not l.startswith("#")][:25]
    dso = [l for l in reports[1].splitlines() if l.strip() and not l.startswith("#")][:8]
    return top, dso, full


def aegis_forwarder_works(args, gen, tmp, n, up_port):
    """True when aegis-proxy takes --upstream and answers a table miss from that upstream."""
    h = subprocess.run([args.aegis, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True)
    if "--upstream" not in h.stdout:
        return False, "aegis-proxy --help lists no --upstream"
    srv = make_server("aegis-cache", n, gen, tmp, args, up_port)
    srv.expect = ("other.example.org", "10.201.255.1")
    try:
        srv.start(timeout=30)
        r = None
        for _ in range(10):
            r = dns_query(srv.port, "svc-0.bench.example.com", timeout=0.5)
            if r is not None and "10.200.0.1" in r[2]:
                return True, "forwarded answer received"
        return False, "a table miss through --upstream got %s, not the upstream's answer" % (
            "no reply" if r is None else "rcode %d, %d answers" % (r[0], r[1]))
    except RuntimeError as e:
        return False, "aegis-proxy with --upstream did not start: %s" % str(e).splitlines()[0]
    finally:
        srv.stop()


# ---- report --------------------------------------------------------------------------------------------

def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def get(rounds, *path):
    out = []
    for r in rounds:
        v = r
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
            if v is None:
                break
        out.append(v)
    return out


def fmt(v, f="%.1f"):
    return "-" if v is None else f % v


def summarize(results, names):
    s = {}
    for name in names:
        rounds = results.get(name, [])
        if not rounds:
            continue
        s[name] = {
            "sat_qps": med(get(rounds, "sat", "qps")),
            "sat_busy": med(get(rounds, "sat", "server_busy")),
            "sat_us": med(get(rounds, "sat", "us_per_q")),
            "fix_us": med(get(rounds, "fixed", "us_per_q")),
            "fix_us_min": min(get(rounds, "fixed", "us_per_q")),
            "fix_us_max": max(get(rounds, "fixed", "us_per_q")),
            "fix_qps": med(get(rounds, "fixed", "qps")),
            "p50": med(get(rounds, "fixed", "p50_us")),
            "p90": med(get(rounds, "fixed", "p90_us")),
            "p99": med(get(rounds, "fixed", "p99_us")),
            "p999": med(get(rounds, "fixed", "p999_us")),
            "max": med(get(rounds, "fixed", "max_us")),
            "lost": sum(get(rounds, "fixed", "lost")) + sum(get(rounds, "sat", "lost")),
            "cap_qps": med(get(rounds, "capped", "qps")),
            "rss": med(get(rounds, "mem", "rss_kib")),
            "hwm": med(get(rounds, "mem", "hwm_kib")),
            "noise": max(get(rounds, "fixed", "core_other_busy") + get(rounds, "sat", "core_other_busy")),
            "rcodes": get(rounds, "fixed", "rcodes")[0],
        }
    return s


def table_md(s, names, fixed_qps):
    lines = [
        "| server | qps saturated (dnsperf, 100 in flight) | server core busy at saturation | CPU µs/query at saturation "
        "| CPU µs/query at %d qps (min–max) | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | qps at 50%% of a core (loadgen) "
        "| RSS / HWM MiB | lost | other load on core 1 (max) |" % fixed_qps,
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in names:
        if n not in s:
            continue
        x = s[n]
        lines.append("| %s | %s | %s | %s | %s (%s–%s) | %s | %s | %s | %s | %s | %s | %s / %s | %d | %s |" % (
            LABEL[n], fmt(x["sat_qps"], "%.0f"), fmt(x["sat_busy"] * 100, "%.0f%%"), fmt(x["sat_us"], "%.2f"),
            fmt(x["fix_us"], "%.2f"), fmt(x["fix_us_min"], "%.2f"), fmt(x["fix_us_max"], "%.2f"),
            fmt(x["p50"], "%.0f"), fmt(x["p90"], "%.0f"), fmt(x["p99"], "%.0f"), fmt(x["p999"], "%.0f"),
            fmt(x["max"], "%.0f"), fmt(x["cap_qps"], "%.0f"), fmt(x["rss"] and x["rss"] / 1024, "%.1f"),
            fmt(x["hwm"] and x["hwm"] / 1024, "%.1f"), x["lost"], fmt(x["noise"] * 100, "%.0f%%")))
    return "\n".join(lines)


def ratios_md(s, me, peers, floor="echo"):
    if me not in s:
        return "(%s not measured)" % me
    avail = [p for p in peers if p in s]
    if not avail:
        return "(no peer measured)"
    best_cpu = min(avail, key=lambda p: s[p]["fix_us"])
    out = []
    x = s[me]
    out.append("- CPU per answered query at the fixed load: %s %.2f µs vs best peer %s %.2f µs = **%.2f×** "
               "(below 1 is better)" % (LABEL[me], x["fix_us"], LABEL[best_cpu], s[best_cpu]["fix_us"],
                                        x["fix_us"] / s[best_cpu]["fix_us"]))
    for p in avail:
        if p != best_cpu:
            out.append("  - vs %s %.2f µs = %.2f×" % (LABEL[p], s[p]["fix_us"], x["fix_us"] / s[p]["fix_us"]))
    if floor in s:
        f = s[floor]
        out.append("- vs the echo floor %.2f µs = **%.2f×** (goal: ≤ 1.15×)" % (f["fix_us"], x["fix_us"] / f["fix_us"]))
    if x["cap_qps"]:
        best_cap = max(avail, key=lambda p: s[p]["cap_qps"] or 0)
        if s[best_cap]["cap_qps"]:
            out.append("- qps at 50%% of a core: %.0f vs best peer %s %.0f = **%.2f×** (above 1 is better)%s" % (
                x["cap_qps"], LABEL[best_cap], s[best_cap]["cap_qps"], x["cap_qps"] / s[best_cap]["cap_qps"],
                "; echo floor %.0f" % s[floor]["cap_qps"] if floor in s and s[floor]["cap_qps"] else ""))
    best_sat = max(avail, key=lambda p: s[p]["sat_qps"])
    out.append("- saturated qps from dnsperf (often dnsperf-bound: see \"server core busy\"): %.0f vs best peer %s %.0f = %.2f×" % (
        x["sat_qps"], LABEL[best_sat], s[best_sat]["sat_qps"], x["sat_qps"] / s[best_sat]["sat_qps"]))
    out.append("- p99 latency at the fixed load: %.0f µs vs best peer %s %.0f µs" % (
        x["p99"], LABEL[min(avail, key=lambda p: s[p]["p99"])], min(s[p]["p99"] for p in avail)))
    return "\n".join(out)


def main():
    global PID_FILE, SERVER_CORE, LOAD_CORE, NICE, LOADGEN
    ap = argparse.ArgumentParser()
    ap.add_argument("--gen", required=True, help="directory with gen_tables.py output")
    ap.add_argument("--gen-cache", help="directory with the long-TTL zone for the cache upstream")
    ap.add_argument("--names", type=int, default=10000)
    ap.add_argument("--mem-sizes", default="1000,10000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--servers", default=",".join(TABLE_SERVERS))
    ap.add_argument("--cache", action="store_true")
    ap.add_argument("--fixed-qps", type=int, default=40000)
    ap.add_argument("--fixed-runs", type=int, default=3, help="passes over the query file at the fixed load")
    ap.add_argument("--fixed-seconds", type=int, default=10)
    ap.add_argument("--sat-runs", type=int, default=20)
    ap.add_argument("--sat-seconds", type=int, default=8)
    ap.add_argument("--cap-seconds", type=int, default=8)
    ap.add_argument("--aegis", required=True)
    ap.add_argument("--aegis-base", help="a second aegis-proxy (e.g. before a change), run as server aegis-base")
    ap.add_argument("--echo", required=True)
    ap.add_argument("--table-cost", help="table_cost binary")
    ap.add_argument("--table-cost-sizes", default="10000,100000")
    ap.add_argument("--out", required=True)
    ap.add_argument("--pid-file")
    ap.add_argument("--command", default="bench/run.sh")
    ap.add_argument("--perf", action="store_true", help="profile aegis-proxy on the table-hit path")
    ap.add_argument("--loadgen", help="bench/loadgen binary (batching load for the capped runs)")
    ap.add_argument("--nice", type=int, default=0, help="nice value for servers and load generators")
    args = ap.parse_args()
    PID_FILE = args.pid_file
    LOADGEN = args.loadgen
    if args.nice:
        NICE = ["nice", "-n", str(args.nice)]
    try:
        os.sched_setaffinity(0, {int(LOAD_CORE)})  # keep this driver off the server's core
    except OSError:
        pass
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="aegis-bench.")
    cap = CpuCap()

    def on_signal(sig, frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)

    started_at = datetime.datetime.now()
    meta = {
        "date": started_at.strftime("%Y-%m-%d %H:%M"),
        "nproc": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "kernel": os.uname().release,
        "load_start": loadavg(),
        "command": args.command,
        "names": args.names,
        "rounds": args.rounds,
        "fixed_qps": args.fixed_qps,
        "nice": args.nice,
        "versions": {},
    }
    for tool, argv in (("dnsperf", ["dnsperf", "-h"]), ("unbound", ["unbound", "-V"]), ("nsd", ["nsd", "-v"]),
                       ("knot", ["knotd", "-V"]), ("dnsdist", ["dnsdist", "-V"])):
        try:
            o = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                               timeout=10).stdout
            m = re.search(r"[Vv]ersion:?\s+(\d+\.\d+\.\d+)", o) or re.search(r"(\d+\.\d+\.\d+)", o)
            meta["versions"][tool] = m.group(1) if m else "?"
        except (OSError, subprocess.TimeoutExpired):
            meta["versions"][tool] = "missing"
    # The tree is shared with work in progress: say which code was measured.
    try:
        root = os.path.dirname(HERE)
        head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, universal_newlines=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "proxy", "common", "xds", "include"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, universal_newlines=True).stdout
        meta["aegis_build"] = "commit %s%s, aegis-proxy built %s" % (
            head or "?", " + %d uncommitted files under proxy/ common/ xds/ include/" % len(dirty.splitlines())
            if dirty.strip() else "", time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(args.aegis))))
    except OSError:
        meta["aegis_build"] = "?"
    servers = [s for s in args.servers.split(",") if s]
    results = {"meta": meta, "table": {}, "mem": {}, "cache": {}, "table_cost": [], "notes": []}
    try:
        # -- table hits, alternating servers over the rounds
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            log("round %d/%d: %s (load %s)" % (rnd + 1, args.rounds, " ".join(order), loadavg()))
            for name in order:
                r = run_one(name, args.names, args.gen, tmp, args, cap)
                r["round"] = rnd + 1
                r["loadavg"] = loadavg()
                results["table"].setdefault(name, []).append(r)
                log("  %-8s sat %.0f qps (busy %.0f%%), %.2f us/q at %d qps, p99 %.0f us, capped %s qps, rss %.1f MiB" % (
                    name, r["sat"]["qps"], r["sat"]["server_busy"] * 100, r["fixed"]["us_per_q"], args.fixed_qps,
                    r["fixed"]["p99_us"], "%.0f" % r["capped"]["qps"] if "capped" in r else "-",
                    r["mem"]["rss_kib"] / 1024))
        # -- memory at each size
        for n in [int(x) for x in args.mem_sizes.split(",") if x]:
            for name in servers:
                results["mem"].setdefault(name, {})[str(n)] = memory_pass(name, n, args.gen, tmp, args)
                log("  mem %-8s %6d names: rss %.1f MiB hwm %.1f MiB" % (
                    name, n, results["mem"][name][str(n)]["rss_kib"] / 1024,
                    results["mem"][name][str(n)]["hwm_kib"] / 1024))
        # -- table build cost
        if args.table_cost:
            for n in [int(x) for x in args.table_cost_sizes.split(",") if x]:
                repeat = "3" if n <= 100000 else "1"
                p = subprocess.run(["taskset", "-c", SERVER_CORE, args.table_cost, os.path.join(args.gen, "aegis-%d" % n), repeat],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
                if p.returncode != 0:
                    results["notes"].append("table_cost %d failed: %s" % (n, p.stderr.strip()[:300]))
                    continue
                kv = dict(x.split("=", 1) for x in p.stdout.split())
                results["table_cost"].append({k: float(v) for k, v in kv.items()})
                log("  table_cost %s" % p.stdout.strip())
        # -- profile
        if args.perf and "aegis" in servers:
            results["perf"] = profile_aegis(args, args.gen, tmp, args.out, started_at.strftime("%Y-%m-%d-%H%M"))
            log("  perf report in %s" % results["perf"][2])
        # -- cache hits
        if args.cache:
            up = make_server("upstream-nsd", args.names, args.gen_cache or args.gen, tmp, args)
            up.start()
            try:
                ok, why = aegis_forwarder_works(args, args.gen_cache or args.gen, tmp, args.names,
                                                PORTS["upstream-nsd"])
                cservers = list(CACHE_SERVERS)
                if not ok:
                    msg = "Aegis cache-hit run skipped: %s (its forwarder has not landed yet)" % why
                    log(msg)
                    results["notes"].append(msg)
                    cservers.remove("aegis-cache")
                for rnd in range(args.rounds):
                    order = cservers[rnd % len(cservers):] + cservers[:rnd % len(cservers)]
                    log("cache round %d/%d: %s (load %s)" % (rnd + 1, args.rounds, " ".join(order), loadavg()))
                    for name in order:
                        r = run_one(name, args.names, args.gen_cache or args.gen, tmp, args, cap,
                                    PORTS["upstream-nsd"])
                        r["round"] = rnd + 1
                        r["loadavg"] = loadavg()
                        results["cache"].setdefault(name, []).append(r)
                        log("  %-13s sat %.0f qps, %.2f us/q at %d qps, p99 %.0f us" % (
                            name, r["sat"]["qps"], r["fixed"]["us_per_q"], args.fixed_qps, r["fixed"]["p99_us"]))
            finally:
                up.stop()
    except KeyboardInterrupt:
        log("interrupted: stopping servers")
        results["notes"].append("run interrupted; partial results")
    finally:
        for srv in list(STARTED):
            srv.stop()
        cap.close()
        shutil.rmtree(tmp, ignore_errors=True)
    meta["load_end"] = loadavg()
    meta["minutes"] = round((datetime.datetime.now() - started_at).total_seconds() / 60, 1)

    # -- report
    ts = started_at.strftime("%Y-%m-%d-%H%M")
    st = summarize(results["table"], servers)
    md = ["# Aegis DNS benchmark, %s" % meta["date"], "",
          "Machine: %d cores, %s, kernel %s; load average %s at start, %s at the end (%.1f min)." % (
              meta["nproc"], meta["cpu"], meta["kernel"], meta["load_start"], meta["load_end"], meta["minutes"]),
          "Peers: " + ", ".join("%s %s" % kv for kv in meta["versions"].items()) + ".",
          "Aegis: %s (Release)." % meta["aegis_build"],
          "Command: `%s`" % meta["command"], "",
          "## Table hits: %d names, A queries for random table names, %d rounds (medians)" % (args.names, args.rounds), "",
          "Server pinned to core 1, dnsperf to core 0%s. CPU = utime+stime of the server's processes (/proc) / "
          "answered queries. Latency from dnsperf -v at the fixed load. \"other load on core 1\" is the busy time "
          "of core 1 not spent by the server (other processes on this shared machine): a noise indicator. "
          "\"qps at 50%% of a core\": the server's processes in a cgroup with a CPU quota of 50 ms per 100 ms, "
          "load from bench/loadgen (64 queries in flight, sendmmsg/recvmmsg batches), which outruns dnsperf."
          % ((", both at nice %d" % args.nice) if args.nice else ""), "",
          table_md(st, servers, args.fixed_qps), "",
          "### Ratios (Aegis vs peers)", "", ratios_md(st, "aegis", [p for p in PEERS if p in servers]), ""]
    if "aegis" in st and "aegis-base" in st:
        a, b = st["aegis"], st["aegis-base"]
        md += ["### Aegis against the baseline build (same run)", "",
               "- CPU µs/query at the fixed load: %s vs %s = **%s×**; at saturation %s vs %s; qps at 50%% of a core %s vs %s" % (
                   fmt(a["fix_us"], "%.2f"), fmt(b["fix_us"], "%.2f"),
                   fmt(a["fix_us"] / b["fix_us"] if a["fix_us"] and b["fix_us"] else None, "%.2f"),
                   fmt(a["sat_us"], "%.2f"), fmt(b["sat_us"], "%.2f"), fmt(a["cap_qps"], "%.0f"), fmt(b["cap_qps"], "%.0f")), ""]
    if results["mem"]:
        sizes = [x for x in args.mem_sizes.split(",") if x]
        md += ["## Memory after start + one pass of queries (VmRSS / VmHWM / Pss in MiB, summed over the server's processes)", "",
               "| server | " + " | ".join("%s names" % s for s in sizes) + " |",
               "|---|" + "---:|" * len(sizes)]
        for name in servers:
            row = results["mem"].get(name, {})
            md.append("| %s | %s |" % (LABEL[name], " | ".join(
                "%.1f / %.1f / %.1f" % (row[s]["rss_kib"] / 1024, row[s]["hwm_kib"] / 1024, row[s]["pss_kib"] / 1024)
                if s in row else "-" for s in sizes)))
        if "aegis" in results["mem"] and len(sizes) >= 2:
            a = results["mem"]["aegis"]
            s0, s1 = sizes[0], sizes[-1]
            if s0 in a and s1 in a:
                per = (a[s1]["rss_kib"] - a[s0]["rss_kib"]) * 1024.0 / (int(s1) - int(s0))
                md += ["", "Aegis RSS growth: %.0f bytes per further name between %s and %s names (goal ≤ 150; "
                       "10k names in ≤ 8 MiB)." % (per, s0, s1)]
        md.append("")
    if results["table_cost"]:
        md += ["## Table build cost (bench/table_cost: aegis_yaml_load_paths + aegis_table_build; best of 3, one run at 1M)", "",
               "| names | table nodes | YAML load ms | table build ms | table bytes | bytes per name | bytes per node | peak RSS MiB | lookup hit / miss ns | PTR hit / miss ns |",
               "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for t in results["table_cost"]:
            md.append("| %d | %d | %.0f | %.0f | %d | %.0f | %.0f | %.1f | %s | %s |" % (
                t["names"], t["nodes"], t["load_ms"], t["build_ms"], t["table_bytes"], t["bytes_per_name"],
                t["bytes_per_node"], t["peak_rss_kib"] / 1024,
                "%.0f / %.0f" % (t["hit_ns"], t["miss_ns"]) if "hit_ns" in t else "-",
                "%.0f / %.0f" % (t["ptr_hit_ns"], t["ptr_miss_ns"]) if "ptr_hit_ns" in t else "-"))
        if "aegis" in results["mem"]:
            md += ["", "aegis-proxy start to first answer: " + ", ".join(
                "%s names %.2f s" % (n, m["ready_s"]) for n, m in sorted(results["mem"]["aegis"].items(), key=lambda kv: int(kv[0])))]
        md.append("")
    if args.cache:
        cs = summarize(results["cache"], CACHE_SERVERS)
        md += ["## Cache hits: the same names answered from a cache filled by a warm-up pass (upstream: NSD on core 0)", "",
               table_md(cs, CACHE_SERVERS, args.fixed_qps), ""]
        if "echo" in st:
            cs["echo"] = st["echo"]
        md += ["### Ratios (cache hits)", "", ratios_md(cs, "aegis-cache", CACHE_PEERS), ""]
    if results.get("perf"):
        top, dso, full = results["perf"]
        md += ["## Where Aegis spends its time at saturation (perf record -e cpu-clock -g, self time)", "",
               "Full report: `%s`." % os.path.relpath(full, os.path.dirname(HERE)), "", "```"] + dso + [""] + top + ["```", ""]
    if results["notes"]:
        md += ["## Notes", ""] + ["- " + n for n in results["notes"]] + [""]
    md += ["## Per-round values (CPU µs/query at the fixed load; saturated qps)", "",
           "| server | " + " | ".join("round %d" % (i + 1) for i in range(args.rounds)) + " |",
           "|---|" + "---:|" * args.rounds]
    for group in ("table", "cache"):
        for name, rounds in results[group].items():
            md.append("| %s | %s |" % (LABEL[name], " | ".join(
                "%.2f µs, %.0f qps (load %s)" % (r["fixed"]["us_per_q"], r["sat"]["qps"], r.get("loadavg", "").split()[0] if r.get("loadavg") else "-")
                for r in rounds)))
    md.append("")
    text = "\n".join(md)
    print(text)
    path = os.path.join(args.out, "results-%s.md" % ts)
    write(path, text)
    with open(os.path.join(args.out, "results-%s.json" % ts), "w") as f:
        json.dump(results, f, indent=1)
    log("wrote %s" % path)


if __name__ == "__main__":
    main()
