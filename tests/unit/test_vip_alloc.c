/* Tests xds/vip_alloc.c: slot choice, stability, uniqueness, full range, persistence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../xds/vip_alloc.c" /* host_hash, to predict home slots */
#include "model_builders.h"

static uint32_t slot_of(const struct aegis_vip_alloc *va, const char *host)
{
	uint8_t v4[4], v6[16];
	assert_int_equal(aegis_vip_get(va, host, v4, v6), 0);
	uint32_t s = (uint32_t)v4[2] << 8 | v4[3];
	/* Both families carry the same slot. */
	assert_int_equal((uint32_t)v6[14] << 8 | v6[15], s);
	return s;
}

static uint32_t home(const char *host)
{
	return host_hash(host) % AEGIS_VIP_SLOTS + 1;
}

static void test_addresses_layout(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "se", "api.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c), 0);
	uint8_t v4[4], v6[16];
	assert_int_equal(aegis_vip_get(va, "api.example.com", v4, v6), 0);
	uint32_t s = home("api.example.com");
	uint8_t want4[4] = {240, 240, (uint8_t)(s >> 8), (uint8_t)s};
	uint8_t want6[16] = {0x20,      0x01, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (uint8_t)(s >> 8),
	                     (uint8_t)s};
	assert_memory_equal(v4, want4, 4);
	assert_memory_equal(v6, want6, 16);
	/* either output may be NULL */
	assert_int_equal(aegis_vip_get(va, "api.example.com", NULL, v6), 0);
	assert_int_equal(aegis_vip_get(va, "api.example.com", v4, NULL), 0);
	assert_int_equal(aegis_vip_get(va, "other.example.com", v4, v6), AEGIS_ENOTFOUND);
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

static void test_only_entries_without_addresses(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "fixed.example.com", "10.1.1.1");
	mb_se(c, "b", "auto.example.com *.wild.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c), 0);
	assert_int_equal(aegis_vip_alloc_count(va), 2);
	assert_int_equal(aegis_vip_get(va, "fixed.example.com", NULL, NULL), AEGIS_ENOTFOUND);
	assert_int_equal(aegis_vip_get(va, "auto.example.com", NULL, NULL), 0);
	assert_int_equal(aegis_vip_get(va, "*.wild.example.com", NULL, NULL), 0); /* wildcards included */
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

static void test_stability_when_others_change(void **state)
{
	(void)state;
	struct aegis_config *c1 = aegis_config_new();
	mb_se(c1, "a", "a.example.com", "");
	mb_se(c1, "b", "b.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c1), 0);
	uint32_t sa = slot_of(va, "a.example.com");

	/* b goes away, many new hosts arrive (sorting before and after "a"); a keeps its slot, b is released.
	 */
	struct aegis_config *c2 = aegis_config_new();
	for (int i = 0; i < 2000; i++) {
		char h[64];
		snprintf(h, sizeof(h), "%c%d.example.com", i % 2 ? '0' : 'z', i);
		mb_se(c2, "x", h, "");
	}
	mb_se(c2, "a", "a.example.com", "");
	assert_int_equal(aegis_vip_alloc_update(va, c2), 0);
	assert_int_equal(slot_of(va, "a.example.com"), sa);
	assert_int_equal(aegis_vip_get(va, "b.example.com", NULL, NULL), AEGIS_ENOTFOUND);
	assert_int_equal(aegis_vip_alloc_count(va), 2001);

	/* back to c1: a still keeps it */
	assert_int_equal(aegis_vip_alloc_update(va, c1), 0);
	assert_int_equal(slot_of(va, "a.example.com"), sa);
	assert_int_equal(aegis_vip_alloc_count(va), 2);
	aegis_vip_alloc_free(va);
	aegis_config_free(c1);
	aegis_config_free(c2);
}

/* Finds two names whose home slots collide; *x sorts before *y. */
static void colliding_pair(const char **x, const char **y)
{
	static char names[70000][24];
	static uint32_t seen[AEGIS_VIP_SLOTS + 2];
	memset(seen, 0, sizeof(seen));
	*x = *y = NULL;
	for (unsigned i = 0; i < 70000 && *x == NULL; i++) {
		snprintf(names[i], sizeof(names[i]), "h%u.test", i);
		uint32_t s = home(names[i]);
		if (seen[s] != 0) {
			*x = names[seen[s] - 1];
			*y = names[i];
		}
		seen[s] = i + 1;
	}
	assert_non_null(*x);
	if (strcmp(*x, *y) > 0) {
		const char *t = *x;
		*x = *y;
		*y = t;
	}
}

/* Two names whose home slots collide: the first in name order gets the home slot, the other the next. */
static void test_collision_linear_probe(void **state)
{
	(void)state;
	const char *x, *y;
	colliding_pair(&x, &y);
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "y", y, ""); /* configuration order must not matter: names are taken sorted */
	mb_se(c, "x", x, "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c), 0);
	uint32_t h = home(x);
	assert_int_equal(slot_of(va, x), h);
	assert_int_equal(slot_of(va, y), h == AEGIS_VIP_SLOTS ? 1 : h + 1);
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

/* A host that holds its home slot keeps it when a newcomer that sorts first wants the same slot. */
static void test_existing_host_beats_colliding_newcomer(void **state)
{
	(void)state;
	const char *x, *y;
	colliding_pair(&x, &y);
	struct aegis_config *c1 = aegis_config_new(), *c2 = aegis_config_new();
	mb_se(c1, "y", y, "");
	mb_se(c2, "x", x, "");
	mb_se(c2, "y", y, "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c1), 0);
	uint32_t h = home(y);
	assert_int_equal(slot_of(va, y), h);
	assert_int_equal(aegis_vip_alloc_update(va, c2), 0);
	assert_int_equal(slot_of(va, y), h);
	assert_int_equal(slot_of(va, x), h == AEGIS_VIP_SLOTS ? 1 : h + 1);
	aegis_vip_alloc_free(va);
	aegis_config_free(c1);
	aegis_config_free(c2);
}

static void test_order_independent(void **state)
{
	(void)state;
	struct aegis_config *c1 = aegis_config_new(), *c2 = aegis_config_new();
	char h[64];
	for (int i = 0; i < 3000; i++) {
		snprintf(h, sizeof(h), "s%d.example.com", i);
		mb_se(c1, "x", h, "");
		snprintf(h, sizeof(h), "s%d.example.com", 2999 - i);
		mb_se(c2, "x", h, "");
	}
	struct aegis_vip_alloc *v1 = aegis_vip_alloc_new(), *v2 = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(v1, c1), 0);
	assert_int_equal(aegis_vip_alloc_update(v2, c2), 0);
	for (int i = 0; i < 3000; i++) {
		snprintf(h, sizeof(h), "s%d.example.com", i);
		assert_int_equal(slot_of(v1, h), slot_of(v2, h));
	}
	aegis_vip_alloc_free(v1);
	aegis_vip_alloc_free(v2);
	aegis_config_free(c1);
	aegis_config_free(c2);
}

static struct aegis_config *many_hosts(size_t n, const char *prefix)
{
	struct aegis_config *c = aegis_config_new();
	struct aegis_service_entry *se = mb_se(c, "many", "", "");
	const char **hosts = mb_alloc(c, n * sizeof(*hosts));
	for (size_t i = 0; i < n; i++) {
		char h[64];
		snprintf(h, sizeof(h), "%s%zu.example.com", prefix, i);
		hosts[i] = mb_str(c, h);
	}
	se->hosts = hosts;
	se->n_hosts = n;
	return c;
}

static void test_unique_and_full_range(void **state)
{
	(void)state;
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	struct aegis_config *small = many_hosts(10, "keep");
	assert_int_equal(aegis_vip_alloc_update(va, small), 0);
	uint32_t keep0 = slot_of(va, "keep0.example.com");

	/* Exactly the whole range fits, every slot used once. */
	struct aegis_config *full = many_hosts(AEGIS_VIP_SLOTS, "f");
	assert_int_equal(aegis_vip_alloc_update(va, full), 0);
	assert_int_equal(aegis_vip_alloc_count(va), AEGIS_VIP_SLOTS);
	static uint8_t used[AEGIS_VIP_SLOTS + 1];
	memset(used, 0, sizeof(used));
	for (size_t i = 0; i < AEGIS_VIP_SLOTS; i++) {
		uint32_t s = slot_of(va, full->service_entries[0].hosts[i]);
		assert_true(s >= 1 && s <= AEGIS_VIP_SLOTS);
		assert_int_equal(used[s], 0);
		used[s] = 1;
	}

	/* One more host than slots: ELIMIT, and the previous allocation is untouched. */
	assert_int_equal(aegis_vip_alloc_update(va, small), 0);
	assert_int_equal(slot_of(va, "keep0.example.com"), keep0);
	struct aegis_config *over = many_hosts(AEGIS_VIP_SLOTS + 1, "o");
	assert_int_equal(aegis_vip_alloc_update(va, over), AEGIS_ELIMIT);
	assert_int_equal(aegis_vip_alloc_count(va), 10);
	assert_int_equal(slot_of(va, "keep0.example.com"), keep0);
	aegis_vip_alloc_free(va);
	aegis_config_free(small);
	aegis_config_free(full);
	aegis_config_free(over);
}

static void test_duplicate_host_one_slot(void **state)
{
	(void)state;
	struct aegis_config *c = aegis_config_new();
	mb_se(c, "a", "dup.example.com", "");
	mb_se(c, "b", "dup.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c), 0);
	assert_int_equal(aegis_vip_alloc_count(va), 1);
	aegis_vip_alloc_free(va);
	aegis_config_free(c);
}

static void tmp_path(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/aegis-vip-XXXXXX");
	int fd = mkstemp(buf);
	assert_true(fd >= 0);
	close(fd);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_save_load_roundtrip(void **state)
{
	(void)state;
	char path[64];
	tmp_path(path, sizeof(path));
	struct aegis_config *c = many_hosts(500, "r");
	mb_se(c, "w", "*.wild.example.com", "");
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();
	assert_int_equal(aegis_vip_alloc_update(va, c), 0);
	assert_int_equal(aegis_vip_alloc_save(va, path), 0);

	/* A restarted control plane whose hosts arrive in another order, with a newcomer whose home slot is
	 * already taken in the saved map: every saved host keeps its slot. */
	struct aegis_vip_alloc *vb = aegis_vip_alloc_new();
	struct aegis_diag d;
	assert_int_equal(aegis_vip_alloc_load(vb, path, &d), 0);
	assert_int_equal(aegis_vip_alloc_count(vb), 501);
	struct aegis_config *c2 = aegis_config_new();
	mb_se(c2, "w", "*.wild.example.com", "");
	for (int i = 499; i >= 0; i--) {
		char h[64];
		snprintf(h, sizeof(h), "r%d.example.com", i);
		mb_se(c2, "x", h, "");
	}
	assert_int_equal(aegis_vip_alloc_update(vb, c2), 0);
	for (size_t i = 0; i < 500; i++) {
		const char *h = c->service_entries[0].hosts[i];
		assert_int_equal(slot_of(vb, h), slot_of(va, h));
	}
	assert_int_equal(slot_of(vb, "*.wild.example.com"), slot_of(va, "*.wild.example.com"));
	aegis_vip_alloc_free(va);
	aegis_vip_alloc_free(vb);
	aegis_config_free(c);
	aegis_config_free(c2);
	unlink(path);
}

static void test_load_errors(void **state)
{
	(void)state;
	char path[64];
	tmp_path(path, sizeof(path));
	struct aegis_diag d;
	struct aegis_vip_alloc *va = aegis_vip_alloc_new();

	write_file(path, "# saved map\n\na.example.com 7\nb.example.com seven\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);
	assert_string_equal(d.file, path);
	assert_int_equal(d.line, 4);
	assert_int_equal(aegis_vip_alloc_count(va), 0); /* nothing half-loaded */

	write_file(path, "a.example.com 7\nb.example.com 7\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);
	assert_int_equal(d.line, 2);
	assert_non_null(strstr(d.msg, "slot 7"));

	write_file(path, "a.example.com 7\na.example.com 8\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);
	assert_int_equal(d.line, 2);

	write_file(path, "a.example.com 0\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);
	write_file(path, "a.example.com 65535\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);
	write_file(path, "a.example.com 5 extra\n");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EPARSE);

	write_file(path, "a.example.com 65534\r\n  b.example.com\t1  ");
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), 0);
	assert_int_equal(slot_of(va, "a.example.com"), 65534);
	assert_int_equal(slot_of(va, "b.example.com"), 1);

	unlink(path);
	assert_int_equal(aegis_vip_alloc_load(va, path, &d), AEGIS_EIO);
	aegis_vip_alloc_free(va);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_addresses_layout),
	        cmocka_unit_test(test_only_entries_without_addresses),
	        cmocka_unit_test(test_stability_when_others_change),
	        cmocka_unit_test(test_collision_linear_probe),
	        cmocka_unit_test(test_existing_host_beats_colliding_newcomer),
	        cmocka_unit_test(test_order_independent),
	        cmocka_unit_test(test_unique_and_full_range),
	        cmocka_unit_test(test_duplicate_host_one_slot),
	        cmocka_unit_test(test_save_load_roundtrip),
	        cmocka_unit_test(test_load_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
