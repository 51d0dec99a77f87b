/* Packet worker: decode -> chain -> records. Shared by live queues and replay. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "els/chain.h"
#include "els/decode.h"
#include "els/sessions.h"
#include "els/worker_out.h"
#include "generation.h"
#include "owner.h"
#include "syn_guard.h"
#include "worker.h"

#define WORKER_DROPAGG_SLOTS 4096
#define WORKER_EXPIRE_BUDGET 256 /* flows expired per tick: bounds the pause per batch */
#define WORKER_TICK_NS 100000000ull

int els_worker_init(struct els_worker *w, unsigned index, unsigned flow_capacity,
		    struct els_ring *ring)
{
	uint64_t seed;

	memset(w, 0, sizeof(*w));
	w->index = index;
	w->ring = ring;
	/* The hash seed need not be secret forever, only unpredictable to remote senders. */
	if (getentropy(&seed, sizeof(seed)) < 0)
		seed = els_now_real() ^ (uint64_t)(uintptr_t)w;
	w->flows = els_flow_table_new(flow_capacity, seed);
	w->drops = els_dropagg_new(WORKER_DROPAGG_SLOTS, ring);
	w->sessions = els_sessions_new(flow_capacity);
	w->out = els_worker_out_new(ring, true);
	w->hstates =
	    els_handler_states_new(&(struct els_worker_env){.flow_capacity = flow_capacity});
	if (!w->flows || !w->drops || !w->sessions || !w->out || !w->hstates) {
		els_worker_fini(w);
		return -ENOMEM;
	}
	return 0;
}

void els_worker_fini(struct els_worker *w)
{
	els_flow_table_free(w->flows);
	els_dropagg_free(w->drops);
	els_handler_states_free(w->hstates);
	els_worker_out_free(w->out);
	els_sessions_free(w->sessions);
	w->flows = NULL;
	w->drops = NULL;
	w->hstates = NULL;
	w->out = NULL;
	w->sessions = NULL;
}

void els_worker_refresh(struct els_worker *w)
{
	w->pol = els_gen_current();
	atomic_store_explicit(&w->seen_gen, w->pol->generation, memory_order_release);
}

static void copy_name(char *dst, size_t n, const char *src)
{
	if (!src) {
		dst[0] = '\0';
		return;
	}
	size_t l = strnlen(src, n - 1);
	memcpy(dst, src, l);
	dst[l] = '\0';
}

static void record_from_pkt(struct els_record *r, const struct els_pkt *p)
{
	r->family = p->family;
	r->dir = p->dir;
	r->proto = p->proto;
	r->src = p->src;
	r->dst = p->dst;
	if (p->flags & ELS_PKT_HAS_PORTS) {
		r->sport = p->sport;
		r->dport = p->dport;
		r->tcp_flags = p->tcp_flags;
	}
	if (p->flags & ELS_PKT_HAS_ICMP) {
		r->icmp_type = p->icmp_type;
		r->icmp_code = p->icmp_code;
	}
}

/* The record is built on the stack and copied into the ring: no allocation. */
static void record_decision(struct els_worker *w, struct els_record *r,
			    const struct els_decision *d)
{
	r->handler = els_chain_handler_name(w->pol, d->handler);
	r->reason = d->reason;
	r->rule = d->rule;
	r->generation = w->pol->generation;
	r->verdict = d->action;
	copy_name(r->rule_name, sizeof(r->rule_name), els_chain_rule_name(w->pol, d));
}

struct flow_end_arg {
	struct els_worker *w;
	uint64_t real_ns;
	/* The admit entry of a flow that ended during this packet (permit_revoked), copied:
	 * the packet's drop record names its permit after the flow is gone. */
	bool ended;
	struct els_flow_admit ended_admit;
};

/* Admit and end records show a flow initiator first, whichever packet wrote them. */
static void record_from_flow(struct els_record *r, const struct els_flow *f)
{
	unsigned i = f->init_side, o = !f->init_side;

	r->src = f->key.addr[i];
	r->dst = f->key.addr[o];
	r->sport = f->key.port[i];
	r->dport = f->key.port[o];
	r->family = f->key.family;
	r->proto = f->key.proto;
	r->dir = f->init_dir;
	if (f->key.proto != IPPROTO_TCP && f->key.proto != IPPROTO_UDP)
		r->sport = r->dport = 0; /* echo ids are not ports */
}

/* The permit as the generation that admitted the flow named it (include/els/flow.h). */
static void record_permit(struct els_record *r, const struct els_flow_admit *a)
{
	r->handler = a->handler;
	r->rule = a->rule;
	r->generation = a->generation;
	r->reason = a->reason;
	memcpy(r->rule_name, a->rule_name, sizeof(r->rule_name));
}

/* Fills the admit entry of a flow the chain just created, from the decision that admitted it:
 * the names are looked up once here, in the admitting generation, and kept for its records. */
static void admit_fill(struct els_worker *w, struct els_flow *f, const struct els_decision *d)
{
	struct els_flow_admit *a = els_flow_admit_of(w->flows, f);

	/* A SYN reusing the ports of a closed connection (the tracker accepts it as part of the
	 * old flow's permit): the entry names that permit already. */
	if (d->reason == ELS_R_FLOW && a->handler)
		goto out;
	a->handler = els_chain_handler_name(w->pol, d->handler);
	a->rule = d->rule;
	a->generation = w->pol->generation;
	a->reason = d->reason;
	copy_name(a->rule_name, sizeof(a->rule_name), els_chain_rule_name(w->pol, d));
	a->owner_pid = a->owner_uid = a->owner_ref = 0;
	const struct els_owner *o = w->owners ? els_owners_last(w->owners, &a->owner_ref) : NULL;
	if (o) {
		a->owner_pid = o->pid;
		a->owner_uid = o->uid;
	}
out:
	/* A TCP flow is admitted when its handshake completes: until then it may be one of a
	 * spoofed flood's, which must cost aggregated records only. */
	a->half_open = f->key.proto == IPPROTO_TCP && f->state < ELS_FS_ESTABLISHED;
}

/* Admit and end records of a flow a service-bound permit admitted name the socket's owner. */
static void owner_detail(const struct els_worker *w, const struct els_flow_admit *a,
			 struct els_record *r)
{
	if (a->owner_pid || a->owner_ref)
		els_owners_describe_ref(w->owners, a->owner_ref, a->owner_pid, a->owner_uid,
					r->detail, sizeof(r->detail));
}

static void flow_end(const struct els_flow *f, unsigned reason, void *arg)
{
	struct flow_end_arg *fa = arg;
	struct els_worker *w = fa->w;
	const struct els_flow_admit *a = els_flow_admit_of(w->flows, f);
	struct els_record r = {
	    .kind = ELS_REC_FLOW_END,
	    .ts_ns = fa->real_ns,
	    .count = 1,
	    .verdict = ELS_ACCEPT,
	};

	fa->ended = true;
	fa->ended_admit = *a;
	if (f->state == ELS_FS_ESTABLISHED)
		/* every flow's end comes through here */
		els_sessions_change(w->sessions, f, -1, w->now_ns);
	if (reason == ELS_R_FLOW_EVICTED)
		els_ctr_inc(&w->st.flows_evicted);
	record_from_flow(&r, f);
	if (a->handler) {
		record_permit(&r, a);
	} else {
		/* Not created by the chain (an entry nobody filled): the current generation's
		 * name for the flow's rule is the best there is. */
		struct els_decision d = {
		    .handler = (uint8_t)f->handler, .rule = f->rule, .reason = ELS_R_PERMIT};
		r.rule = f->rule;
		/* 0 marks a flow of a session-gated permit (handlers/tracker.c) */
		r.generation = f->generation ? f->generation : w->pol ? w->pol->generation : 0;
		if (w->pol)
			copy_name(r.rule_name, sizeof(r.rule_name),
				  els_chain_rule_name(w->pol, &d));
	}
	r.reason = (uint16_t)reason;
	if (a->half_open) {
		/* Never completed its handshake: one record per second, destination, port and
		 * reason, however many (spoofed) sources. The admitting handler names it. */
		r.kind = ELS_REC_HALF_OPEN;
		els_dropagg_add(w->drops, &r);
		return;
	}
	/* Flow tracking writes a flow's end, under the registered flow stage's name (the one
	 * metrics and `stats` use), whether or not the running chain still lists it. */
	r.handler = els_handler_flow_stage()->name;
	owner_detail(w, a, &r);
	r.pkts[0] = f->pkts[0], r.pkts[1] = f->pkts[1];
	r.bytes[0] = f->bytes[0], r.bytes[1] = f->bytes[1];
	r.duration_ns = f->last_ns - f->first_ns;
	els_ring_push(w->ring, &r);
}

/* The admit record of a TCP flow, written by the packet that completed its handshake. */
static void admit_handshake(struct els_worker *w, struct els_flow *f, const struct els_pkt *pkt,
			    uint64_t real_ns)
{
	struct els_flow_admit *a = els_flow_admit_of(w->flows, f);
	struct els_record r = {
	    .kind = ELS_REC_ADMIT, .ts_ns = real_ns, .count = 1, .verdict = ELS_ACCEPT};

	if (!a->half_open)
		return; /* created otherwise (not by a SYN the chain admitted) */
	a->half_open = 0;
	if (a->quiet || w->pol->set.log_mode == ELS_LOG_DROPS)
		return;
	record_from_flow(&r, f);
	record_permit(&r, a);
	owner_detail(w, a, &r);
	r.tcp_flags = pkt->tcp_flags;
	els_ring_push(w->ring, &r);
}

/* Packets of a known flow (accepted as part of it, or dropped for its state or a revoked
 * permit) name the permit that admitted it, not the current generation's rule of that number. */
static void record_flow_permit(struct els_record *r, const struct els_ctx *ctx,
			       const struct flow_end_arg *fa, struct els_worker *w)
{
	const struct els_flow_admit *a = NULL;

	if (r->reason == ELS_R_PERMIT_REVOKED && fa->ended)
		a = &fa->ended_admit;
	else if ((r->reason == ELS_R_FLOW || r->reason == ELS_R_BAD_TCP_STATE) && ctx->flow)
		a = els_flow_admit_of(w->flows, ctx->flow);
	if (a && a->handler)
		memcpy(r->rule_name, a->rule_name, sizeof(r->rule_name));
}

void els_worker_flow_end(struct els_worker *w, struct els_flow *f, unsigned reason,
			 uint64_t real_ns)
{
	struct flow_end_arg fa = {.w = w, .real_ns = real_ns};
	flow_end(f, reason, &fa);
	els_flow_remove(w->flows, f);
}

/* A flow goes to the kernel (agent/offload.h) once nothing more is to be learned from its
 * packets: established (TCP handshake done, UDP answered) and confirmed under the running
 * generation (a session-gated flow keeps generation 0 and is judged packet by packet). */
static void offload_check(struct els_worker *w, struct els_flow *f)
{
	if (f->state != ELS_FS_ESTABLISHED || f->generation != w->pol->generation ||
	    (f->offload & ELS_FLOW_MARKED) ||
	    (f->key.proto != IPPROTO_TCP && f->key.proto != IPPROTO_UDP))
		return;
	f->offload |= ELS_FLOW_OFFLOADED | ELS_FLOW_MARKED;
	w->offloaded++;
	w->offload_now = f;
}

/* A live worker whose owner lookup could not start: every socket's owner is unknown. */
static enum els_owner_res owner_none(void *arg, const struct els_pkt *p, unsigned need,
				     const struct els_owner **out)
{
	(void)arg, (void)p, (void)need, (void)out;
	return ELS_OWNER_UNKNOWN;
}

/* A packet whose permit asked who owns its socket: its record names the owner (the process a
 * wrong_service drop found on a permitted port). */
static void owner_of_packet(const struct els_worker *w, struct els_record *r)
{
	const struct els_owner *o = w->owners ? els_owners_last(w->owners, NULL) : NULL;
	if (o)
		els_owner_describe(o, r->detail, sizeof(r->detail));
}

enum els_action els_worker_packet_decision(struct els_worker *w, const uint8_t *buf,
					   size_t caplen, size_t wire_len, enum els_dir dir,
					   uint64_t mono_ns, uint64_t real_ns,
					   struct els_decision *dp)
{
	struct els_pkt pkt;

	els_decode(buf, caplen, wire_len, dir, &pkt);
	return els_worker_judge(w, &pkt, NULL, mono_ns, real_ns, dp);
}

void els_worker_decode(struct els_worker *w, const uint8_t *buf, size_t caplen, size_t wire_len,
		       enum els_dir dir, struct els_decoded *dp)
{
	els_decode(buf, caplen, wire_len, dir, &dp->pkt);
	dp->has_flow = els_flow_key_of(&dp->pkt, &dp->hint.key, &dp->hint.side);
	if (dp->has_flow)
		dp->hint.bucket = els_flow_bucket(w->flows, &dp->hint.key);
}

void els_worker_warm(const struct els_worker *w, const struct els_decoded *dp)
{
	if (dp->has_flow)
		els_flow_prefetch(w->flows, dp->hint.bucket);
}

/* What a judgement adds to the counters (packets, accepted, dropped, per handler): a queued
 * packet counts; a stand-in for a packet the kernel handled (judge_guarded) counts only when
 * its drop becomes the queued packet's verdict, or never. */
enum judge_count { COUNT_PACKET, COUNT_IF_DROPPED, COUNT_NEVER };

static enum els_action judge_one(struct els_worker *w, const struct els_pkt *pkt,
				 const struct els_flow_hint *hint, uint64_t mono_ns,
				 uint64_t real_ns, struct els_decision *dp, enum judge_count count)
{
	struct els_decision d;
	struct flow_end_arg fa = {.w = w, .real_ns = real_ns};

	w->offload_now = NULL;
	w->now_ns = mono_ns;
	struct els_ctx ctx = {
		.pkt = pkt,
		.flow_hint = hint,
		.flows = w->flows,
		.sessions = w->sessions,
		.out = w->out,
		.hstates = w->hstates,
		.now_ns = mono_ns,
		.real_ns = real_ns,
		.generation = w->pol->generation,
		.flow_end = flow_end,
		.flow_end_arg = &fa,
		.owner = w->owners ? els_owners_query : w->live ? owner_none : NULL,
		.owner_arg = w->owners,
	};
	enum els_action a = els_chain_run(w->pol, &ctx, &d);
	*dp = d;
	if (a == ELS_DEFER)
		return a; /* judged again when the owner is known (worker.h) */
	bool counted = count == COUNT_PACKET || (count == COUNT_IF_DROPPED && a == ELS_DROP);
	if (counted) {
		els_worker_count(w, &d, a);
		els_ctr_inc(&w->st.packets);
		if (pkt->reason != ELS_R_NONE)
			els_ctr_inc(&w->st.decode_errors);
	}
	int mode = w->pol->set.log_mode;
	if (w->name_verdicts)
		w->permit_name[0] = '\0';
	if (a == ELS_DROP) {
		if (counted)
			els_ctr_inc(&w->st.dropped);
		struct els_record r = {.kind = ELS_REC_DROP, .ts_ns = real_ns, .count = 1};
		record_from_pkt(&r, pkt);
		record_decision(w, &r, &d);
		record_flow_permit(&r, &ctx, &fa, w);
		if (w->name_verdicts)
			memcpy(w->permit_name, r.rule_name, sizeof(w->permit_name));
		owner_of_packet(w, &r);
		els_dropagg_add(w->drops, &r);
		return a;
	}
	if (counted)
		els_ctr_inc(&w->st.accepted);
	if (d.flags & ELS_DEC_OBSERVE) {
		/* Observe mode: passed, but recorded as what it would have been. Its own kind, so
		 * no query for drops ever counts it. */
		struct els_record r = {.kind = ELS_REC_WOULD_DROP, .ts_ns = real_ns, .count = 1};
		record_from_pkt(&r, pkt);
		record_decision(w, &r, &d);
		if (w->name_verdicts)
			memcpy(w->permit_name, r.rule_name, sizeof(w->permit_name));
		owner_of_packet(w, &r);
		els_ring_push(w->ring, &r);
		/* Its flow's end is aggregated if it never completes a handshake, like any other
		 * (an observe-mode host under a SYN flood); it gets no admit record. */
		if (ctx.new_flow && ctx.flow) {
			admit_fill(w, ctx.flow, &d);
			els_flow_admit_of(w->flows, ctx.flow)->quiet = 1;
		}
		return a;
	}
	if (ctx.new_flow && ctx.flow)
		admit_fill(w, ctx.flow, &d);
	else if (ctx.handshake_done && ctx.flow)
		admit_handshake(w, ctx.flow, pkt, real_ns);
	if (w->name_verdicts && ctx.flow && els_flow_admit_of(w->flows, ctx.flow)->handler)
		memcpy(w->permit_name, els_flow_admit_of(w->flows, ctx.flow)->rule_name,
		       sizeof(w->permit_name));
	if (w->offload_on && ctx.flow && mode != ELS_LOG_ALL && w->pol->set.offload)
		offload_check(w, ctx.flow);
	if (ctx.new_flow && d.reason == ELS_R_PERMIT && d.rule && d.rule <= ELS_STATS_PERMITS)
		els_ctr_inc(&w->st.permit_hits[w->pol->generation & 1][d.rule - 1]);
	/* A new TCP flow's admit waits for its handshake (admit_handshake). */
	bool admit =
	    ctx.new_flow && !(ctx.flow && els_flow_admit_of(w->flows, ctx.flow)->half_open);
	if ((admit && mode != ELS_LOG_DROPS) || mode == ELS_LOG_ALL) {
		struct els_record r = {
		    .kind = admit ? ELS_REC_ADMIT : ELS_REC_ACCEPT,
		    .ts_ns = real_ns,
		    .count = 1,
		};
		record_from_pkt(&r, pkt);
		record_decision(w, &r, &d);
		record_flow_permit(&r, &ctx, &fa, w);
		if (admit)
			owner_of_packet(w, &r);
		els_ring_push(w->ring, &r);
	}
	return a;
}

/* A server's SYN-ACK on a guarded port that meets no flow: the kernel's SYNPROXY made the
 * handshake (syn_guard.h). The client's SYN is judged first, as the chain would have judged
 * it had it been queued; refused (or waiting for its owner), the SYN-ACK shares its fate.
 * Admitted, the SYN-ACK and the client's ACK (which SYNPROXY checked) follow, so the flow is
 * established, its admit record written and, with offload, the mark set in this verdict. */
static enum els_action judge_guarded(struct els_worker *w, const struct els_pkt *synack,
				     uint64_t mono_ns, uint64_t real_ns, struct els_decision *dp)
{
	struct els_pkt syn, ack;
	struct els_decision d;

	els_syn_guard_handshake(synack, &syn, &ack);
	enum els_action a = judge_one(w, &syn, NULL, mono_ns, real_ns, dp, COUNT_IF_DROPPED);
	if (a != ELS_ACCEPT)
		return a;
	a = judge_one(w, synack, NULL, mono_ns, real_ns, dp, COUNT_PACKET);
	if (a != ELS_ACCEPT)
		return a;
	judge_one(w, &ack, NULL, mono_ns, real_ns, &d, COUNT_NEVER);
	return a;
}

/* The guarded SYN-ACK opens a connection unless it belongs to a live one (a retransmission).
 * A flow in TIME_WAIT, or one the kernel carried (offloaded), is over: the SYN made from the
 * SYN-ACK reopens it, as the tracker reopens such a flow for a real SYN (port reuse). */
static bool guard_opens(const struct els_worker *w, const struct els_pkt *pkt, uint64_t now_ns)
{
	struct els_flow_key key;
	uint8_t side;

	if (!w->flows || !els_flow_key_of(pkt, &key, &side))
		return false;
	const struct els_flow *f = els_flow_lookup(w->flows, &key);
	/* past its timeout, not yet reaped: over too (the tracker ends it when it meets it) */
	return !f || f->expire_ns <= now_ns || f->state == ELS_FS_TIME_WAIT ||
	       (f->offload & ELS_FLOW_OFFLOADED);
}

enum els_action els_worker_judge(struct els_worker *w, const struct els_pkt *pkt,
				 const struct els_flow_hint *hint, uint64_t mono_ns,
				 uint64_t real_ns, struct els_decision *dp)
{
	if (els_syn_guard_synack(&w->pol->set, pkt) && guard_opens(w, pkt, mono_ns))
		return judge_guarded(w, pkt, mono_ns, real_ns, dp);
	return judge_one(w, pkt, hint, mono_ns, real_ns, dp, COUNT_PACKET);
}

void els_worker_tick(struct els_worker *w, uint64_t mono_ns, uint64_t real_ns)
{
	struct flow_end_arg fa = {.w = w, .real_ns = real_ns};

	if (mono_ns - w->last_tick_ns < WORKER_TICK_NS && mono_ns >= w->last_tick_ns)
		return;
	w->last_tick_ns = mono_ns;
	w->now_ns = mono_ns;
	els_flow_expire(w->flows, mono_ns, WORKER_EXPIRE_BUDGET, flow_end, &fa);
	atomic_store_explicit(&w->st.flows_live, els_flow_count(w->flows), memory_order_relaxed);
	els_sessions_sweep(w->sessions, mono_ns);
	if (w->pol) {
		struct els_ctx ctx = {.flows = w->flows,
				      .sessions = w->sessions,
				      .out = w->out,
				      .hstates = w->hstates,
				      .now_ns = mono_ns,
				      .real_ns = real_ns,
				      .generation = w->pol->generation};
		els_chain_tick(w->pol, &ctx);
	}
	els_dropagg_flush(w->drops, real_ns);
}

struct finish_arg {
	struct els_worker *w;
	struct flow_end_arg fa;
	void (*drain)(void *arg);
	void *drain_arg;
};

/* Room kept in the ring before each end record at stop: one record, plus the drop
 * aggregator's flush that follows. */
#define FINISH_RING_RESERVE 64

static void finish_one(const struct els_flow *f, void *arg)
{
	struct finish_arg *a = arg;
	if (a->drain && els_ring_space(a->w->ring) < FINISH_RING_RESERVE)
		a->drain(a->drain_arg);
	flow_end(f, ELS_R_FLOW_SHUTDOWN, &a->fa);
}

void els_worker_finish(struct els_worker *w, uint64_t real_ns, void (*drain)(void *arg),
		       void *arg)
{
	struct finish_arg a = {w, {.w = w, .real_ns = real_ns}, drain, arg};

	if (w->flows)
		els_flow_foreach(w->flows, finish_one, &a);
	if (w->drops)
		els_dropagg_flush(w->drops, UINT64_MAX);
}
