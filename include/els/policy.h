/* A policy generation: the whole configuration compiled into an immutable object. Workers
 * read the current one without locks; a reload builds a new one aside, validates all of it,
 * and only then publishes it (see agent/generation.c). Nothing in it changes after
 * els_policy_load() returns. */
#ifndef ELS_POLICY_H
#define ELS_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "els/addr.h"
#include "els/diag.h"
#include "els/handler.h"

#define ELS_CHAIN_MAX 16
#define ELS_HANDLER_DECODE 0xffu /* decision index meaning "the decoder rejected it" */
#define ELS_HANDLER_CHAIN 0xfeu  /* decision index meaning "no handler decided" */

struct els_mgmt_conf;
struct els_metrics_conf;
struct els_events_conf;

enum els_log_level { ELS_LL_ERROR = 0, ELS_LL_WARNING, ELS_LL_INFO, ELS_LL_DEBUG };

#define ELS_SYN_GUARD_MAX 15 /* ports in syn_guard: what one iptables multiport match takes */

struct els_chain_link {
	const struct els_handler *h;
	void *conf;        /* owned: freed with h->destroy */
	bool fail_open;    /* the handler's `fail` setting: ELS_FAIL -> continue (true) or drop */
	uint8_t stat_slot; /* the handler's position in els_handler_all(): its stats slot */
};

/* Settings outside the chain. Those marked [R] take effect on reload; the others need a
 * restart, and a reload that changes them says so and keeps the running value. */
struct els_settings {
	unsigned queue_first, queue_last; /* NFQUEUE numbers served, one worker each */
	bool fail_open;                   /* NFQA_CFG_F_FAIL_OPEN */
	bool offload; /* [R] established flows bypass the queue via a connmark (agent/offload.h) */
	uint16_t syn_guard[ELS_SYN_GUARD_MAX]; /* [R] syn_guard: ports behind SYNPROXY */
	unsigned nsyn_guard;
	int syn_guard_line; /* its line in the config, for the lint */
	bool rules_self_heal; /* [R] rules.self_heal: restore altered steering rules */
	unsigned rules_heal_max;      /* [R] rules.heal_max: restores per window, then a pause */
	unsigned rules_heal_window_s; /* [R] rules.heal_window_s: that window */
	unsigned copy_bytes;              /* headers-only copy range */
	unsigned queue_maxlen;
	unsigned flow_capacity;           /* per worker */
	char *monitor_path;
	unsigned monitor_ring;            /* records per ring */
	char *monitor_key;                /* monitor.key_file; NULL: monitor.key beside the file */
	char *agent_id;                   /* agent_id; NULL: the host name */
	unsigned monitor_retention_days;  /* monitor.retention_days; 0: keep */
	unsigned monitor_max_mb;	  /* monitor.max_size_mb; 0: no cap;
					     ELS_MONITOR_MAX_MB_AUTO (unset): sized to the disk */
	int log_mode;                     /* [R] enum els_log_mode */
	int log_level;                    /* [R] enum els_log_level */
	struct els_cidr *local;           /* [R] local_addresses, for replay direction */
	unsigned nlocal;
	char *user; /* drop to this user after binding (NULL: stay); see agent/privdrop.h */
	struct els_mgmt_conf *mgmt;       /* management endpoint (els/mgmt.h); NULL: none */
	char *policy_dir; /* [R] where consoles' policy and list files live (absolute) */
	struct els_metrics_conf *metrics; /* metrics endpoint (agent/metrics.h); NULL: none */
	struct els_events_conf *events;   /* event stream (agent/events.h); NULL: none */
};

struct els_policy {
	uint32_t generation; /* set by the publisher; 0 until published */
	unsigned nlinks;
	struct els_chain_link links[ELS_CHAIN_MAX];
	struct els_settings set;
	char *path;
	char *policy_file;   /* the managed policy document in policy_dir; NULL: from path */
	char hash[65];       /* SHA-256 of the policy's bytes (policy_file, else path), hex */
};

/* The boundary between the host's own configuration and what a console may send (see
 * docs/management.md, "The trust boundary"). elsd.conf holds the agent settings; the policy
 * (chain and handler sections) comes from ELS_POLICY_MANAGED in policy_dir once a console
 * applied one, else from elsd.conf itself. */
#define ELS_POLICY_DIR_DEFAULT "/etc/elsd/policy.d"
#define ELS_POLICY_MANAGED     "policy.conf"
#define ELS_POLICY_DOC_MAX     (1u << 20) /* bytes in a policy document from a console */

/* Checks a policy document from a console and compiles its chain: only `chain` and handler
 * sections at the top level (an agent setting is refused by name and line), no @include, no
 * NUL byte, at most ELS_POLICY_DOC_MAX bytes, list files only as plain names inside the
 * directory open at policy_dirfd (named policy_dir in messages). Messages name `shown` and a
 * line, never the content of a list file. Returns a policy with only the chain set (settings
 * zero), or NULL after adding every error to d. */
struct els_policy *els_policy_load_document(const char *text, size_t len, const char *shown,
					    int policy_dirfd, const char *policy_dir,
					    const char *services_path, struct els_diag *d);

/* els_policy_load, with the managed document read from the file `managed` in policy_dir
 * instead of ELS_POLICY_MANAGED (an apply checks its temporary file this way). */
struct els_policy *els_policy_load_with(const char *path, const char *services_path,
					const char *managed, struct els_diag *d);

/* The policy part of the host's config file (chain and handler sections, no agent setting)
 * as a document a console may edit and apply back: *text malloc'd. 0 or -errno. */
int els_policy_local_text(const char *config_path, char **text, size_t *len);

/* Reads and compiles a config file. NULL after adding every error to diag. The caller frees
 * the result with els_policy_free. services_path NULL means /etc/services. */
struct els_policy *els_policy_load(const char *path, const char *services_path,
				   struct els_diag *diag);
void els_policy_free(struct els_policy *p);

/* The same, for programs: on failure every error goes to err, one per line, and NULL. */
struct els_policy *els_policy_load_report(const char *path, const char *services_path,
					  FILE *err);

/* Whether name is a top-level setting or a handler section the loader accepts (so that
 * `elsd --get` can tell a setting left at its default from a misspelt one). */
bool els_policy_key_known(const char *name);

/* monitor_max_mb when the config does not set it (ELS_MONITOR_SIZE_AUTO, els/monitor.h). */
#define ELS_MONITOR_MAX_MB_AUTO 0xffffffffu

#endif
