/* The I/O around the rule generator: finding iptables and its backend, reading resolv.conf, checking
 * privileges and running iptables-save / iptables-restore. Private to iptables/.
 *
 * Programs are started with posix_spawn (never a shell), their input and output go through pipes, and every
 * run is bounded in time (AEGIS_CAPTURE_RUN_TIMEOUT_MS); a program that overruns is killed. */
#ifndef AEGIS_CAPTURE_APPLY_H
#define AEGIS_CAPTURE_APPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "aegis/err.h"
#include "capture_opts.h"

#define AEGIS_CAPTURE_RUN_TIMEOUT_MS 30000
#define AEGIS_CAPTURE_LOCK_WAIT_S    "10" /* legacy iptables-restore waits this long for the xtables lock */

/* The programs for one backend, as absolute paths; an empty string when not installed. */
struct aegis_capture_tools {
	enum aegis_capture_backend backend; /* NFT or LEGACY once detected */
	char save[2][256];                  /* [0] IPv4, [1] IPv6 */
	char restore[2][256];
	char note[256]; /* why this backend was chosen (for the user), "" when forced */
};

/* Chooses the backend (want AUTO: from `iptables --version`; when the other backend holds rules in this
 * network namespace and the chosen one holds none, the other one, as a pod must not end up with rules in
 * both) and finds its programs. Returns 0, or AEGIS_ENOTFOUND with diag naming what is missing. */
int aegis_capture_tools_detect(enum aegis_capture_backend want, struct aegis_capture_tools *t,
                               struct aegis_diag *diag) AEGIS_WUR;

/* For --capture-dns=resolv: reads o->resolv_conf and fills o->nameservers. Returns 0, AEGIS_EIO (diag names
 * the file and errno) or the parse errors of aegis_capture_opts_set_resolv(). */
int aegis_capture_load_resolv(struct aegis_capture_opts *o, struct aegis_diag *diag) AEGIS_WUR;

/* Returns 0 when the process has CAP_NET_ADMIN in its effective set (or /proc cannot tell), AEGIS_EINVAL with
 * an explanation otherwise. */
int aegis_capture_check_privilege(struct aegis_diag *diag) AEGIS_WUR;

/* Runs the family's iptables-save (family 4 or 6) and hands its output to the caller (*out malloc'ed,
 * NUL-terminated). Returns 0, AEGIS_ENOTFOUND, or AEGIS_ESYS with the program's message in diag. */
int aegis_capture_save(const struct aegis_capture_tools *t, int family, char **out, size_t *len,
                       struct aegis_diag *diag) AEGIS_WUR;

/* Removes the family's AEGIS_* chains and the jumps into them and, when rules is not NULL, installs rules
 * (aegis_capture_render() output), all in one iptables-restore --noflush run. With dry_run the restore input
 * is written to stdout instead. *changed (may be NULL) tells whether restore ran (false: nothing to do).
 * Returns 0, or AEGIS_ENOTFOUND / AEGIS_ESYS with the program's message in diag. */
int aegis_capture_apply(const struct aegis_capture_tools *t, int family, const char *rules, size_t rules_len,
                        bool dry_run, bool *changed, struct aegis_diag *diag) AEGIS_WUR;

#endif
