#!/usr/bin/python3
"""Writes the seed corpora of the harnesses added for issue 10 (run with Debian's /usr/bin/python3, which
has python3-protobuf; the pyenv python3 on PATH has not):

    /usr/bin/python3 tests/fuzz/seeds/gen_seeds.py [CORPUS_DIR]     (default tests/fuzz/corpus)

xds_resource, xds_discovery: messages serialized by protobuf's Python implementation from the same .proto
files (tests/unit/xds_compat/gen.py's samples, which are also what the decoder's unit test expects), in the
harnesses' input formats (see the headers of fuzz_xds_resource.c and fuzz_xds_discovery.c).
spiffe_id: certificates made by scripts/make-certs.sh, converted to DER.
blocklist, upstream_answer, capture_resolv: from the example rules and the existing dns_answer and
resolv_conf corpora.
Deterministic except for the certificates (fresh keys each run)."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit", "xds_compat"))
import gen  # noqa: E402  (compile_protos, samples, wrapped)

URL = "type.googleapis.com/"
TYPES = [  # (harness kind byte, type URL, sample keys)
    (0, "istio.networking.v1alpha3.ServiceEntry", ["se", "bad_hosts", "bad_ip", "bad_port"]),
    (1, "istio.networking.v1alpha3.VirtualService", ["vs"]),
    (2, "istio.networking.v1alpha3.DestinationRule", ["dr"]),
    (3, "envoy.config.endpoint.v3.ClusterLoadAssignment", ["cla", "bad_cla"]),
    (4, "istio.networking.nds.v1.NameTable", ["nt"]),
]


def put(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def xds(out, tmp):
    gen.compile_protos(tmp)
    from envoy.service.discovery.v3 import discovery_pb2 as d_pb
    from networking.v1alpha3 import service_entry_pb2 as se_pb
    s = gen.samples()
    # A Kubernetes Service as aegis-xds sends it (name Service/<ns>/<name>/<cluster>), headless.
    ksvc = se_pb.ServiceEntry(hosts=["db.default.svc.cluster.local"], resolution=se_pb.ServiceEntry.NONE)
    ksvc.ports.add(number=5432, name="pg", protocol="TCP")
    s["ksvc"] = ksvc
    names = {"se": "ns1/se1", "vs": "default/reviews", "dr": "default/reviews",
             "cla": "outbound|9080||reviews.default.svc.cluster.local", "nt": "nametable",
             "ksvc": "Service/default/db/east", "bad_cla": "outbound|80||x.example.com"}
    TYPES[0][2].append("ksvc")
    rdir = os.path.join(out, "xds_resource")
    for kind, url, keys in TYPES:
        for k in keys:
            body = s[k].SerializeToString()
            put(rdir, "%s_bare" % k, bytes([kind]) + body)
            w = gen.wrapped(s[k], names.get(k, "ns/" + k)).SerializeToString()
            put(rdir, "%s_wrapped" % k, bytes([0x80 | kind]) + w)
    for i, we in enumerate(s["se"].endpoints):
        put(rdir, "we_%d" % i, bytes([5]) + we.SerializeToString())

    ddir = os.path.join(out, "xds_discovery")

    def frame(msgs):
        return b"".join(struct.pack(">H", len(m)) + m for m in msgs)

    def sotw(kind, keys, version, nonce):
        url = TYPES[kind][1]
        r = d_pb.DiscoveryResponse(version_info=version, type_url=URL + url, nonce=nonce)
        for k in keys:
            r.resources.add().Pack(gen.wrapped(s[k], names.get(k, "ns/" + k)))
        return r.SerializeToString()

    def delta(kind, keys, version, nonce, removed=()):
        url = TYPES[kind][1]
        r = d_pb.DeltaDiscoveryResponse(system_version_info=version, type_url=URL + url, nonce=nonce,
                                        removed_resources=list(removed))
        for k in keys:
            res = r.resources.add(name=names.get(k, "ns/" + k), version=version)
            res.resource.Pack(s[k])
        return r.SerializeToString()

    good = [(0, ["se", "ksvc"]), (1, ["vs"]), (2, ["dr"]), (3, ["cla"]), (4, ["nt"])]
    full = [sotw(k, ks, "v1", "n%d" % k) for k, ks in good]
    put(ddir, "sotw_full", bytes([0]) + frame(full))
    put(ddir, "sotw_full_refused", bytes([2]) + frame(full))
    put(ddir, "sotw_then_nack", bytes([0]) + frame(full + [sotw(0, ["bad_ip"], "v2", "n9")]))
    put(ddir, "sotw_then_empty", bytes([0]) + frame(full + [sotw(3, [], "v2", "n10")]))
    put(ddir, "sotw_se_only", bytes([1 << 2]) + frame([sotw(0, ["se"], "v1", "a")]))
    put(ddir, "sotw_one_unframed", bytes([0]) + sotw(4, ["nt"], "v1", "x"))
    bare = d_pb.DiscoveryResponse(version_info="1", type_url=URL + TYPES[4][1], nonce="i")
    bare.resources.add().Pack(s["nt"])  # istiod's form: a bare Any, no wrapper
    put(ddir, "sotw_istiod_nametable", bytes([((1 << 3) | (1 << 4)) << 2]) + frame([bare.SerializeToString()]))
    wrong = d_pb.DiscoveryResponse(version_info="1", type_url=URL + TYPES[0][1], nonce="w")
    wrong.resources.add().Pack(s["vs"])  # a VirtualService in a ServiceEntry response
    put(ddir, "sotw_wrong_type", bytes([0]) + frame([wrong.SerializeToString()]))
    dfull = [delta(k, ks, "v1", "d%d" % k) for k, ks in good]
    put(ddir, "delta_full", bytes([1]) + frame(dfull))
    put(ddir, "delta_remove", bytes([1]) + frame(dfull + [delta(0, [], "v2", "r", ["ns1/se1"])]))
    put(ddir, "delta_replace_bad", bytes([1]) + frame(dfull + [delta(3, ["bad_cla"], "v2", "r2")]))
    nobody = d_pb.DeltaDiscoveryResponse(system_version_info="1", type_url=URL + TYPES[1][1], nonce="z")
    nobody.resources.add(name="x/y", version="1")
    put(ddir, "delta_no_body", bytes([1]) + frame([nobody.SerializeToString()]))


def certs(out, tmp):
    mk = os.path.join(ROOT, "scripts", "make-certs.sh")
    ca = os.path.join(tmp, "ca")
    subprocess.check_call(["bash", mk, "ca", ca], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = os.path.join(out, "spiffe_id")
    for name, extra in (("workload", []), ("expired", ["--expired"]), ("other_td", ["--td", "example.org"])):
        w = os.path.join(tmp, name)
        subprocess.check_call(["bash", mk, "workload", ca, w, "default", "reviews"] + extra,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        der = subprocess.check_output(["openssl", "x509", "-in", os.path.join(w, "cert-chain.pem"),
                                       "-outform", "DER"])
        put(d, name + ".der", der)
    der = subprocess.check_output(["openssl", "x509", "-in", os.path.join(ca, "root-cert.pem"),
                                   "-outform", "DER"])
    put(d, "ca_no_san.der", der)


def text(out):
    d = os.path.join(out, "blocklist")
    put(d, "example.rules", b"# test rules\nblocked.example\n*.ads.example\n!ok.ads.example\n")
    put(d, "allowlist.rules", b"*\n!*.svc.cluster.local\n!example.com\r\n  .Tracker.NET  # comment\n\n")
    put(d, "bad.rules", b"ok.example\nbad..example\n")
    put(d, "long_label.rules", b"a" * 64 + b".example\n")
    for src, dst, prefix in (("dns_answer", "upstream_answer", (1, 0, 3)), ("resolv_conf", "capture_resolv", None)):
        sd = os.path.join(ROOT, "tests", "fuzz", "corpus", src)
        for f in sorted(os.listdir(sd)):
            data = open(os.path.join(sd, f), "rb").read()
            if prefix is None:
                put(os.path.join(out, dst), f, data)
            else:
                for p in prefix:
                    put(os.path.join(out, dst), "%s_%d" % (f, p), bytes([p]) + data)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fuzz", "corpus")
    tmp = tempfile.mkdtemp(prefix="aegis-seeds.")
    try:
        xds(out, tmp)
        certs(out, tmp)
        text(out)
    finally:
        shutil.rmtree(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
