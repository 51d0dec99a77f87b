/* The tracker handler: config, TCP/UDP/ICMP state, flow creation in commit, recheck. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "els/flow.h"
#include "els/handler.h"

#define S      1000000000ull
#define LOCAL  0xc6120002u /* 198.18.0.2 */
#define REMOTE 0x0a000001u /* 10.0.0.1 */

extern const struct els_handler els_handler_tracker;
static const struct els_handler *H = &els_handler_tracker;

/* ---- config ---- */

static int build_str(const char *text, void **conf, struct els_diag *d)
{
	config_t cfg;
	int rc;

	config_init(&cfg);
	cr_assert_eq(config_read_string(&cfg, text), CONFIG_TRUE, "test config must parse: %s",
		     config_error_text(&cfg));
	rc = H->build(config_lookup(&cfg, "tracker"), NULL, conf, d);
	config_destroy(&cfg);
	return rc;
}

static bool has_msg(const struct els_diag *d, const char *needle)
{
	for (unsigned i = 0; i < d->count; i++)
		if (strstr(d->msgs[i], needle))
			return true;
	return false;
}

Test(tracker_config, null_section_defaults)
{
	struct els_diag d;
	void *conf = NULL;

	els_diag_init(&d, "t.conf");
	cr_assert_eq(H->build(NULL, NULL, &conf, &d), 0);
	cr_assert_not_null(conf);
	cr_assert_eq(d.count, 0);
	cr_assert_str_eq(H->name, "tracker");
	cr_assert_not_null(H->commit);
	H->destroy(conf);
	els_diag_free(&d);
}

Test(tracker_config, values_and_fail_accepted)
{
	struct els_diag d;
	void *conf = NULL;

	els_diag_init(&d, "t.conf");
	cr_assert_eq(build_str("tracker = {\n tcp_syn = 5;\n tcp_established = 60;\n"
			       " tcp_closing = 7;\n tcp_time_wait = 1;\n udp_unreplied = 3;\n"
			       " udp_established = 9;\n icmp = 2;\n fail = \"open\";\n};\n",
			       &conf, &d),
		     0);
	cr_assert_eq(d.count, 0);
	H->destroy(conf);
	els_diag_free(&d);
}

Test(tracker_config, errors_name_key_and_line)
{
	struct els_diag d;
	void *conf = (void *)1;

	els_diag_init(&d, "t.conf");
	cr_assert_eq(build_str("tracker = {\n"
			       "  tcp_syn = 0;\n"	      /* line 2 */
			       "  tcp_establishd = 60;\n"     /* line 3 */
			       "  icmp = -4;\n"		      /* line 4 */
			       "  udp_unreplied = \"30\";\n"  /* line 5 */
			       "  udp_established = 1.5;\n"   /* line 6 */
			       "  tcp_closing = 100000000;\n" /* line 7: over a year */
			       "  tcp_time_wait = 10;\n"
			       "};\n",
			       &conf, &d),
		     -EINVAL);
	cr_assert_null(conf);
	cr_assert_eq(d.count, 6);
	cr_assert(has_msg(&d, "t.conf:2: tracker: tcp_syn"));
	cr_assert(has_msg(&d, "t.conf:3: tracker: unknown setting 'tcp_establishd'"));
	cr_assert(has_msg(&d, "t.conf:4: tracker: icmp"));
	cr_assert(has_msg(&d, "t.conf:5: tracker: udp_unreplied"));
	cr_assert(has_msg(&d, "t.conf:6: tracker: udp_established"));
	cr_assert(has_msg(&d, "t.conf:7: tracker: tcp_closing"));
	els_diag_free(&d);
}

Test(tracker_config, not_a_group)
{
	struct els_diag d;
	void *conf = NULL;

	els_diag_init(&d, "t.conf");
	cr_assert_eq(build_str("\ntracker = 5;\n", &conf, &d), -EINVAL);
	cr_assert(has_msg(&d, "t.conf:2: tracker"));
	els_diag_free(&d);
}

/* ---- packets and a two-stage chain: tracker, then a "permit" that decides the rest ---- */

static struct els_pkt tcp(bool out, uint8_t flags)
{
	struct els_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = ELS_AF_INET;
	p.proto = 6;
	uint32_t src = out ? LOCAL : REMOTE, dst = out ? REMOTE : LOCAL;
	for (int i = 0; i < 4; i++) {
		p.src.b[i] = (uint8_t)(src >> (24 - 8 * i));
		p.dst.b[i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	p.sport = out ? 443 : 51000;
	p.dport = out ? 51000 : 443;
	p.dir = out ? ELS_DIR_OUT : ELS_DIR_IN;
	p.flags = ELS_PKT_HAS_PORTS;
	p.tcp_flags = flags;
	p.wire_len = 100;
	return p;
}

static struct els_pkt udp(bool out)
{
	struct els_pkt p = tcp(out, 0);

	p.proto = 17;
	return p;
}

static struct els_pkt echo(bool out, bool reply)
{
	struct els_pkt p = tcp(out, 0);

	p.proto = 1;
	p.flags = ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO;
	p.icmp_type = reply ? 0 : 8;
	p.icmp_id = 77;
	p.sport = p.dport = 0;
	return p;
}

struct ends {
	unsigned n;
	unsigned reason[8];
	uint64_t pkts0[8];
};

static void on_end(const struct els_flow *f, unsigned reason, void *arg)
{
	struct ends *e = arg;

	if (e->n < 8) {
		e->reason[e->n] = reason;
		e->pkts0[e->n] = f->pkts[0];
	}
	e->n++;
}

struct rig {
	void *conf;
	struct els_flow_table *t;
	struct ends ends;
	uint32_t generation;
	struct els_ctx ctx;	 /* of the last packet */
	struct els_decision d;	 /* the last packet's final decision */
	enum els_action handled; /* what the tracker's handle returned */
};

static void rig_init(struct rig *r, uint32_t capacity)
{
	struct els_diag d;

	memset(r, 0, sizeof(*r));
	els_diag_init(&d, "t.conf");
	cr_assert_eq(H->build(NULL, NULL, &r->conf, &d), 0);
	els_diag_free(&d);
	if (capacity) {
		r->t = els_flow_table_new(capacity, 99);
		cr_assert_not_null(r->t);
	}
	r->generation = 1;
}

static void rig_free(struct rig *r)
{
	if (r->t) {
		cr_assert_eq(els_flow_table_check(r->t), 0);
		els_flow_table_free(r->t);
	}
	H->destroy(r->conf);
}

/* Runs one packet: the tracker's handle, then (if it continued) `later`, the decision the
 * rest of the chain would take, then the tracker's commit. */
static enum els_action run(struct rig *r, const struct els_pkt *p, uint64_t now,
			   struct els_decision later)
{
	struct els_decision d = {0};

	memset(&r->ctx, 0, sizeof(r->ctx));
	r->ctx.pkt = p;
	r->ctx.flows = r->t;
	r->ctx.now_ns = now;
	r->ctx.generation = r->generation;
	r->ctx.flow_end = on_end;
	r->ctx.flow_end_arg = &r->ends;
	r->handled = H->handle(r->conf, &r->ctx, &d);
	if (r->handled == ELS_CONTINUE) {
		d = later;
	} else {
		cr_assert_eq(d.action, r->handled, "handle's return matches out->action");
		d.handler = 1;
	}
	H->commit(r->conf, &r->ctx, &d);
	r->d = d;
	return (enum els_action)d.action;
}

static const struct els_decision PERMIT = {
    .action = ELS_ACCEPT, .handler = 2, .reason = ELS_R_PERMIT, .rule = 7};
static const struct els_decision DENY = {
    .action = ELS_DROP, .handler = 2, .reason = ELS_R_NO_PERMIT, .rule = 0};

static void expect(struct rig *r, const struct els_pkt *p, uint64_t now, enum els_action a,
		   unsigned reason, unsigned state)
{
	cr_assert_eq(run(r, p, now, PERMIT), a, "action at %llu s", (unsigned long long)(now / S));
	cr_assert_eq(r->d.reason, reason, "reason %u, want %u", r->d.reason, reason);
	if (state != ELS_FS__COUNT) {
		cr_assert_not_null(r->ctx.flow);
		cr_assert_eq(r->ctx.flow->state, state, "state %s, want %s",
			     els_flow_state_name(r->ctx.flow->state), els_flow_state_name(state));
	}
}

#define ANY ELS_FS__COUNT

Test(tracker, tcp_handshake_and_teardown)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack_in = tcp(false, ELS_TCP_ACK), ack_out = tcp(true, ELS_TCP_ACK);
	struct els_pkt fin_in = tcp(false, ELS_TCP_FIN | ELS_TCP_ACK);
	struct els_pkt fin_out = tcp(true, ELS_TCP_FIN | ELS_TCP_ACK);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	cr_assert(r.ctx.new_flow);
	struct els_flow *f = r.ctx.flow;
	cr_assert_eq(f->rule, 7);
	cr_assert_eq(f->handler, 2);
	cr_assert_eq(f->init_dir, ELS_DIR_IN);
	cr_assert_eq(f->generation, 1);
	cr_assert_eq(f->expire_ns, 31 * S, "tcp_syn timeout");

	expect(&r, &syn, 2 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_SENT); /* retransmitted */
	expect(&r, &synack, 2 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	cr_assert_eq(r.ctx.flow, f);
	cr_assert_not(r.ctx.new_flow);
	cr_assert_eq(r.d.rule, 7, "the flow carries its permit's rule");
	expect(&r, &ack_in, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	cr_assert_eq(f->expire_ns, 7203 * S, "tcp_established timeout");
	expect(&r, &ack_out, 4 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	expect(&r, &synack, 4 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED); /* final ACK lost */
	expect(&r, &fin_out, 5 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_FIN_WAIT);
	cr_assert_eq(f->expire_ns, 65 * S, "tcp_closing timeout");
	expect(&r, &ack_in, 5 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_FIN_WAIT);
	expect(&r, &fin_out, 5 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_FIN_WAIT); /* same side again */
	expect(&r, &fin_in, 6 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_CLOSING);
	expect(&r, &ack_out, 6 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	cr_assert_eq(f->expire_ns, 16 * S, "tcp_time_wait timeout");
	expect(&r, &fin_in, 7 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT); /* retransmitted */

	/* counters: [0] from the initiator (the remote), [1] from the responder */
	cr_assert_eq(f->pkts[0], 6);
	cr_assert_eq(f->pkts[1], 6);
	cr_assert_eq(f->bytes[0], 600);
	cr_assert_eq(f->bytes[1], 600);
	cr_assert_eq(f->first_ns, 1 * S);
	cr_assert_eq(f->last_ns, 7 * S);

	cr_assert_eq(els_flow_expire(r.t, 16 * S, 10, on_end, &r.ends), 0);
	cr_assert_eq(els_flow_expire(r.t, 17 * S + (1ull << ELS_FLOW_DUE_SHIFT), 10, on_end, &r.ends), 1);
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_CLOSED);
	cr_assert_eq(els_flow_count(r.t), 0);
	rig_free(&r);
}

Test(tracker, rst_ends_in_time_wait)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);
	struct els_pkt rst = tcp(true, ELS_TCP_RST | ELS_TCP_ACK);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &synack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	expect(&r, &ack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	expect(&r, &rst, 2 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	cr_assert_eq(r.ctx.flow->expire_ns, 12 * S);

	/* a port refused outright: RST answers the SYN */
	struct els_pkt syn2 = syn;
	syn2.sport = 52000;
	struct els_pkt rst2 = tcp(true, ELS_TCP_RST | ELS_TCP_ACK);
	rst2.dport = 52000;
	expect(&r, &syn2, 3 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &rst2, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	rig_free(&r);
}

/* A flow found past its expiry time, before the reaper got to it, is ended there and then:
 * the late packet meets no flow (a TCP ACK is out of state), and the end is reported once. */
Test(tracker, expired_flow_ends_on_lookup)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &synack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	expect(&r, &ack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	uint64_t at = r.ctx.flow->expire_ns;
	expect(&r, &ack, at - 1, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	at = r.ctx.flow->expire_ns;
	cr_assert_eq(run(&r, &ack, at, PERMIT), ELS_DROP, "the flow's time is up");
	cr_assert_eq(r.d.reason, ELS_R_OUT_OF_STATE);
	cr_assert_eq(r.ends.n, 1);
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_TIMEOUT);
	cr_assert_eq(els_flow_count(r.t), 0);
	cr_assert_eq(els_flow_expire(r.t, at + 100 * S, 10, on_end, &r.ends), 0, "nothing left");
	rig_free(&r);
}

Test(tracker, out_of_state_without_flow)
{
	struct rig r;
	static const uint8_t bad[] = {
	    ELS_TCP_ACK,
	    ELS_TCP_SYN | ELS_TCP_ACK,
	    ELS_TCP_SYN | ELS_TCP_RST,
	    ELS_TCP_SYN | ELS_TCP_FIN,
	    ELS_TCP_RST,
	    ELS_TCP_FIN,
	    0,
	};

	rig_init(&r, 16);
	for (unsigned i = 0; i < sizeof(bad); i++) {
		struct els_pkt p = tcp(false, bad[i]);
		cr_assert_eq(run(&r, &p, 1 * S, PERMIT), ELS_DROP, "flags 0x%x", bad[i]);
		cr_assert_eq(r.d.reason, ELS_R_OUT_OF_STATE);
		cr_assert_null(r.ctx.flow);
	}
	cr_assert_eq(els_flow_count(r.t), 0, "a dropped packet creates no flow");

	/* a bare SYN is for the policy to decide; a denied one leaves no flow */
	struct els_pkt syn = tcp(false, ELS_TCP_SYN | ELS_TCP_PSH);
	cr_assert_eq(run(&r, &syn, 1 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	cr_assert_eq(r.d.reason, ELS_R_NO_PERMIT);
	cr_assert_eq(els_flow_count(r.t), 0);
	rig_free(&r);
}

Test(tracker, bad_transitions_dropped)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);
	struct els_pkt data_out = tcp(true, ELS_TCP_ACK | ELS_TCP_PSH);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	/* data before the handshake, a SYN-ACK from the initiator */
	expect(&r, &ack, 1 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_SYN_SENT);
	struct els_pkt synack_wrong = tcp(false, ELS_TCP_SYN | ELS_TCP_ACK);
	expect(&r, &synack_wrong, 1 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_SYN_SENT);
	/* the responder's challenge ACK (its older connection on these ports) passes, so the
	 * initiator's RST can clear that connection; with data flags it is still refused */
	struct els_pkt challenge = tcp(true, ELS_TCP_ACK);
	expect(&r, &challenge, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_SENT);
	struct els_pkt challenge_psh = tcp(true, ELS_TCP_ACK | ELS_TCP_PSH);
	expect(&r, &challenge_psh, 1 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_SYN_SENT);
	expect(&r, &synack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	expect(&r, &data_out, 1 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_SYN_RECV);
	expect(&r, &ack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	uint64_t pkts = r.ctx.flow->pkts[0] + r.ctx.flow->pkts[1];
	expect(&r, &syn, 2 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_ESTABLISHED);
	struct els_pkt synfin = tcp(false, ELS_TCP_SYN | ELS_TCP_FIN);
	expect(&r, &synfin, 2 * S, ELS_DROP, ELS_R_BAD_TCP_STATE, ELS_FS_ESTABLISHED);
	cr_assert_eq(r.ctx.flow->pkts[0] + r.ctx.flow->pkts[1], pkts, "drops are not counted");
	cr_assert_eq(r.ctx.flow->last_ns, 1 * S, "drops do not keep a flow alive");
	rig_free(&r);
}

Test(tracker, time_wait_reuse_by_initiator)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);
	struct els_pkt rst = tcp(false, ELS_TCP_RST);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &synack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	expect(&r, &ack, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	expect(&r, &rst, 2 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	struct els_flow *f = r.ctx.flow;
	expect(&r, &syn, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_SENT);
	cr_assert_eq(r.ctx.flow, f, "the entry is reused");
	cr_assert(r.ctx.new_flow, "a new connection is reported as a new flow");
	cr_assert_eq(r.ends.n, 1, "the old connection's end is reported");
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_CLOSED);
	cr_assert_eq(r.ends.pkts0[0], 3);
	cr_assert_eq(f->pkts[0], 1);
	cr_assert_eq(f->pkts[1], 0);
	cr_assert_eq(f->first_ns, 3 * S);
	cr_assert_eq(f->fin_seen, 0);
	expect(&r, &synack, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	rig_free(&r);
}

Test(tracker, time_wait_reuse_by_responder_is_a_new_decision)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt rst = tcp(true, ELS_TCP_RST | ELS_TCP_ACK);
	struct els_pkt rev = tcp(true, ELS_TCP_SYN);

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &rst, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	/* the other end opens the same ports: the old permit does not cover that direction */
	cr_assert_eq(run(&r, &rev, 2 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	cr_assert_eq(r.d.reason, ELS_R_NO_PERMIT);
	cr_assert_eq(r.ends.n, 1);
	cr_assert_eq(els_flow_count(r.t), 0);
	/* and when a permit grants it, a flow in the new direction starts */
	expect(&r, &rev, 3 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	cr_assert_eq(r.ctx.flow->init_dir, ELS_DIR_OUT);
	rig_free(&r);
}

Test(tracker, udp_unreplied_then_established)
{
	struct rig r;
	struct els_pkt q = udp(true), a = udp(false);

	rig_init(&r, 16);
	expect(&r, &q, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_UNREPLIED);
	cr_assert_eq(r.ctx.flow->expire_ns, 31 * S);
	expect(&r, &q, 2 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_UNREPLIED);
	expect(&r, &a, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	cr_assert_eq(r.ctx.flow->expire_ns, 123 * S);
	expect(&r, &q, 4 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	cr_assert_eq(r.ctx.flow->pkts[0], 3);
	cr_assert_eq(r.ctx.flow->pkts[1], 1);
	cr_assert_eq(els_flow_expire(r.t, 124 * S + (1ull << ELS_FLOW_DUE_SHIFT), 10, on_end, &r.ends), 1);
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_TIMEOUT);
	rig_free(&r);
}

Test(tracker, icmp_echo_pairs)
{
	struct rig r;
	struct els_pkt req = echo(false, false), rep = echo(true, true);

	rig_init(&r, 16);
	expect(&r, &req, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_UNREPLIED);
	struct els_flow *f = r.ctx.flow;
	expect(&r, &rep, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	cr_assert_eq(r.ctx.flow, f);
	cr_assert_eq(f->expire_ns, 31 * S, "icmp timeout");
	/* another echo id is not part of it */
	struct els_pkt rep2 = rep;
	rep2.icmp_id = 78;
	cr_assert_eq(run(&r, &rep2, 1 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	/* ICMP without an echo id never forms a flow */
	struct els_pkt unreach = rep;
	unreach.flags = ELS_PKT_HAS_ICMP;
	unreach.icmp_type = 3;
	cr_assert_eq(run(&r, &unreach, 1 * S, PERMIT), ELS_ACCEPT);
	cr_assert_null(r.ctx.flow);
	cr_assert_eq(els_flow_count(r.t), 1);
	rig_free(&r);
}

Test(tracker, recheck_on_new_generation)
{
	struct rig r;
	struct els_pkt q = udp(true), a = udp(false);

	rig_init(&r, 16);
	expect(&r, &q, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_UNREPLIED);
	struct els_flow *f = r.ctx.flow;
	r.generation = 2;
	struct els_decision confirm = {
	    .action = ELS_ACCEPT, .handler = 1, .reason = ELS_R_FLOW, .rule = 9};
	cr_assert_eq(run(&r, &a, 2 * S, confirm), ELS_ACCEPT);
	cr_assert_eq(r.handled, ELS_CONTINUE, "an older generation's flow is asked about again");
	cr_assert(r.ctx.recheck);
	cr_assert_eq(r.ctx.flow, f);
	cr_assert_eq(f->state, ELS_FS_ESTABLISHED, "state still follows the packet");
	cr_assert_eq(f->generation, 2);
	cr_assert_eq(f->rule, 9);
	cr_assert_eq(f->handler, 2, "the admitting handler is kept");
	cr_assert_eq(run(&r, &q, 3 * S, DENY), ELS_ACCEPT);
	cr_assert_eq(r.handled, ELS_ACCEPT, "confirmed: no more rechecks");
	cr_assert_not(r.ctx.recheck);
	cr_assert_eq(r.d.rule, 9);

	r.generation = 3;
	struct els_decision revoke = {
	    .action = ELS_DROP, .handler = 1, .reason = ELS_R_PERMIT_REVOKED, .rule = 9};
	cr_assert_eq(run(&r, &q, 4 * S, revoke), ELS_DROP);
	cr_assert(r.ctx.recheck);
	cr_assert_null(r.ctx.flow);
	cr_assert_eq(r.ends.n, 1);
	cr_assert_eq(r.ends.reason[0], ELS_R_PERMIT_REVOKED);
	cr_assert_eq(els_flow_count(r.t), 0);
	rig_free(&r);
}

Test(tracker, full_table_refuses_new_flows)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt synack = tcp(true, ELS_TCP_SYN | ELS_TCP_ACK);
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);

	rig_init(&r, 1);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	/* an embryonic flow is evicted by the next one */
	struct els_pkt syn2 = syn;
	syn2.sport = 40000;
	expect(&r, &syn2, 2 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	cr_assert_eq(r.ends.n, 1);
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_EVICTED);
	/* the first connection lost its entry: its SYN-ACK is out of state now */
	cr_assert_eq(run(&r, &synack, 2 * S, PERMIT), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_OUT_OF_STATE);

	expect(&r, &syn, 3 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &synack, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_SYN_RECV);
	expect(&r, &ack, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	/* full of established flows: the permit's ACCEPT becomes a drop */
	cr_assert_eq(run(&r, &syn2, 4 * S, PERMIT), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_FLOW_TABLE_FULL);
	cr_assert_null(r.ctx.flow);
	cr_assert_not(r.ctx.new_flow);
	struct els_pkt q = udp(true);
	cr_assert_eq(run(&r, &q, 4 * S, PERMIT), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_FLOW_TABLE_FULL);
	expect(&r, &ack, 5 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_ESTABLISHED);
	rig_free(&r);
}

Test(tracker, no_table_no_opinion)
{
	struct rig r;
	struct els_pkt ack = tcp(false, ELS_TCP_ACK);
	struct els_pkt later = udp(false);

	rig_init(&r, 0);
	cr_assert_eq(run(&r, &ack, 1 * S, PERMIT), ELS_ACCEPT);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	cr_assert_null(r.ctx.flow);
	later.flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
	cr_assert_eq(run(&r, &later, 1 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	rig_free(&r);
}

Test(tracker, fragments_follow_their_first)
{
	struct rig r;
	struct els_pkt first = udp(false), later = udp(false);

	rig_init(&r, 16);
	first.flags |= ELS_PKT_FRAGMENT;
	first.frag_id = 4242;
	later.flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
	later.frag_id = 4242;
	later.frag_off = 1480;

	/* unknown datagram: the header filter decides */
	cr_assert_eq(run(&r, &later, 1 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	cr_assert_eq(r.d.reason, ELS_R_NO_PERMIT);

	expect(&r, &first, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_UNREPLIED);
	cr_assert_eq(run(&r, &later, 2 * S, DENY), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_FRAGMENT_OF_FLOW);
	cr_assert_null(r.ctx.flow);
	cr_assert_eq(els_flow_count(r.t), 1, "a later fragment makes no flow");

	/* a fragmented datagram inside a known flow is remembered too */
	struct els_pkt first2 = first, later2 = later;
	first2.frag_id = later2.frag_id = 4343;
	expect(&r, &first2, 3 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_UNREPLIED);
	cr_assert_eq(run(&r, &later2, 3 * S, DENY), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_FRAGMENT_OF_FLOW);

	/* a denied first fragment admits nothing */
	struct els_pkt first3 = first, later3 = later;
	first3.sport = 6000;
	first3.frag_id = later3.frag_id = 4444;
	cr_assert_eq(run(&r, &first3, 4 * S, DENY), ELS_DROP);
	cr_assert_eq(run(&r, &later3, 4 * S, DENY), ELS_DROP);
	cr_assert_eq(r.handled, ELS_CONTINUE);
	rig_free(&r);
}

Test(tracker, accept_of_known_flow_before_tracker_is_harmless)
{
	struct rig r;
	struct els_pkt q = udp(true);

	rig_init(&r, 1);
	expect(&r, &q, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_UNREPLIED);
	/* an earlier handler accepted the packet, so handle never ran: commit must not report
	 * the existing key as a full table */
	struct els_ctx ctx = {.pkt = &q, .flows = r.t, .now_ns = 2 * S, .generation = 1};
	struct els_decision d = PERMIT;
	H->commit(r.conf, &ctx, &d);
	cr_assert_eq(d.action, ELS_ACCEPT);
	cr_assert_eq(els_flow_count(r.t), 1);
	/* a drop for another reason leaves the flow alone */
	struct els_pkt a = udp(false);
	cr_assert_eq(run(&r, &a, 3 * S, DENY), ELS_ACCEPT);
	struct els_decision other = {.action = ELS_DROP, .reason = ELS_R_DENY_LIST};
	H->commit(r.conf, &r.ctx, &other);
	cr_assert_eq(els_flow_count(r.t), 1);
	cr_assert_not_null(r.ctx.flow);
	rig_free(&r);
}

/* found by fuzz_tracker: a TIME_WAIT reuse under a newer generation that the policy revokes
 * must not leave new_flow set for a flow that is gone */
Test(tracker, reuse_then_revoked)
{
	struct rig r;
	struct els_pkt syn = tcp(false, ELS_TCP_SYN);
	struct els_pkt rst = tcp(true, ELS_TCP_RST | ELS_TCP_ACK);
	struct els_decision revoke = {
	    .action = ELS_DROP, .handler = 1, .reason = ELS_R_PERMIT_REVOKED, .rule = 7};

	rig_init(&r, 16);
	expect(&r, &syn, 1 * S, ELS_ACCEPT, ELS_R_PERMIT, ELS_FS_SYN_SENT);
	expect(&r, &rst, 1 * S, ELS_ACCEPT, ELS_R_FLOW, ELS_FS_TIME_WAIT);
	r.generation = 2;
	cr_assert_eq(run(&r, &syn, 2 * S, revoke), ELS_DROP);
	cr_assert(r.ctx.recheck);
	cr_assert_null(r.ctx.flow);
	cr_assert_not(r.ctx.new_flow);
	cr_assert_eq(r.ends.n, 2);
	cr_assert_eq(r.ends.reason[0], ELS_R_FLOW_CLOSED);
	cr_assert_eq(r.ends.reason[1], ELS_R_PERMIT_REVOKED);
	cr_assert_eq(els_flow_count(r.t), 0);
	rig_free(&r);
}
