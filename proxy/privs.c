/* Privilege drop: see privs.h. Raw capget/capset syscalls (linux/capability.h) rather than libcap: three
 * calls do not justify another library in every pod. */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aegis/log.h"

static int parse_id(const char *s, size_t n, unsigned long *out)
{
	char buf[16];
	if (n == 0 || n >= sizeof(buf) || s[0] == '-' || s[0] == '+')
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	char *end;
	errno = 0;
	unsigned long v = strtoul(buf, &end, 10);
	if (errno || *end != '\0' || v >= UINT32_MAX)
		return -1;
	*out = v;
	return 0;
}

int aegis_privs_parse_user(const char *s, uid_t *uid, gid_t *gid)
{
	const char *colon = strchr(s, ':');
	unsigned long u, g;
	if (parse_id(s, colon ? (size_t)(colon - s) : strlen(s), &u) == 0) {
		g = u;
		if (colon != NULL && parse_id(colon + 1, strlen(colon + 1), &g) != 0)
			return AEGIS_EINVAL;
		*uid = (uid_t)u;
		*gid = (gid_t)g;
		return 0;
	}
	if (colon != NULL)
		return AEGIS_EINVAL;
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwnam_r(s, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return AEGIS_EINVAL;
	*uid = pw.pw_uid;
	*gid = pw.pw_gid;
	return 0;
}

uid_t aegis_privs_socket_owner(uid_t uid)
{
	if (geteuid() != 0)
		return (uid_t)setfsuid((uid_t)-1); /* an invalid id: only reports the current one */
	return (uid_t)setfsuid(uid);
}

static int cap_get(struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	return (int)syscall(SYS_capget, &hdr, data);
}

static int cap_set(const struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	return (int)syscall(SYS_capset, &hdr, data);
}

static int fail(const char *step)
{
	int e = errno;
	AEGIS_LOG(AEGIS_LOG_ERROR, "cannot drop privileges", LKV_S("step", step),
	          LKV_S("error", strerror(e)));
	errno = e;
	return AEGIS_ESYS;
}

int aegis_privs_drop(uid_t uid, gid_t gid, bool keep_net_admin, bool *dropped)
{
	*dropped = false;
	if (geteuid() != 0 || uid == 0)
		return 0;
	const uint32_t keep = keep_net_admin ? (1u << CAP_NET_ADMIN) : 0;
	/* The bounding set first, while CAP_SETPCAP is still ours: nothing exec'd later can regain a
	 * capability. EINVAL ends the walk at the first capability this kernel does not know. */
	for (int c = 0; c <= 63; c++) {
		if ((uint32_t)c < 32 && (keep & (1u << c)))
			continue;
		if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
			if (errno == EINVAL)
				break;
			return fail("PR_CAPBSET_DROP");
		}
	}
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* Keep the permitted set across setuid only when a capability must survive it (SO_MARK). */
	if (keep && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		return fail("PR_SET_KEEPCAPS");
	if (setgroups(0, NULL) != 0)
		return fail("setgroups");
	/* glibc applies set*id to every thread of the process (the config worker included). */
	if (setresgid(gid, gid, gid) != 0)
		return fail("setresgid");
	if (setresuid(uid, uid, uid) != 0)
		return fail("setresuid");
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
		return fail("PR_SET_KEEPCAPS off");
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = keep;
	if (cap_set(data) != 0)
		return fail("capset");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return fail("PR_SET_NO_NEW_PRIVS");

	/* Trust, but verify: a drop that silently did not happen is the worst outcome. */
	uid_t r, e, s;
	gid_t rg, eg, sg;
	memset(data, 0, sizeof(data));
	if (getresuid(&r, &e, &s) != 0 || getresgid(&rg, &eg, &sg) != 0 || cap_get(data) != 0)
		return fail("verify");
	if (r != uid || e != uid || s != uid || rg != gid || eg != gid || sg != gid ||
	    data[0].effective != keep || data[0].permitted != keep || data[0].inheritable != 0 ||
	    data[1].effective != 0 || data[1].permitted != 0) {
		errno = EPERM;
		return fail("verify ids and capabilities");
	}
	if (setuid(0) == 0) {
		errno = EPERM;
		return fail("verify setuid(0) fails");
	}
	*dropped = true;
	AEGIS_LOG(AEGIS_LOG_INFO, "privileges dropped", LKV_I("uid", uid), LKV_I("gid", gid),
	          LKV_S("capabilities", keep ? "cap_net_admin" : "none"));
	return 0;
}
