/* xDS admin section and metrics: see admin_xds.h. */
#include "admin_xds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const last_names[] = {"none", "ACK", "NACK"};

static json_t *time_json(int64_t unix_ms)
{
	if (unix_ms <= 0)
		return json_null();
	char buf[40];
	time_t s = (time_t)(unix_ms / 1000);
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

/* "type.googleapis.com/istio.networking.v1alpha3.ServiceEntry" -> "ServiceEntry", for metric labels. */
static const char *short_type(const char *url)
{
	const char *dot = url ? strrchr(url, '.') : NULL;
	return dot ? dot + 1 : (url ? url : "?");
}

/* The snapshot is large (per-type strings): one on the heap per call rather than on the loop's stack. */
static struct aegis_ads_status *snapshot(struct aegis_ads_client *c)
{
	struct aegis_ads_status *st = calloc(1, sizeof(*st));
	if (st != NULL)
		aegis_ads_client_status(c, st);
	return st;
}

static json_t *dump_xds(void *user, const char *filter)
{
	struct aegis_ads_status *st = snapshot(user);
	if (st == NULL)
		return NULL;
	json_t *types = json_array();
	for (size_t i = 0; i < AEGIS_ADS_NTYPES; i++) {
		const struct aegis_ads_type_status *t = &st->types[i];
		if (t->type_url == NULL || (filter != NULL && strcasestr(t->type_url, filter) == NULL))
			continue;
		json_array_append_new(
		        types, json_pack("{s:s,s:b,s:b,s:s,s:s,s:s,s:s?,s:o,s:I,s:I,s:I}", "type_url",
		                         t->type_url, "subscribed", t->subscribed, "received", t->received,
		                         "version", t->version, "nonce", t->nonce, "last",
		                         t->last <= AEGIS_ADS_LAST_NACK ? last_names[t->last] : "?", "error",
		                         t->error[0] ? t->error : NULL, "last_time",
		                         time_json(t->last_unix_ms), "acks", (json_int_t)t->n_ack, "nacks",
		                         (json_int_t)t->n_nack, "resources", (json_int_t)t->n_resources));
	}
	json_t *o = json_pack("{s:s,s:s,s:b,s:o,s:I,s:I,s:o}", "address", st->address, "mode",
	                      st->delta ? "delta" : "sotw", "connected", st->connected, "connected_since",
	                      time_json(st->connected ? st->connected_unix_ms : 0), "streams",
	                      (json_int_t)st->n_streams, "configs_accepted", (json_int_t)st->n_configs,
	                      "types", types);
	free(st);
	return o;
}

static void xds_metrics(void *user, struct aegis_metrics *m)
{
	struct aegis_ads_status *st = snapshot(user);
	if (st == NULL)
		return;
	aegis_metrics_family(m, "aegis_xds_connected", AEGIS_METRIC_GAUGE,
	                     "1 while an ADS stream is open and has received a response.");
	aegis_metrics_uint(m, NULL, 0, st->connected);
	aegis_metrics_family(m, "aegis_xds_streams_total", AEGIS_METRIC_COUNTER,
	                     "ADS streams opened (1 + reconnects).");
	aegis_metrics_uint(m, NULL, 0, st->n_streams);
	aegis_metrics_family(m, "aegis_xds_configs_total", AEGIS_METRIC_COUNTER,
	                     "Complete configurations accepted from the control plane.");
	aegis_metrics_uint(m, NULL, 0, st->n_configs);
	static const struct {
		const char *name, *help;
		enum aegis_metric_type type;
	} fam[] = {
	        {"aegis_xds_acks_total", "Responses ACKed, by resource type.", AEGIS_METRIC_COUNTER},
	        {"aegis_xds_nacks_total", "Responses NACKed (previous state kept), by resource type.",
	         AEGIS_METRIC_COUNTER},
	        {"aegis_xds_resources", "Resources held, by resource type.", AEGIS_METRIC_GAUGE},
	        {"aegis_xds_last_update_timestamp_seconds",
	         "Wall-clock time of the last ACK or NACK, by resource type.", AEGIS_METRIC_GAUGE},
	};
	for (size_t f = 0; f < sizeof(fam) / sizeof(fam[0]); f++) {
		aegis_metrics_family(m, fam[f].name, fam[f].type, fam[f].help);
		for (size_t i = 0; i < AEGIS_ADS_NTYPES; i++) {
			const struct aegis_ads_type_status *t = &st->types[i];
			if (t->type_url == NULL || !t->subscribed)
				continue;
			struct aegis_metric_label l = {"type", short_type(t->type_url)};
			if (f == 0)
				aegis_metrics_uint(m, &l, 1, t->n_ack);
			else if (f == 1)
				aegis_metrics_uint(m, &l, 1, t->n_nack);
			else if (f == 2)
				aegis_metrics_uint(m, &l, 1, t->n_resources);
			else
				aegis_metrics_value(m, &l, 1, (double)t->last_unix_ms / 1000.0);
		}
	}
	free(st);
}

int aegis_admin_xds_register(struct aegis_admin *a, struct aegis_ads_client *c)
{
	int rc = aegis_admin_add_section(a, "xds", dump_xds, c);
	if (rc == 0)
		rc = aegis_admin_add_metrics(a, xds_metrics, c);
	return rc;
}
