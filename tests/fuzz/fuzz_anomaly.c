/* Fuzzes the anomaly and scan handlers with their per-worker state: the input is a sequence of
 * packets (2-byte big-endian length, then that many bytes of IP packet), each decoded and run
 * through scan.handle, anomaly.handle and scan.commit with a no_permit drop, as the chain
 * would, on one worker state whose clock advances 1 s per packet. Checks: decisions carry
 * their own reasons, and the state's alert and monitor rings never overflow into memory
 * errors. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/worker_state.h"
#include "els/decode.h"
#include "els/handler.h"
#include "els/monitor.h"

extern const struct els_handler els_handler_anomaly;
extern const struct els_handler els_handler_scan;

static void *conf_of(const struct els_handler *h, const char *text)
{
	config_t cfg;
	struct els_diag d;
	void *conf = NULL;
	config_init(&cfg);
	els_diag_init(&d, "fuzz");
	if (!config_read_string(&cfg, text) ||
	    h->build(config_lookup(&cfg, h->name), NULL, &conf, &d) != 0)
		abort();
	els_diag_free(&d);
	config_destroy(&cfg);
	return conf;
}

static void drain(struct els_ring *r)
{
	uint64_t lost;
	while (els_ring_peek(r, &lost))
		els_ring_consume(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *an, *an_obs, *sc;
	if (!an) {
		an = conf_of(&els_handler_anomaly, "anomaly = { max_ext_headers = 3; };");
		an_obs = conf_of(&els_handler_anomaly,
				 "anomaly = { tcp_null = \"observe\"; land = \"observe\"; "
				 "fragment_overlap = \"observe\"; port_zero = \"off\"; };");
		sc = conf_of(&els_handler_scan, "scan = { ports = 3; window = 5; deny = 7; };");
	}
	struct test_ws *ws = test_ws_new(64);
	struct els_ring *mon = els_ring_new(64);
	if (!ws || !mon)
		abort();
	ws->out->mon = mon;
	ws->now_ns = 1;
	for (size_t off = 0; off + 2 <= size;) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];
		off += 2;
		if (n > size - off)
			n = size - off;
		struct els_pkt p;
		els_decode(data + off, n, n, n & 1 ? ELS_DIR_OUT : ELS_DIR_IN, &p);
		off += n;
		ws->now_ns += 1000000000ull;
		struct els_ctx ctx = test_ws_ctx(ws, &els_handler_scan);
		struct els_ctx an_ctx = test_ws_ctx(ws, &els_handler_anomaly);
		ctx.pkt = an_ctx.pkt = &p;
		ctx.generation = an_ctx.generation = 1;
		struct els_decision d = {0};
		enum els_action a = els_handler_scan.handle(sc, &ctx, &d);
		if (a == ELS_DROP && d.reason != ELS_R_SCAN_DENY)
			abort();
		if (a == ELS_CONTINUE)
			a = els_handler_anomaly.handle(n & 2 ? an_obs : an, &an_ctx, &d);
		if (a == ELS_DROP && !els_handler_anomaly.rule_name(an, d.rule) &&
		    d.reason != ELS_R_SCAN_DENY)
			abort();
		if (a == ELS_CONTINUE)
			d = (struct els_decision){.action = ELS_DROP, .reason = ELS_R_NO_PERMIT};
		els_handler_scan.commit(sc, &ctx, &d);
		struct els_ctx tick = test_ws_ctx(ws, &els_handler_scan);
		els_handler_scan.tick(sc, &tick);
		els_sessions_sweep(ws->sessions, ws->now_ns);
		drain(mon);
		drain(ws->out->alerts);
	}
	els_ring_free(mon);
	test_ws_free(ws);
	return 0;
}
