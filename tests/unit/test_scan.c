/* scan: the threshold of distinct closed ports in a window, the runtime deny set in both
 * directions, its expiry by time with an event, and the table's eviction rule. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "els/handler.h"
#include "scan.h"
#include "worker_state.h"

extern const struct els_handler els_handler_scan;

#define S_NS 1000000000ull

static void *build(const char *text)
{
	config_t cfg;
	struct els_diag d;
	void *conf = NULL;
	config_init(&cfg);
	els_diag_init(&d, "t");
	cr_assert(config_read_string(&cfg, text));
	int rc = els_handler_scan.build(config_lookup(&cfg, "scan"), NULL, &conf, &d);
	els_diag_free(&d);
	config_destroy(&cfg);
	return rc ? NULL : conf;
}

static struct els_pkt probe(const char *src, int dport)
{
	struct els_pkt p = {.family = ELS_AF_INET,
			    .dir = ELS_DIR_IN,
			    .proto = 6,
			    .flags = ELS_PKT_HAS_PORTS,
			    .sport = 40000,
			    .dport = (uint16_t)dport,
			    .tcp_flags = ELS_TCP_SYN};
	inet_pton(AF_INET, src, p.src.b);
	inet_pton(AF_INET, "198.18.0.2", p.dst.b);
	return p;
}

/* handle, then (when it did not decide) a no_permit drop for the commit hook to see */
static struct els_decision probe_once(void *c, struct test_ws *ws, struct els_pkt p)
{
	struct els_ctx ctx = test_ws_ctx(ws, &els_handler_scan);
	ctx.pkt = &p;
	ctx.generation = 1;
	struct els_decision d = {0};
	if (els_handler_scan.handle(c, &ctx, &d) == ELS_CONTINUE)
		d = (struct els_decision){.action = ELS_DROP, .reason = ELS_R_NO_PERMIT};
	els_handler_scan.commit(c, &ctx, &d);
	return d;
}

Test(scan, threshold_deny_and_expiry)
{
	void *c = build("scan = { ports = 5; window = 10; deny = 30; };");
	struct test_ws *ws = test_ws_new(16);
	struct els_ring *mon = els_ring_new(64);
	ws->out->mon = mon;
	ws->now_ns = 100 * S_NS;
	for (int i = 0; i < 5; i++)
		cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 1000 + i)).reason,
			     ELS_R_NO_PERMIT);
	/* the same port again does not count */
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 1000)).reason, ELS_R_NO_PERMIT);
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 2000)).reason, ELS_R_SCAN_DETECTED);
	/* denied now, both directions; other sources are not */
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 443)).reason, ELS_R_SCAN_DENY);
	struct els_pkt out = probe("198.18.0.2", 0);
	out.dir = ELS_DIR_OUT;
	inet_pton(AF_INET, "203.0.113.5", out.dst.b);
	cr_assert_eq(probe_once(c, ws, out).reason, ELS_R_SCAN_DENY);
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.6", 443)).reason, ELS_R_NO_PERMIT);
	uint64_t lost;
	const struct els_record *r = els_ring_peek(mon, &lost);
	cr_assert_not_null(r);
	cr_assert_eq(r->reason, ELS_R_SCAN_DETECTED);
	cr_assert_str_eq(r->detail, "scan: 6 closed ports in 10s, denied 30s: 203.0.113.5");
	els_ring_consume(mon);
	cr_assert_not_null(els_ring_peek(ws->out->alerts, &lost));

	/* 30 s later it lapses: handle lets it through, the tick records the end */
	ws->now_ns += 31 * S_NS;
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 443)).reason, ELS_R_NO_PERMIT);
	struct els_ctx ctx = test_ws_ctx(ws, &els_handler_scan);
	for (int i = 0; i < 64; i++)
		els_handler_scan.tick(c, &ctx);
	r = els_ring_peek(mon, &lost);
	cr_assert_not_null(r);
	cr_assert_eq(r->reason, ELS_R_SCAN_DENY);
	cr_assert(strstr(r->detail, "scan deny expired after 2 dropped packets: 203.0.113.5"), "%s",
		  r->detail);
	els_ring_free(mon);
	test_ws_free(ws);
	els_handler_scan.destroy(c);
}

Test(scan, window_resets_and_accepts_do_not_count)
{
	void *c = build("scan = { ports = 3; window = 5; deny = 0; };");
	struct test_ws *ws = test_ws_new(16);
	ws->now_ns = S_NS;
	for (int i = 0; i < 3; i++)
		probe_once(c, ws, probe("203.0.113.5", 1000 + i));
	ws->now_ns += 6 * S_NS;
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 2000)).reason, ELS_R_NO_PERMIT);
	/* an accepted packet is no probe of a closed port */
	struct els_pkt p = probe("203.0.113.5", 3000);
	struct els_ctx ctx = test_ws_ctx(ws, &els_handler_scan);
	ctx.pkt = &p;
	struct els_decision acc = {.action = ELS_ACCEPT, .reason = ELS_R_PERMIT};
	for (int i = 0; i < 10; i++) {
		p.dport = (uint16_t)(3000 + i);
		els_handler_scan.commit(c, &ctx, &acc);
	}
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 2001)).reason, ELS_R_NO_PERMIT);
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 2002)).reason, ELS_R_NO_PERMIT);
	/* deny = 0: detected and alerted, never denied */
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 2003)).reason, ELS_R_SCAN_DETECTED);
	cr_assert_eq(probe_once(c, ws, probe("203.0.113.5", 443)).reason, ELS_R_NO_PERMIT);
	test_ws_free(ws);
	els_handler_scan.destroy(c);
}

Test(scan, denied_entries_survive_a_flood_of_sources)
{
	struct scan_state *st = scan_worker_init(&(struct els_worker_env){.flow_capacity = 16});
	struct els_addr a = {{203, 0, 113, 5}};
	struct scan_src *e = scan_src_get(st, ELS_AF_INET, &a, true, S_NS);
	cr_assert_not_null(e);
	e->deny_until_ns = 1000 * S_NS;
	for (uint32_t i = 0; i < 100000; i++) {
		struct els_addr x = {{10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i}};
		scan_src_get(st, ELS_AF_INET, &x, true, S_NS);
	}
	e = scan_src_get(st, ELS_AF_INET, &a, false, S_NS);
	cr_assert_not_null(e);
	cr_assert_eq(e->deny_until_ns, 1000 * S_NS);
	scan_worker_free(st);
}

Test(scan, config_errors)
{
	cr_assert_null(build("scan = { ports = 64; };"));
	cr_assert_null(build("scan = { window = 0; };"));
	cr_assert_null(build("scan = { deny = \"5m\"; };"));
	cr_assert_null(build("scan = { threshold = 5; };"));
}
