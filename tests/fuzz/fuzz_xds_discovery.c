/* libFuzzer harness for the ADS client's receive path: the bytes of one or more DiscoveryResponses (or
 * DeltaDiscoveryResponses) go through the client's own handle_sotw()/handle_delta() (xds/ads_client.c is
 * included to reach them), so unpacking, the Resource wrapper, the per-type resource sets (delta keeps,
 * replaces and removes held resources across messages), the decoders, the state machine's ACK/NACK and the
 * on_config hand-off all run as they do behind gRPC. No channel exists: what the client would send stays
 * in its queue and is dropped after each message.
 *
 * Input: byte 0 = flags (bit 0 delta, bit 1 the proxy refuses configs, bits 2-6 the subscribed types, 0 =
 * all), then messages as [u16 big-endian length][bytes]; a last message without a full prefix takes the
 * rest. */
#include "ads_client.c"

static void drain(struct aegis_ads_client *c)
{
	while (c->q_len) {
		grpc_byte_buffer_destroy(c->sendq[c->q_head]);
		c->q_head = (c->q_head + 1) % SENDQ_MAX;
		c->q_len--;
	}
}

static int on_config(void *user, struct aegis_config *cfg, struct aegis_diag *diag)
{
	bool refuse = *(bool *)user;
	aegis_config_free(cfg);
	if (refuse)
		return aegis_diag_set(diag, AEGIS_EINVAL, NULL, 0, 0, "refused by the fuzzer");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		grpc_init(); /* byte buffers and slices only; no channel is ever made */
		aegis_log_set_level(AEGIS_LOG_OFF);
		ready = true;
	}
	if (size < 1)
		return 0;
	bool refuse = (data[0] & 2) != 0;
	struct aegis_ads_client *c = calloc(1, sizeof(*c));
	if (c == NULL)
		abort();
	pthread_mutex_init(&c->lock, NULL);
	c->delta = (data[0] & 1) != 0;
	c->types = (data[0] >> 2) & 0x1f ? (data[0] >> 2) & 0x1f : (1u << AEGIS_XDS_NTYPES) - 1;
	c->on_config = on_config;
	c->user = &refuse;
	c->st_details = grpc_empty_slice();
	aegis_ads_sm_init(&c->sm, c->delta);
	size_t off = 1;
	while (off < size) {
		size_t n = size - off - (size - off >= 2 ? 2 : 0);
		if (size - off >= 2) {
			size_t want = (size_t)data[off] << 8 | data[off + 1];
			off += 2;
			n = want < size - off ? want : size - off;
		}
		if (c->delta)
			handle_delta(c, data + off, n);
		else
			handle_sotw(c, data + off, n);
		drain(c);
		off += n;
	}
	/* The status must describe what the client holds. */
	for (int t = 0; t < AEGIS_XDS_NTYPES; t++)
		if (c->status.types[t].n_resources != c->have[t].n &&
		    c->status.types[t].n_ack + c->status.types[t].n_nack)
			abort();
	free_client(c);
	return 0;
}
