/* The pod's capture rules as iptables-restore text, computed without I/O. Private to iptables/.
 *
 * aegis_capture_render() turns options into the rules of one address family; aegis_capture_script() turns the
 * output of iptables-save into the restore input that removes every AEGIS_* chain and every jump into one,
 * optionally followed by new rules in the same table sections, so that "clean, then apply" is one restore
 * transaction. docs/capture.md explains each rule; tests/unit/golden/iptables/ holds the reviewed output. */
#ifndef AEGIS_CAPTURE_RULES_H
#define AEGIS_CAPTURE_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "aegis/err.h"
#include "capture_opts.h"

/* Every chain that aegis-iptables creates starts with this; clean removes exactly the chains that do. */
#define AEGIS_CAPTURE_CHAIN_PREFIX "AEGIS_"

/* Largest restore text built (a pod's rules are a few KiB; iptables-save of a busy node is a few MiB). */
#define AEGIS_CAPTURE_TEXT_MAX (64u << 20)

/* Renders the rules for family (AF_INET or AF_INET6) as iptables-restore input meant for --noflush: a comment
 * line, then "*nat ... COMMIT" and, with DNS conntrack zones, "*raw ... COMMIT". Tables with nothing to do
 * are left out (everything off gives the comment alone). With --capture-dns=resolv only the nameservers of
 * that family are used. On success *out is a NUL-terminated malloc'ed string of *len bytes that the caller
 * frees; on failure (AEGIS_EINVAL for a bad family, AEGIS_ENOMEM) *out is NULL. */
int aegis_capture_render(const struct aegis_capture_opts *o, int family, char **out, size_t *len) AEGIS_WUR;

/* Builds the restore input (for --noflush) that, for every table in saved (iptables-save output of one
 * family), deletes each rule of a non-AEGIS chain that jumps (-j or -g) to an AEGIS_* chain, flushes every
 * AEGIS_* chain and deletes those not declared again by rules; then, in the same table section, the lines of
 * rules (render output, may be NULL). Chains declared again are flushed by the declaration itself, so
 * applying twice leaves one set of rules. *out is malloc'ed as in aegis_capture_render(); *len is 0 when
 * there is nothing to do. Returns 0, AEGIS_EPARSE (rules is not restore text) or AEGIS_ENOMEM/AEGIS_ELIMIT.
 */
int aegis_capture_script(const char *saved, size_t saved_len, const char *rules, size_t rules_len, char **out,
                         size_t *len) AEGIS_WUR;

/* Counts the rules ("-A" lines) in iptables-save text: all of them, or with own only the rules in AEGIS_*
 * chains and the jumps into them. */
size_t aegis_capture_count_rules(const char *saved, size_t len, bool own);

/* The backend named by `iptables --version` output: "iptables v1.8.9 (nf_tables)" is NFT, "(legacy)" or a
 * version without a suffix (before 1.8 there was no nft variant) is LEGACY; anything else is AUTO (unknown).
 */
enum aegis_capture_backend aegis_capture_backend_from_version(const char *text, size_t len);

#endif
