/* header_filter's ELS features: session-gated permits (with the per-worker session index the
 * tracker keeps), expiry at build and at run time, observe mode per section and per permit,
 * registry metadata and its checks, and the registry queries used by report and audit. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/flow.h"
#include "els/handler.h"
#include "els/policy.h"
#include "els/registry.h"
#include "worker_state.h"

extern const struct els_handler els_handler_header_filter;
extern const struct els_handler els_handler_tracker;

struct built {
	config_t cfg;
	struct els_diag diag;
	void *conf;
	int rc;
};

static void build_text(struct built *b, const char *text)
{
	struct els_build_env env = {.config_path = "t.conf", .services_path = "/dev/null"};
	config_init(&b->cfg);
	els_diag_init(&b->diag, "t.conf");
	cr_assert(config_read_string(&b->cfg, text), "libconfig: %s", config_error_text(&b->cfg));
	b->conf = NULL;
	b->rc = els_handler_header_filter.build(config_lookup(&b->cfg, "header_filter"), &env,
						&b->conf, &b->diag);
}

static void built_free(struct built *b)
{
	if (b->conf)
		els_handler_header_filter.destroy(b->conf);
	els_diag_free(&b->diag);
	config_destroy(&b->cfg);
}

static struct els_pkt tcp_in(const char *src, int dport, uint8_t flags)
{
	struct els_pkt p = {.family = ELS_AF_INET,
			    .dir = ELS_DIR_IN,
			    .proto = 6,
			    .flags = ELS_PKT_HAS_PORTS,
			    .sport = 40000,
			    .dport = (uint16_t)dport,
			    .tcp_flags = flags};
	inet_pton(AF_INET, src, p.src.b);
	inet_pton(AF_INET, "198.18.0.2", p.dst.b);
	return p;
}

static struct els_decision decide(void *conf, struct test_ws *ws, struct els_pkt p)
{
	struct els_ctx ctx = {0};
	if (ws) /* NULL: no worker state at all */
		ctx = test_ws_ctx(ws, &els_handler_header_filter);
	ctx.pkt = &p;
	struct els_decision d;
	memset(&d, 0xee, sizeof(d));
	els_handler_header_filter.handle(conf, &ctx, &d);
	return d;
}

/* Runs tracker + header_filter like the chain does, on one worker's flow table. */
struct worker {
	struct els_flow_table *t;
	struct test_ws *ws;
	void *tracker;
	uint64_t now;
};

static struct els_decision run(struct worker *w, void *hf, struct els_pkt p)
{
	w->ws->now_ns = w->now;
	struct els_ctx ctx = test_ws_ctx(w->ws, &els_handler_tracker);
	ctx.pkt = &p;
	ctx.flows = w->t;
	ctx.generation = 1;
	struct els_decision d = {0};
	enum els_action a = els_handler_tracker.handle(w->tracker, &ctx, &d);
	if (a == ELS_CONTINUE && ctx.recheck && ctx.flow) {
		/* the chain's recheck: the origin packet against the header filter */
		struct els_pkt o = tcp_in("0.0.0.0", 0, ELS_TCP_SYN);
		const struct els_flow *f = ctx.flow;
		o.src = f->key.addr[f->init_side];
		o.dst = f->key.addr[!f->init_side];
		o.sport = f->key.port[f->init_side];
		o.dport = f->key.port[!f->init_side];
		struct els_decision sd = decide(hf, w->ws, o);
		d = sd.action == ELS_ACCEPT
			? (struct els_decision){.action = ELS_ACCEPT,
						.reason = ELS_R_FLOW,
						.rule = sd.rule,
						.flags = sd.flags & ELS_DEC_GATED}
			: (struct els_decision){.action = ELS_DROP, .reason = ELS_R_PERMIT_REVOKED};
	} else if (a == ELS_CONTINUE) {
		els_handler_header_filter.handle(hf, &ctx, &d);
		d.handler = 1;
	}
	els_handler_tracker.commit(w->tracker, &ctx, &d);
	w->now += 1000000;
	return d;
}

static void handshake(struct worker *w, void *hf, const char *src, int port, uint16_t sport)
{
	struct els_pkt syn = tcp_in(src, port, ELS_TCP_SYN), sa, ack;
	syn.sport = sport;
	cr_assert_eq(run(w, hf, syn).action, ELS_ACCEPT);
	sa = syn;
	sa.dir = ELS_DIR_OUT;
	sa.src = syn.dst;
	sa.dst = syn.src;
	sa.sport = syn.dport;
	sa.dport = syn.sport;
	sa.tcp_flags = ELS_TCP_SYN | ELS_TCP_ACK;
	cr_assert_eq(run(w, hf, sa).action, ELS_ACCEPT);
	ack = syn;
	ack.tcp_flags = ELS_TCP_ACK;
	cr_assert_eq(run(w, hf, ack).action, ELS_ACCEPT);
}

static const char gated_policy[] =
    "header_filter = { permits = ("
    " { id = \"https\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; },"
    " { id = \"admin\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ];"
    "   requires = \"tcp/443\"; grace = 2; },"
    " { id = \"later\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ];"
    "   remote = [ \"192.0.2.0/24\" ]; } ); };";

Test(els_policy, gate_opens_with_session_and_closes_after_grace)
{
	struct built b;
	struct els_diag d;
	struct worker w = {
	    .t = els_flow_table_new(64, 1), .ws = test_ws_new(64), .now = 1000000000ull};
	els_diag_init(&d, "t");
	cr_assert_eq(els_handler_tracker.build(NULL, NULL, &w.tracker, &d), 0);
	build_text(&b, gated_policy);
	cr_assert_eq(b.rc, 0);

	struct els_decision x = decide(b.conf, w.ws, tcp_in("203.0.113.5", 8443, ELS_TCP_SYN));
	cr_assert_eq(x.action, ELS_DROP);
	cr_assert_eq(x.reason, ELS_R_SESSION_REQUIRED);
	/* a later permit that matches still wins over the shut gate */
	x = decide(b.conf, w.ws, tcp_in("192.0.2.7", 8443, ELS_TCP_SYN));
	cr_assert_eq(x.action, ELS_ACCEPT);
	cr_assert_eq(x.rule, 3);

	handshake(&w, b.conf, "203.0.113.5", 443, 41000);
	x = decide(b.conf, w.ws, tcp_in("203.0.113.5", 8443, ELS_TCP_SYN));
	cr_assert_eq(x.action, ELS_ACCEPT);
	cr_assert_eq(x.rule, 2);
	cr_assert(x.flags & ELS_DEC_GATED);
	/* another remote has no session */
	cr_assert_eq(decide(b.conf, w.ws, tcp_in("203.0.113.6", 8443, ELS_TCP_SYN)).reason,
		     ELS_R_SESSION_REQUIRED);

	/* a gated flow is re-judged on every packet: it passes while the session lasts */
	handshake(&w, b.conf, "203.0.113.5", 8443, 42000);
	struct els_pkt data = tcp_in("203.0.113.5", 8443, ELS_TCP_ACK | ELS_TCP_PSH);
	data.sport = 42000;
	cr_assert_eq(run(&w, b.conf, data).action, ELS_ACCEPT);

	/* the session ends (RST): the gate stays open for the 2 s grace, then shuts */
	struct els_pkt rst = tcp_in("203.0.113.5", 443, ELS_TCP_RST);
	rst.sport = 41000;
	cr_assert_eq(run(&w, b.conf, rst).action, ELS_ACCEPT);
	cr_assert_eq(run(&w, b.conf, data).action, ELS_ACCEPT);
	w.now += 3000000000ull;
	x = run(&w, b.conf, data);
	cr_assert_eq(x.action, ELS_DROP);
	cr_assert_eq(x.reason, ELS_R_PERMIT_REVOKED);
	cr_assert_eq(decide(b.conf, w.ws, tcp_in("203.0.113.5", 8443, ELS_TCP_SYN)).reason,
		     ELS_R_SESSION_REQUIRED);

	built_free(&b);
	els_handler_tracker.destroy(w.tracker);
	els_flow_table_free(w.t);
	test_ws_free(w.ws);
	els_diag_free(&d);
}

Test(els_policy, session_index_counts_and_sweeps)
{
	struct els_sessions *s = els_sessions_new(4);
	struct els_flow f = {.key = {.family = ELS_AF_INET, .proto = 6, .port = {40000, 443}},
			     .init_side = 0,
			     .init_dir = ELS_DIR_IN};
	inet_pton(AF_INET, "203.0.113.5", f.key.addr[0].b);
	inet_pton(AF_INET, "198.18.0.2", f.key.addr[1].b);
	const struct els_addr *r = &f.key.addr[0];
	const uint64_t long_grace = 2 * ELS_SESSIONS_MAX_GRACE_NS;

	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 443, 0, 10));
	els_sessions_change(s, &f, 1, 10);
	els_sessions_change(s, &f, 1, 10);
	els_sessions_change(s, &f, -1, 10);
	cr_assert(els_sessions_held(s, ELS_AF_INET, r, 6, 443, 0, 10));
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 17, 443, 0, 10));
	els_sessions_change(s, &f, -1, 10);
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 443, 0, 10));
	cr_assert(els_sessions_held(s, ELS_AF_INET, r, 6, 443, 5, 10));
	/* outbound flows are no session of the remote's */
	f.init_dir = ELS_DIR_OUT;
	els_sessions_change(s, &f, 1, 10);
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 443, 0, 10));
	/* a full index (4 entries) refuses new ones, so their gate stays shut ... */
	f.init_dir = ELS_DIR_IN;
	for (int i = 0; i < 8; i++) {
		f.key.port[1] = (uint16_t)(1000 + i);
		els_sessions_change(s, &f, 1, 10);
		els_sessions_change(s, &f, -1, 10);
	}
	cr_assert(els_sessions_held(s, ELS_AF_INET, r, 6, 1002, long_grace, 20));
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 1003, long_grace, 20));
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 1007, long_grace, 20));
	/* ... and the sweep frees ended entries whose grace is long over */
	for (int i = 0; i < 8; i++)
		els_sessions_sweep(s, ELS_SESSIONS_MAX_GRACE_NS + 100);
	cr_assert_not(els_sessions_held(s, ELS_AF_INET, r, 6, 1002, long_grace, 20));
	for (int i = 0; i < 4; i++) {
		f.key.port[1] = (uint16_t)(2000 + i);
		els_sessions_change(s, &f, 1, 30);
		cr_assert(els_sessions_held(s, ELS_AF_INET, r, 6, (uint16_t)(2000 + i), 0, 30));
	}
	els_sessions_free(s);
}

Test(els_policy, expiry_at_build_and_at_run_time)
{
	struct built b;
	char text[512];
	time_t now = time(NULL);
	struct tm tm;
	char soon[32];
	gmtime_r(&(time_t){now + 100}, &tm);
	strftime(soon, sizeof(soon), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(text, sizeof(text),
		 "header_filter = { permits = ("
		 " { id = \"old\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ];"
		 "   expires = \"2001-01-01\"; },"
		 " { id = \"soon\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 23 ];"
		 "   expires = \"%s\"; } ); };",
		 soon);
	build_text(&b, text);
	cr_assert_eq(b.rc, 0);
	struct test_ws *ws = test_ws_new(16);
	ws->real_ns = (uint64_t)now * 1000000000ull;
	cr_assert_eq(decide(b.conf, ws, tcp_in("203.0.113.5", 22, ELS_TCP_SYN)).action, ELS_DROP);
	cr_assert_eq(decide(b.conf, ws, tcp_in("203.0.113.5", 23, ELS_TCP_SYN)).action, ELS_ACCEPT);
	ws->real_ns = (uint64_t)(now + 100) * 1000000000ull;
	cr_assert_eq(decide(b.conf, ws, tcp_in("203.0.113.5", 23, ELS_TCP_SYN)).action, ELS_DROP);

	/* the tick alerts each expired permit once */
	struct els_ctx ctx = test_ws_ctx(ws, &els_handler_header_filter);
	ctx.generation = 1;
	els_handler_header_filter.tick(b.conf, &ctx);
	els_handler_header_filter.tick(b.conf, &ctx);
	unsigned n = 0;
	uint64_t lost;
	const struct els_record *r;
	while ((r = els_ring_peek(ws->out->alerts, &lost))) {
		cr_assert_eq(r->reason, ELS_R_PERMIT_EXPIRED);
		n++;
		els_ring_consume(ws->out->alerts);
	}
	cr_assert_eq(n, 2);
	test_ws_free(ws);
	built_free(&b);
}

Test(els_policy, observe_section_and_permit)
{
	struct built b;
	build_text(&b, "header_filter = { mode = \"observe\"; permits = ("
		       " { id = \"https\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; },"
		       " { id = \"trial\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ];"
		       "   mode = \"observe\"; } ); };");
	cr_assert_eq(b.rc, 0);
	struct els_decision d = decide(b.conf, NULL, tcp_in("203.0.113.5", 443, ELS_TCP_SYN));
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.flags, 0);
	d = decide(b.conf, NULL, tcp_in("203.0.113.5", 80, ELS_TCP_SYN));
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.flags, ELS_DEC_OBSERVE);
	cr_assert_eq(d.reason, ELS_R_NO_PERMIT);
	d = decide(b.conf, NULL, tcp_in("203.0.113.5", 0, ELS_TCP_SYN));
	cr_assert_eq(d.reason, ELS_R_PORT_ZERO);
	cr_assert_eq(d.flags, ELS_DEC_OBSERVE);
	d = decide(b.conf, NULL, tcp_in("203.0.113.5", 22, ELS_TCP_SYN));
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(d.flags, ELS_DEC_OBSERVE);
	cr_assert_eq(d.rule, 2);
	built_free(&b);
}

Test(els_policy, bad_els_settings_are_reported)
{
	static const char *const bad[] = {
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; expires = \"2026-02-30\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; expires = \"31/12/2026\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; requires = \"443\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; requires = \"icmp/8\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; requires = \"tcp/0\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; grace = 5; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; requires = \"tcp/443\"; grace = 9999; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; mode = \"audit\"; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; owner = 5; }",
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; mitigations = [ 1 ]; }",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char text[512];
		struct built b;
		snprintf(text, sizeof(text), "header_filter = { permits = ( %s ); };", bad[i]);
		build_text(&b, text);
		cr_assert_eq(b.rc, -EINVAL, "accepted: %s", bad[i]);
		cr_assert_geq(b.diag.count, 1);
		built_free(&b);
	}
	struct built b;
	build_text(&b, "header_filter = { mode = \"learn\"; };");
	cr_assert_eq(b.rc, -EINVAL);
	built_free(&b);
}

Test(els_policy, registry_report_and_audit_queries)
{
	char path[] = "/tmp/els_reg_XXXXXX", out[] = "/tmp/els_regout_XXXXXX";
	int fd = mkstemp(path);
	static const char conf[] =
	    "chain = [ \"tracker\", \"header_filter\" ];\n"
	    "header_filter = { permits = (\n"
	    " { id = \"web\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443, 8443 ];\n"
	    "   justification = \"service\"; owner = \"web team\"; category = \"CAL-2\";\n"
	    "   mitigations = [ \"TLS\", \"WAF\" ]; },\n"
	    " { id = \"gone\"; dir = \"in\"; proto = \"udp\"; local_ports = [ 53 ];\n"
	    "   expires = \"2001-01-01\"; },\n"
	    " { id = \"db\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 5432 ];\n"
	    "   remote = [ \"10.0.0.0/8\" ]; } ); };\n";
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, conf, sizeof(conf) - 1), (ssize_t)sizeof(conf) - 1);
	close(fd);
	struct els_diag d;
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, "/dev/null", &d);
	cr_assert_not_null(p);
	struct els_addr any = {0};
	bool restricted = true;
	cr_assert_str_eq(els_registry_inbound(p, 6, ELS_AF_INET, &any, 8443, &restricted), "web");
	cr_assert_not(restricted);
	cr_assert_str_eq(els_registry_inbound(p, 6, ELS_AF_INET, &any, 5432, &restricted), "db");
	cr_assert(restricted);
	cr_assert_null(els_registry_inbound(p, 17, ELS_AF_INET, &any, 53, NULL));
	cr_assert_null(els_registry_inbound(p, 6, ELS_AF_INET, &any, 22, NULL));

	fd = mkstemp(out);
	FILE *f = fdopen(fd, "w+");
	cr_assert_eq(els_registry_report(p, "/nonexistent/monitor.db", "/dev/null", f), 1);
	rewind(f);
	char buf[4096];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	cr_assert(strstr(buf, "permit gone (line 6) EXPIRED"), "%s", buf);
	cr_assert(strstr(buf, "mitigations: TLS; WAF"), "%s", buf);
	cr_assert(strstr(buf, "owner: web team  category: CAL-2"), "%s", buf);
	cr_assert(strstr(buf, "in tcp local 443, 8443"), "%s", buf);
	cr_assert(strstr(buf, "hits unknown"), "%s", buf);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
	unlink(out);
}
