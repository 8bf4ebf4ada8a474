/* Tests proxy/privs.c: --user parsing, and (as root, in a forked child so the test process keeps its
 * identity) the drop itself as /proc/self/status shows it: UID/GID 1337 everywhere, no supplementary
 * groups, no capabilities (or CAP_NET_ADMIN alone), no_new_privs, and no way back to root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include <sys/wait.h>
#include <unistd.h>

#include "privs.h"

static void test_parse_user(void **state)
{
	uid_t u;
	gid_t g;
	assert_int_equal(aegis_privs_parse_user("1337", &u, &g), 0);
	assert_int_equal(u, 1337);
	assert_int_equal(g, 1337);
	assert_int_equal(aegis_privs_parse_user("1000:2000", &u, &g), 0);
	assert_int_equal(u, 1000);
	assert_int_equal(g, 2000);
	assert_int_equal(aegis_privs_parse_user("root", &u, &g), 0);
	assert_int_equal(u, 0);
	const char *bad[] = {"", "-1", "1337:", ":1", "12x", "no-such-user-aegis", "4294967295", "1:-2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(aegis_privs_parse_user(bad[i], &u, &g), AEGIS_EINVAL);
	(void)state;
}

/* The value of field (e.g. "CapEff:") in /proc/self/status, whitespace squeezed. */
static void status_field(const char *field, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");
	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strncmp(line, field, strlen(field)) != 0)
			continue;
		size_t o = 0;
		for (const char *p = line + strlen(field); *p && *p != '\n' && o + 1 < len; p++)
			if (*p != '\t' && !(*p == ' ' && (o == 0 || out[o - 1] == ' ')))
				out[o++] = *p;
			else if (*p == '\t' && o > 0 && out[o - 1] != ' ')
				out[o++] = ' ';
		while (o > 0 && out[o - 1] == ' ')
			o--;
		out[o] = '\0';
	}
	if (f)
		fclose(f);
}

/* Runs the drop in a child; the child exits 0 when every check passed (its own asserts cannot reach the
 * parent's cmocka, so it reports through the exit code). */
static int child_drop(bool keep)
{
	pid_t pid = fork();
	if (pid == 0) {
		bool dropped = false;
		char v[128];
		if (aegis_privs_drop(1337, 1337, keep, &dropped) != 0 || !dropped)
			_exit(10);
		status_field("Uid:", v, sizeof(v));
		if (strcmp(v, "1337 1337 1337 1337") != 0)
			_exit(11);
		status_field("Gid:", v, sizeof(v));
		if (strcmp(v, "1337 1337 1337 1337") != 0)
			_exit(12);
		status_field("Groups:", v, sizeof(v));
		if (strcmp(v, "") != 0)
			_exit(13);
		status_field("CapEff:", v, sizeof(v));
		if (strcmp(v, keep ? "0000000000001000" : "0000000000000000") != 0)
			_exit(14);
		status_field("CapPrm:", v, sizeof(v));
		if (strcmp(v, keep ? "0000000000001000" : "0000000000000000") != 0)
			_exit(15);
		status_field("CapInh:", v, sizeof(v));
		if (strcmp(v, "0000000000000000") != 0)
			_exit(16);
		status_field("NoNewPrivs:", v, sizeof(v));
		if (strcmp(v, "1") != 0)
			_exit(17);
		if (setuid(0) == 0 || seteuid(0) == 0)
			_exit(18);
		_exit(0);
	}
	int st = 0;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

static void test_drop_as_root(void **state)
{
	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(child_drop(false), 0);
	assert_int_equal(child_drop(true), 0);
	(void)state;
}

static void test_not_root_or_uid0_is_noop(void **state)
{
	bool dropped = true;
	/* uid 0 requested: nothing happens, whoever we are. */
	assert_int_equal(aegis_privs_drop(0, 0, false, &dropped), 0);
	assert_false(dropped);
	(void)state;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse_user),
	        cmocka_unit_test(test_drop_as_root),
	        cmocka_unit_test(test_not_root_or_uid0_is_noop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
