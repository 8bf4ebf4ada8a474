/* libFuzzer harness for the whole answer path: any bytes a client can send go through aegis_answer()
 * over UDP and TCP limits against a small table; whatever comes out must parse as a DNS message of the
 * size allowed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/resource_yaml.h"
#include "aegis/vip.h"
#include "dns_answer.h"

static const char mesh[] =
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: a}\n"
        "spec: {hosts: [api.example.com, \"*.wikipedia.org\"], ports: [{number: 443, name: https, protocol: "
        "TLS}]}\n"
        "---\napiVersion: v1\nkind: Service\nmetadata: {name: reviews, namespace: default}\n"
        "spec: {clusterIP: 10.96.10.11, ports: [{name: http, port: 9080}]}\n";

static struct aegis_answer_ctx ctx;

static void init(void)
{
	static struct aegis_search *search;
	static struct aegis_table *table;
	struct aegis_config *cfg = NULL;
	struct aegis_diag diag;
	struct aegis_vip_alloc *vips = aegis_vip_alloc_new();
	struct aegis_table_opts topts = {.vips = vips};
	if (aegis_yaml_load_buffer("mesh", mesh, sizeof(mesh) - 1, &cfg, &diag) != 0 ||
	    aegis_table_build(cfg, &topts, &table, &diag) != 0)
		abort();
	aegis_config_free(cfg);
	aegis_vip_alloc_free(vips);
	const char *sl[] = {"default.svc.cluster.local", "svc.cluster.local", "cluster.local"};
	struct aegis_search_opts so = {.namespace_ = "default", .search = sl, .n_search = 3};
	if (aegis_search_new(&so, &search) != 0)
		abort();
	ctx = (struct aegis_answer_ctx){.table = table, .search = search, .ttl = 30};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[65535];
	if (ctx.search == NULL)
		init();
	const size_t limits[] = {0, AEGIS_DNS_TCP_MAX};
	for (size_t i = 0; i < 2; i++) {
		struct aegis_dns_query q;
		struct aegis_answer_info info;
		size_t outlen = 0;
		ctx.rotor++;
		enum aegis_answer_action a =
		        aegis_answer(&ctx, data, size, limits[i], out, sizeof(out), &outlen, &q, &info);
		if (a == AEGIS_ANSWER_SEND) {
			size_t max = limits[i] ? limits[i] : aegis_answer_udp_limit(&q);
			if (outlen < 12 || outlen > max)
				abort();
			/* Every answer we write must be readable by our own parser's rules for names. */
			size_t off = 12;
			unsigned qd = aegis_wire_u16(out + 4);
			for (unsigned k = 0; k < qd; k++) {
				uint8_t name[AEGIS_DNS_NAME_BUF];
				size_t next;
				if (aegis_wire_read_name(out, outlen, off, name, &next) < 0)
					abort();
				off = next + 4;
			}
			unsigned rrs = (unsigned)aegis_wire_u16(out + 6) + aegis_wire_u16(out + 8) +
			               aegis_wire_u16(out + 10);
			for (unsigned k = 0; k < rrs; k++) {
				if (aegis_wire_skip_rr(out, outlen, &off) != 0)
					abort();
			}
			if (off != outlen)
				abort();
		}
	}
	return 0;
}
