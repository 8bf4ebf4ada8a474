/* Test certificates for the unit tests that need real TLS (test_mesh_hbone.c, test_mesh_pipe.c): a
 * temporary directory with a CA (dir/ca) and workload identities default/<name> (dir/<name>), made by
 * scripts/make-certs.sh (the openssl CLI), and its removal. */
#ifndef AEGIS_TEST_CERTS_H
#define AEGIS_TEST_CERTS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dir: a mkdtemp template ("/tmp/aegis-test-x.XXXXXX"), filled in. names: NULL-terminated. 0 or -1. */
static inline int test_certs_make(char *dir, const char *const *names)
{
	if (mkdtemp(dir) == NULL)
		return -1;
	const char *src = getenv("AEGIS_SRC_DIR") ? getenv("AEGIS_SRC_DIR") : AEGIS_SRC_DIR;
	char cmd[4096];
	int n = snprintf(cmd, sizeof(cmd), "bash %s/scripts/make-certs.sh ca %s/ca >/dev/null", src, dir);
	for (; *names != NULL && n > 0 && (size_t)n < sizeof(cmd); names++)
		n += snprintf(cmd + n, sizeof(cmd) - (size_t)n,
		              " && bash %s/scripts/make-certs.sh workload %s/ca %s/%s default %s >/dev/null",
		              src, dir, dir, *names, *names);
	if (n <= 0 || (size_t)n >= sizeof(cmd))
		return -1;
	return system(cmd) == 0 ? 0 : -1;
}

static inline int test_certs_remove(const char *dir)
{
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
