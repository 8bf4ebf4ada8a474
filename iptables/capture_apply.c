/* Running iptables for aegis-iptables: see capture_apply.h. Everything that decides what to write lives in
 * capture_rules.c; this file only finds programs, feeds them text and reports what they said. */
#include "capture_apply.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "capture_rules.h"

extern char **environ;

#define CAP_NET_ADMIN_BIT 12 /* linux/capability.h */
#define READ_CHUNK        65536

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The result of one program run: its stdout (malloc'ed, NUL-terminated), the start of its stderr, and its
 * exit status (128 + signal when killed). */
struct run_out {
	char *out;
	size_t out_len;
	char err[1024];
	size_t err_len;
	int status;
};

static void run_out_free(struct run_out *r)
{
	free(r->out);
	r->out = NULL;
}

/* Reads what is available on fd into r; returns false at end of file or on error. */
static bool drain(int fd, struct run_out *r, bool is_err, size_t *cap, int *rc)
{
	char chunk[READ_CHUNK];
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	if (is_err) {
		size_t room = sizeof(r->err) - 1 - r->err_len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(r->err + r->err_len, chunk, k);
		r->err_len += k;
		r->err[r->err_len] = '\0';
		return true;
	}
	if (r->out_len + (size_t)n + 1 > AEGIS_CAPTURE_TEXT_MAX) {
		*rc = AEGIS_ELIMIT;
		return false;
	}
	if (r->out_len + (size_t)n + 1 > *cap) {
		size_t c = *cap ? *cap : READ_CHUNK;
		while (c < r->out_len + (size_t)n + 1)
			c *= 2;
		char *p = realloc(r->out, c);
		if (p == NULL) {
			*rc = AEGIS_ENOMEM;
			return false;
		}
		r->out = p;
		*cap = c;
	}
	memcpy(r->out + r->out_len, chunk, (size_t)n);
	r->out_len += (size_t)n;
	r->out[r->out_len] = '\0';
	return true;
}

/* Runs path with argv, input (may be NULL) on its stdin, and collects its output into r. Returns 0 when the
 * program ran (whatever its exit status), AEGIS_ESYS when it could not be started, AEGIS_ETIMEDOUT when it
 * was killed for overrunning, or the errors of drain(). */
static int run(const char *path, char *const argv[], const char *input, size_t input_len, struct run_out *r)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	bool fa_ok = false;
	pid_t pid = -1;
	int rc = AEGIS_ESYS;
	size_t cap = 0, written = 0;

	memset(r, 0, sizeof(*r));
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
		goto out;
	if (posix_spawn_file_actions_init(&fa) != 0)
		goto out;
	fa_ok = true;
	if (posix_spawn_file_actions_adddup2(&fa, in[0], 0) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, out[1], 1) != 0 ||
	    posix_spawn_file_actions_adddup2(&fa, err[1], 2) != 0)
		goto out;
	errno = posix_spawn(&pid, path, &fa, NULL, argv, environ);
	if (errno != 0) {
		pid = -1;
		goto out;
	}
	close(in[0]);
	close(out[1]);
	close(err[1]);
	in[0] = out[1] = err[1] = -1;
	if (input == NULL || input_len == 0) {
		close(in[1]);
		in[1] = -1;
	}
	int ends[3] = {in[1], out[0], err[0]};
	for (int k = 0; k < 3; k++) {
		if (ends[k] >= 0)
			(void)fcntl(ends[k], F_SETFL, fcntl(ends[k], F_GETFL) | O_NONBLOCK);
	}

	long long deadline = now_ms() + AEGIS_CAPTURE_RUN_TIMEOUT_MS;
	rc = 0;
	while (out[0] >= 0 || err[0] >= 0) {
		struct pollfd p[3] = {{.fd = in[1], .events = POLLOUT},
		                      {.fd = out[0], .events = POLLIN},
		                      {.fd = err[0], .events = POLLIN}};
		long long left = deadline - now_ms();
		if (left <= 0) {
			rc = AEGIS_ETIMEDOUT;
			break;
		}
		int n = poll(p, 3, (int)left);
		if (n < 0 && errno != EINTR) {
			rc = AEGIS_ESYS;
			break;
		}
		if (n <= 0)
			continue;
		if (in[1] >= 0 && (p[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(in[1], input + written, input_len - written);
			if (w > 0)
				written += (size_t)w;
			/* A program that stops reading (EPIPE) has failed; its exit status will say so. */
			if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input_len) {
				close(in[1]);
				in[1] = -1;
			}
		}
		if (out[0] >= 0 && (p[1].revents & (POLLIN | POLLERR | POLLHUP)) &&
		    !drain(out[0], r, false, &cap, &rc)) {
			close(out[0]);
			out[0] = -1;
		}
		if (err[0] >= 0 && (p[2].revents & (POLLIN | POLLERR | POLLHUP)) &&
		    !drain(err[0], r, true, &cap, &rc)) {
			close(err[0]);
			err[0] = -1;
		}
		if (rc != 0)
			break;
	}
	if (rc != 0)
		kill(pid, SIGKILL);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	pid = -1;
	r->status =
	        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
		if (err[i] >= 0)
			close(err[i]);
	}
	if (r->out == NULL && rc == 0) {
		r->out = calloc(1, 1);
		rc = r->out ? 0 : AEGIS_ENOMEM;
	}
	if (rc != 0)
		run_out_free(r);
	return rc;
}

/* Finds an executable in $PATH, then in the sbin directories that a non-root PATH often lacks. */
static bool find_prog(const char *name, char *full, size_t len)
{
	const char *env = getenv("PATH");
	char dirs[4096];
	snprintf(dirs, sizeof(dirs), "%s:/usr/local/sbin:/usr/sbin:/sbin",
	         env && *env ? env : "/usr/bin:/bin");
	for (char *d = dirs, *next; d && *d; d = next) {
		next = strchr(d, ':');
		if (next)
			*next++ = '\0';
		if (*d == '\0')
			continue;
		int n = snprintf(full, len, "%s/%s", d, name);
		if (n > 0 && (size_t)n < len && access(full, X_OK) == 0)
			return true;
	}
	full[0] = '\0';
	return false;
}

/* The first line of a program's message, for diagnostics. */
static const char *first_line(char *s)
{
	s[strcspn(s, "\n")] = '\0';
	return s[0] ? s : "(no message)";
}

static const char *const variant[] = {
        [AEGIS_CAPTURE_BACKEND_NFT] = "nft", [AEGIS_CAPTURE_BACKEND_LEGACY] = "legacy"};

/* Counts the rules that a backend's IPv4 save program reports; 0 when it cannot run. */
static size_t backend_rules(enum aegis_capture_backend b)
{
	char name[64], path[256];
	snprintf(name, sizeof(name), "iptables-%s-save", variant[b]);
	if (!find_prog(name, path, sizeof(path)))
		return 0;
	struct run_out r;
	char *argv[] = {path, NULL};
	if (run(path, argv, NULL, 0, &r) != 0)
		return 0;
	size_t n = r.status == 0 ? aegis_capture_count_rules(r.out, r.out_len, false) : 0;
	run_out_free(&r);
	return n;
}

static int choose_backend(enum aegis_capture_backend *b, char *note, size_t note_len, struct aegis_diag *diag)
{
	char path[256];
	if (find_prog("iptables", path, sizeof(path))) {
		struct run_out r;
		char arg[] = "--version";
		char *argv[] = {path, arg, NULL};
		int rc = run(path, argv, NULL, 0, &r);
		if (rc != 0)
			return aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0, "cannot run %s --version: %s",
			                      path, aegis_strerror(rc));
		*b = aegis_capture_backend_from_version(r.out, r.out_len);
		if (*b == AEGIS_CAPTURE_BACKEND_AUTO) {
			rc = aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
			                    "cannot tell the backend from '%s --version' ('%s'); use "
			                    "--backend nft|legacy",
			                    path, first_line(r.out));
			run_out_free(&r);
			return rc;
		}
		snprintf(note, note_len, "%.100s --version says %.100s", path, first_line(r.out));
		run_out_free(&r);
	} else if (find_prog("iptables-nft-restore", path, sizeof(path))) {
		*b = AEGIS_CAPTURE_BACKEND_NFT;
		snprintf(note, note_len, "no iptables; iptables-nft is installed");
	} else if (find_prog("iptables-legacy-restore", path, sizeof(path))) {
		*b = AEGIS_CAPTURE_BACKEND_LEGACY;
		snprintf(note, note_len, "no iptables; iptables-legacy is installed");
	} else {
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
		                      "iptables not found (looked for iptables, iptables-nft-restore and "
		                      "iptables-legacy-restore in PATH, /usr/sbin and /sbin): install the "
		                      "iptables package");
	}
	/* Rules already in the other backend (a node or an older init step chose it) win over the default:
	 * the two backends do not see each other's rules, and a pod with capture rules in both is
	 * undebuggable. */
	enum aegis_capture_backend other =
	        *b == AEGIS_CAPTURE_BACKEND_NFT ? AEGIS_CAPTURE_BACKEND_LEGACY : AEGIS_CAPTURE_BACKEND_NFT;
	size_t mine = backend_rules(*b), theirs = mine ? 0 : backend_rules(other);
	if (mine == 0 && theirs > 0) {
		snprintf(note, note_len, "%s holds %zu rules in this network namespace and %s none",
		         variant[other], theirs, variant[*b]);
		*b = other;
	}
	return 0;
}

int aegis_capture_tools_detect(enum aegis_capture_backend want, struct aegis_capture_tools *t,
                               struct aegis_diag *diag)
{
	memset(t, 0, sizeof(*t));
	if (want == AEGIS_CAPTURE_BACKEND_AUTO) {
		int rc = choose_backend(&want, t->note, sizeof(t->note), diag);
		if (rc != 0)
			return rc;
	}
	t->backend = want;
	static const char *const fam[2] = {"iptables", "ip6tables"};
	for (int f = 0; f < 2; f++) {
		char name[64];
		/* Prefer the program named after the backend; the plain name is whatever the system's default
		 * is. */
		snprintf(name, sizeof(name), "%s-%s-save", fam[f], variant[want]);
		if (!find_prog(name, t->save[f], sizeof(t->save[f]))) {
			snprintf(name, sizeof(name), "%s-save", fam[f]);
			(void)find_prog(name, t->save[f], sizeof(t->save[f]));
		}
		snprintf(name, sizeof(name), "%s-%s-restore", fam[f], variant[want]);
		if (!find_prog(name, t->restore[f], sizeof(t->restore[f]))) {
			snprintf(name, sizeof(name), "%s-restore", fam[f]);
			(void)find_prog(name, t->restore[f], sizeof(t->restore[f]));
		}
	}
	if (t->restore[0][0] == '\0' || t->save[0][0] == '\0')
		return aegis_diag_set(
		        diag, AEGIS_ENOTFOUND, NULL, 0, 0,
		        "iptables-restore/iptables-save (%s) not found in PATH, /usr/sbin or /sbin: install "
		        "the iptables package",
		        variant[want]);
	return 0;
}

/* Reads a whole small file (at most max bytes) into a malloc'ed, NUL-terminated buffer. */
static int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int rc = AEGIS_EIO;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return AEGIS_EIO;
	buf = malloc(max + 1);
	if (buf == NULL) {
		rc = AEGIS_ENOMEM;
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f))
		goto out;
	if (n > max) {
		rc = AEGIS_ELIMIT;
		goto out;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

int aegis_capture_load_resolv(struct aegis_capture_opts *o, struct aegis_diag *diag)
{
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(o->resolv_conf, 1u << 20, &text, &len);
	if (rc != 0)
		return aegis_diag_set(diag, rc, o->resolv_conf, 0, 0, "cannot read: %s",
		                      rc == AEGIS_EIO ? strerror(errno) : aegis_strerror(rc));
	rc = aegis_capture_opts_set_resolv(o, o->resolv_conf, text, len, diag);
	free(text);
	return rc;
}

int aegis_capture_check_privilege(struct aegis_diag *diag)
{
	char *text = NULL;
	size_t len = 0;
	if (read_file("/proc/self/status", 1u << 16, &text, &len) != 0)
		return 0; /* cannot tell: iptables-restore will report it */
	const char *cap = strstr(text, "\nCapEff:");
	unsigned long long eff = ~0ull;
	if (cap) {
		errno = 0;
		eff = strtoull(cap + 8, NULL, 16);
		if (errno != 0)
			eff = ~0ull;
	}
	free(text);
	if (eff & (1ull << CAP_NET_ADMIN_BIT))
		return 0;
	return aegis_diag_set(
	        diag, AEGIS_EINVAL, NULL, 0, 0,
	        "CAP_NET_ADMIN is required to change iptables rules (run as root, or give the init "
	        "container the NET_ADMIN capability); 'print' needs no privilege");
}

int aegis_capture_save(const struct aegis_capture_tools *t, int family, char **out, size_t *len,
                       struct aegis_diag *diag)
{
	const char *path = t->save[family == 6];
	*out = NULL;
	*len = 0;
	if (path[0] == '\0')
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
		                      "%s-save not found: install the iptables "
		                      "package",
		                      family == 6 ? "ip6tables" : "iptables");
	struct run_out r;
	char *argv[] = {(char *)path, NULL};
	int rc = run(path, argv, NULL, 0, &r);
	if (rc != 0)
		return aegis_diag_set(diag, rc, NULL, 0, 0, "cannot run %s: %s", path,
		                      rc == AEGIS_ESYS ? strerror(errno) : aegis_strerror(rc));
	if (r.status != 0) {
		rc = aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0, "%s failed (exit %d): %s", path, r.status,
		                    first_line(r.err));
		run_out_free(&r);
		return rc;
	}
	*out = r.out;
	*len = r.out_len;
	return 0;
}

/* Writes the restore input with line numbers to stderr: iptables-restore names failures by line. */
static void dump_numbered(const char *script, size_t len)
{
	int lineno = 1;
	for (const char *p = script, *end = script + len; p < end; lineno++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		fprintf(stderr, "%4d  %.*s\n", lineno, (int)n, p);
		p = nl ? nl + 1 : end;
	}
}

int aegis_capture_apply(const struct aegis_capture_tools *t, int family, const char *rules, size_t rules_len,
                        bool dry_run, bool *changed, struct aegis_diag *diag)
{
	char *saved = NULL, *script = NULL;
	size_t saved_len = 0, script_len = 0;
	const char *path = t->restore[family == 6];
	struct run_out r = {0};
	int rc;

	if (changed)
		*changed = false;
	if (path[0] == '\0')
		return aegis_diag_set(diag, AEGIS_ENOTFOUND, NULL, 0, 0,
		                      "%s-restore not found: install the iptables "
		                      "package",
		                      family == 6 ? "ip6tables" : "iptables");
	rc = aegis_capture_save(t, family, &saved, &saved_len, diag);
	if (rc != 0)
		goto out;
	rc = aegis_capture_script(saved, saved_len, rules, rules_len, &script, &script_len);
	if (rc != 0) {
		rc = aegis_diag_set(diag, rc, NULL, 0, 0, "cannot build the restore input: %s",
		                    aegis_strerror(rc));
		goto out;
	}
	if (script_len == 0)
		goto out;
	if (dry_run) {
		printf("# %s --noflush\n%s", path, script);
		goto out;
	}
	char noflush[] = "--noflush", wait[] = "--wait=" AEGIS_CAPTURE_LOCK_WAIT_S;
	char *argv[] = {(char *)path, noflush, NULL, NULL};
	if (t->backend == AEGIS_CAPTURE_BACKEND_LEGACY)
		argv[2] = wait;
	rc = run(path, argv, script, script_len, &r);
	if (rc != 0) {
		rc = aegis_diag_set(diag, rc, NULL, 0, 0, "cannot run %s: %s", path,
		                    rc == AEGIS_ESYS ? strerror(errno) : aegis_strerror(rc));
		goto out;
	}
	if (r.status != 0) {
		fprintf(stderr, "aegis-iptables: %s rejected this input:\n", path);
		dump_numbered(script, script_len);
		rc = aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0, "%s --noflush failed (exit %d): %s", path,
		                    r.status, first_line(r.err));
		goto out;
	}
	if (changed)
		*changed = true;
out:
	run_out_free(&r);
	free(script);
	free(saved);
	return rc;
}
