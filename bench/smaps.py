#!/usr/bin/env python3
"""What a running process's memory is made of, from /proc/PID/smaps (bench/README.md, "Memory").

Usage: bench/smaps.py PID [--label TEXT] [--top N]

Sums every mapping's Rss, Pss, Shared_Clean, Shared_Dirty, Private_Clean and Private_Dirty by what is
mapped: each shared library (the abseil ones as one row), the executable, [heap], anonymous memory
(malloc arenas of other threads, thread stacks, libev's and gRPC's own mmaps) and [stack]. Prints a
Markdown table, largest Rss first, and a total row. "private" = Private_Clean + Private_Dirty: what this
process alone pays; "shared clean" are file pages that every pod on a node running the same image shares
(counted in each pod's RSS, paid once by the node)."""
import argparse
import os
import re
import sys

FIELDS = ("Rss", "Pss", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty")


def group(path, exe):
    if path == "":
        return "[anon]"
    if path.startswith("["):
        return "[stack]" if path.startswith("[stack") else path
    if path == exe:
        return os.path.basename(path) + " (executable)"
    base = os.path.basename(path)
    if base.startswith("libabsl_"):
        return "libabsl_* (abseil)"
    return re.sub(r"\.so[.0-9]*$", ".so", base)


def read(pid):
    exe = os.readlink("/proc/%d/exe" % pid)
    rows = {}
    cur = None
    libs = {}
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                path = " ".join(parts[5:]) if len(parts) > 5 else ""
                cur = rows.setdefault(group(path, exe), dict.fromkeys(FIELDS, 0))
                if path.endswith(".so") or ".so." in path:
                    libs.setdefault(group(path, exe), set()).add(path)
            elif cur is not None and parts and parts[0].rstrip(":") in FIELDS:
                cur[parts[0].rstrip(":")] += int(parts[1])
    return rows, libs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pid", type=int)
    ap.add_argument("--label", default="")
    ap.add_argument("--top", type=int, default=14)
    a = ap.parse_args()
    rows, libs = read(a.pid)
    total = dict.fromkeys(FIELDS, 0)
    for r in rows.values():
        for k in FIELDS:
            total[k] += r[k]
    n_libs = sum(len(v) for v in libs.values())
    order = sorted(rows.items(), key=lambda kv: -kv[1]["Rss"])
    print("%s: pid %d, %d shared libraries mapped" % (a.label or "process", a.pid, n_libs))
    print()
    print("| mapping | RSS KiB | PSS KiB | shared clean | shared dirty | private clean | private dirty | private |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    rest = dict.fromkeys(FIELDS, 0)
    for i, (name, r) in enumerate(order):
        if i >= a.top:
            for k in FIELDS:
                rest[k] += r[k]
            continue
        if name in libs and len(libs[name]) > 1:
            name = "%s (%d libs)" % (name, len(libs[name]))
        print("| %s | %d | %d | %d | %d | %d | %d | %d |" % (
            name, r["Rss"], r["Pss"], r["Shared_Clean"], r["Shared_Dirty"], r["Private_Clean"],
            r["Private_Dirty"], r["Private_Clean"] + r["Private_Dirty"]))
    if len(order) > a.top:
        print("| %d others | %d | %d | %d | %d | %d | %d | %d |" % (
            len(order) - a.top, rest["Rss"], rest["Pss"], rest["Shared_Clean"], rest["Shared_Dirty"],
            rest["Private_Clean"], rest["Private_Dirty"], rest["Private_Clean"] + rest["Private_Dirty"]))
    t = total
    print("| **total** | **%d** | **%d** | %d | %d | %d | %d | **%d** |" % (
        t["Rss"], t["Pss"], t["Shared_Clean"], t["Shared_Dirty"], t["Private_Clean"], t["Private_Dirty"],
        t["Private_Clean"] + t["Private_Dirty"]))
    print()
    print("summary %s rss_kib=%d pss_kib=%d shared_clean_kib=%d private_kib=%d private_dirty_kib=%d "
          "heap_private_kib=%d anon_private_kib=%d" % (
              (a.label or "process").replace(" ", "_"), t["Rss"], t["Pss"], t["Shared_Clean"],
              t["Private_Clean"] + t["Private_Dirty"], t["Private_Dirty"],
              rows.get("[heap]", {}).get("Private_Dirty", 0), rows.get("[anon]", {}).get("Private_Dirty", 0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
