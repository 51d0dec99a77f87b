/* Runs a policy's handlers over one packet. Packet path: no allocation, no locks, no I/O. */
#include <netinet/in.h>
#include <string.h>

#include "els/chain.h"
#include "els/flow.h"
#include "els/policy.h"

/* The packet that opened a flow, rebuilt from the flow entry, so that the handlers after the
 * flow stage can say whether the current policy still grants that flow. */
static void origin_packet(const struct els_flow *f, struct els_pkt *o)
{
	unsigned a = f->init_side, b = !f->init_side;

	memset(o, 0, sizeof(*o));
	o->family = f->key.family;
	o->proto = f->key.proto;
	o->dir = f->init_dir;
	o->src = f->key.addr[a];
	o->dst = f->key.addr[b];
	if (o->proto == IPPROTO_TCP || o->proto == IPPROTO_UDP) {
		o->flags = ELS_PKT_HAS_PORTS;
		o->sport = f->key.port[a];
		o->dport = f->key.port[b];
		o->tcp_flags = o->proto == IPPROTO_TCP ? ELS_TCP_SYN : 0;
	} else if (o->proto == IPPROTO_ICMP || o->proto == IPPROTO_ICMPV6) {
		/* Only echo exchanges form ICMP flows (els_flow_key_of). */
		o->flags = ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO;
		o->icmp_type = o->proto == IPPROTO_ICMP ? 8 : 128;
		o->icmp_id = f->key.port[0];
	}
}

void *els_chain_hstate(const struct els_chain_link *l, const struct els_ctx *ctx)
{
	return ctx->hstates ? ctx->hstates[l->stat_slot] : NULL;
}

void els_chain_tick(const struct els_policy *p, struct els_ctx *ctx)
{
	for (unsigned i = 0; i < p->nlinks; i++)
		if (p->links[i].h->tick) {
			ctx->hstate = els_chain_hstate(&p->links[i], ctx);
			p->links[i].h->tick(p->links[i].conf, ctx);
		}
	ctx->hstate = NULL;
}

static bool run_links(const struct els_policy *p, unsigned from, struct els_ctx *ctx,
		      struct els_decision *d);

static bool is_flow_stage(const struct els_chain_link *l)
{
	return (l->h->flags & ELS_HANDLER_FLOW_STAGE) != 0;
}

/* The flow stage at link `at` found ctx->flow admitted under an older generation and let the
 * packet through to here: the admitting handlers after it judge the flow's origin packet
 * under the current policy, and the flow goes on (ELS_R_FLOW, their rule) or is cut
 * (ELS_R_PERMIT_REVOKED, the flow's old rule). The screens before the stage saw the packet
 * itself already. */
static bool rejudge_flow(const struct els_policy *p, unsigned at, struct els_ctx *ctx,
			 struct els_decision *d)
{
	struct els_pkt origin;
	struct els_ctx sub = {
		.pkt = &origin,
		/* session gates and expiry ask these */
		.sessions = ctx->sessions,
		.out = ctx->out,
		.hstates = ctx->hstates,
		.now_ns = ctx->now_ns,
		.real_ns = ctx->real_ns,
		.generation = ctx->generation,
		.origin = 1,
	};
	struct els_decision sd = {0};
	origin_packet(ctx->flow, &origin);
	bool decided = run_links(p, at + 1, &sub, &sd);
	d->handler = (uint8_t)at;
	if (decided && sd.action == ELS_ACCEPT) {
		d->action = ELS_ACCEPT;
		d->reason = ELS_R_FLOW;
		d->rule = sd.rule;
		d->flags = sd.flags & ELS_DEC_GATED;
	} else {
		d->action = ELS_DROP;
		d->reason = ELS_R_PERMIT_REVOKED;
		d->rule = ctx->flow->rule;
	}
	return true;
}

/* Runs links [from, n) on pkt; fills d and returns true when one of them decided. The flow
 * stage (ELS_HANDLER_FLOW_STAGE) runs where the configured chain lists it: links before it
 * are screens, links after it admit new flows (docs/design-flow-stage.md). */
static bool run_links(const struct els_policy *p, unsigned from, struct els_ctx *ctx,
		      struct els_decision *d)
{
	for (unsigned i = from; i < p->nlinks; i++) {
		const struct els_chain_link *l = &p->links[i];
		struct els_decision hd = {0};
		ctx->hstate = els_chain_hstate(l, ctx);
		enum els_action a = l->h->handle(l->conf, ctx, &hd);

		hd.handler = (uint8_t)i;
		if (a == ELS_FAIL) {
			if (l->fail_open)
				continue;
			hd.action = ELS_DROP;
			hd.reason = ELS_R_HANDLER_FAILED;
			*d = hd;
			return true;
		}
		if (a == ELS_CONTINUE) {
			if (is_flow_stage(l) && ctx->recheck && ctx->flow)
				return rejudge_flow(p, i, ctx, d);
			continue;
		}
		hd.action = (uint8_t)a;
		*d = hd;
		return true;
	}
	return false;
}

enum els_action els_chain_run(const struct els_policy *p, struct els_ctx *ctx,
			      struct els_decision *d)
{
	memset(d, 0, sizeof(*d));
	if (ctx->pkt->reason != ELS_R_NONE) {
		/* Headers that do not parse are never guessed at: the packet is dropped with the
		 * decoder's reason, before any handler sees it. */
		d->action = ELS_DROP;
		d->handler = ELS_HANDLER_DECODE;
		d->reason = ctx->pkt->reason;
		return ELS_DROP;
	}
	if (!run_links(p, 0, ctx, d)) {
		d->action = ELS_DROP; /* deny all: nothing permitted it */
		d->handler = ELS_HANDLER_CHAIN;
		d->reason = ELS_R_DEFAULT_POLICY;
	}
	if (d->action == ELS_DEFER)
		return ELS_DEFER; /* judged again once the lookup is done: nothing to commit yet */
	for (unsigned i = 0; i < p->nlinks; i++)
		if (p->links[i].h->commit) {
			ctx->hstate = els_chain_hstate(&p->links[i], ctx);
			p->links[i].h->commit(p->links[i].conf, ctx, d);
		}
	ctx->hstate = NULL;
	return (enum els_action)d->action;
}

const char *els_chain_handler_name(const struct els_policy *p, unsigned idx)
{
	if (idx == ELS_HANDLER_DECODE)
		return "decode";
	if (idx < p->nlinks)
		return p->links[idx].h->name;
	return "chain";
}

const char *els_chain_rule_name(const struct els_policy *p, const struct els_decision *d)
{
	if (d->handler >= p->nlinks || !d->rule)
		return NULL;
	const struct els_chain_link *l = &p->links[d->handler];
	if (is_flow_stage(l) && (d->reason == ELS_R_FLOW || d->reason == ELS_R_PERMIT_REVOKED ||
				 d->reason == ELS_R_ADOPTED)) {
		/* The flow stage passes on the rule of the handler that admitted the flow; its
		 * name belongs to that handler (the first after the stage with names). */
		for (unsigned i = d->handler + 1u; i < p->nlinks; i++)
			if (p->links[i].h->rule_name)
				return p->links[i].h->rule_name(p->links[i].conf, d->rule);
		return NULL;
	}
	return l->h->rule_name ? l->h->rule_name(l->conf, d->rule) : NULL;
}
