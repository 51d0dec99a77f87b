/* scan: a remote address that probes more than `ports` distinct closed local ports within
 * `window` seconds is put on a runtime deny set for `deny` seconds, like an active response:
 * every packet to or from it is then dropped (scan_deny), in both directions. The entry
 * expires by itself. Detection and expiry are recorded (monitor events) and alerted.
 *
 * "Closed" means the chain dropped an inbound TCP/UDP packet as no_permit, port_zero,
 * session_required, out_of_state or an anomaly of TCP flags: what a SYN, ACK, NULL, XMAS or UDP
 * scan of unpermitted ports produces. The commit hook sees that final decision; handle, placed
 * first in the chain, enforces the deny set.
 *
 * State is per worker (struct scan_state, made by scan_worker_init): no lock on the packet path.
 * With several queues a scanner's TCP probes all reach one worker (the kernel hashes addresses and
 * protocol), so the count is right per protocol; a scan that mixes TCP and UDP is counted per
 * protocol. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/worker_out.h"
#include "scan.h"

#define SWEEP_BUDGET 64u
#define SCAN_SETS    1024u

struct scan_conf {
	unsigned ports; /* distinct closed ports that make a scan */
	uint64_t window_ns;
	uint64_t deny_ns; /* 0: alert only */
};

static int get_int(const config_setting_t *sec, const char *key, long long lo, long long hi,
		   long long *v, struct els_diag *diag)
{
	const config_setting_t *s = config_setting_get_member(sec, key);
	if (!s)
		return 0;
	int t = config_setting_type(s);
	long long x =
	    t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64 ? config_setting_get_int64(s) : lo - 1;
	if (x < lo || x > hi) {
		els_diag_at(diag, s, "scan: '%s' must be a whole number %lld..%lld", key, lo, hi);
		return -EINVAL;
	}
	*v = x;
	return 0;
}

static int scan_build(const config_setting_t *section, const struct els_build_env *env, void **conf,
		      struct els_diag *diag)
{
	static const char *const keys[] = {"ports", "window", "deny", "fail", NULL};
	struct scan_conf *c = calloc(1, sizeof(*c));
	long long ports = 20, window = 10, deny = 300;
	unsigned before = diag->count;

	(void)env;
	*conf = NULL;
	if (!c)
		return -ENOMEM;
	for (int i = 0; section && i < config_setting_length(section); i++) {
		const config_setting_t *s = config_setting_get_elem(section, (unsigned)i);
		bool known = false;
		for (int k = 0; keys[k]; k++)
			known |= strcmp(config_setting_name(s), keys[k]) == 0;
		if (!known)
			els_diag_at(diag, s,
				    "scan: unknown setting '%s' (known: ports, window, deny, fail)",
				    config_setting_name(s));
	}
	if (section) {
		get_int(section, "ports", 1, SCAN_PORTS - 1, &ports, diag);
		get_int(section, "window", 1, 3600, &window, diag);
		get_int(section, "deny", 0, 86400, &deny, diag);
	}
	if (diag->count != before) {
		free(c);
		return -EINVAL;
	}
	c->ports = (unsigned)ports;
	c->window_ns = (uint64_t)window * ELS_NS_PER_S;
	c->deny_ns = (uint64_t)deny * ELS_NS_PER_S;
	*conf = c;
	return 0;
}

static void scan_destroy(void *conf)
{
	free(conf);
}

/* ---- per-worker state: a set-associative table of sources ---- */

void *scan_worker_init(const struct els_worker_env *env)
{
	struct scan_state *st = calloc(1, sizeof(*st));

	(void)env;
	if (!st)
		return NULL;
	if (getentropy(&st->seed, sizeof(st->seed)) < 0)
		st->seed = (uint64_t)(uintptr_t)st;
	st->sets = SCAN_SETS;
	st->src = calloc((size_t)SCAN_SETS * SCAN_WAYS, sizeof(*st->src));
	if (!st->src) {
		free(st);
		return NULL;
	}
	return st;
}

void scan_worker_free(void *hstate)
{
	struct scan_state *st = hstate;

	if (st)
		free(st->src);
	free(st);
}

static uint32_t set_of(const struct scan_state *st, uint8_t family, const struct els_addr *a)
{
	return (uint32_t)els_addr_hash(family, a, 0x5ca7, st->seed) % st->sets;
}

struct scan_src *scan_src_get(struct scan_state *st, uint8_t family, const struct els_addr *a,
			      bool create, uint64_t now_ns)
{
	struct scan_src *w = &st->src[set_of(st, family, a) * SCAN_WAYS], *victim = NULL;

	for (unsigned i = 0; i < SCAN_WAYS; i++)
		if (w[i].used && w[i].family == family && memcmp(&w[i].addr, a, sizeof(*a)) == 0)
			return &w[i];
	if (!create)
		return NULL;
	/* A free way, else the least recently seen source that is not denied: a flood of
	 * spoofed sources cannot push a denied scanner out of the table. */
	for (unsigned i = 0; i < SCAN_WAYS; i++) {
		struct scan_src *e = &w[i];
		if (!e->used) {
			victim = e;
			break;
		}
		if (e->deny_until_ns > now_ns)
			continue;
		if (!victim || e->last_ns < victim->last_ns)
			victim = e;
	}
	if (!victim)
		return NULL;
	memset(victim, 0, sizeof(*victim));
	victim->used = 1;
	victim->family = family;
	victim->addr = *a;
	victim->win_start_ns = now_ns;
	return victim;
}

static enum els_action scan_handle(const void *conf, struct els_ctx *ctx, struct els_decision *out)
{
	const struct els_pkt *p = ctx->pkt;
	struct scan_src *e;

	(void)conf;
	if (!ctx->hstate || (p->family != ELS_AF_INET && p->family != ELS_AF_INET6))
		return ELS_CONTINUE;
	e = scan_src_get(ctx->hstate, p->family, els_pkt_remote(p), false, ctx->now_ns);
	if (!e || e->deny_until_ns <= ctx->now_ns)
		return ELS_CONTINUE;
	e->denied_pkts++;
	out->action = ELS_DROP;
	out->reason = ELS_R_SCAN_DENY;
	out->rule = 0;
	return ELS_DROP;
}

static bool closed_port_reason(unsigned r)
{
	switch (r) {
	case ELS_R_NO_PERMIT:
	case ELS_R_PORT_ZERO:
	case ELS_R_SESSION_REQUIRED:
	case ELS_R_OUT_OF_STATE:
	case ELS_R_TCP_NULL:
	case ELS_R_TCP_XMAS:
	case ELS_R_TCP_SYN_FIN:
	case ELS_R_TCP_SYN_RST:
		return true;
	}
	return false;
}

static void scan_event(const struct els_ctx *ctx, const struct scan_src *e, uint16_t reason,
		       const char *what)
{
	struct els_record r = {.kind = ELS_REC_EVENT,
			       .ts_ns = ctx->real_ns,
			       .count = 1,
			       .src = e->addr,
			       .family = e->family,
			       .handler = "scan",
			       .reason = reason,
			       .generation = ctx->generation};
	char a[ELS_ADDR_STRLEN];
	snprintf(r.detail, sizeof(r.detail), "%s %s", what, els_addr_str(&e->addr, e->family, a));
	if (!ctx->out)
		return;
	els_worker_out_record(ctx->out, &r);
	els_worker_out_alert(ctx->out, &r, false, ctx->now_ns);
}

static void scan_commit(const void *conf, struct els_ctx *ctx, struct els_decision *final)
{
	const struct scan_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	struct scan_state *st = ctx->hstate;
	uint64_t now = ctx->now_ns;

	if (!st || final->action != ELS_DROP || p->dir != ELS_DIR_IN ||
	    !(p->flags & ELS_PKT_HAS_PORTS) || !closed_port_reason(final->reason))
		return;
	struct scan_src *e = scan_src_get(st, p->family, &p->src, true, now);
	if (!e)
		return; /* every way of its set holds a denied scanner */
	e->last_ns = now;
	if (e->deny_until_ns > now)
		return;
	if (now - e->win_start_ns > c->window_ns) {
		e->win_start_ns = now;
		e->nports = 0;
		e->alerted = 0;
	}
	unsigned i;
	for (i = 0; i < e->nports && e->ports[i] != p->dport; i++)
		;
	if (i < e->nports || e->nports == SCAN_PORTS)
		return;
	e->ports[e->nports++] = p->dport;
	if (e->nports <= c->ports || e->alerted)
		return;
	e->alerted = 1;
	final->reason = ELS_R_SCAN_DETECTED; /* this probe's drop record marks the moment */
	char what[64];
	if (c->deny_ns) {
		e->deny_until_ns = now + c->deny_ns;
		e->denied_pkts = 0;
		snprintf(what, sizeof(what),
			 "scan: %u closed ports in %llus, denied %llus:", e->nports,
			 (unsigned long long)(c->window_ns / ELS_NS_PER_S),
			 (unsigned long long)(c->deny_ns / ELS_NS_PER_S));
	} else {
		snprintf(what, sizeof(what),
			 "scan: %u closed ports in %llus, not denied:", e->nports,
			 (unsigned long long)(c->window_ns / ELS_NS_PER_S));
	}
	scan_event(ctx, e, ELS_R_SCAN_DETECTED, what);
}

/* Finds deny entries whose time is up, a few per tick, so their end is recorded and alerted;
 * handle already ignores them from the moment they expire. */
static void scan_tick(const void *conf, struct els_ctx *ctx)
{
	struct scan_state *st = ctx->hstate;
	uint32_t n = st ? st->sets * SCAN_WAYS : 0;

	(void)conf;
	for (unsigned k = 0; k < SWEEP_BUDGET && n; k++) {
		struct scan_src *e = &st->src[st->sweep];
		st->sweep = (st->sweep + 1) % n;
		if (!e->used || !e->deny_until_ns || e->deny_until_ns > ctx->now_ns)
			continue;
		char what[64];
		snprintf(what, sizeof(what), "scan deny expired after %llu dropped packets:",
			 (unsigned long long)e->denied_pkts);
		e->deny_until_ns = 0;
		e->nports = 0;
		e->alerted = 0;
		e->win_start_ns = ctx->now_ns;
		scan_event(ctx, e, ELS_R_SCAN_DENY, what);
	}
}

const struct els_handler els_handler_scan = {
    .name = "scan",
    .summary = "denies, for a while, remote addresses that probe many closed ports",
    .build = scan_build,
    .destroy = scan_destroy,
    .handle = scan_handle,
    .commit = scan_commit,
    .tick = scan_tick,
    .worker_init = scan_worker_init,
    .worker_free = scan_worker_free,
};
