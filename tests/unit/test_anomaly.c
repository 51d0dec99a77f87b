/* anomaly: each check with its reason, the actions drop/observe/off, loopback exemption,
 * fragment overlap memory, config errors. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "els/handler.h"
#include "worker_state.h"

extern const struct els_handler els_handler_anomaly;

static void *build(const char *text)
{
	config_t cfg;
	struct els_diag d;
	void *conf = NULL;
	config_init(&cfg);
	els_diag_init(&d, "t");
	cr_assert(config_read_string(&cfg, text));
	int rc = els_handler_anomaly.build(config_lookup(&cfg, "anomaly"), NULL, &conf, &d);
	els_diag_free(&d);
	config_destroy(&cfg);
	return rc ? NULL : conf;
}

static struct els_pkt tcp(const char *src, const char *dst, int sport, int dport, uint8_t fl)
{
	struct els_pkt p = {.family = ELS_AF_INET,
			    .proto = 6,
			    .flags = ELS_PKT_HAS_PORTS,
			    .sport = (uint16_t)sport,
			    .dport = (uint16_t)dport,
			    .tcp_flags = fl,
			    .wire_len = 60};
	inet_pton(AF_INET, src, p.src.b);
	inet_pton(AF_INET, dst, p.dst.b);
	return p;
}

static struct els_decision judge(void *conf, struct test_ws *ws, struct els_pkt p,
				 enum els_action *a)
{
	struct els_ctx ctx = test_ws_ctx(ws, &els_handler_anomaly);
	ctx.pkt = &p;
	ctx.generation = 1;
	struct els_decision d = {0};
	*a = els_handler_anomaly.handle(conf, &ctx, &d);
	return d;
}

#define C "203.0.113.5"
#define S "198.18.0.2"

Test(anomaly, each_check_has_its_reason)
{
	void *c = build("anomaly = { };");
	struct test_ws *ws = test_ws_new(16);
	enum els_action a;
	static const struct {
		uint8_t fl;
		int dport;
		unsigned reason;
	} cases[] = {
	    {0, 443, ELS_R_TCP_NULL},
	    {ELS_TCP_FIN | ELS_TCP_PSH | ELS_TCP_URG, 443, ELS_R_TCP_XMAS},
	    {0x3f, 443, ELS_R_TCP_XMAS},
	    {ELS_TCP_SYN | ELS_TCP_FIN, 443, ELS_R_TCP_SYN_FIN},
	    {ELS_TCP_SYN | ELS_TCP_RST, 443, ELS_R_TCP_SYN_RST},
	    {ELS_TCP_SYN, 0, ELS_R_PORT_ZERO},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct els_decision d =
		    judge(c, ws, tcp(C, S, 40000, cases[i].dport, cases[i].fl), &a);
		cr_assert_eq(a, ELS_DROP, "case %zu", i);
		cr_assert_eq(d.reason, cases[i].reason, "case %zu: %u", i, d.reason);
	}
	/* ordinary flag sets pass on; ECE/CWR alone do not make a NULL */
	uint8_t fine[] = {ELS_TCP_SYN, ELS_TCP_SYN | ELS_TCP_ACK,
			  ELS_TCP_ACK, ELS_TCP_FIN | ELS_TCP_ACK,
			  ELS_TCP_RST, ELS_TCP_SYN | 0xc0};
	for (size_t i = 0; i < sizeof(fine); i++) {
		judge(c, ws, tcp(C, S, 40000, 443, fine[i]), &a);
		cr_assert_eq(a, ELS_CONTINUE, "flags %#x", fine[i]);
	}
	struct els_decision d = judge(c, ws, tcp(S, S, 443, 443, ELS_TCP_SYN), &a);
	cr_assert_eq(a, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_LAND);
	judge(c, ws, tcp("127.0.0.1", "127.0.0.1", 4000, 443, ELS_TCP_SYN), &a);
	cr_assert_eq(a, ELS_CONTINUE, "loopback is no land");

	struct els_pkt v6 = {.family = ELS_AF_INET6, .proto = 17, .ext_count = 9};
	inet_pton(AF_INET6, "2001:db8::1", v6.src.b);
	inet_pton(AF_INET6, "2001:db8::2", v6.dst.b);
	d = judge(c, ws, v6, &a);
	cr_assert_eq(a, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_EXT_CHAIN_TOO_LONG);
	v6.ext_count = 8;
	judge(c, ws, v6, &a);
	cr_assert_eq(a, ELS_CONTINUE);
	v6.ext_count = 3;
	v6.flags = ELS_PKT_EXT_REPEAT;
	d = judge(c, ws, v6, &a);
	cr_assert_eq(a, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_EXT_REPEATED);
	/* drops are alerted, one per reason per 10 s */
	uint64_t lost;
	cr_assert_not_null(els_ring_peek(ws->out->alerts, &lost));
	test_ws_free(ws);
	els_handler_anomaly.destroy(c);
}

Test(anomaly, observe_and_off)
{
	void *c = build("anomaly = { tcp_null = \"observe\"; tcp_xmas = \"off\"; "
			"max_ext_headers = 2; ext_repeat = \"off\"; };");
	struct test_ws *ws = test_ws_new(16);
	struct els_ring *mon = els_ring_new(16);
	enum els_action a;
	ws->out->mon = mon;
	judge(c, ws, tcp(C, S, 40000, 443, 0), &a);
	cr_assert_eq(a, ELS_CONTINUE);
	uint64_t lost;
	const struct els_record *r = els_ring_peek(mon, &lost);
	cr_assert_not_null(r);
	cr_assert_eq(r->kind, ELS_REC_WOULD_DROP);
	cr_assert_eq(r->reason, ELS_R_TCP_NULL);
	cr_assert_eq(r->verdict, ELS_ACCEPT);
	judge(c, ws, tcp(C, S, 40000, 443, ELS_TCP_FIN | ELS_TCP_PSH | ELS_TCP_URG), &a);
	cr_assert_eq(a, ELS_CONTINUE);
	struct els_pkt v6 = {.family = ELS_AF_INET6, .proto = 17, .ext_count = 2,
			     .flags = ELS_PKT_EXT_REPEAT};
	inet_pton(AF_INET6, "2001:db8::1", v6.src.b);
	inet_pton(AF_INET6, "2001:db8::2", v6.dst.b);
	judge(c, ws, v6, &a);
	cr_assert_eq(a, ELS_CONTINUE, "ext_repeat off");
	v6.ext_count = 3;
	judge(c, ws, v6, &a);
	cr_assert_eq(a, ELS_DROP);
	test_ws_free(ws);
	els_ring_free(mon);
	els_handler_anomaly.destroy(c);
}

Test(anomaly, fragment_overlap)
{
	void *c = build("anomaly = { };");
	struct test_ws *ws = test_ws_new(16);
	enum els_action a;
	struct els_pkt f = tcp(C, S, 0, 0, 0);
	f.proto = 17;
	f.flags = ELS_PKT_FRAGMENT;
	f.frag_id = 77;
	f.wire_len = 1500; /* data >= 1440 bytes */
	judge(c, ws, f, &a);
	cr_assert_eq(a, ELS_CONTINUE);
	struct els_pkt g = f;
	g.flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
	g.frag_off = 1480; /* adjacent: fine */
	g.wire_len = 100;
	judge(c, ws, g, &a);
	cr_assert_eq(a, ELS_CONTINUE);
	g.frag_off = 800; /* inside the first */
	struct els_decision d = judge(c, ws, g, &a);
	cr_assert_eq(a, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_FRAGMENT_OVERLAP);
	g.frag_id = 78; /* another datagram */
	judge(c, ws, g, &a);
	cr_assert_eq(a, ELS_CONTINUE);
	test_ws_free(ws);
	els_handler_anomaly.destroy(c);
}

Test(anomaly, config_errors)
{
	cr_assert_null(build("anomaly = { tcp_null = \"block\"; };"));
	cr_assert_null(build("anomaly = { smurf = \"drop\"; };"));
	cr_assert_null(build("anomaly = { max_ext_headers = 17; };"));
	void *c = build("anomaly = { fail = \"open\"; land = \"off\"; };");
	cr_assert_not_null(c);
	els_handler_anomaly.destroy(c);
}

static struct els_pkt pkt6(const char *src, const char *dst, uint8_t proto)
{
	struct els_pkt p = {.family = ELS_AF_INET6, .proto = proto, .hop_limit = 64,
			    .wire_len = 80, .dir = ELS_DIR_IN};
	inet_pton(AF_INET6, src, p.src.b);
	inet_pton(AF_INET6, dst, p.dst.b);
	if (proto == 6 || proto == 17) {
		p.flags = ELS_PKT_HAS_PORTS;
		p.sport = 40000;
		p.dport = 443;
		p.tcp_flags = ELS_TCP_SYN;
	}
	return p;
}

static struct els_pkt icmp6(const char *src, const char *dst, uint8_t type, uint8_t hl)
{
	struct els_pkt p = pkt6(src, dst, 58);
	p.flags = ELS_PKT_HAS_ICMP;
	p.icmp_type = type;
	p.hop_limit = hl;
	return p;
}

/* docs/anomaly-rfc-audit.md: every packet a standard says to discard, with its reason. */
Test(anomaly, rfc_discards_have_their_reasons)
{
	void *c = build("anomaly = { };");
	struct test_ws *ws = test_ws_new(16);
	enum els_action a;
	struct {
		struct els_pkt p;
		unsigned reason;
	} cases[16];
	size_t n = 0;

	cases[n].p = pkt6("2001:db8::1", "2001:db8::2", 6);
	cases[n].p.std = ELS_STD_RH0;
	cases[n++].reason = ELS_R_RH0;
	cases[n].p = pkt6("2001:db8::1", "2001:db8::2", 6);
	cases[n].p.std = ELS_STD_RH_UNKNOWN;
	cases[n++].reason = ELS_R_RH_UNKNOWN;
	cases[n].p = pkt6("2001:db8::1", "2001:db8::2", 17);
	cases[n].p.flags |= ELS_PKT_FRAGMENT;
	cases[n].p.std = ELS_STD_FRAG_LENGTH;
	cases[n++].reason = ELS_R_FRAG_BAD_LENGTH;
	cases[n].p = tcp(C, S, 40000, 443, ELS_TCP_SYN);
	cases[n].p.flags |= ELS_PKT_FRAGMENT;
	cases[n].p.std = ELS_STD_FRAG_TOO_BIG;
	cases[n++].reason = ELS_R_FRAG_TOO_BIG;
	cases[n].p = icmp6("fe80::1", "ff02::1:ff00:2", 135, 255); /* fragmented NS */
	cases[n].p.flags |= ELS_PKT_FRAGMENT;
	cases[n++].reason = ELS_R_ND_FRAGMENTED;
	cases[n].p = icmp6("fe80::1", "ff02::1", 134, 64); /* RA from off-link */
	cases[n++].reason = ELS_R_ND_HOP_LIMIT;
	cases[n].p = pkt6("ff02::1", "2001:db8::2", 17);
	cases[n++].reason = ELS_R_MARTIAN_SRC;
	cases[n].p = pkt6("::ffff:198.51.100.1", "2001:db8::2", 6);
	cases[n++].reason = ELS_R_MARTIAN_SRC;
	cases[n].p = pkt6("::1", "2001:db8::2", 6);
	cases[n++].reason = ELS_R_MARTIAN_SRC;
	cases[n].p = tcp("224.0.0.5", S, 40000, 443, ELS_TCP_SYN);
	cases[n++].reason = ELS_R_MARTIAN_SRC;
	cases[n].p = tcp("255.255.255.255", S, 40000, 443, ELS_TCP_SYN);
	cases[n++].reason = ELS_R_MARTIAN_SRC;
	cases[n].p = tcp(C, "127.0.0.1", 40000, 443, ELS_TCP_SYN);
	cases[n++].reason = ELS_R_MARTIAN_DST;
	cases[n].p = tcp(C, "0.0.0.0", 40000, 443, ELS_TCP_SYN);
	cases[n++].reason = ELS_R_MARTIAN_DST;
	cases[n].p = pkt6("2001:db8::1", "::", 17);
	cases[n++].reason = ELS_R_MARTIAN_DST;
	cases[n].p = pkt6("2001:db8::1", "ff00::1", 17); /* reserved scope 0 */
	cases[n++].reason = ELS_R_MARTIAN_DST;
	cases[n].p = pkt6("2001:db8::1", "ff01::1", 17); /* interface-local, from the wire */
	cases[n++].reason = ELS_R_MARTIAN_DST;
	for (size_t i = 0; i < n; i++) {
		struct els_decision d = judge(c, ws, cases[i].p, &a);
		cr_assert_eq(a, ELS_DROP, "case %zu", i);
		cr_assert_eq(d.reason, cases[i].reason, "case %zu: %s", i,
			     els_reason_name(d.reason));
	}

	/* What IPv6 needs to work passes: ND at hop limit 255, DAD and MLD from ::,
	 * link-scope groups, an atomic-fragment-free RA; and loopback talking to itself. */
	struct els_pkt fine[] = {
	    icmp6("fe80::1", "ff02::1:ff00:2", 135, 255),
	    icmp6("::", "ff02::1:ff00:2", 135, 255),
	    icmp6("fe80::1", "ff02::1", 134, 255),
	    icmp6("::", "ff02::16", 143, 1),
	    icmp6("fe80::1", "ff02::2", 133, 255),
	    icmp6("fe80::1", "ff02::1", 149, 255), /* a certification path advertisement... */
	    pkt6("2001:db8::1", "ff05::2", 17),
	    pkt6("::1", "::1", 6),
	    tcp("127.0.0.1", "127.0.0.2", 40000, 443, ELS_TCP_SYN),
	    tcp("0.0.0.0", "255.255.255.255", 68, 67, ELS_TCP_SYN),
	};
	fine[5].flags |= ELS_PKT_FRAGMENT; /* ...may come in fragments (RFC 6980 5) */
	for (size_t i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		judge(c, ws, fine[i], &a);
		cr_assert_eq(a, ELS_CONTINUE, "fine case %zu", i);
	}
	test_ws_free(ws);
	els_handler_anomaly.destroy(c);
}

Test(anomaly, rfc_checks_observe_and_off)
{
	void *c = build("anomaly = { rh0 = \"observe\"; martian_source = \"off\"; };");
	struct test_ws *ws = test_ws_new(16);
	enum els_action a;

	cr_assert_not_null(c);
	struct els_pkt p = pkt6("2001:db8::1", "2001:db8::2", 6);
	p.std = ELS_STD_RH0;
	judge(c, ws, p, &a);
	cr_assert_eq(a, ELS_CONTINUE);
	judge(c, ws, pkt6("ff02::1", "2001:db8::2", 17), &a);
	cr_assert_eq(a, ELS_CONTINUE);
	test_ws_free(ws);
	els_handler_anomaly.destroy(c);
	cr_assert_null(build("anomaly = { rh_zero = \"drop\"; };"), "an unknown key is refused");
}
