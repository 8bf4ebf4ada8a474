/* YAML file configuration source: see file_source.h. */
#include "file_source.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aegis/container.h"
#include "aegis/log.h"
#include "aegis/resource_yaml.h"
#include "aegis/vip.h"

#define DEBOUNCE_S     0.2
#define WATCH_MAX_DIRS 4096

struct aegis_file_source {
	struct ev_loop *loop;
	struct aegis_file_source_opts opts;
	struct aegis_dns_server *srv;
	struct aegis_vip_alloc *vips; /* worker thread only after start */
	ev_signal sighup;
	ev_io inotify_io;
	ev_timer debounce;
	int inotify_fd;
	pthread_t worker;
	bool worker_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool requested;                         /* guarded by mu */
	bool stopping;                          /* guarded by mu */
	struct aegis_file_source_status status; /* guarded by mu */
};

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Loads and builds one table (and, with mesh routing, the routes from the same config: *routes stays NULL
 * without it). Runs on the caller's thread (start-up) or the worker. */
static int load(struct aegis_file_source *fs, struct aegis_table **out, struct aegis_routes **routes,
                struct aegis_diag *diag)
{
	struct aegis_config *cfg = NULL;
	int rc = aegis_yaml_load_paths(fs->opts.paths, fs->opts.n_paths, &cfg, diag);
	if (rc != 0)
		return rc;
	struct aegis_table_opts topts = {
	        .cluster_domain = fs->opts.cluster_domain,
	        .local_cluster = fs->opts.local_cluster,
	        .vips = fs->vips,
	};
	rc = aegis_table_build(cfg, &topts, out, diag);
	/* mesh: after the table build, so that the VIP allocator is up to date for this config. */
	*routes = NULL;
	if (rc == 0 && fs->opts.post_routes != NULL) {
		struct aegis_routes_opts ro = *fs->opts.routes;
		ro.vips = fs->vips;
		ro.cluster_domain = fs->opts.cluster_domain;
		rc = aegis_routes_build(cfg, &ro, routes, diag);
		if (rc != 0) {
			aegis_table_unref(*out);
			*out = NULL;
		}
	}
	aegis_config_free(cfg);
	/* The parse's scratch memory (the YAML tree, the config's arena) is freed now but glibc keeps it
	 * mapped; hand it back, or a sidecar keeps its peak parse footprint for life. */
	malloc_trim(0);
	return rc;
}

static void record(struct aegis_file_source *fs, int rc, const struct aegis_diag *diag, size_t names)
{
	pthread_mutex_lock(&fs->mu);
	fs->status.last_attempt = wall_now();
	if (rc == 0) {
		fs->status.version++;
		fs->status.last_ok = fs->status.last_attempt;
		fs->status.last_error[0] = '\0';
		fs->status.names = names;
	} else {
		fs->status.failures++;
		char buf[512];
		snprintf(fs->status.last_error, sizeof(fs->status.last_error), "%s",
		         aegis_diag_str(diag, buf, sizeof(buf)));
	}
	pthread_mutex_unlock(&fs->mu);
}

static void *worker_main(void *arg)
{
	struct aegis_file_source *fs = arg;
	pthread_mutex_lock(&fs->mu);
	for (;;) {
		while (!fs->requested && !fs->stopping)
			pthread_cond_wait(&fs->cv, &fs->mu);
		if (fs->stopping)
			break;
		fs->requested = false;
		pthread_mutex_unlock(&fs->mu);

		struct aegis_diag diag = {0};
		struct aegis_table *t = NULL;
		struct aegis_routes *routes = NULL; /* mesh */
		int rc = load(fs, &t, &routes, &diag);
		if (rc == 0) {
			size_t names = aegis_table_count(t);
			aegis_dns_server_post_table(fs->srv, t);
			if (routes != NULL) /* mesh */
				fs->opts.post_routes(fs->opts.routes_user, routes);
			record(fs, 0, &diag, names);
			AEGIS_LOG(AEGIS_LOG_INFO, "config reloaded", LKV_I("names", names));
		} else {
			char buf[512];
			record(fs, rc, &diag, 0);
			AEGIS_LOG(AEGIS_LOG_ERROR, "config reload rejected; keeping the last good config",
			          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
		}
		pthread_mutex_lock(&fs->mu);
	}
	pthread_mutex_unlock(&fs->mu);
	return NULL;
}

void aegis_file_source_reload(struct aegis_file_source *fs)
{
	pthread_mutex_lock(&fs->mu);
	fs->requested = true;
	pthread_cond_signal(&fs->cv);
	pthread_mutex_unlock(&fs->mu);
}

/* Watches every directory under path (and the parent of a file path: editors replace files by rename). */
static void watch_tree(struct aegis_file_source *fs, const char *path, int depth, unsigned *count)
{
	struct stat st;
	if (depth > 16 || *count >= WATCH_MAX_DIRS || stat(path, &st) != 0)
		return;
	uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_DELETE_SELF;
	if (!S_ISDIR(st.st_mode)) {
		char parent[PATH_MAX];
		snprintf(parent, sizeof(parent), "%s", path);
		char *slash = strrchr(parent, '/');
		if (slash == NULL)
			snprintf(parent, sizeof(parent), ".");
		else if (slash == parent)
			parent[1] = '\0';
		else
			*slash = '\0';
		if (inotify_add_watch(fs->inotify_fd, parent, mask) >= 0)
			(*count)++;
		return;
	}
	if (inotify_add_watch(fs->inotify_fd, path, mask) >= 0)
		(*count)++;
	DIR *d = opendir(path);
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[PATH_MAX];
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) >= sizeof(sub))
			continue;
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			watch_tree(fs, sub, depth + 1, count);
	}
	closedir(d);
}

static void watch_all(struct aegis_file_source *fs)
{
	unsigned count = 0;
	for (size_t i = 0; i < fs->opts.n_paths; i++)
		watch_tree(fs, fs->opts.paths[i], 0, &count);
}

static void sighup_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct aegis_file_source *fs = container_of(w, struct aegis_file_source, sighup);
	AEGIS_LOG(AEGIS_LOG_INFO, "SIGHUP: reloading config");
	aegis_file_source_reload(fs);
	(void)loop;
	(void)revents;
}

static void debounce_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct aegis_file_source *fs = container_of(w, struct aegis_file_source, debounce);
	watch_all(fs); /* new sub-directories */
	AEGIS_LOG(AEGIS_LOG_INFO, "config files changed: reloading");
	aegis_file_source_reload(fs);
	(void)loop;
	(void)revents;
}

static void inotify_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct aegis_file_source *fs = container_of(w, struct aegis_file_source, inotify_io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	for (;;) {
		ssize_t n = read(fs->inotify_fd, buf, sizeof(buf));
		if (n <= 0)
			break;
		changed = true;
	}
	/* Editors and kubectl write files in several steps (the ConfigMap symlink swap among them): wait
	 * until the tree has been quiet for DEBOUNCE_S. */
	if (changed) {
		fs->debounce.repeat = DEBOUNCE_S;
		ev_timer_again(loop, &fs->debounce);
	}
	(void)revents;
}

int aegis_file_source_start(struct ev_loop *loop, const struct aegis_file_source_opts *opts,
                            struct aegis_dns_server *srv, struct aegis_file_source **out,
                            struct aegis_diag *diag)
{
	struct aegis_file_source *fs = calloc(1, sizeof(*fs));
	if (fs == NULL)
		return AEGIS_ENOMEM;
	fs->loop = loop;
	fs->opts = *opts;
	fs->srv = srv;
	fs->inotify_fd = -1;
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cv, NULL);
	int rc = AEGIS_ENOMEM;
	fs->vips = aegis_vip_alloc_new();
	if (fs->vips == NULL)
		goto fail;

	struct aegis_table *t = NULL;
	struct aegis_routes *routes = NULL; /* mesh */
	rc = load(fs, &t, &routes, diag);
	if (rc != 0)
		goto fail;
	size_t names = aegis_table_count(t);
	aegis_dns_server_post_table(srv, t);
	if (routes != NULL) /* mesh */
		opts->post_routes(opts->routes_user, routes);
	record(fs, 0, diag, names);
	AEGIS_LOG(AEGIS_LOG_INFO, "config loaded", LKV_I("names", names), LKV_I("paths", opts->n_paths));

	if (pthread_create(&fs->worker, NULL, worker_main, fs) != 0) {
		rc = aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0, "cannot start the reload thread");
		goto fail;
	}
	fs->worker_started = true;
	ev_signal_init(&fs->sighup, sighup_cb, SIGHUP);
	ev_signal_start(loop, &fs->sighup);
	ev_init(&fs->debounce, debounce_cb);
	if (opts->watch) {
		fs->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
		if (fs->inotify_fd < 0) {
			AEGIS_LOG(AEGIS_LOG_WARN, "inotify unavailable: reload with SIGHUP",
			          LKV_S("error", strerror(errno)));
		} else {
			watch_all(fs);
			ev_io_init(&fs->inotify_io, inotify_cb, fs->inotify_fd, EV_READ);
			ev_io_start(loop, &fs->inotify_io);
		}
	}
	*out = fs;
	return 0;
fail:
	aegis_file_source_free(fs);
	return rc;
}

void aegis_file_source_status(struct aegis_file_source *fs, struct aegis_file_source_status *out)
{
	pthread_mutex_lock(&fs->mu);
	*out = fs->status;
	pthread_mutex_unlock(&fs->mu);
}

void aegis_file_source_free(struct aegis_file_source *fs)
{
	if (fs == NULL)
		return;
	if (fs->worker_started) {
		pthread_mutex_lock(&fs->mu);
		fs->stopping = true;
		pthread_cond_signal(&fs->cv);
		pthread_mutex_unlock(&fs->mu);
		pthread_join(fs->worker, NULL);
		ev_signal_stop(fs->loop, &fs->sighup);
		ev_timer_stop(fs->loop, &fs->debounce);
	}
	if (fs->inotify_fd >= 0) {
		ev_io_stop(fs->loop, &fs->inotify_io);
		close(fs->inotify_fd);
	}
	aegis_vip_alloc_free(fs->vips);
	pthread_mutex_destroy(&fs->mu);
	pthread_cond_destroy(&fs->cv);
	free(fs);
}
