/* A new policy generation for the running daemon: the config file reloaded (SIGHUP, `elsd
 * --reload`) or a document a management request built aside, published to the workers with
 * the settings that only a restart changes kept; the service's STATUS= and the control
 * socket's answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "control.h"
#include "ctlsock.h"
#include "daemon_int.h"
#include "els/clock.h"
#include "els/log.h"
#include "els/policy.h"
#include "generation.h"
#include "metrics.h"
#include "notify.h"
#include "rulewatch.h"
#include "sessions.h"
#include "worker.h"

/* Settings that size or place things at start-up: a reload reports a change and keeps the
 * running value, because half-applying them would be worse than not applying them. */
static void keep_start_settings(struct els_policy *np, const struct els_policy *old)
{
	const struct els_settings *o = &old->set;
	struct els_settings *n = &np->set;

	if (n->queue_first != o->queue_first || n->queue_last != o->queue_last)
		els_log(ELS_LL_WARNING, "reload: 'queues' changed; takes effect on restart");
	if (n->fail_open != o->fail_open)
		els_log(ELS_LL_WARNING, "reload: 'fail_open' changed; takes effect on restart");
	if (n->copy_bytes != o->copy_bytes || n->queue_maxlen != o->queue_maxlen)
		els_log(ELS_LL_WARNING,
			"reload: 'copy_bytes'/'queue_maxlen' changed; take effect on restart");
	if (n->flow_capacity != o->flow_capacity)
		els_log(ELS_LL_WARNING,
			"reload: 'flows.capacity' changed; takes effect on restart");
	if (strcmp(n->monitor_path, o->monitor_path) != 0)
		els_log(ELS_LL_WARNING, "reload: 'monitor.path' changed; takes effect on restart");
	const char *nm = n->metrics ? n->metrics->listen : "";
	const char *om = o->metrics ? o->metrics->listen : "";
	if (strcmp(nm, om) != 0 || !n->metrics != !o->metrics ||
	    (n->metrics && !n->metrics->cert != !o->metrics->cert))
		els_log(ELS_LL_WARNING, "reload: 'metrics' changed; takes effect on restart");
	if (strcmp(n->user ? n->user : "", o->user ? o->user : "") != 0)
		els_log(ELS_LL_WARNING, "reload: 'user' changed; takes effect on restart");
	if (n->monitor_retention_days != o->monitor_retention_days ||
	    n->monitor_max_mb != o->monitor_max_mb ||
	    strcmp(n->monitor_key ? n->monitor_key : "", o->monitor_key ? o->monitor_key : "") ||
	    strcmp(n->agent_id ? n->agent_id : "", o->agent_id ? o->agent_id : ""))
		els_log(ELS_LL_WARNING,
			"reload: 'monitor.key_file', 'monitor.retention_days', "
			"'monitor.max_size_mb' or 'agent_id' changed; take effect on "
			"restart");
	n->monitor_retention_days = o->monitor_retention_days;
	n->monitor_max_mb = o->monitor_max_mb;
	n->queue_first = o->queue_first;
	n->queue_last = o->queue_last;
	n->fail_open = o->fail_open;
	n->copy_bytes = o->copy_bytes;
	n->queue_maxlen = o->queue_maxlen;
	n->flow_capacity = o->flow_capacity;
	n->monitor_ring = o->monitor_ring;
	char *tmp = n->monitor_path;
	n->monitor_path = strdup(o->monitor_path);
	if (!n->monitor_path)
		n->monitor_path = tmp;
	else
		free(tmp);
}

/* Publishes a policy that was built and checked aside (SIGHUP, or a management request). */
static void commit_policy(struct daemon *d, struct els_policy *np)
{
	keep_start_settings(np, d->running);
	els_sessions_warn(np, "the new policy");
	els_log_set_level(np->set.log_level);
	els_rulewatch_update(d->rules, &(struct els_rulewatch_opts){
					   .self_heal = np->set.rules_self_heal,
					   .heal_max = np->set.rules_heal_max,
					   .heal_window_s = np->set.rules_heal_window_s,
					   .generation = np->generation});
	els_metrics_permits_prepare(d->workers, d->nq, d->running->generation + 1);
	struct els_policy *old = (struct els_policy *)els_gen_publish(np);
	d->running = np;
	els_metrics_policy(d->metrics, np);
	els_metrics_note_reload(true, np->generation);
	/* Workers wake at least every 100 ms, so this waits for one turn of each. */
	if (els_gen_quiescent(d->wp, d->nq, np->generation, 5000)) {
		els_metrics_settle(d->metrics);
		els_policy_free(old);
	} else
		els_log(ELS_LL_ERROR,
			"reload: a worker did not pick up generation %u in 5 s; "
			"keeping the old generation's memory",
			np->generation);
	els_log(ELS_LL_INFO, "reloaded %s: generation %u, sha256 %.16s", np->path, np->generation,
		np->hash);
	els_push_event(d->ctl, np->generation, "reload ok: generation %u sha256 %.16s",
		       np->generation, np->hash);
}

/* The service's STATUS= line: the running generation and how the last reload went. */
static void notify_ready(const struct daemon *d)
{
	const struct els_reload_result *r = &d->last_reload;
	if (!r->done) {
		els_notify("READY=1\nSTATUS=filtering, generation %u", d->running->generation);
		return;
	}
	char when[32];
	time_t t = (time_t)r->time_s;
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	els_notify("READY=1\nSTATUS=filtering, generation %u; last reload %s at %s%s%.200s",
		   d->running->generation, r->ok ? "ok" : "FAILED", when, r->ok ? "" : ": ",
		   r->ok ? "" : r->reason);
}

/* Reloads the config file. On failure every FILE:LINE: message is logged and, when ans is
 * not NULL, appended to it (n bytes) one per line; the result is kept for status. */
static bool reload(struct daemon *d, char *ans, size_t n)
{
	struct els_diag diag;
	els_diag_init(&diag, d->opt->config);
	struct els_policy *np = els_policy_load(d->opt->config, d->opt->services, &diag);
	struct els_reload_result *r = &d->last_reload;

	r->done = true;
	r->time_s = els_now_real() / ELS_NS_PER_S;
	if (!np) {
		r->ok = false;
		r->generation = d->running->generation;
		snprintf(r->reason, sizeof(r->reason), "%s",
			 diag.count ? diag.msgs[0] : "the configuration was rejected");
		for (unsigned i = 0; i < diag.count; i++) {
			els_log(ELS_LL_ERROR, "reload failed, keeping generation %u: %s",
				d->running->generation, diag.msgs[i]);
			size_t used = ans ? strlen(ans) : 0;
			if (ans && used < n)
				snprintf(ans + used, n - used, "%s\n", diag.msgs[i]);
		}
		els_metrics_note_reload(false, d->running->generation);
		els_push_event(d->ctl, d->running->generation, "reload failed: %.80s",
			       diag.count ? diag.msgs[0] : "?");
		els_alert(ELS_R_POLICY_REJECTED, "generation=%u kept, reload failed: %s",
			  d->running->generation, diag.count ? diag.msgs[0] : "?");
		els_diag_free(&diag);
		return false;
	}
	els_diag_free(&diag);
	commit_policy(d, np);
	r->ok = true;
	r->generation = np->generation;
	snprintf(r->reason, sizeof(r->reason), "generation %u sha256 %.16s", np->generation,
		 np->hash);
	/* Management changes are alerted where the console's identity is known (control.c). */
	els_alert(ELS_R_POLICY_CHANGED, "generation=%u sha256=%.16s by=reload path=%s",
		  np->generation, np->hash, np->path);
	return true;
}

bool els_daemon_reload(struct daemon *d, char *ans, size_t n)
{
	els_notify("RELOADING=1");
	bool ok = reload(d, ans, n);
	els_control_reload_crl(d->control);
	els_metrics_reload_crl(d->metrics);
	notify_ready(d);
	return ok;
}

void els_daemon_ctlsock_request(void *arg, const char *req, char *ans, size_t n)
{
	struct daemon *d = arg;

	if (strcmp(req, "reload") == 0) {
		char why[ELS_CTLSOCK_ANSWER_MAX / 2] = "";
		if (els_daemon_reload(d, why, sizeof(why)))
			snprintf(ans, n, "ok reloaded %s: %s\n", d->opt->config,
				 d->last_reload.reason);
		else
			snprintf(ans, n, "error %s rejected, generation %u keeps running\n%s",
				 d->opt->config, d->running->generation, why);
	} else if (strcmp(req, "status") == 0) {
		const struct els_reload_result *r = &d->last_reload;
		snprintf(ans, n, "ok generation %u sha256 %.16s; last reload: %s%s\n",
			 d->running->generation, d->running->hash,
			 !r->done ? "none"
			 : r->ok  ? "ok, "
				  : "FAILED, ",
			 r->done ? r->reason : "");
	} else {
		snprintf(ans, n, "error unknown request '%.32s' (reload, status)\n", req);
	}
}

const struct els_policy *els_daemon_running(void *arg)
{
	return ((struct daemon *)arg)->running;
}

uint32_t els_daemon_commit_cb(void *arg, struct els_policy *np)
{
	struct daemon *d = arg;
	els_notify("RELOADING=1");
	commit_policy(d, np);
	notify_ready(d);
	return d->running->generation;
}
