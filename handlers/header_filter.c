/* header_filter: the ELS ports-and-protocols policy. Deny all, permit by exception, inbound and
 * outbound: a packet passes when a permit names its direction, protocol, ports (or ICMP type)
 * and addresses; otherwise it is dropped (no_permit, port_zero or fragment_no_ports).
 *
 * Lookup structure. build() compiles the permits so that a packet's cost does not depend on
 * how many there are. Each permit becomes one "instance" per protocol it covers (proto "any"
 * gives up to four), and each instance lands in one table per (direction, protocol), in one
 * of three indexes chosen by what it constrains:
 *   side[0]  local port given (TCP/UDP), or icmp_types given (ICMP): keyed by local port/type;
 *   side[1]  only the remote port given: keyed by remote port;
 *   any      no port or type constraint: the only index a later fragment can match.
 * A side index is a map port (65536 entries; ICMP type: 256) -> uint16 class id, where a class
 * is the set of instances whose port list contains that port (so at most 65536 classes; maps
 * that come out identical, e.g. tcp and udp for proto "any" permits, are shared). Each class,
 * and the any index, has a longest-prefix-match table over the remote prefixes of its
 * instances. An LPM value names an interned, sorted "candidate set": the instances whose
 * remote list holds that prefix or any shorter prefix covering it (propagated at build time),
 * cut after the first instance that has nothing left to check, since first match wins.
 * Candidates then need only their residual checks: the other side's port when an instance
 * constrains both, and local addresses (normally 1-2 candidates). Instance ids grow in config
 * order, so the first candidate that passes is the first permit that matches, and the answer
 * is the smallest over the (at most three) indexes consulted.
 *
 * Port 0 is in no implicit list ("any port" is 1-65535, the IANA classes start at 1), so a
 * packet from or to port 0 matches only permits that list 0 explicitly and is otherwise
 * dropped as port_zero.
 *
 * ELS additions (docs/els-policy.md): a permit may be gated on a session (`requires`), carry
 * an expiry date, or be in observe mode; the whole section may be in observe mode. A gated or
 * expiring permit is never "unconditional", so the candidates after it are still tried.
 *
 * Files: this one is the packet path; header_filter_parse.c reads the config,
 * header_filter_build.c compiles the lookup tables, header_filter_report.c answers reports.
 *
 * Memory: 100,000 permits cost a few tens of MB. A pathological policy where many permits
 * share a port class, list many nested remote prefixes and all need residual checks can grow
 * the candidate sets quadratically; real policies do not look like that. */
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "els/clock.h"
#include "els/flow.h"
#include "els/sessions.h"
#include "els/worker_out.h"
#include "header_filter.h"

const char *const hf_proto_names[] = {"tcp", "udp", "icmp", "icmpv6", "any", NULL};

/* ---- packet path ---- */

static bool local_ok(const struct hf_rule *r, const struct els_pkt *p)
{
	const struct els_addr *a = els_pkt_local(p);

	if (!r->local)
		return true;
	if (r->local_lpm)
		return els_lpm_lookup(r->local_lpm, p->family, a, NULL) != ELS_LPM_NONE;
	for (uint32_t i = 0; i < r->nlocal; i++)
		if (els_cidr_contains(&r->local[i], p->family, a))
			return true;
	return false;
}

bool hf_rule_expired_now(const struct hf_rule *r, const struct els_ctx *ctx)
{
	/* Without the time of day (unit tests, connections adopted at start) only the
	 * build-time check applies. */
	return r->expires_s && ctx->real_ns &&
	       (int64_t)(ctx->real_ns / ELS_NS_PER_S) >= r->expires_s;
}

/* The gate of a permit with `requires`: the packet's remote holds (or held, within the grace)
 * an established flow it opened to the required local protocol and port. One hash probe in
 * the worker's session index: no scan of the flow table. */
static bool gate_open(const struct hf_rule *r, const struct els_ctx *ctx)
{
	const struct els_pkt *p = ctx->pkt;
	return els_sessions_held(ctx->sessions, p->family, els_pkt_remote(p), r->req_proto,
				 r->req_port, r->grace_ns, ctx->now_ns);
}

/* Why candidates did not match: kept so the drop says so. unknown/pending: the first permit
 * (0-based) whose socket owner could not be found / is being looked up, else HF_NONE. */
struct hf_why {
	bool gated;
	uint32_t wrong, unknown, pending; /* wrong: the first permit refused for its owner */
};

/* The first permit among lpm's candidates for the packet's remote address that passes its
 * residual checks (other = the port of the side the index is not keyed on), or HF_NONE. A gated
 * permit whose gate is shut sets y->gated and does not match; a service-bound one whose socket
 * belongs to another process sets y->wrong. */
static uint32_t first_match(const struct hf_conf *c, const struct els_lpm *lpm,
			    const struct els_ctx *ctx, uint16_t other, struct hf_why *y)
{
	const struct els_pkt *p = ctx->pkt;

	if (!lpm)
		return HF_NONE;
	uint32_t sid = els_lpm_lookup(lpm, p->family, els_pkt_remote(p), NULL);
	if (sid == ELS_LPM_NONE)
		return HF_NONE;
	const struct hf_set *s = &c->cand.sets[sid];
	for (uint32_t i = 0; i < s->len; i++) {
		const struct hf_inst *in = &c->inst[c->cand.pool[s->off + i]];
		const struct hf_rule *r = &c->rules[in->rule];
		if (in->n && !els_ranges_has(c->ranges + in->off, in->n, other))
			continue;
		if (!local_ok(r, p))
			continue;
		if (r->expires_s && hf_rule_expired_now(r, ctx))
			continue;
		if (r->req_proto && !gate_open(r, ctx)) {
			y->gated = true;
			continue;
		}
		if (r->svc) {
			/* Asked last: the owner lookup is the dearest check, and only a permit
			 * that otherwise matches needs it. */
			switch (hf_svc_check(r->svc, ctx)) {
			case HF_SVC_OK:
				break;
			case HF_SVC_WRONG:
				y->wrong = in->rule < y->wrong ? in->rule : y->wrong;
				continue;
			case HF_SVC_UNKNOWN:
				y->unknown = in->rule < y->unknown ? in->rule : y->unknown;
				continue;
			case HF_SVC_PENDING:
				y->pending = in->rule < y->pending ? in->rule : y->pending;
				continue;
			}
		}
		return in->rule;
	}
	return HF_NONE;
}

static uint32_t side_match(const struct hf_conf *c, const struct hf_index *ix,
			   const struct els_ctx *ctx, uint16_t key, uint16_t other, struct hf_why *y)
{
	if (!ix->map)
		return HF_NONE;
	return first_match(c, ix->lpm[ix->map[key]], ctx, other, y);
}

static uint32_t min_u32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

/* ICMP counts only over IPv4 and ICMPv6 only over IPv6. Every other protocol (SCTP, GRE,
 * ESP, ...) matches no permit, not even proto "any": the policy speaks of ports and ICMP types,
 * and a protocol the agent does not decode cannot be checked against either. */
static int table_of(const struct els_pkt *p)
{
	switch (p->proto) {
	case IPPROTO_TCP:
		return HF_P_TCP;
	case IPPROTO_UDP:
		return HF_P_UDP;
	case IPPROTO_ICMP:
		return p->family == ELS_AF_INET ? HF_P_ICMP : -1;
	case IPPROTO_ICMPV6:
		return p->family == ELS_AF_INET6 ? HF_P_ICMP6 : -1;
	}
	return -1;
}

static enum els_action hf_handle(const void *conf, struct els_ctx *ctx, struct els_decision *out)
{
	const struct hf_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	int ti = table_of(p);
	uint32_t best = HF_NONE;
	unsigned reason = ELS_R_NO_PERMIT;
	struct hf_why y = {.wrong = HF_NONE, .unknown = HF_NONE, .pending = HF_NONE};

	if (ti >= 0 && p->dir <= ELS_DIR_OUT &&
	    (p->family == ELS_AF_INET || p->family == ELS_AF_INET6)) {
		const struct hf_table *t = &c->tab[p->dir][ti];
		bool later = p->flags & ELS_PKT_LATER_FRAG;
		unsigned has = ti <= HF_P_UDP ? ELS_PKT_HAS_PORTS : ELS_PKT_HAS_ICMP;
		if (later || !(p->flags & has)) {
			best = first_match(c, t->any, ctx, 0, &y);
			if (later)
				reason = ELS_R_FRAGMENT_NO_PORTS;
		} else if (ti <= HF_P_UDP) {
			uint16_t lp = els_pkt_local_port(p), rp = els_pkt_remote_port(p);
			best = side_match(c, &t->side[0], ctx, lp, rp, &y);
			best = min_u32(best, side_match(c, &t->side[1], ctx, rp, lp, &y));
			if (lp && rp)
				best = min_u32(best, first_match(c, t->any, ctx, 0, &y));
			else
				reason = ELS_R_PORT_ZERO;
		} else {
			best = side_match(c, &t->side[0], ctx, p->icmp_type, 0, &y);
			best = min_u32(best, first_match(c, t->any, ctx, 0, &y));
		}
	}
	out->flags = 0;
	if (c->observe && ti >= 0 && ti <= HF_P_UDP && (p->flags & ELS_PKT_HAS_PORTS) &&
	    ctx->owner && !ctx->origin && y.pending == HF_NONE) {
		/* Learning (elsctl suggest): the records say who owned the socket. Inbound the
		 * listener's process (cached: listeners live long); outbound only the ids that come
		 * with the packet, since every client socket is new and /proc is dear. */
		const struct els_owner *o;
		unsigned need = p->dir == ELS_DIR_IN ? ELS_OWNER_NEED_PROC : ELS_OWNER_NEED_UID;
		if (ctx->owner(ctx->owner_arg, p, need, &o) == ELS_OWNER_PENDING) {
			out->action = ELS_DEFER;
			out->rule = 0;
			out->reason = ELS_R_NO_PERMIT;
			return ELS_DEFER;
		}
	}
	if (y.pending < best) {
		/* An earlier permit's answer depends on who owns the socket: wait for it. */
		out->action = ELS_DEFER;
		out->rule = y.pending + 1;
		out->reason = ELS_R_PERMIT;
		return ELS_DEFER;
	}
	if (y.unknown < best && c->fail_open) {
		/* fail = "open": a permit whose socket owner cannot be found matches, and the
		 * admit says why. */
		best = y.unknown;
		reason = ELS_R_OWNER_UNKNOWN;
	}
	if (best == HF_NONE) {
		out->rule = 0;
		/* The drop names the permit that would have matched but for its owner. */
		if (reason == ELS_R_NO_PERMIT && y.wrong != HF_NONE) {
			reason = ELS_R_WRONG_SERVICE;
			out->rule = y.wrong + 1;
		} else if (reason == ELS_R_NO_PERMIT && y.unknown != HF_NONE) {
			reason = ELS_R_OWNER_UNKNOWN;
			out->rule = y.unknown + 1;
		}
		out->reason = (uint16_t)(y.gated && reason == ELS_R_NO_PERMIT ? ELS_R_SESSION_REQUIRED
									      : reason);
		out->action = ELS_DROP;
		if (c->observe) {
			/* The verdict it would be, recorded; the packet passes. */
			out->action = ELS_ACCEPT;
			out->flags = ELS_DEC_OBSERVE;
		}
		return (enum els_action)out->action;
	}
	const struct hf_rule *r = &c->rules[best];
	out->action = ELS_ACCEPT;
	out->reason = (uint16_t)(reason == ELS_R_OWNER_UNKNOWN ? reason : ELS_R_PERMIT);
	out->rule = best + 1;
	if (r->req_proto)
		out->flags |= ELS_DEC_GATED;
	if (r->observe) {
		/* A permit on trial for removal: what passes only because of it would be dropped
		 * without it. */
		out->flags |= ELS_DEC_OBSERVE;
		out->reason = ELS_R_NO_PERMIT;
	}
	return ELS_ACCEPT;
}

static const char *hf_rule_name(const void *conf, uint32_t rule)
{
	const struct hf_conf *c = conf;
	return rule >= 1 && rule <= c->nrules ? c->rules[rule - 1].id : NULL;
}

/* Expiry dates up to this second have been alerted in this process: with several workers
 * (and across reloads, which rebuild the list) each expiry is alerted once. */
static _Atomic int64_t alerted_upto;

/* Between batches: alerts (and records) each permit whose expiry date has come, once. The
 * list is sorted by date, so a tick costs a binary search when nothing is due. */
static void hf_tick(const void *conf, struct els_ctx *ctx)
{
	const struct hf_conf *c = conf;
	struct els_worker_out *out = ctx->out;

	if (!out || !ctx->real_ns || !c->nexpiry)
		return;
	int64_t now_s = (int64_t)(ctx->real_ns / ELS_NS_PER_S);
	int64_t seen = atomic_load(&alerted_upto);
	uint32_t lo = 0, hi = c->nexpiry;
	while (lo < hi) { /* the first entry not yet alerted */
		uint32_t mid = lo + (hi - lo) / 2;
		if (c->rules[c->expiry[mid]].expires_s <= seen)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == c->nexpiry || c->rules[c->expiry[lo]].expires_s > now_s)
		return;
	if (!atomic_compare_exchange_strong(&alerted_upto, &seen, now_s))
		return; /* another worker alerts them */
	for (uint32_t i = lo; i < c->nexpiry; i++) {
		const struct hf_rule *r = &c->rules[c->expiry[i]];
		const struct hf_permit *pm = &c->pm[c->expiry[i]];
		if (r->expires_s > now_s)
			break;
		struct els_record rec = {.kind = ELS_REC_EVENT,
					 .ts_ns = ctx->real_ns,
					 .count = 1,
					 .reason = ELS_R_PERMIT_EXPIRED,
					 .handler = "header_filter",
					 .rule = c->expiry[i] + 1,
					 .generation = ctx->generation};
		snprintf(rec.rule_name, sizeof(rec.rule_name), "%s", r->id);
		snprintf(rec.detail, sizeof(rec.detail), "permit=%.30s expires=%.20s owner=%.16s",
			 r->id, pm->expires ? pm->expires : "?", pm->owner ? pm->owner : "-");
		els_worker_out_record(out, &rec);
		els_worker_out_alert(out, &rec, false, ctx->now_ns);
	}
}

const struct els_handler els_handler_header_filter = {
    .name = "header_filter",
    .summary = "ports-and-protocols policy: deny all, permit by exception, in and out",
    .flags = ELS_HANDLER_AFTER_FLOW,
    .build = hf_build,
    .destroy = hf_destroy,
    .handle = hf_handle,
    .rule_name = hf_rule_name,
    .tick = hf_tick,
};
