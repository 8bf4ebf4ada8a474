/* libFuzzer harness for the webhook's request path: any body the API server (or anyone reaching the Service)
 * can POST goes through aegis_inject_patch_review(), which must always produce a response (200 or 400) and
 * never crash. When the body parses as JSON with a request.object, the pod patch is also computed and
 * applied to that object: a patch that does not apply to the very pod it was made for is a bug. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aegis/inject.h"

static struct aegis_inject_config cfg;
static int ready;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready) {
		if (aegis_inject_config_init(&cfg) != 0)
			abort();
		ready = 1;
	}
	struct aegis_inject_reply r;
	if (aegis_inject_patch_review(&cfg, (const char *)data, size, &r) != 0)
		abort(); /* only out of memory may fail */
	if ((r.http_status != 200 && r.http_status != 400) || r.body == NULL || strlen(r.body) != r.len)
		abort();
	free(r.body);

	json_t *review = json_loadb((const char *)data, size, 0, NULL);
	json_t *pod = json_object_get(json_object_get(review, "request"), "object"), *patch = NULL;
	enum aegis_inject_outcome o;
	if (pod != NULL && aegis_inject_patch_pod(&cfg, pod, "", &patch, &o, NULL) == 0) {
		json_t *copy = json_deep_copy(pod);
		if (copy == NULL || aegis_inject_jsonpatch_apply(copy, patch, NULL) != 0)
			abort();
		/* Idempotence: the injected pod is never injected again. */
		json_t *again = NULL;
		if (o == AEGIS_INJECT_PATCHED &&
		    (aegis_inject_patch_pod(&cfg, copy, "", &again, &o, NULL) != 0 ||
		     json_array_size(again) != 0))
			abort();
		json_decref(again);
		json_decref(copy);
	}
	json_decref(patch);
	json_decref(review);
	return 0;
}
