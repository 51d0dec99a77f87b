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
 * State is per worker (handlers/wstate.h): no lock on the packet path. With several queues a
 * scanner's TCP probes all reach one worker (the kernel hashes addresses and protocol), so the
 * count is right per protocol; a scan that mixes TCP and UDP is counted per protocol. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/addr.h"
#include "els/clock.h"
#include "els/handler.h"
#include "els/monitor.h"
#include "els/wstate.h"

#define SWEEP_BUDGET 64u

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
		get_int(section, "ports", 1, ELS_WS_SCAN_PORTS - 1, &ports, diag);
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

static enum els_action scan_handle(const void *conf, struct els_ctx *ctx, struct els_decision *out)
{
	const struct els_pkt *p = ctx->pkt;
	struct els_ws_scan *e;

	(void)conf;
	if (!ctx->ws || (p->family != ELS_AF_INET && p->family != ELS_AF_INET6))
		return ELS_CONTINUE;
	e = els_ws_scan_get(ctx->ws, p->family, els_pkt_remote(p), false);
	if (!e || e->deny_until_ns <= ctx->ws->now_ns)
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

static void scan_event(struct els_wstate *ws, const struct els_ws_scan *e, uint16_t reason,
		       uint32_t gen, const char *what)
{
	struct els_record r = {.kind = ELS_REC_EVENT,
			       .ts_ns = ws->real_ns,
			       .count = 1,
			       .src = e->addr,
			       .family = e->family,
			       .handler = "scan",
			       .reason = reason,
			       .generation = gen};
	char a[ELS_ADDR_STRLEN];
	snprintf(r.detail, sizeof(r.detail), "%s %s", what, els_addr_str(&e->addr, e->family, a));
	els_ws_record(ws, &r);
	els_ws_alert(ws, &r, false);
}

static void scan_commit(const void *conf, struct els_ctx *ctx, struct els_decision *final)
{
	const struct scan_conf *c = conf;
	const struct els_pkt *p = ctx->pkt;
	struct els_wstate *ws = ctx->ws;

	if (!ws || final->action != ELS_DROP || p->dir != ELS_DIR_IN ||
	    !(p->flags & ELS_PKT_HAS_PORTS) || !closed_port_reason(final->reason))
		return;
	struct els_ws_scan *e = els_ws_scan_get(ws, p->family, &p->src, true);
	if (!e)
		return; /* every way of its set holds a denied scanner */
	e->last_ns = ws->now_ns;
	if (e->deny_until_ns > ws->now_ns)
		return;
	if (ws->now_ns - e->win_start_ns > c->window_ns) {
		e->win_start_ns = ws->now_ns;
		e->nports = 0;
		e->alerted = 0;
	}
	unsigned i;
	for (i = 0; i < e->nports && e->ports[i] != p->dport; i++)
		;
	if (i < e->nports || e->nports == ELS_WS_SCAN_PORTS)
		return;
	e->ports[e->nports++] = p->dport;
	if (e->nports <= c->ports || e->alerted)
		return;
	e->alerted = 1;
	final->reason = ELS_R_SCAN_DETECTED; /* this probe's drop record marks the moment */
	char what[64];
	if (c->deny_ns) {
		e->deny_until_ns = ws->now_ns + c->deny_ns;
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
	scan_event(ws, e, ELS_R_SCAN_DETECTED, ctx->generation, what);
}

/* Finds deny entries whose time is up, a few per tick, so their end is recorded and alerted;
 * handle already ignores them from the moment they expire. */
static void scan_tick(const void *conf, struct els_ctx *ctx)
{
	struct els_wstate *ws = ctx->ws;
	uint32_t n = ws ? ws->scan_sets * ELS_WS_SCAN_WAYS : 0;

	(void)conf;
	for (unsigned k = 0; k < SWEEP_BUDGET && n; k++) {
		struct els_ws_scan *e = &ws->scan[ws->scan_sweep];
		ws->scan_sweep = (ws->scan_sweep + 1) % n;
		if (!e->used || !e->deny_until_ns || e->deny_until_ns > ws->now_ns)
			continue;
		char what[64];
		snprintf(what, sizeof(what), "scan deny expired after %llu dropped packets:",
			 (unsigned long long)e->denied_pkts);
		e->deny_until_ns = 0;
		e->nports = 0;
		e->alerted = 0;
		e->win_start_ns = ws->now_ns;
		scan_event(ws, e, ELS_R_SCAN_DENY, ctx->generation, what);
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
};
