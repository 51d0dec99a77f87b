/* The tracker: accepts packets that belong to a flow a later handler admitted, follows TCP
 * state, and creates the flow (commit) once the chain accepted its first packet. Placed before
 * the header filter so replies need no permit of their own. The flow table is per worker and
 * reaches us through the context; conf holds only the timeouts. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "els/adopt.h"
#include "els/clock.h"
#include "els/flow.h"
#include "els/handler.h"
#include "els/sessions.h"

#define MAX_TIMEOUT_S (366ll * 86400) /* a year: longer is a typo, and keeps ns in range */

enum tmo {
	TMO_TCP_SYN,
	TMO_TCP_ESTABLISHED,
	TMO_TCP_CLOSING,
	TMO_TCP_TIME_WAIT,
	TMO_UDP_UNREPLIED,
	TMO_UDP_ESTABLISHED,
	TMO_ICMP,
	TMO__COUNT
};

static const struct {
	const char *name;
	long long def_s;
} tmo_keys[TMO__COUNT] = {
    [TMO_TCP_SYN] = {"tcp_syn", 30},
    [TMO_TCP_ESTABLISHED] = {"tcp_established", 7200},
    [TMO_TCP_CLOSING] = {"tcp_closing", 60},
    [TMO_TCP_TIME_WAIT] = {"tcp_time_wait", 10},
    [TMO_UDP_UNREPLIED] = {"udp_unreplied", 30},
    [TMO_UDP_ESTABLISHED] = {"udp_established", 120},
    [TMO_ICMP] = {"icmp", 30},
};

struct tracker_conf {
	uint64_t timeout_ns[TMO__COUNT];
};

static int tracker_build(const config_setting_t *section, const struct els_build_env *env,
			 void **conf, struct els_diag *diag)
{
	struct tracker_conf *c;
	int err = 0;

	(void)env;
	*conf = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	for (unsigned i = 0; i < TMO__COUNT; i++)
		c->timeout_ns[i] = (uint64_t)tmo_keys[i].def_s * ELS_NS_PER_S;
	if (section && config_setting_type(section) != CONFIG_TYPE_GROUP) {
		els_diag_at(diag, section,
			    "tracker: must be a group { ... } of timeouts in seconds");
		err = -EINVAL;
		goto out;
	}
	for (int n = 0; section && n < config_setting_length(section); n++) {
		config_setting_t *s = config_setting_get_elem(section, (unsigned)n);
		const char *name = config_setting_name(s);
		unsigned k;

		if (name && strcmp(name, "fail") == 0)
			continue; /* the chain's fail policy, read by the chain */
		for (k = 0; k < TMO__COUNT; k++) {
			if (name && strcmp(name, tmo_keys[k].name) == 0)
				break;
		}
		if (k == TMO__COUNT) {
			els_diag_at(
			    diag, s,
			    "tracker: unknown setting '%s' (known: tcp_syn, tcp_established, "
			    "tcp_closing, tcp_time_wait, udp_unreplied, udp_established, "
			    "icmp, fail)",
			    name ? name : "?");
			err = -EINVAL;
			continue;
		}
		int type = config_setting_type(s);
		long long v = (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64)
				  ? config_setting_get_int64(s)
				  : 0;
		if (v <= 0 || v > MAX_TIMEOUT_S) {
			els_diag_at(diag, s,
				    "tracker: %s must be a whole number of seconds from 1 to %lld",
				    name, MAX_TIMEOUT_S);
			err = -EINVAL;
			continue;
		}
		c->timeout_ns[k] = (uint64_t)v * ELS_NS_PER_S;
	}
out:
	if (err) {
		free(c);
		return err;
	}
	*conf = c;
	return 0;
}

static void tracker_destroy(void *conf)
{
	free(conf);
}

static bool is_tcp(const struct els_pkt *p)
{
	return p->proto == IPPROTO_TCP && (p->flags & ELS_PKT_HAS_PORTS);
}

static uint64_t timeout_of(const struct tracker_conf *c, uint8_t proto, unsigned state)
{
	if (proto == IPPROTO_TCP) {
		switch (state) {
		case ELS_FS_ESTABLISHED:
			return c->timeout_ns[TMO_TCP_ESTABLISHED];
		case ELS_FS_FIN_WAIT:
		case ELS_FS_CLOSING:
			return c->timeout_ns[TMO_TCP_CLOSING];
		case ELS_FS_TIME_WAIT:
			return c->timeout_ns[TMO_TCP_TIME_WAIT];
		default:
			return c->timeout_ns[TMO_TCP_SYN];
		}
	}
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return c->timeout_ns[TMO_ICMP];
	return state == ELS_FS_ESTABLISHED ? c->timeout_ns[TMO_UDP_ESTABLISHED]
					   : c->timeout_ns[TMO_UDP_UNREPLIED];
}

/* The next TCP state for a packet with flags fl from key side `side`, or -1 for a transition
 * TCP does not make. *fin is the FIN-seen mask, updated. A bare SYN on TIME_WAIT (port reuse)
 * is handled by the caller. */
static int tcp_next(unsigned st, bool from_init, uint8_t side, uint8_t fl, uint8_t *fin)
{
	if (fl & ELS_TCP_RST)
		return ELS_FS_TIME_WAIT;
	if (fl & ELS_TCP_SYN) {
		if (fl & ELS_TCP_FIN)
			return -1;
		if (!(fl & ELS_TCP_ACK)) {
			/* a retransmitted SYN, also while the SYN-ACK is on its way back */
			if (from_init && (st == ELS_FS_NONE || st == ELS_FS_SYN_SENT))
				return ELS_FS_SYN_SENT;
			if (from_init && st == ELS_FS_SYN_RECV)
				return ELS_FS_SYN_RECV;
			return -1;
		}
		if (from_init)
			return -1;
		if (st == ELS_FS_SYN_SENT || st == ELS_FS_SYN_RECV)
			return ELS_FS_SYN_RECV;
		if (st == ELS_FS_ESTABLISHED)
			return st; /* SYN-ACK retransmitted because the final ACK was lost */
		return -1;
	}
	switch (st) {
	case ELS_FS_SYN_SENT:
		/* A bare ACK from the responder is its answer to a SYN that meets an older
		 * connection on the same ports (RFC 5961 4.2's challenge ACK, RFC 9293's ACK
		 * from TIME-WAIT): the initiator answers it with a RST that clears the old
		 * connection. Dropped, the stale connection stays and every retransmitted SYN
		 * meets it again (conntrack lets it through too). It can carry nothing to the
		 * initiator, whose TCP accepts no segment but a SYN-ACK in SYN-SENT. */
		if (!from_init && fl == ELS_TCP_ACK)
			return (int)st;
		return -1;
	case ELS_FS_NONE:
		return -1; /* nothing but SYN, SYN-ACK or RST before the responder answers */
	case ELS_FS_SYN_RECV:
		if (!from_init || !(fl & ELS_TCP_ACK))
			return -1;
		st = ELS_FS_ESTABLISHED;
		break;
	default:
		break;
	}
	if (fl & ELS_TCP_FIN) {
		*fin |= (uint8_t)(1u << side);
		if (st != ELS_FS_TIME_WAIT)
			st = *fin == 3 ? ELS_FS_CLOSING : ELS_FS_FIN_WAIT;
	} else if (st == ELS_FS_CLOSING && (fl & ELS_TCP_ACK)) {
		st = ELS_FS_TIME_WAIT;
	}
	return (int)st;
}

static void flow_restart(struct els_flow *f, const struct els_pkt *p, uint8_t side, uint64_t now)
{
	f->first_ns = now;
	f->state = ELS_FS_NONE; /* the old connection's end is reported: nothing carries over */
	f->offload = 0;
	memset(f->pkts, 0, sizeof(f->pkts));
	memset(f->bytes, 0, sizeof(f->bytes));
	f->fin_seen = 0;
	f->init_side = side;
	f->init_dir = p->dir;
}

/* A packet that meets no flow of this worker may belong to a connection older than this elsd
 * (include/els/adopt.h). Returns the final action for one the policy refused at start; else
 * ELS_CONTINUE, with *fp the flow when it took a connection into this worker's table (the
 * caller goes on as for any known flow, then calls adopted_decision) and *kind its verdict. */
static enum els_action tracker_adopted(const struct tracker_conf *c, struct els_ctx *ctx,
				       const struct els_flow_key *key, struct els_decision *out,
				       struct els_flow **fp, uint8_t *kind)
{
	struct els_adopt *set = els_adopt_current();
	const struct els_pkt *p = ctx->pkt;
	struct els_adopt_entry *e;
	struct els_flow *f;

	*fp = NULL;
	if (!set || !ctx->flows)
		return ELS_CONTINUE;
	/* A bare SYN opens a new connection, which the chain judges: if an old one used its
	 * ports, it is over. Checked before the lookup, so new connections pay nothing. */
	if (is_tcp(p) &&
	    (p->tcp_flags & (ELS_TCP_SYN | ELS_TCP_ACK | ELS_TCP_RST | ELS_TCP_FIN)) == ELS_TCP_SYN)
		return ELS_CONTINUE;
	/* An entry lasts as long as the connection could have stayed idle, which it has since
	 * the import at least; once the longest timeout has passed the set is never read. */
	uint64_t age = ctx->now_ns - set->start_ns, longest = 0;
	for (unsigned i = 0; i < TMO__COUNT; i++)
		longest = c->timeout_ns[i] > longest ? c->timeout_ns[i] : longest;
	if (age >= longest || !(e = els_adopt_find(set, key)) ||
	    atomic_load_explicit(&e->claimed, memory_order_relaxed) ||
	    age >= timeout_of(c, key->proto, e->state))
		return ELS_CONTINUE;
	/* Refused by the generation that runs now: every packet of it drops. Under a later
	 * generation it is judged again like any flow from an older one (permit_revoked). */
	if (e->verdict == ELS_ADOPT_CUT && set->generation == ctx->generation) {
		out->action = ELS_DROP;
		out->reason = ELS_R_NOT_PERMITTED_AT_START;
		out->rule = 0;
		return ELS_DROP;
	}
	if (!els_adopt_claim(e))
		return ELS_CONTINUE;
	f = els_flow_insert(ctx->flows, key, ctx->now_ns, ctx->flow_end, ctx->flow_end_arg);
	if (!f) {
		out->action = ELS_DROP;
		out->reason = ELS_R_FLOW_TABLE_FULL;
		out->rule = 0;
		return ELS_DROP;
	}
	f->init_side = e->init_side;
	f->init_dir = e->init_dir;
	f->rule = e->rule;
	f->handler = e->handler;
	f->generation = e->generation;
	/* the caller's state machine continues from the state the kernel reported */
	els_flow_touch(ctx->flows, f, e->state, ctx->now_ns, timeout_of(c, key->proto, e->state));
	if (e->state == ELS_FS_ESTABLISHED)
		els_sessions_change(ctx->sessions, f, 1, ctx->now_ns);
	*fp = f;
	*kind = e->verdict;
	return ELS_CONTINUE;
}

/* The first packet of an adopted connection, accepted under the generation that judged it:
 * a granted one is admitted (its admit record says adopted), a refused one in observe mode
 * passes as what it would have been. */
static void adopted_decision(struct els_ctx *ctx, struct els_decision *out, uint8_t kind)
{
	if (kind == ELS_ADOPT_GRANT) {
		out->reason = ELS_R_ADOPTED;
		ctx->new_flow = 1;
	} else {
		out->reason = ELS_R_NOT_PERMITTED_AT_START;
		out->rule = 0;
		out->flags |= ELS_DEC_OBSERVE;
	}
}

static enum els_action tracker_handle(const void *conf, struct els_ctx *ctx,
				      struct els_decision *out)
{
	const struct tracker_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	struct els_flow_key key;
	struct els_flow *f;
	uint8_t side;
	int st;

	if (p->flags & ELS_PKT_LATER_FRAG) {
		if (ctx->flows && els_frag_admitted(ctx->flows, p, ctx->now_ns)) {
			out->action = ELS_ACCEPT;
			out->reason = ELS_R_FRAGMENT_OF_FLOW;
			out->rule = 0;
			return ELS_ACCEPT;
		}
		return ELS_CONTINUE; /* the header filter decides what fragments without ports get
				      */
	}
	if (!ctx->flows)
		return ELS_CONTINUE;
	if (ctx->flow_hint) {
		key = ctx->flow_hint->key;
		side = ctx->flow_hint->side;
		f = els_flow_lookup_in(ctx->flows, &key, ctx->flow_hint->bucket);
	} else {
		if (!els_flow_key_of(p, &key, &side))
			return ELS_CONTINUE;
		f = els_flow_lookup(ctx->flows, &key);
	}
	if (f && f->expire_ns <= ctx->now_ns) {
		/* Past its timeout but not yet reaped (expiry runs in budgeted ticks and may be
		 * late by its slack, include/els/flow.h): it ends now, as the reaper would end
		 * it, and this packet meets no flow. */
		if (ctx->flow_end)
			ctx->flow_end(f, els_flow_expiry_reason(f), ctx->flow_end_arg);
		els_flow_remove(ctx->flows, f);
		f = NULL;
	}
	uint8_t adopted = 0xff;
	if (!f) {
		enum els_action a = tracker_adopted(c, ctx, &key, out, &f, &adopted);
		if (a != ELS_CONTINUE)
			return a;
	}
	if (f) {
		bool from_init = side == f->init_side;
		uint8_t fin = f->fin_seen;
		uint8_t fl = p->tcp_flags;

		ctx->flow = f;
		if (!is_tcp(p)) {
			st = f->state;
			if (st != ELS_FS_ESTABLISHED)
				st = from_init ? ELS_FS_UNREPLIED : ELS_FS_ESTABLISHED;
		} else if ((fl & (ELS_TCP_SYN | ELS_TCP_ACK | ELS_TCP_RST | ELS_TCP_FIN)) ==
			       ELS_TCP_SYN &&
			   (f->state == ELS_FS_TIME_WAIT || (f->offload & ELS_FLOW_OFFLOADED))) {
			/* The old connection is over and this SYN opens a new one on the same
			 * ports: its end is reported before the entry is reused. An offloaded
			 * flow's close happened in the kernel, unseen; a new conntrack entry
			 * (without the mark) is why this SYN reached us at all. */
			if (ctx->flow_end)
				ctx->flow_end(f, ELS_R_FLOW_CLOSED, ctx->flow_end_arg);
			if (!from_init) {
				/* Opened from the other end: the old permit said nothing about
				 * that direction, so the chain decides it as a new flow. */
				els_flow_remove(ctx->flows, f);
				ctx->flow = NULL;
				return ELS_CONTINUE;
			}
			flow_restart(f, p, side, ctx->now_ns);
			fin = 0;
			st = ELS_FS_SYN_SENT;
			from_init = true;
			ctx->new_flow = 1;
		} else {
			st = tcp_next(f->state, from_init, side, fl, &fin);
			if (st < 0) {
				out->action = ELS_DROP;
				out->reason = ELS_R_BAD_TCP_STATE;
				out->rule = f->rule;
				return ELS_DROP;
			}
		}
		f->pkts[!from_init]++;
		f->bytes[!from_init] += p->wire_len;
		f->fin_seen = fin;
		unsigned was = f->state;
		els_flow_touch(ctx->flows, f, (unsigned)st, ctx->now_ns,
			       timeout_of(c, f->key.proto, (unsigned)st));
		/* The admit record of a TCP flow waits for this: a spoofed SYN never gets here,
		 * so a SYN flood costs aggregated half_open records only (agent/worker.c). */
		if (is_tcp(p) && was < ELS_FS_ESTABLISHED &&
		    (st == ELS_FS_ESTABLISHED || st == ELS_FS_FIN_WAIT || st == ELS_FS_CLOSING))
			ctx->handshake_done = 1;
		/* The session index counts established flows (session-gated permits). */
		if ((was == ELS_FS_ESTABLISHED) != (st == ELS_FS_ESTABLISHED))
			els_sessions_change(ctx->sessions, f, st == ELS_FS_ESTABLISHED ? 1 : -1,
					    ctx->now_ns);
		if (f->generation != ctx->generation) {
			ctx->recheck = 1;
			return ELS_CONTINUE;
		}
		out->action = ELS_ACCEPT;
		out->reason = ELS_R_FLOW;
		out->rule = f->rule;
		if (adopted != 0xff)
			adopted_decision(ctx, out, adopted);
		return ELS_ACCEPT;
	}

	if (is_tcp(p)) {
		uint8_t fl = p->tcp_flags;
		if (!(fl & ELS_TCP_SYN) || (fl & (ELS_TCP_ACK | ELS_TCP_RST | ELS_TCP_FIN))) {
			out->action = ELS_DROP;
			out->reason = ELS_R_OUT_OF_STATE;
			out->rule = 0;
			return ELS_DROP;
		}
	}
	return ELS_CONTINUE;
}

/* A flow admitted by a session-gated permit keeps generation 0, which no policy has: every
 * packet of it is then re-judged like a flow from an older generation, so the flow closes
 * (permit_revoked) once the session that opened the gate is over. */
static uint32_t gen_of(const struct els_ctx *ctx, const struct els_decision *final)
{
	return final->flags & ELS_DEC_GATED ? 0 : ctx->generation;
}

static void tracker_commit(const void *conf, struct els_ctx *ctx, struct els_decision *final)
{
	const struct tracker_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	struct els_flow_key key;
	struct els_flow *f = ctx->flow;
	uint8_t side;

	if (!ctx->flows)
		return;
	if (final->action == ELS_DROP) {
		if (f && final->reason == ELS_R_PERMIT_REVOKED) {
			if (ctx->flow_end)
				ctx->flow_end(f, ELS_R_PERMIT_REVOKED, ctx->flow_end_arg);
			els_flow_remove(ctx->flows, f);
			ctx->flow =
			    NULL; /* the slot is free now: nobody may read it as this flow */
			ctx->new_flow = 0; /* a TIME_WAIT reuse that the new policy refused */
		}
		return;
	}
	if (final->action != ELS_ACCEPT)
		return;

	if (!f && els_flow_key_of(p, &key, &side)) {
		unsigned st = is_tcp(p) ? ELS_FS_SYN_SENT : ELS_FS_UNREPLIED;

		f = els_flow_insert(ctx->flows, &key, ctx->now_ns, ctx->flow_end,
				    ctx->flow_end_arg);
		if (!f) {
			/* Present already means a handler before the tracker accepted a packet
			 * of a known flow: nothing to create. Otherwise the table is full. */
			if (els_flow_lookup(ctx->flows, &key))
				goto frag;
			final->action = ELS_DROP;
			final->reason = ELS_R_FLOW_TABLE_FULL;
			return;
		}
		f->init_side = side;
		f->init_dir = p->dir;
		f->rule = final->rule;
		f->handler = final->handler;
		f->generation = gen_of(ctx, final);
		f->pkts[0] = 1;
		f->bytes[0] = p->wire_len;
		els_flow_touch(ctx->flows, f, st, ctx->now_ns, timeout_of(c, key.proto, st));
		ctx->flow = f;
		ctx->new_flow = 1;
	} else if (f && ctx->recheck) {
		/* Confirmed under this generation. f->handler stays: the chain reports the
		 * confirmation as the tracker's, and flow records name the admitting handler. */
		f->generation = gen_of(ctx, final);
		f->rule = final->rule;
	}
frag:
	/* Every accepted first fragment, of a new flow or a known one, so that the rest of the
	 * datagram (no ports) follows it. */
	if ((p->flags & (ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG)) == ELS_PKT_FRAGMENT)
		els_frag_admit(ctx->flows, p, ctx->now_ns);
}

const struct els_handler els_handler_tracker = {
    .name = "tracker",
    .summary = "tracks TCP/UDP/ICMP flows; accepts packets of flows a later handler admitted",
    .flags = ELS_HANDLER_FLOW_STAGE,
    .build = tracker_build,
    .destroy = tracker_destroy,
    .handle = tracker_handle,
    .commit = tracker_commit,
    .rule_name = NULL,
};
