/* Kubernetes API servers as a configuration source: libcurl glue, threads and back-off around the
 * sans-I/O list+watch bookkeeping of kube_watch.c (kube_source.h has the contract, docs/kubernetes.md
 * the behaviour). */
#include "kube_source.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "aegis/buf.h"
#include "aegis/log.h"
#include "kube_config.h"
#include "kube_json.h"
#include "kube_watch.h"

#define ERROR_BODY_MAX  (64u << 10) /* a Status body we keep for the log */
#define TOKEN_MAX_BYTES (64u << 10)
#define CONNECT_TIMEOUT 10L
#define LIST_TIMEOUT    120L
#define CONT_MAX        4096

struct kcluster;

/* One kind of one cluster: its thread, its curl handle, its store. */
struct kwatcher {
	struct kcluster *c;
	struct aegis_kwatch w; /* under src->mu */
	bool failed_once;      /* under src->mu: counts as ready (kube_source.h) */
	pthread_t th;
	bool started;
	CURL *curl;
	/* per request */
	struct aegis_kwatch_lines lines;
	char *body; /* list body or a non-200 answer */
	size_t body_len, body_cap, body_max;
	bool streaming;   /* this request is a watch */
	int next;         /* what the stream said (aegis_kwatch_next) */
	int stream_error; /* a line that could not be taken (EPARSE, ELIMIT) */
	bool got_event;
};

struct kcluster {
	struct aegis_kube_source *src;
	char *name, *network, *locality, *source;
	struct aegis_kubecfg cfg;
	bool ready_logged;
	struct kwatcher kinds[AEGIS_KRES_COUNT];
};

struct aegis_kube_source {
	struct kcluster *clusters;
	size_t n_clusters;
	unsigned timeout_s, backoff_min, backoff_max;
	pthread_mutex_t mu; /* every store (kwatcher.w, failed_once) */
	pthread_mutex_t stop_mu;
	pthread_cond_t stop_cv;
	atomic_bool stop;
	int efd;
	bool curl_inited;
};

static void notify(struct aegis_kube_source *s)
{
	uint64_t one = 1;
	ssize_t w = write(s->efd, &one, sizeof(one)); /* EAGAIN: already readable, which is all we want */
	(void)w;
}

/* Sleeps ms, or less if the source is stopping. */
static void pause_ms(struct aegis_kube_source *s, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&s->stop_mu);
	while (!atomic_load(&s->stop) && pthread_cond_timedwait(&s->stop_cv, &s->stop_mu, &ts) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&s->stop_mu);
}

/* Jittered exponential back-off: a pause between b/2 and b, b doubling from the minimum to the maximum
 * (the same rule as the ADS client's, docs/xds.md), so that many sidecars' control planes do not
 * hammer a recovering API server in step. */
static unsigned next_backoff(struct aegis_kube_source *s, unsigned *b, unsigned *seed)
{
	unsigned cur = *b ? *b : s->backoff_min;
	*b = cur * 2 > s->backoff_max ? s->backoff_max : cur * 2;
	return cur / 2 + (unsigned)rand_r(seed) % (cur / 2 + 1);
}

static int on_progress(void *user, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct kwatcher *kw = user;
	return atomic_load(&kw->c->src->stop) ? 1 : 0;
}

static int body_append(struct kwatcher *kw, const char *data, size_t n)
{
	return aegis_buf_append(&kw->body, &kw->body_len, &kw->body_cap, data, n, kw->body_max);
}

static int on_line(void *user, const char *line, size_t len)
{
	struct kwatcher *kw = user;
	struct aegis_kube_source *s = kw->c->src;
	struct aegis_diag diag = {0};
	bool changed = false;
	pthread_mutex_lock(&s->mu);
	int rc = aegis_kwatch_event(&kw->w, line, len, &changed, &diag);
	char rv[AEGIS_KWATCH_RV_MAX];
	snprintf(rv, sizeof(rv), "%s", kw->w.rv);
	pthread_mutex_unlock(&s->mu);
	if (changed)
		notify(s);
	if (rc < 0) {
		char buf[600];
		AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes watch: bad event, reopening",
		          LKV_S("cluster", kw->c->source),
		          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
		kw->stream_error = rc;
		return rc;
	}
	kw->got_event = true;
	AEGIS_LOG(AEGIS_LOG_DEBUG, "kubernetes watch event", LKV_S("cluster", kw->c->source),
	          LKV_S("kind", aegis_kjson_kinds[kw->w.res].kind), LKV_S("resource_version", rv),
	          LKV_B("changed", changed));
	if (rc != AEGIS_KWATCH_GO_ON) {
		AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes watch: error event", LKV_S("cluster", kw->c->source),
		          LKV_S("kind", aegis_kjson_kinds[kw->w.res].kind), LKV_S("error", diag.msg),
		          LKV_B("relist", rc == AEGIS_KWATCH_RELIST));
		kw->next = rc;
		return 1; /* ends the transfer */
	}
	return 0;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *user)
{
	struct kwatcher *kw = user;
	size_t n = size * nmemb;
	long code = 0;
	curl_easy_getinfo(kw->curl, CURLINFO_RESPONSE_CODE, &code);
	if (!kw->streaming || code != 200) {
		if (body_append(kw, data, n) != 0) {
			kw->stream_error = AEGIS_ELIMIT;
			return 0; /* aborts: a response over its bound */
		}
		return n;
	}
	int rc = aegis_kwatch_lines_feed(&kw->lines, data, n, on_line, kw);
	if (rc == AEGIS_ELIMIT || rc == AEGIS_ENOMEM) {
		AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes watch: event larger than the limit, reopening",
		          LKV_S("cluster", kw->c->source), LKV_I("limit", AEGIS_KWATCH_MAX_EVENT));
		kw->stream_error = rc;
	}
	return rc == 0 ? n : 0;
}

/* Reads the bearer token: inline, or from its file on every request (projected tokens rotate). */
static int auth_header(const struct aegis_kubecfg *cfg, char **out)
{
	*out = NULL;
	char *tok = NULL;
	if (cfg->token_file != NULL) {
		FILE *f = fopen(cfg->token_file, "rb");
		if (f == NULL)
			return AEGIS_EIO;
		tok = calloc(1, TOKEN_MAX_BYTES + 1);
		size_t n = tok ? fread(tok, 1, TOKEN_MAX_BYTES, f) : 0;
		fclose(f);
		if (tok == NULL)
			return AEGIS_ENOMEM;
		while (n > 0 && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' '))
			tok[--n] = '\0';
	} else if (cfg->token != NULL) {
		tok = strdup(cfg->token);
		if (tok == NULL)
			return AEGIS_ENOMEM;
	} else {
		return 0;
	}
	size_t n = strlen(tok) + 32;
	*out = malloc(n);
	if (*out != NULL)
		snprintf(*out, n, "Authorization: Bearer %s", tok);
	memset(tok, 0, strlen(tok));
	free(tok);
	return *out ? 0 : AEGIS_ENOMEM;
}

static void blob_opt(CURL *c, CURLoption opt, char *pem, size_t len)
{
	struct curl_blob b = {.data = pem, .len = len, .flags = CURL_BLOB_COPY};
	curl_easy_setopt(c, opt, &b);
}

/* One GET of path (a list page or a watch). Returns the curl result; *code is the HTTP status. */
static CURLcode get(struct kwatcher *kw, const char *path, bool streaming, long *code)
{
	struct kcluster *c = kw->c;
	const struct aegis_kubecfg *cfg = &c->cfg;
	CURL *h = kw->curl;
	char url[8192];
	snprintf(url, sizeof(url), "%s%s", cfg->server, path);
	kw->streaming = streaming;
	kw->body_len = 0;
	kw->body_max = streaming ? ERROR_BODY_MAX : AEGIS_KWATCH_MAX_PAGE;
	kw->next = AEGIS_KWATCH_GO_ON;
	kw->stream_error = 0;
	kw->got_event = false;
	aegis_kwatch_lines_reset(&kw->lines);
	*code = 0;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT);
	/* The server ends a watch after timeoutSeconds; the margin covers a server that does not. */
	curl_easy_setopt(h, CURLOPT_TIMEOUT, streaming ? (long)c->src->timeout_s + 30L : LIST_TIMEOUT);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, kw);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, kw);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* gzip when the server offers it */
	curl_easy_setopt(h, CURLOPT_USERAGENT, "aegis-xds/" AEGIS_VERSION);
	if (cfg->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, cfg->ca_file);
	if (cfg->ca_pem)
		blob_opt(h, CURLOPT_CAINFO_BLOB, cfg->ca_pem, cfg->ca_pem_len);
	if (cfg->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, cfg->cert_file);
	if (cfg->cert_pem)
		blob_opt(h, CURLOPT_SSLCERT_BLOB, cfg->cert_pem, cfg->cert_pem_len);
	if (cfg->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, cfg->key_file);
	if (cfg->key_pem)
		blob_opt(h, CURLOPT_SSLKEY_BLOB, cfg->key_pem, cfg->key_pem_len);
	if (cfg->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
	char *auth = NULL;
	if (auth_header(cfg, &auth) != 0)
		AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes: cannot read the token", LKV_S("cluster", c->source),
		          LKV_S("file", cfg->token_file ? cfg->token_file : ""));
	struct curl_slist *h2 = auth ? curl_slist_append(hdrs, auth) : hdrs;
	if (h2 != NULL)
		hdrs = h2;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	if (auth != NULL) {
		memset(auth, 0, strlen(auth));
		free(auth);
	}
	return rc;
}

static void log_http(struct kwatcher *kw, const char *msg, CURLcode rc, long code)
{
	char detail[300];
	snprintf(detail, sizeof(detail), "%.*s", (int)(kw->body_len < 256 ? kw->body_len : 256),
	         kw->body ? kw->body : "");
	AEGIS_LOG(AEGIS_LOG_WARN, msg, LKV_S("cluster", kw->c->source),
	          LKV_S("kind", aegis_kjson_kinds[kw->w.res].kind), LKV_I("http_status", code),
	          LKV_S("curl", rc == CURLE_OK ? "" : curl_easy_strerror(rc)), LKV_S("body", detail));
}

/* Lists every page. 0 on success; AEGIS_EAGAIN to list again at once (410: the continue token
 * expired); another error to back off. */
static int do_list(struct kwatcher *kw)
{
	struct aegis_kube_source *s = kw->c->src;
	char cont[CONT_MAX] = "", path[8192];
	for (;;) {
		pthread_mutex_lock(&s->mu);
		int rc = aegis_kwatch_list_path(&kw->w, cont, path, sizeof(path));
		pthread_mutex_unlock(&s->mu);
		if (rc != 0)
			return rc;
		long code;
		CURLcode cr = get(kw, path, false, &code);
		if (atomic_load(&s->stop))
			return AEGIS_EAGAIN;
		if (cr != CURLE_OK || code != 200) {
			log_http(kw, "kubernetes list failed", cr, code);
			pthread_mutex_lock(&s->mu);
			aegis_kwatch_list_abort(&kw->w);
			pthread_mutex_unlock(&s->mu);
			return code == 410 ? AEGIS_EAGAIN : AEGIS_EIO;
		}
		struct aegis_diag diag = {0};
		bool changed = false;
		pthread_mutex_lock(&s->mu);
		rc = aegis_kwatch_list_page(&kw->w, kw->body, kw->body_len, cont, sizeof(cont), &changed,
		                            &diag);
		size_t n = json_object_size(kw->w.objects);
		pthread_mutex_unlock(&s->mu);
		if (rc != 0) {
			char buf[600];
			AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes list: bad response",
			          LKV_S("cluster", kw->c->source),
			          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
			return rc;
		}
		if (cont[0] == '\0') {
			AEGIS_LOG(AEGIS_LOG_INFO, "kubernetes list", LKV_S("cluster", kw->c->source),
			          LKV_S("kind", aegis_kjson_kinds[kw->w.res].kind), LKV_I("objects", n),
			          LKV_S("resource_version", kw->w.rv), LKV_B("changed", changed));
			if (changed)
				notify(s);
			return 0;
		}
	}
}

/* One watch request. Returns 0 when it ended normally (reopen at once), AEGIS_EAGAIN to relist, or
 * another error to back off and reopen. */
static int do_watch(struct kwatcher *kw)
{
	struct aegis_kube_source *s = kw->c->src;
	char path[8192];
	pthread_mutex_lock(&s->mu);
	int rc = aegis_kwatch_watch_path(&kw->w, s->timeout_s, path, sizeof(path));
	pthread_mutex_unlock(&s->mu);
	if (rc != 0)
		return AEGIS_EAGAIN;
	long code;
	CURLcode cr = get(kw, path, true, &code);
	if (atomic_load(&s->stop))
		return 0;
	if (kw->next == AEGIS_KWATCH_RELIST || code == 410) {
		if (code == 410)
			log_http(kw, "kubernetes watch: resource version gone, listing again", cr, code);
		return AEGIS_EAGAIN;
	}
	if (kw->next == AEGIS_KWATCH_BACK_OFF || kw->stream_error != 0)
		return AEGIS_EPROTO;
	if (code != 200) {
		log_http(kw, "kubernetes watch refused", cr, code);
		return AEGIS_EIO;
	}
	if (cr != CURLE_OK) {
		/* A dropped connection (or our timeout): resume from the last version seen, which every
		 * event and bookmark moved forward. */
		log_http(kw, "kubernetes watch dropped, resuming", cr, code);
		return kw->got_event ? AEGIS_ETIMEDOUT : AEGIS_EIO;
	}
	return 0;
}

static void mark_failed(struct kwatcher *kw)
{
	struct aegis_kube_source *s = kw->c->src;
	pthread_mutex_lock(&s->mu);
	bool first = !kw->failed_once && !kw->w.synced;
	kw->failed_once = true;
	pthread_mutex_unlock(&s->mu);
	if (first)
		notify(s); /* the cluster may be ready now, without this kind */
}

static void *watch_thread(void *arg)
{
	struct kwatcher *kw = arg;
	struct aegis_kube_source *s = kw->c->src;
	unsigned backoff = 0, seed = (unsigned)time(NULL) ^ (unsigned)(uintptr_t)kw;
	while (!atomic_load(&s->stop)) {
		pthread_mutex_lock(&s->mu);
		bool need_list = kw->w.rv[0] == '\0';
		pthread_mutex_unlock(&s->mu);
		int rc;
		if (need_list) {
			rc = do_list(kw);
			if (rc == AEGIS_EAGAIN)
				continue;
			if (rc != 0) {
				mark_failed(kw);
				pause_ms(s, next_backoff(s, &backoff, &seed));
				continue;
			}
			backoff = 0;
		}
		rc = do_watch(kw);
		if (rc == AEGIS_EAGAIN) {
			pthread_mutex_lock(&s->mu);
			kw->w.rv[0] = '\0';
			pthread_mutex_unlock(&s->mu);
			continue;
		}
		if (rc == AEGIS_ETIMEDOUT) /* a stream that delivered events before it dropped */
			backoff = 0;
		if (rc != 0)
			pause_ms(s, next_backoff(s, &backoff, &seed));
		else
			backoff = 0;
	}
	return NULL;
}

static bool cluster_ready(const struct kcluster *c)
{
	for (int k = 0; k < AEGIS_KRES_COUNT; k++)
		if (!c->kinds[k].w.synced && !c->kinds[k].failed_once)
			return false;
	return true;
}

/* A cluster's name, network and locality, mapped as a cluster.yaml document would be. */
static int map_cluster_info(struct aegis_yaml_loader *l, const struct kcluster *c)
{
	json_t *j = json_pack("{s:s, s:s, s:s}", "name", c->name, "network", c->network ? c->network : "",
	                      "locality", c->locality ? c->locality : "");
	if (j == NULL)
		return AEGIS_ENOMEM;
	struct aegis_arena a;
	aegis_arena_init(&a, 0, 1u << 20);
	struct aegis_ynode *root;
	int rc = aegis_kjson_tree(&a, j, NULL, NULL, &root);
	if (rc == 0) {
		l->cluster_file = true;
		l->cluster_out = NULL;
		l->source = aegis_arena_strdup(&l->cfg->arena, c->source);
		rc = l->source ? aegis_yaml_map_document(l, root) : AEGIS_ENOMEM;
		l->cluster_file = false;
	}
	aegis_arena_free(&a);
	json_decref(j);
	return rc;
}

static const char *ns_network(const struct kcluster *c, const json_t *pod)
{
	const char *ns = json_string_value(json_object_get(json_object_get(pod, "metadata"), "namespace"));
	char key[300];
	snprintf(key, sizeof(key), "/%s", ns ? ns : "");
	const json_t *nso = json_object_get(c->kinds[AEGIS_KRES_NS].w.objects, key);
	const char *net = json_string_value(json_object_get(
	        json_object_get(json_object_get(nso, "metadata"), "labels"), AEGIS_KJSON_NETWORK_LABEL));
	return net ? net : c->network;
}

int aegis_kube_source_build(struct aegis_kube_source *s, struct aegis_config **out)
{
	*out = NULL;
	struct aegis_config *cfg = aegis_config_new();
	if (cfg == NULL)
		return AEGIS_ENOMEM;
	struct aegis_yaml_loader l;
	struct aegis_diag diag = {0};
	aegis_kjson_begin(&l, cfg, "", &diag);
	size_t ready = 0, skipped = 0;
	int rc = 0;
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < s->n_clusters && rc != AEGIS_ENOMEM; i++) {
		struct kcluster *c = &s->clusters[i];
		if (!cluster_ready(c))
			continue;
		if (!c->ready_logged) {
			c->ready_logged = true;
			AEGIS_LOG(AEGIS_LOG_INFO, "kubernetes cluster synced", LKV_S("cluster", c->source));
		}
		ready++;
		/* meta.cluster points at this: it must live as long as the config. */
		if ((l.cluster = aegis_arena_strdup(&cfg->arena, c->name)) == NULL) {
			rc = AEGIS_ENOMEM;
			break;
		}
		if (c->name[0] != '\0' && (rc = map_cluster_info(&l, c)) != 0)
			break;
		for (int k = 0; k < AEGIS_KRES_COUNT; k++) {
			const char *key;
			json_t *obj;
			json_object_foreach(c->kinds[k].w.objects, key, obj)
			{
				rc = aegis_kjson_map(&l, (enum aegis_kres)k, obj, c->source,
				                     k == AEGIS_KRES_POD ? ns_network(c, obj) : NULL);
				if (rc == AEGIS_ENOMEM)
					break;
				if (rc != 0) {
					char buf[600];
					skipped++;
					AEGIS_LOG(AEGIS_LOG_WARN, "kubernetes object rejected, left out",
					          LKV_S("cluster", c->source), LKV_S("object", key),
					          LKV_S("error", aegis_diag_str(&diag, buf, sizeof(buf))));
					rc = 0;
				}
			}
		}
	}
	pthread_mutex_unlock(&s->mu);
	if (rc == 0 && ready == 0)
		rc = AEGIS_EAGAIN;
	if (rc != 0) {
		aegis_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

int aegis_kube_source_fd(const struct aegis_kube_source *s)
{
	return s->efd;
}

static char *xstrdup(const char *v, bool *ok)
{
	char *d = strdup(v ? v : "");
	if (d == NULL)
		*ok = false;
	return d;
}

int aegis_kube_source_start(const struct aegis_kube_source_opts *o, struct aegis_kube_source **out,
                            struct aegis_diag *diag)
{
	*out = NULL;
	struct aegis_kube_source *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "out of memory");
	s->efd = -1;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->stop_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->stop_cv, &ca);
	pthread_condattr_destroy(&ca);
	s->timeout_s = o->watch_timeout_s ? o->watch_timeout_s : 300;
	s->backoff_min = o->backoff_min_ms ? o->backoff_min_ms : 500;
	s->backoff_max = o->backoff_max_ms ? o->backoff_max_ms : 30000;
	if (s->backoff_max < s->backoff_min)
		s->backoff_max = s->backoff_min;
	int rc = 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		rc = aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "curl_global_init failed");
		goto fail;
	}
	s->curl_inited = true;
	s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	s->clusters = calloc(o->n_clusters ? o->n_clusters : 1, sizeof(*s->clusters));
	if (s->efd < 0 || s->clusters == NULL) {
		rc = aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0, "eventfd or memory: %s", strerror(errno));
		goto fail;
	}
	s->n_clusters = o->n_clusters;
	for (size_t i = 0; i < o->n_clusters; i++) {
		const struct aegis_kube_cluster_opts *co = &o->clusters[i];
		struct kcluster *c = &s->clusters[i];
		bool ok = true;
		c->src = s;
		c->name = xstrdup(co->name, &ok);
		c->network = xstrdup(co->network, &ok);
		c->locality = xstrdup(co->locality, &ok);
		char src[300];
		snprintf(src, sizeof(src), "kube:%s", co->name && co->name[0] ? co->name : "local");
		c->source = xstrdup(src, &ok);
		if (!ok) {
			rc = aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "out of memory");
			goto fail;
		}
		rc = co->kubeconfig ? aegis_kubecfg_load(co->kubeconfig, co->context, &c->cfg, diag)
		                    : aegis_kubecfg_in_cluster(o->sa_dir, &c->cfg, diag);
		if (rc != 0)
			goto fail;
		if (c->cfg.insecure)
			AEGIS_LOG(AEGIS_LOG_WARN,
			          "kubernetes: TLS verification is OFF (insecure-skip-tls-verify)",
			          LKV_S("cluster", c->source));
		if (c->cfg.tls_server_name)
			AEGIS_LOG(AEGIS_LOG_WARN,
			          "kubernetes: tls-server-name is not supported; the server URL's host is "
			          "verified",
			          LKV_S("cluster", c->source));
		for (int k = 0; k < AEGIS_KRES_COUNT; k++) {
			struct kwatcher *kw = &c->kinds[k];
			kw->c = c;
			if ((rc = aegis_kwatch_init(&kw->w, (enum aegis_kres)k)) != 0 ||
			    (kw->curl = curl_easy_init()) == NULL) {
				rc = aegis_diag_set(diag, AEGIS_ENOMEM, NULL, 0, 0, "out of memory");
				goto fail;
			}
		}
		AEGIS_LOG(AEGIS_LOG_INFO, "kubernetes source", LKV_S("cluster", c->source),
		          LKV_S("server", c->cfg.server),
		          LKV_S("auth", c->cfg.token || c->cfg.token_file     ? "token"
		                        : c->cfg.cert_file || c->cfg.cert_pem ? "client certificate"
		                                                              : "none"));
	}
	for (size_t i = 0; i < s->n_clusters; i++)
		for (int k = 0; k < AEGIS_KRES_COUNT; k++) {
			struct kwatcher *kw = &s->clusters[i].kinds[k];
			if (pthread_create(&kw->th, NULL, watch_thread, kw) != 0) {
				rc = aegis_diag_set(diag, AEGIS_ESYS, NULL, 0, 0,
				                    "cannot start a watch thread");
				goto fail;
			}
			kw->started = true;
		}
	*out = s;
	return 0;
fail:
	aegis_kube_source_stop(s);
	return rc;
}

void aegis_kube_source_stop(struct aegis_kube_source *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->stop_mu);
	atomic_store(&s->stop, true);
	pthread_cond_broadcast(&s->stop_cv);
	pthread_mutex_unlock(&s->stop_mu);
	for (size_t i = 0; i < s->n_clusters; i++) {
		struct kcluster *c = &s->clusters[i];
		for (int k = 0; k < AEGIS_KRES_COUNT; k++) {
			struct kwatcher *kw = &c->kinds[k];
			if (kw->started)
				pthread_join(kw->th, NULL);
			if (kw->curl)
				curl_easy_cleanup(kw->curl);
			aegis_kwatch_free(&kw->w);
			aegis_kwatch_lines_free(&kw->lines);
			free(kw->body);
		}
		aegis_kubecfg_clear(&c->cfg);
		free(c->name);
		free(c->network);
		free(c->locality);
		free(c->source);
	}
	free(s->clusters);
	if (s->efd >= 0)
		close(s->efd);
	if (s->curl_inited)
		curl_global_cleanup();
	pthread_cond_destroy(&s->stop_cv);
	pthread_mutex_destroy(&s->stop_mu);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
