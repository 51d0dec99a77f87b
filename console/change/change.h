/* els-console change control, the parts that need no server: canary selection, the health
 * gate, the two-person rule, the registry check of a proposed policy, the drift rules and the
 * policy diff (console/change_*.c). Pure functions over plain structs, so that unit tests drive
 * them without PostgreSQL; api_*.c feed them from the database. */
#ifndef ELS_CONSOLE_CHANGE_H
#define ELS_CONSOLE_CHANGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CHANGE_REASON_LEN 512

/* ---- change_canary.c ---- */

/* "N" (1..100000 agents) or "P%" (1..100 percent). 0, or -EINVAL with why. */
struct change_canary {
	bool percent;
	unsigned value;
};
int change_canary_parse(const char *spec, struct change_canary *out, const char **why);
/* How many of n agents form the canary wave: N capped at n, or ceil(P% of n), at least 1
 * when n > 0. */
unsigned change_canary_count(const struct change_canary *c, unsigned n);

struct change_agent_pick {
	const char *agent_id;
	bool connected;
	int wave; /* out: 0 canary, 1 the rest */
};
/* Assigns waves: the canary are the first change_canary_count() agents after sorting
 * connected agents before offline ones, then by agent_id (a canary that cannot answer would
 * only stall the gate). Sorts a in place. */
void change_canary_assign(const struct change_canary *c, struct change_agent_pick *a, size_t n);

/* ---- change_gate.c ---- */

enum change_target_state { TARGET_PENDING, TARGET_SENT, TARGET_OK, TARGET_FAILED };
int change_target_state_parse(const char *s); /* -1 when unknown */

/* What the console knows of one canary agent when the gate is evaluated. Times are seconds
 * since 1970 (0: unknown). */
struct change_gate_obs {
	const char *agent_id;
	enum change_target_state state;
	const char *error;	    /* the agent's answer when failed */
	time_t done_at;		    /* when the apply was answered */
	bool connected;		    /* holds a session to some console now */
	time_t last_seen;	    /* last hello/heartbeat */
	const char *running_sha256; /* policy_sha256 of the last heartbeat */
	/* drop counter samples: base (deployment start), mid (last heartbeat before the apply
	 * was answered), now (last heartbeat); have_* false when missing */
	bool have_base, have_mid, have_now;
	long long base_dropped, mid_dropped, now_dropped;
	time_t base_at, mid_at, now_at;
};

struct change_gate_params {
	unsigned settle_s;  /* a heartbeat at least this long after the apply is needed */
	unsigned timeout_s; /* canary must have applied within this time of the start */
	unsigned lockout_s; /* no heartbeat this long after the apply: management lockout */
	double drop_factor; /* the rate after may be at most this times the rate before */
	double drop_floor;  /* ... or this many drops per second, whichever is higher */
};
extern const struct change_gate_params change_gate_defaults;

enum change_gate { GATE_WAIT, GATE_PASS, GATE_FAIL };
/* The canary's verdict at time now for a deployment of expect_sha256 started at started:
 * FAIL (reason names the agent and why) as soon as one agent failed, is locked out, runs
 * another policy, or drops far more than before; PASS when every agent applied, heartbeated
 * settle_s after and is healthy; WAIT otherwise (reason says what it waits for). */
enum change_gate change_gate_decide(const struct change_gate_obs *o, size_t n,
				    const char *expect_sha256, time_t started, time_t now,
				    const struct change_gate_params *p, char *reason, size_t len);

/* ---- change_rule.c ---- */

struct change_rules {
	bool two_person;    /* the author may not approve */
	unsigned approvals; /* distinct approvers needed (>= 1) */
};

/* Whether approver may approve a version in state `state` by author, which already has the
 * approvals listed (identities). 0, or -EPERM (rule) / -EALREADY (already approved by them) /
 * -ESTALE (not proposed) with the reason in words. */
int change_may_approve(const struct change_rules *r, const char *state, const char *author,
		       const char *approver, const char *const *approved_by, size_t napproved,
		       char *reason, size_t len);
/* Whether napproved (after this one) is enough to mark the version approved. */
bool change_approved_enough(const struct change_rules *r, size_t napproved);

/* ---- change_registry.c ---- */

struct change_registry_entry {
	const char *id, *proto, *port, *direction;
	time_t expires_s; /* first second no longer valid (day after expires_at); 0: never */
};

struct change_problem {
	char *text; /* owned */
};
struct change_problems {
	struct change_problem *v;
	size_t n, cap;
};
void change_problems_free(struct change_problems *p);
void change_problem_add(struct change_problems *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Loads the policy document with the engine's own loader (as an agent would receive it) and
 * checks every header_filter permit against the registry: its id must name an entry that has
 * not expired at now, with the same direction, a protocol the entry allows, and local ports
 * inside the entry's ports; a permit's own `expires` must not have passed. Document errors
 * are problems too (file "policy", with lines); *loaded (may be NULL) says whether the document
 * itself was valid. Returns the number of problems (each added to out), or -ENOMEM. */
int change_registry_check(const char *body, size_t len, const struct change_registry_entry *reg,
			  size_t nreg, time_t now, struct change_problems *out, bool *loaded);
/* The SHA-256 of body as hex (what the agent reports as policy_sha256). */
void change_sha256_hex(const char *body, size_t len, char hex[65]);
/* A registry port text ("443", "8000-8080", "80,443") covers [lo, hi]. NULL covers all. -1:
 * the text is not a port list. */
int change_ports_cover(const char *text, unsigned lo, unsigned hi);
/* "2026-12-31" -> first second of the next day, UTC. 0 or -EINVAL. */
int change_date_end(const char *date, time_t *out);

/* ---- change_drift.c ---- */

enum change_drift_kind {
	DRIFT_POLICY,
	DRIFT_RULES,
	DRIFT_LISTENER,
	DRIFT_MONITOR,
	DRIFT_EXPIRED_PERMIT,
	DRIFT_SILENT,
	DRIFT_NKINDS
};
extern const char *const change_drift_names[DRIFT_NKINDS];

struct change_listener {
	const char *proto, *addr;
	unsigned port;
};
struct change_permit {
	const char *id, *proto, *port, *dir;
};

struct change_drift_input {
	const char *agent_id;
	const char *approved_sha256; /* of the group's deployed approved version; NULL: none */
	const char *running_sha256;
	bool rules_ok, monitor_ok;
	bool have_state; /* a hello was ever received */
	time_t last_seen;
	const struct change_listener *listeners;
	size_t nlisteners;
	const struct change_permit *permits;
	size_t npermits;
	const struct change_registry_entry *registry;
	size_t nregistry;
};

/* Fills detail[k] (a sentence, empty when no drift of kind k) for every kind. Returns a bit
 * mask of the kinds found. A listener on a loopback address is never drift; a permit with
 * port text that is not a number list ("https") is taken to cover nothing, and said so. */
unsigned change_drift_eval(const struct change_drift_input *in, time_t now, unsigned silent_after_s,
			   char detail[DRIFT_NKINDS][CHANGE_REASON_LEN]);

/* ---- change_diff.c ---- */

/* A unified diff (---/+++ headers, one hunk per change with 3 lines of context) of a and b,
 * malloc'd in *out ("" when equal). 0 or -ENOMEM. */
int change_diff(const char *a, const char *name_a, const char *b, const char *name_b, char **out);

#endif
