/* Drives the tracker and a tiny flow table (capacity 8, so eviction and expiry run constantly)
 * with packet sequences built from the input, checking the table's invariants after each.
 *
 * Input: records of 8 bytes, one per packet:
 *   0: bits 0-1 protocol (TCP, UDP, ICMP echo, ICMP other), 2 direction, 3 IPv6,
 *      4-5 fragment (none, first, later, none), 6 run expiry first, 7 new generation first
 *   1: TCP flags
 *   2: address and port choices (2 bits each: source, destination, sport, dport)
 *   3: time step (bit 7: tens of seconds, else tens of milliseconds)
 *   4: the rest of the chain: bits 0-1 action (accept, drop, drop permit_revoked, accept by
 *      a handler before the tracker), bits 2-7 rule
 *   5: fragment id / echo id
 *   6-7: wire length
 * Three connections are adopted from before the start (include/els/adopt.h): a granted TCP
 * one, a refused UDP one and a TCP one refused in observe mode, so that claims, drops and
 * re-judgement under a new generation meet all of the above. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/adopt.h"
#include "els/flow.h"
#include "els/handler.h"

extern const struct els_handler els_handler_tracker;

#define CAPACITY 8

struct fz {
	struct els_flow_table *t;
	unsigned ends;
};

static void on_end(const struct els_flow *f, unsigned reason, void *arg)
{
	struct fz *z = arg;

	/* an ending flow is still in the table when it is reported */
	if (els_flow_lookup(z->t, &f->key) != f)
		abort();
	if (reason != ELS_R_FLOW_EVICTED && reason != ELS_R_FLOW_TIMEOUT &&
	    reason != ELS_R_FLOW_CLOSED && reason != ELS_R_PERMIT_REVOKED &&
	    reason != ELS_R_FLOW_SHUTDOWN)
		abort();
	z->ends++;
}

static void count_one(const struct els_flow *f, void *arg)
{
	if (f->state >= ELS_FS__COUNT)
		abort();
	(*(uint32_t *)arg)++;
}

static void check(struct fz *z)
{
	if (els_flow_table_check(z->t) != 0 || els_flow_count(z->t) > CAPACITY)
		abort();
}

static struct els_adopt *adopt_set(void)
{
	static const struct {
		uint8_t proto, src, dst, verdict;
		uint16_t sport, dport;
	} conns[] = {
	    {6, 0, 1, ELS_ADOPT_GRANT, 51000, 443},
	    {17, 1, 2, ELS_ADOPT_CUT, 53, 53},
	    {6, 2, 3, ELS_ADOPT_CUT_OBSERVE, 443, 51000},
	};
	struct els_adopt *s = els_adopt_new(3, 7);

	if (!s)
		abort();
	s->start_ns = 1000000000ull;
	s->generation = 1;
	for (unsigned i = 0; i < 3; i++) {
		struct els_pkt p = {.family = ELS_AF_INET, .proto = conns[i].proto,
				    .flags = ELS_PKT_HAS_PORTS, .sport = conns[i].sport,
				    .dport = conns[i].dport, .dir = ELS_DIR_IN};
		struct els_adopt_entry e = {.verdict = conns[i].verdict, .rule = 9,
					    .generation = 1, .state = ELS_FS_ESTABLISHED,
					    .init_dir = ELS_DIR_IN, .handler = 2};
		p.src.b[0] = p.dst.b[0] = 10;
		p.src.b[3] = conns[i].src;
		p.dst.b[3] = conns[i].dst;
		if (!els_flow_key_of(&p, &e.key, &e.init_side) || els_adopt_add(s, &e) != 0)
			abort();
	}
	return s;
}

static void make_pkt(const uint8_t *r, struct els_pkt *p)
{
	static const uint16_t ports[4] = {443, 53, 51000, 0};
	unsigned a = r[2];

	memset(p, 0, sizeof(*p));
	p->family = (r[0] & 8) ? ELS_AF_INET6 : ELS_AF_INET;
	p->dir = (r[0] >> 2) & 1;
	p->src.b[0] = 10;
	p->dst.b[0] = 10;
	p->src.b[3] = (uint8_t)(a & 3);
	p->dst.b[3] = (uint8_t)((a >> 2) & 3);
	switch (r[0] & 3) {
	case 0:
	case 1:
		p->proto = (r[0] & 3) ? 17 : 6;
		p->flags = ELS_PKT_HAS_PORTS;
		p->sport = ports[(a >> 4) & 3];
		p->dport = ports[(a >> 6) & 3];
		p->tcp_flags = p->proto == 6 ? r[1] : 0;
		break;
	case 2:
		p->proto = p->family == ELS_AF_INET ? 1 : 58;
		p->flags = ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO;
		p->icmp_type = r[1] & 1 ? 0 : 8;
		p->icmp_id = r[5] & 3;
		break;
	default:
		p->proto = p->family == ELS_AF_INET ? 1 : 58;
		p->flags = ELS_PKT_HAS_ICMP;
		p->icmp_type = 3;
		break;
	}
	switch ((r[0] >> 4) & 3) {
	case 1:
		p->flags |= ELS_PKT_FRAGMENT;
		break;
	case 2:
		/* later fragments carry no L4 header */
		p->flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
		p->sport = p->dport = p->icmp_id = 0;
		p->tcp_flags = 0;
		p->frag_off = 1480;
		break;
	default:
		break;
	}
	p->frag_id = r[5];
	p->wire_len = (uint32_t)r[6] << 8 | r[7];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct els_handler *h = &els_handler_tracker;
	struct els_diag diag;
	void *conf = NULL;
	struct fz z = {0};
	uint64_t now = 1000000000ull;
	uint32_t generation = 1, seen = 0;

	els_diag_init(&diag, "fuzz");
	if (h->build(NULL, NULL, &conf, &diag) != 0)
		abort();
	els_diag_free(&diag);
	z.t = els_flow_table_new(CAPACITY, 0x5eed);
	if (!z.t)
		abort();
	struct els_adopt *adopted = adopt_set();
	els_adopt_publish(adopted);

	for (size_t off = 0; off + 8 <= size; off += 8) {
		const uint8_t *r = data + off;
		struct els_pkt p;
		struct els_decision d = {0};
		enum els_action a;

		now += (r[3] & 0x80) ? (uint64_t)(r[3] & 0x7f) * 10000000000ull
				     : (uint64_t)r[3] * 10000000ull;
		if (r[0] & 0x40)
			els_flow_expire(z.t, now, 4, on_end, &z);
		if (r[0] & 0x80)
			generation++;
		make_pkt(r, &p);

		struct els_ctx ctx = {
		    .pkt = &p,
		    .flows = z.t,
		    .now_ns = now,
		    .generation = generation,
		    .flow_end = on_end,
		    .flow_end_arg = &z,
		};
		unsigned later = r[4] & 3;
		uint32_t rule = (uint32_t)(r[4] >> 2) + 1;

		if (later == 3) {
			/* a handler before the tracker accepted: handle never runs */
			d = (struct els_decision){.action = ELS_ACCEPT,
						  .handler = 0,
						  .reason = ELS_R_PERMIT,
						  .rule = rule};
		} else {
			a = h->handle(conf, &ctx, &d);
			d.handler = 1;
			if (a != ELS_CONTINUE && a != d.action)
				abort();
			if (a == ELS_CONTINUE) {
				if (ctx.recheck && !ctx.flow)
					abort();
				if (later == 0)
					d = (struct els_decision){
					    .action = ELS_ACCEPT,
					    .handler = 2,
					    .reason = ctx.recheck ? ELS_R_FLOW : ELS_R_PERMIT,
					    .rule = rule};
				else if (later == 2 && ctx.recheck)
					d = (struct els_decision){.action = ELS_DROP,
								  .handler = 2,
								  .reason = ELS_R_PERMIT_REVOKED};
				else
					d = (struct els_decision){.action = ELS_DROP,
								  .handler = 2,
								  .reason = ELS_R_NO_PERMIT};
			}
		}
		h->commit(conf, &ctx, &d);
		check(&z);
		if (ctx.flow) {
			if (els_flow_lookup(z.t, &ctx.flow->key) != ctx.flow)
				abort();
			if (d.action == ELS_ACCEPT && ctx.flow->generation != generation)
				abort();
		}
		/* a new flow is always a live one; an ACCEPT that made none is a drop */
		if (ctx.new_flow && !ctx.flow)
			abort();
		if (ctx.new_flow && d.action != ELS_ACCEPT && d.reason != ELS_R_NO_PERMIT)
			abort();
		if (d.action == ELS_DROP && d.reason == ELS_R_PERMIT_REVOKED && ctx.flow)
			abort();
	}

	els_flow_foreach(z.t, count_one, &seen);
	if (seen != els_flow_count(z.t))
		abort();
	els_flow_expire(z.t, UINT64_MAX, CAPACITY, on_end, &z);
	if (els_flow_count(z.t) != 0)
		abort();
	check(&z);
	els_flow_table_free(z.t);
	els_adopt_publish(NULL);
	els_adopt_free(adopted);
	h->destroy(conf);
	return 0;
}
