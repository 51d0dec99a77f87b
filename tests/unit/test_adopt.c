/* Adopted connections (include/els/adopt.h): the set, and the tracker's use of it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "els/adopt.h"
#include "els/flow.h"
#include "els/handler.h"

#define S 1000000000ull

extern const struct els_handler els_handler_tracker;
static const struct els_handler *H = &els_handler_tracker;

/* 10.0.0.1:51000 -> 198.18.0.2:443, inbound; out reverses it (the server's packets). */
static struct els_pkt tcp(bool out, uint8_t flags, uint16_t port)
{
	struct els_pkt p;
	static const uint8_t local[4] = {198, 18, 0, 2}, remote[4] = {10, 0, 0, 1};

	memset(&p, 0, sizeof(p));
	p.family = ELS_AF_INET;
	p.proto = 6;
	memcpy(p.src.b, out ? local : remote, 4);
	memcpy(p.dst.b, out ? remote : local, 4);
	p.sport = out ? port : 51000;
	p.dport = out ? 51000 : port;
	p.dir = out ? ELS_DIR_OUT : ELS_DIR_IN;
	p.flags = ELS_PKT_HAS_PORTS;
	p.tcp_flags = flags;
	p.wire_len = 100;
	return p;
}

static struct els_adopt_entry entry(uint16_t port, uint8_t verdict)
{
	struct els_pkt p = tcp(false, ELS_TCP_SYN, port);
	struct els_adopt_entry e;

	memset(&e, 0, sizeof(e));
	cr_assert(els_flow_key_of(&p, &e.key, &e.init_side));
	e.init_dir = ELS_DIR_IN;
	e.state = ELS_FS_ESTABLISHED;
	e.verdict = verdict;
	e.rule = verdict == ELS_ADOPT_GRANT ? 7 : 0;
	e.generation = 1;
	return e;
}

Test(adopt_set, add_find_duplicate_full_claim)
{
	struct els_adopt *s = els_adopt_new(2, 5);
	struct els_adopt_entry a = entry(443, ELS_ADOPT_GRANT), b = entry(80, ELS_ADOPT_CUT),
			       c = entry(22, ELS_ADOPT_CUT);

	cr_assert_not_null(s);
	cr_assert_null(els_adopt_find(s, &a.key));
	cr_assert_eq(els_adopt_add(s, &a), 0);
	cr_assert_eq(els_adopt_add(s, &a), -EEXIST);
	cr_assert_eq(els_adopt_add(s, &b), 0);
	cr_assert_eq(els_adopt_add(s, &c), -ENOSPC);
	struct els_adopt_entry *f = els_adopt_find(s, &b.key);
	cr_assert_not_null(f);
	cr_assert_eq(f->verdict, ELS_ADOPT_CUT);
	cr_assert_null(els_adopt_find(s, &c.key));
	cr_assert(els_adopt_claim(f));
	cr_assert_not(els_adopt_claim(f), "an entry is claimed once");
	els_adopt_free(s);
	cr_assert_null(els_adopt_new(0, 1));
}

struct rig {
	void *conf;
	struct els_flow_table *t;
	struct els_adopt *s;
	struct els_ctx ctx;
	struct els_decision d;
};

static void rig_init(struct rig *r)
{
	struct els_diag d;
	struct els_adopt_entry e[3] = {entry(443, ELS_ADOPT_GRANT), entry(80, ELS_ADOPT_CUT),
				       entry(8080, ELS_ADOPT_CUT_OBSERVE)};

	memset(r, 0, sizeof(*r));
	els_diag_init(&d, "t.conf");
	cr_assert_eq(H->build(NULL, NULL, &r->conf, &d), 0);
	els_diag_free(&d);
	r->t = els_flow_table_new(16, 3);
	r->s = els_adopt_new(3, 9);
	cr_assert(r->t && r->s);
	r->s->start_ns = 100 * S;
	r->s->generation = 1;
	for (int i = 0; i < 3; i++)
		cr_assert_eq(els_adopt_add(r->s, &e[i]), 0);
	els_adopt_publish(r->s);
}

static void rig_free(struct rig *r)
{
	els_adopt_publish(NULL);
	cr_assert_eq(els_flow_table_check(r->t), 0);
	els_flow_table_free(r->t);
	els_adopt_free(r->s);
	H->destroy(r->conf);
}

static enum els_action run(struct rig *r, const struct els_pkt *p, uint64_t now, uint32_t gen)
{
	memset(&r->ctx, 0, sizeof(r->ctx));
	memset(&r->d, 0, sizeof(r->d));
	r->ctx.pkt = p;
	r->ctx.flows = r->t;
	r->ctx.now_ns = now;
	r->ctx.generation = gen;
	return H->handle(r->conf, &r->ctx, &r->d);
}

Test(adopt_tracker, granted_connection_passes_mid_stream)
{
	struct rig r;
	rig_init(&r);
	/* The server's packet comes first after the restart: an ACK with data, no SYN. */
	struct els_pkt srv = tcp(true, ELS_TCP_ACK | ELS_TCP_PSH, 443);
	cr_assert_eq(run(&r, &srv, 101 * S, 1), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_ADOPTED);
	cr_assert_eq(r.d.rule, 7);
	cr_assert_eq(r.ctx.new_flow, 1, "the first packet writes the admit record");
	cr_assert_not_null(r.ctx.flow);
	cr_assert_eq(r.ctx.flow->state, ELS_FS_ESTABLISHED);
	cr_assert_eq(r.ctx.flow->init_dir, ELS_DIR_IN, "the initiator is the client, as learnt");
	cr_assert_eq(r.ctx.flow->pkts[1], 1, "counted as the responder's packet");
	cr_assert_eq(els_flow_count(r.t), 1);
	struct els_pkt cli = tcp(false, ELS_TCP_ACK, 443);
	cr_assert_eq(run(&r, &cli, 102 * S, 1), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_FLOW, "later packets are the flow's, from the table");
	cr_assert_eq(r.ctx.new_flow, 0);
	rig_free(&r);
}

Test(adopt_tracker, refused_connection_drops_every_packet)
{
	struct rig r;
	rig_init(&r);
	struct els_pkt cli = tcp(false, ELS_TCP_ACK | ELS_TCP_PSH, 80);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(run(&r, &cli, (101 + i) * S, 1), ELS_DROP);
		cr_assert_eq(r.d.reason, ELS_R_NOT_PERMITTED_AT_START);
	}
	cr_assert_eq(els_flow_count(r.t), 0, "a refused connection never enters the table");
	/* A new connection on the same ports is the chain's to judge. */
	struct els_pkt syn = tcp(false, ELS_TCP_SYN, 80);
	cr_assert_eq(run(&r, &syn, 104 * S, 1), ELS_CONTINUE);
	/* Under a later generation the refusal is re-judged like any older flow. */
	cr_assert_eq(run(&r, &cli, 105 * S, 2), ELS_CONTINUE);
	cr_assert_eq(r.ctx.recheck, 1);
	cr_assert_not_null(r.ctx.flow);
	rig_free(&r);
}

Test(adopt_tracker, observe_mode_passes_and_says_would_drop)
{
	struct rig r;
	rig_init(&r);
	struct els_pkt cli = tcp(false, ELS_TCP_ACK, 8080);
	cr_assert_eq(run(&r, &cli, 101 * S, 1), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_NOT_PERMITTED_AT_START);
	cr_assert(r.d.flags & ELS_DEC_OBSERVE);
	cr_assert_eq(r.ctx.new_flow, 0);
	cr_assert_eq(run(&r, &cli, 102 * S, 1), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_FLOW);
	cr_assert_not(r.d.flags & ELS_DEC_OBSERVE, "recorded once, then an ordinary flow");
	rig_free(&r);
}

Test(adopt_tracker, entries_expire_and_are_taken_once)
{
	struct rig r;
	rig_init(&r);
	/* tcp_established defaults to 7200 s: past it, the entry is gone. */
	struct els_pkt cli = tcp(false, ELS_TCP_ACK, 443);
	cr_assert_eq(run(&r, &cli, 100 * S + 7200 * S, 1), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_OUT_OF_STATE);
	/* Taken once: after its flow is gone from the table, the entry no longer revives it. */
	cr_assert_eq(run(&r, &cli, 101 * S, 1), ELS_ACCEPT);
	cr_assert_eq(r.d.reason, ELS_R_ADOPTED);
	els_flow_remove(r.t, r.ctx.flow);
	cr_assert_eq(run(&r, &cli, 102 * S, 1), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_OUT_OF_STATE);
	rig_free(&r);
}

Test(adopt_tracker, full_table_refuses_with_its_reason)
{
	struct rig r;
	rig_init(&r);
	els_flow_table_free(r.t);
	r.t = els_flow_table_new(1, 3);
	struct els_pkt other = tcp(false, ELS_TCP_SYN, 9999);
	struct els_flow_key k;
	uint8_t side;
	cr_assert(els_flow_key_of(&other, &k, &side));
	struct els_flow *f = els_flow_insert(r.t, &k, 100 * S, NULL, NULL);
	els_flow_touch(r.t, f, ELS_FS_ESTABLISHED, 100 * S, 7200 * S);
	struct els_pkt cli = tcp(false, ELS_TCP_ACK, 443);
	cr_assert_eq(run(&r, &cli, 101 * S, 1), ELS_DROP);
	cr_assert_eq(r.d.reason, ELS_R_FLOW_TABLE_FULL);
	rig_free(&r);
}
