#!/usr/bin/python3
"""Wire-compatibility fixtures for tests/unit/test_xds_decode.c, from a second protobuf implementation.

Run by the unit test itself (nothing is checked in): `protoc --python_out` compiles the same .proto files
(xds/proto) into OUT/py, then
    gen.py OUT            writes py_<case>.bin: messages serialized by Debian's python3-protobuf, which the
                          C decoder must decode to the exact values the C test expects;
    gen.py --check OUT    parses c_<case>.bin (written by the C encoders) and asserts that each equals the
                          message gen.py itself built, field for field (protobuf message equality).
"""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_DIR = os.path.normpath(os.path.join(HERE, "..", "..", "..", "xds", "proto"))


def compile_protos(out):
    py = os.path.join(out, "py")
    os.makedirs(py, exist_ok=True)
    protos = []
    for root, _, files in os.walk(PROTO_DIR):
        for f in files:
            if f.endswith(".proto"):
                protos.append(os.path.relpath(os.path.join(root, f), PROTO_DIR))
    subprocess.check_call(["protoc", "-I" + PROTO_DIR, "-I/usr/include", "--python_out=" + py] + sorted(protos))
    # No __init__.py files: the generated google/rpc must merge with the system google namespace.
    sys.path.insert(0, py)


def samples():
    from networking.v1alpha3 import service_entry_pb2 as se_pb
    from networking.v1alpha3 import virtual_service_pb2 as vs_pb
    from networking.v1alpha3 import destination_rule_pb2 as dr_pb
    from envoy.config.endpoint.v3 import endpoint_pb2 as ep_pb
    from envoy.config.core.v3 import base_pb2 as core_pb
    from istio.networking.nds.v1 import nds_pb2 as nds_pb

    se = se_pb.ServiceEntry(
        hosts=["api.example.com", "*.wild.example.com"], addresses=["10.0.0.1", "2001:db8::/64"],
        location=se_pb.ServiceEntry.MESH_INTERNAL, resolution=se_pb.ServiceEntry.DNS,
        export_to=["."], subject_alt_names=["spiffe://cluster.local/ns/a/sa/b"])
    se.ports.add(number=80, protocol="HTTP", name="http", target_port=8080)
    se.ports.add(number=443, protocol="TLS", name="tls")
    ep = se.endpoints.add(address="1.2.3.4", network="net1", locality="us-east/zone1/a", weight=7,
                          service_account="sa1")
    ep.ports["http"] = 9080
    ep.labels["app"] = "api"
    se.endpoints.add(address="backend.example.com")
    se.workload_selector.labels["app"] = "api"

    vs = vs_pb.VirtualService(hosts=["reviews.default.svc.cluster.local"], gateways=["mesh"], export_to=["*"])
    h = vs.http.add(name="split")
    m = h.match.add(port=9080, source_namespace="front")
    m.source_labels["app"] = "web"
    m.uri.prefix = "/"
    h.route.add(weight=90).destination.CopyFrom(vs_pb.Destination(host="reviews.default.svc.cluster.local",
                                                                  subset="v1"))
    d = h.route.add(weight=10).destination
    d.host = "reviews.default.svc.cluster.local"
    d.subset = "v2"
    d.port.number = 9080
    h.timeout.seconds = 1
    h.timeout.nanos = 500000000
    h.retries.attempts = 3
    t = vs.tcp.add()
    t.match.add(port=27017, destination_subnets=["10.0.0.0/8"])
    t.route.add().destination.host = "mongo.db.svc.cluster.local"
    tl = vs.tls.add()
    tl.match.add(sni_hosts=["login.example.com"], port=443)
    tl.route.add(weight=100).destination.host = "login.default.svc.cluster.local"

    dr = dr_pb.DestinationRule(host="reviews.default.svc.cluster.local", export_to=["."])
    tp = dr.traffic_policy
    tp.tls.mode = dr_pb.ClientTLSSettings.ISTIO_MUTUAL
    tp.tls.sni = "reviews.example"
    tp.tls.subject_alt_names.append("spiffe://x/ns/default/sa/reviews")
    tp.load_balancer.simple = dr_pb.LoadBalancerSettings.ROUND_ROBIN
    tp.load_balancer.locality_lb_setting.enabled.value = True
    tp.load_balancer.locality_lb_setting.failover.add(**{"from": "us-east", "to": "eu-west"})
    tp.load_balancer.locality_lb_setting.failover_priority.append("topology.istio.io/network")
    tp.connection_pool.tcp.max_connections = 100
    tp.connection_pool.tcp.connect_timeout.nanos = 250000000
    tp.outlier_detection.consecutive_5xx_errors.value = 7
    tp.outlier_detection.interval.seconds = 300
    tp.outlier_detection.base_ejection_time.seconds = 900
    tp.outlier_detection.max_ejection_percent = 50
    s1 = dr.subsets.add(name="v1")
    s1.labels["version"] = "v1"
    s2 = dr.subsets.add(name="v2")
    s2.labels["version"] = "v2"
    s2.traffic_policy.load_balancer.simple = dr_pb.LoadBalancerSettings.LEAST_REQUEST

    cla = ep_pb.ClusterLoadAssignment(cluster_name="outbound|9080||reviews.default.svc.cluster.local")
    l1 = cla.endpoints.add()
    l1.locality.CopyFrom(core_pb.Locality(region="us-east", zone="zone1", sub_zone="a"))
    e = l1.lb_endpoints.add(health_status=core_pb.HEALTHY)
    e.endpoint.address.socket_address.address = "10.1.0.1"
    e.endpoint.address.socket_address.port_value = 9080
    e.endpoint.hostname = "reviews-0"
    e.load_balancing_weight.value = 3
    md = e.metadata.filter_metadata["istio"]
    md["network"] = "net1"
    md["service_account"] = "reviews"
    md["labels"] = {"version": "v1"}
    e = l1.lb_endpoints.add(health_status=core_pb.DRAINING)
    e.endpoint.address.socket_address.address = "10.1.0.2"
    e.endpoint.address.socket_address.port_value = 9080
    l2 = cla.endpoints.add()
    l2.locality.CopyFrom(core_pb.Locality(region="eu-west"))
    e = l2.lb_endpoints.add(health_status=core_pb.UNHEALTHY)
    e.endpoint.address.socket_address.address = "fd00::2"
    e.endpoint.address.socket_address.port_value = 9081

    nt = nds_pb.NameTable()
    ni = nt.table["reviews.default.svc.cluster.local"]
    ni.ips.extend(["10.96.0.10", "fd00::10"])
    ni.registry = "Kubernetes"
    ni.shortname = "reviews"
    ni.namespace = "default"

    bad_hosts = se_pb.ServiceEntry(addresses=["10.0.0.1"])
    bad_ip = se_pb.ServiceEntry(hosts=["x.example.com"], addresses=["999.1.1.1"])
    bad_port = se_pb.ServiceEntry(hosts=["x.example.com"])
    bad_port.ports.add(number=70000, name="p")
    bad_cla = ep_pb.ClusterLoadAssignment(cluster_name="outbound|80||x.example.com")
    e = bad_cla.endpoints.add().lb_endpoints.add()
    e.endpoint.address.socket_address.address = "not-an-ip"
    e.endpoint.address.socket_address.port_value = 80
    return {"se": se, "vs": vs, "dr": dr, "cla": cla, "nt": nt,
            "bad_hosts": bad_hosts, "bad_ip": bad_ip, "bad_port": bad_port, "bad_cla": bad_cla}


def wrapped(msg, name):
    """An Envoy Resource wrapper (the SotW form aegis-xds sends) around msg."""
    from envoy.service.discovery.v3 import discovery_pb2 as d_pb
    r = d_pb.Resource(name=name, version="v1")
    r.resource.Pack(msg)
    return r


def main():
    check = sys.argv[1] == "--check"
    out = sys.argv[2] if check else sys.argv[1]
    compile_protos(out)
    s = samples()
    if not check:
        for k, m in s.items():
            with open(os.path.join(out, "py_%s.bin" % k), "wb") as f:
                f.write(m.SerializeToString())
        with open(os.path.join(out, "py_se_wrapped.bin"), "wb") as f:
            f.write(wrapped(s["se"], "ns1/se1").SerializeToString())
        return 0
    bad = 0
    for k in ("se", "vs", "dr", "cla", "nt"):
        m = type(s[k])()
        with open(os.path.join(out, "c_%s.bin" % k), "rb") as f:
            m.ParseFromString(f.read())
        if m != s[k]:
            print("MISMATCH %s\n--- python\n%s--- from C\n%s" % (k, s[k], m))
            bad += 1
        else:
            print("ok %s" % k)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
