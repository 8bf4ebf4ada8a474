/* aegis_ads_client_* for aegis-proxy: the client itself lives in lib/aegis/aegis-ads-client.so, opened
 * on the first start (include/aegis/ads_client.h, "The module"; docs/xds.md). A proxy run with --config
 * never loads gRPC. The module stays loaded until exit: gRPC keeps process-wide state (its init count,
 * abseil's pools) that dlclose would pull out from under it. */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aegis/ads_client.h"
#include "aegis/log.h"

#define MODULE_BESIDE_BIN "/../lib/aegis/aegis-ads-client.so"

static const struct aegis_ads_module *mod; /* set once, by the thread that starts the client */

/* $AEGIS_ADS_MODULE, else lib/aegis/aegis-ads-client.so beside the directory of this executable. */
static int module_path(char *buf, size_t cap)
{
	const char *env = getenv("AEGIS_ADS_MODULE");
	if (env != NULL && env[0] != '\0')
		return snprintf(buf, cap, "%s", env) < (int)cap ? 0 : AEGIS_ELIMIT;
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return AEGIS_ESYS;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	return snprintf(buf, cap, "%s%s", exe, MODULE_BESIDE_BIN) < (int)cap ? 0 : AEGIS_ELIMIT;
}

static int load(void)
{
	if (mod != NULL)
		return 0;
	char path[PATH_MAX + 64];
	if (module_path(path, sizeof(path)) != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot find the xds client module",
		          LKV_S("hint", "set AEGIS_ADS_MODULE to the path of aegis-ads-client.so"));
		return AEGIS_ENOTFOUND;
	}
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "cannot load the xds client module", LKV_S("path", path),
		          LKV_S("error", dlerror()),
		          LKV_S("hint", "--xds-address needs lib/aegis/aegis-ads-client.so beside bin/, or "
		                        "AEGIS_ADS_MODULE set to its path"));
		return AEGIS_ENOTFOUND;
	}
	const struct aegis_ads_module *m = dlsym(h, AEGIS_ADS_MODULE_SYMBOL);
	if (m == NULL || m->abi != AEGIS_ADS_MODULE_ABI ||
	    m->opts_size != sizeof(struct aegis_ads_client_opts) ||
	    m->status_size != sizeof(struct aegis_ads_status) ||
	    m->config_size != sizeof(struct aegis_config) || m->version == NULL ||
	    strcmp(m->version, AEGIS_VERSION) != 0) {
		AEGIS_LOG(AEGIS_LOG_ERROR, "the xds client module does not match this aegis-proxy",
		          LKV_S("path", path), LKV_S("module_version", m && m->version ? m->version : "?"),
		          LKV_S("version", AEGIS_VERSION),
		          LKV_S("hint", "install aegis-ads-client.so from the same build as aegis-proxy"));
		dlclose(h);
		return AEGIS_EINVAL;
	}
	aegis_log_mirror_level(m->log_level);
	AEGIS_LOG(AEGIS_LOG_DEBUG, "xds client module loaded", LKV_S("path", path));
	mod = m;
	return 0;
}

int aegis_ads_client_start(const struct aegis_ads_client_opts *opts, struct aegis_ads_client **out)
{
	int rc = load();
	return rc != 0 ? rc : mod->start(opts, out);
}

void aegis_ads_client_status(struct aegis_ads_client *c, struct aegis_ads_status *out)
{
	if (c != NULL) /* c exists, so the module is loaded */
		mod->status(c, out);
}

void aegis_ads_client_stop(struct aegis_ads_client *c)
{
	if (c != NULL)
		mod->stop(c);
}
