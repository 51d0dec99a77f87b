/* The health gate of a staged deployment: after the canary wave, may the rest of the group
 * follow? Passes only when every canary agent applied the version, still heartbeats after the
 * apply (no management lockout), runs the expected policy, and does not drop far more packets
 * per second than before. */
#include <stdio.h>
#include <string.h>

#include "change.h"

const struct change_gate_params change_gate_defaults = {
    .settle_s = 5,
    .timeout_s = 300,
    .lockout_s = 60,
    .drop_factor = 10.0,
    .drop_floor = 50.0,
};

int change_target_state_parse(const char *s)
{
	static const char *const names[] = {"pending", "sent", "ok", "failed"};
	for (int i = 0; s && i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

/* Drops per second between two samples, or -1 when it cannot be told (missing sample, no time
 * between them, or a counter that went back: the agent restarted). */
static double rate(bool have_a, long long a, time_t at_a, bool have_b, long long b, time_t at_b)
{
	if (!have_a || !have_b || at_b <= at_a || b < a)
		return -1;
	return (double)(b - a) / (double)(at_b - at_a);
}

enum change_gate change_gate_decide(const struct change_gate_obs *o, size_t n,
				    const char *expect_sha256, time_t started, time_t now,
				    const struct change_gate_params *p, char *reason, size_t len)
{
	const char *waiting = NULL;
	char wait_why[CHANGE_REASON_LEN] = "";

	if (n == 0) {
		snprintf(reason, len, "the canary wave has no agents");
		return GATE_FAIL;
	}
	for (size_t i = 0; i < n; i++) {
		const struct change_gate_obs *a = &o[i];
		if (a->state == TARGET_FAILED) {
			snprintf(reason, len, "canary agent %s failed to apply: %s", a->agent_id,
				 a->error && *a->error ? a->error : "no reason given");
			return GATE_FAIL;
		}
		if (a->state != TARGET_OK) {
			if (now - started > (time_t)p->timeout_s) {
				snprintf(
				    reason, len,
				    "canary agent %s has not applied within %u s (target %s%s)",
				    a->agent_id, p->timeout_s,
				    a->state == TARGET_SENT ? "sent, no answer" : "pending",
				    a->connected ? "" : ", agent offline");
				return GATE_FAIL;
			}
			if (!waiting) {
				waiting = a->agent_id;
				snprintf(wait_why, sizeof(wait_why),
					 "waiting for canary agent %s to apply (%s)", a->agent_id,
					 a->state == TARGET_SENT ? "sent" : "pending");
			}
			continue;
		}
		/* applied: is it still reachable, and has it had time to show its health? */
		bool beat_after = a->last_seen > a->done_at;
		if (!a->connected || !beat_after) {
			if (now - a->done_at > (time_t)p->lockout_s) {
				snprintf(reason, len,
					 "canary agent %s has not heartbeated in the %u s since it "
					 "applied the version (%s): management lockout",
					 a->agent_id, p->lockout_s,
					 a->connected ? "connected, silent" : "disconnected");
				return GATE_FAIL;
			}
			if (!waiting) {
				waiting = a->agent_id;
				snprintf(
				    wait_why, sizeof(wait_why),
				    "waiting for a heartbeat of canary agent %s after its apply",
				    a->agent_id);
			}
			continue;
		}
		if (expect_sha256 && a->running_sha256 &&
		    strcmp(expect_sha256, a->running_sha256) != 0) {
			snprintf(reason, len,
				 "canary agent %s runs policy %.12s after applying %.12s: not the "
				 "deployed version",
				 a->agent_id, a->running_sha256, expect_sha256);
			return GATE_FAIL;
		}
		double after = rate(a->have_mid, a->mid_dropped, a->mid_at, a->have_now,
				    a->now_dropped, a->now_at);
		double before = rate(a->have_base, a->base_dropped, a->base_at, a->have_mid,
				     a->mid_dropped, a->mid_at);
		double limit = before > 0 ? before * p->drop_factor : 0;
		if (limit < p->drop_floor)
			limit = p->drop_floor;
		if (after > limit) {
			snprintf(
			    reason, len,
			    "canary agent %s drops %.1f packets/s since the apply, %.1f before "
			    "(limit %.1f): drop rate exploding",
			    a->agent_id, after, before < 0 ? 0.0 : before, limit);
			return GATE_FAIL;
		}
		if (a->last_seen - a->done_at < (time_t)p->settle_s && !waiting) {
			waiting = a->agent_id;
			snprintf(wait_why, sizeof(wait_why),
				 "canary agent %s applied; settling (%u s after the apply)",
				 a->agent_id, p->settle_s);
		}
	}
	if (waiting) {
		snprintf(reason, len, "%s", wait_why);
		return GATE_WAIT;
	}
	snprintf(reason, len, "all %zu canary agents applied, heartbeat and drop at the usual rate",
		 n);
	return GATE_PASS;
}
