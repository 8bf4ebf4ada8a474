/* table_cost: what building the DNS name table costs, measured with Aegis's own code from a build tree.
 *
 * Usage: table_cost PATH [REPEAT]
 * Loads PATH (a YAML file or directory) with aegis_yaml_load_paths, builds the table with
 * aegis_table_build exactly as the proxy's file source does (same cluster domain default, a VIP
 * allocator), REPEAT times (default 3), and prints one line of key=value pairs:
 *   names (ServiceEntry hosts), nodes (table nodes: A/AAAA names, SRV, PTR), load_ms and build_ms (the
 *   fastest of the repeats), table_bytes (aegis_table_bytes), bytes_per_name, bytes_per_node,
 *   rss_base_kib (before loading), peak_rss_kib (VmHWM at the end) and rss_after_kib (VmRSS with only the
 *   last table alive, the YAML config freed), then hit_ns and miss_ns: nanoseconds per aegis_table_find
 *   of every ServiceEntry host in a shuffled order (hits) and of the same names with their first byte
 *   changed (misses), the best of 5 passes. The lookup is the answer path's hot spot; these two figures
 *   are how a change to the table's layout is judged. Last, ptr_names, ptr_hit_ns and ptr_miss_ns: the
 *   same for the reverse names (in-addr.arpa / ip6.arpa) of those hosts' addresses, which the table
 *   stores as addresses and formats on a lookup.
 * Run it once per size, as its own process, so that the peak is that size's peak.
 *
 * Built by bench/run.sh against the static libraries of the bench build tree (not part of the suite). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aegis/resource_yaml.h"
#include "aegis/vip.h"
#include "dns_name.h"
#include "dns_table.h"

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long status_kib(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (f == NULL)
		return -1;
	char line[256];
	long v = -1;
	size_t kl = strlen(key);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
			v = strtol(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* Every ServiceEntry host (wildcards skipped) as a lower-case wire name, 256 bytes apart. */
static uint8_t *collect_names(const struct aegis_config *cfg, size_t *count)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_service_entries; i++)
		n += cfg->service_entries[i].n_hosts;
	uint8_t *v = malloc(n * 256 + 1);
	if (v == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < cfg->n_service_entries; i++) {
		for (size_t h = 0; h < cfg->service_entries[i].n_hosts; h++) {
			const char *host = cfg->service_entries[i].hosts[h];
			if (host[0] == '*')
				continue;
			int len = aegis_dns_name_from_str(host, v + k * 256 + 1);
			if (len <= 1)
				continue;
			v[k * 256] = (uint8_t)len;
			k++;
		}
	}
	*count = k;
	return v;
}

/* The reverse names of every address of the hosts in names (as lower-case wire names, 256 bytes apart,
 * like collect_names), found through the table itself. */
static uint8_t *collect_reverse(const struct aegis_table *t, const uint8_t *names, size_t count, size_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < count; i++) {
		const struct aegis_dns_node *nd = aegis_table_find(t, names + i * 256 + 1, names[i * 256]);
		n += nd ? (size_t)nd->n_a + nd->n_aaaa : 0;
	}
	uint8_t *v = malloc(n * 256 + 1);
	if (v == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < count; i++) {
		const struct aegis_dns_node *nd = aegis_table_find(t, names + i * 256 + 1, names[i * 256]);
		if (nd == NULL)
			continue;
		for (unsigned a = 0; a < (unsigned)nd->n_a + nd->n_aaaa; a++) {
			char pres[128];
			size_t o = 0;
			if (a < nd->n_a) {
				const uint8_t *ip = aegis_node_a(nd) + 4 * a;
				o = (size_t)snprintf(pres, sizeof(pres), "%u.%u.%u.%u.in-addr.arpa", ip[3],
				                     ip[2], ip[1], ip[0]);
			} else {
				const uint8_t *ip = aegis_node_aaaa(nd) + 16 * (a - nd->n_a);
				for (int b = 15; b >= 0; b--)
					o += (size_t)snprintf(pres + o, sizeof(pres) - o, "%x.%x.",
					                      ip[b] & 15, ip[b] >> 4);
				snprintf(pres + o, sizeof(pres) - o, "ip6.arpa");
			}
			int len = aegis_dns_name_from_str(pres, v + k * 256 + 1);
			if (len <= 1)
				continue;
			v[k * 256] = (uint8_t)len;
			k++;
		}
	}
	*out = k;
	return v;
}

/* ns per lookup over names (shuffled with a fixed seed), best of 5; miss changes the first label byte. */
static double time_lookups(const struct aegis_table *t, uint8_t *names, size_t count, bool miss,
                           size_t *found)
{
	uint64_t x = 42;
	for (size_t i = count; i > 1; i--) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		size_t j = (size_t)(x >> 33) % i;
		uint8_t tmp[256];
		memcpy(tmp, names + (i - 1) * 256, 256);
		memcpy(names + (i - 1) * 256, names + j * 256, 256);
		memcpy(names + j * 256, tmp, 256);
	}
	double best = 1e300;
	for (int pass = 0; pass < 5; pass++) {
		size_t hits = 0;
		double t0 = now_ms();
		for (size_t i = 0; i < count; i++) {
			uint8_t *nm = names + i * 256;
			if (miss)
				nm[2] ^= 0x40;
			hits += aegis_table_find(t, nm + 1, nm[0]) != NULL;
			if (miss)
				nm[2] ^= 0x40;
		}
		double dt = now_ms() - t0;
		if (dt < best)
			best = dt;
		*found = hits;
	}
	return count ? best * 1e6 / (double)count : 0.0;
}

int main(int argc, char **argv)
{
	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s PATH [REPEAT]\n", argv[0]);
		return 2;
	}
	int repeat = argc == 3 ? (int)strtol(argv[2], NULL, 10) : 3;
	if (repeat < 1)
		repeat = 1;
	const char *paths[1] = {argv[1]};
	long rss_base = status_kib("VmRSS");
	double best_load = 1e300, best_build = 1e300;
	struct aegis_table *table = NULL;
	size_t names = 0;
	uint8_t *lookup_names = NULL;
	size_t n_lookup = 0;
	for (int r = 0; r < repeat; r++) {
		struct aegis_diag diag = {0};
		struct aegis_config *cfg = NULL;
		double t0 = now_ms();
		int rc = aegis_yaml_load_paths(paths, 1, &cfg, &diag);
		double t1 = now_ms();
		if (rc != 0) {
			char buf[600];
			fprintf(stderr, "table_cost: load failed: %s\n",
			        aegis_diag_str(&diag, buf, sizeof(buf)));
			return 1;
		}
		struct aegis_vip_alloc *vips = aegis_vip_alloc_new();
		struct aegis_table_opts topts = {.cluster_domain = NULL, .local_cluster = NULL, .vips = vips};
		struct aegis_table *t = NULL;
		rc = aegis_table_build(cfg, &topts, &t, &diag);
		double t2 = now_ms();
		if (rc != 0) {
			char buf[600];
			fprintf(stderr, "table_cost: build failed: %s\n",
			        aegis_diag_str(&diag, buf, sizeof(buf)));
			return 1;
		}
		names = 0;
		for (size_t i = 0; i < cfg->n_service_entries; i++)
			names += cfg->service_entries[i].n_hosts;
		if (lookup_names == NULL)
			lookup_names = collect_names(cfg, &n_lookup);
		aegis_config_free(cfg);
		aegis_vip_alloc_free(vips);
		/* Keep the previous table alive until the new one is built, as a reload does. */
		aegis_table_unref(table);
		table = t;
		if (t1 - t0 < best_load)
			best_load = t1 - t0;
		if (t2 - t1 < best_build)
			best_build = t2 - t1;
	}
	long rss_after = status_kib("VmRSS");
	long peak = status_kib("VmHWM"); /* before the reverse names below are allocated */
	size_t hits = 0, misses = 0;
	double hit_ns = lookup_names ? time_lookups(table, lookup_names, n_lookup, false, &hits) : 0.0;
	double miss_ns = lookup_names ? time_lookups(table, lookup_names, n_lookup, true, &misses) : 0.0;
	size_t n_rev = 0, rev_hits = 0, rev_misses = 0;
	uint8_t *rev = lookup_names ? collect_reverse(table, lookup_names, n_lookup, &n_rev) : NULL;
	double ptr_hit_ns = rev ? time_lookups(table, rev, n_rev, false, &rev_hits) : 0.0;
	double ptr_miss_ns = rev ? time_lookups(table, rev, n_rev, true, &rev_misses) : 0.0;
	free(rev);
	free(lookup_names);
	if (hits != n_lookup || misses != 0 || rev_hits != n_rev || rev_misses != 0) {
		fprintf(stderr,
		        "table_cost: lookups found %zu of %zu names, %zu misses; %zu of %zu reverse names, "
		        "%zu misses\n",
		        hits, n_lookup, misses, rev_hits, n_rev, rev_misses);
		return 1;
	}
	size_t bytes = aegis_table_bytes(table);
	size_t nodes = aegis_table_count(table);
	printf("names=%zu nodes=%zu load_ms=%.1f build_ms=%.1f table_bytes=%zu bytes_per_name=%.1f "
	       "bytes_per_node=%.1f rss_base_kib=%ld peak_rss_kib=%ld rss_after_kib=%ld hit_ns=%.1f "
	       "miss_ns=%.1f ptr_names=%zu ptr_hit_ns=%.1f ptr_miss_ns=%.1f\n",
	       names, nodes, best_load, best_build, bytes, names ? (double)bytes / (double)names : 0.0,
	       nodes ? (double)bytes / (double)nodes : 0.0, rss_base, peak, rss_after, hit_ns, miss_ns, n_rev,
	       ptr_hit_ns, ptr_miss_ns);
	aegis_table_unref(table);
	return 0;
}
