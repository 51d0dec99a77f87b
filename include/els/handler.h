/* The handler interface: what every stage of the packet chain implements.
 *
 * A handler has two halves. build/destroy run off the packet path, when a policy generation
 * is built from the config: they compile the handler's section into an immutable `conf`.
 * handle runs on the packet path, on a worker thread, for every packet: it must not allocate,
 * take a lock shared with another thread, or do I/O. Mutable per-worker state reaches it
 * through the context, never through conf, because conf is shared by all workers: the flow
 * table and session index (flow tracking's), the worker's monitor and alert rings, and the
 * handler's own state, which it allocates in worker_init when a worker starts. */
#ifndef ELS_HANDLER_H
#define ELS_HANDLER_H

#include <libconfig.h>
#include <stdint.h>

#include "els/diag.h"
#include "els/owner.h"
#include "els/pkt.h"
#include "els/reason.h"

struct els_flow;
struct els_flow_table;
struct els_sessions;
struct els_worker_out;

enum els_action {
	ELS_CONTINUE = 0, /* no opinion: the next handler decides */
	ELS_ACCEPT = 1,   /* final: the packet passes */
	ELS_DROP = 2,     /* final: the packet is dropped */
	ELS_FAIL = 3,     /* the handler could not decide; the chain applies its fail policy */
	ELS_DEFER = 4,    /* not yet: the packet waits for a lookup off the worker thread (the
			     owner of a service-bound permit's socket) and is judged again when
			     it is done; no handler commits, nothing is recorded or counted */
};

struct els_decision {
	uint8_t action;   /* enum els_action */
	uint8_t handler;  /* index in the chain; set by the chain, not by the handler */
	uint16_t reason;  /* enum els_reason */
	uint32_t rule;    /* handler-specific rule id (1-based), 0 when no rule applies */
	uint8_t flags;    /* ELS_DEC_* */
};

/* decision flags */
#define ELS_DEC_OBSERVE 0x01u /* accepted only because of observe mode: reason says what the
				 verdict would have been (the worker records a would_drop) */
#define ELS_DEC_GATED	0x02u /* admitted by a session-gated permit: the flow stage asks again
				 on every packet of the flow, so it closes with the session */

/* Per-packet context a worker hands the chain. */
struct els_ctx {
	const struct els_pkt *pkt;
	struct els_flow_table *flows; /* this worker's flow table (NULL in unit tests without one) */
	struct els_sessions *sessions; /* this worker's session index (els/sessions.h); NULL: none,
					  no session is ever held */
	struct els_worker_out *out;    /* this worker's monitor and alert rings; NULL: none */
	/* Every registered handler's per-worker state, by registry position (els_handler_all),
	 * from els_handler_states_new; NULL: none. The chain sets hstate from it. */
	void *const *hstates;
	/* The state worker_init made for the handler being run (set by the chain before handle,
	 * commit and tick); NULL when the handler has none or the worker has no states. */
	void *hstate;
	struct els_flow *flow;        /* set by the flow stage: the flow the packet belongs to */
	/* The packet's flow key and bucket when the worker built them already (agent/queue.c
	 * does, to prefetch); NULL otherwise, and the flow stage builds them. */
	const struct els_flow_hint *flow_hint;
	uint64_t now_ns;              /* CLOCK_MONOTONIC time of the packet (replay: capture time) */
	uint64_t real_ns;	      /* CLOCK_REALTIME of the same (permit expiry, records); 0:
					 unknown, and expiry dates are checked at build only */
	uint32_t generation;          /* policy generation deciding this packet */
	uint8_t recheck;              /* set by the flow stage: flow predates this generation, ask
					 the handlers after it whether its permit still holds */
	uint8_t new_flow;             /* set by the flow stage's commit when it created a flow */
	uint8_t handshake_done;	      /* set by the flow stage: this packet completed the TCP
					 handshake of ctx->flow (the worker writes its admit) */
	/* pkt stands for a connection that exists already (a flow re-judged after a reload, a
	 * connection adopted at start): service-bound permits are not asked about its socket's
	 * owner, which was checked at its first packet (or not at all, before elsd ran). */
	uint8_t origin;
	/* The owner of the packet's local socket, for service-bound permits (els/owner.h). NULL:
	 * no sockets to ask (a replayed capture, unit tests): such permits match by addresses
	 * and ports alone. A live worker always sets it (elsd without a working lookup answers
	 * ELS_OWNER_UNKNOWN, the fail policy). */
	els_owner_fn owner;
	void *owner_arg;
	/* Reports a flow that ends on the packet path (evicted, reset, revoked) so the worker can
	 * write its end record. May be NULL. */
	void (*flow_end)(const struct els_flow *f, unsigned reason, void *arg);
	void *flow_end_arg;
};

/* Everything build() may need besides its own section. */
struct els_build_env {
	const char *config_path;   /* the main config file, for relative list file paths */
	const char *services_path; /* /etc/services, overridable for tests */
	/* A policy from the management channel (els_policy_load_document): files it names are
	 * plain names inside this directory, opened relative to policy_dirfd only (see
	 * els_listfile_name_check). policy_dir NULL (the default of a designated initializer):
	 * the host's own config, any path. */
	int policy_dirfd;
	const char *policy_dir;
};

/* What worker_init may need: the worker's size. */
struct els_worker_env {
	uint32_t flow_capacity; /* entries of the worker's flow table */
};

/* What a handler is to the chain (els_handler.flags); see docs/design-flow-stage.md. */
/* The worker's flow stage: finds the packet's flow (ctx->flow), accepts packets of admitted
 * flows, sets ctx->recheck for a flow admitted under an older generation, and makes flows in
 * commit. At most one registered handler has it. The chain runs it where the configured chain
 * lists it: the links before it are screens that see every packet, the links after it are
 * the admitting handlers, which see a flow's first packet (and its origin packet when the
 * stage asks for a recheck). */
#define ELS_HANDLER_FLOW_STAGE 0x01u
/* An admitting handler with a default deny: it must stand after the flow stage, or the
 * replies of flows it admitted meet its deny (checked when the chain is built). */
#define ELS_HANDLER_AFTER_FLOW 0x02u

struct els_handler {
	const char *name;    /* as written in the config's chain list and as its section name */
	const char *summary; /* one line for `elsd --handlers` */
	unsigned flags;      /* ELS_HANDLER_*; 0 for an ordinary handler */

	/* Compiles the handler's config section (NULL when the config has none) into *conf.
	 * Returns 0, or -EINVAL after adding at least one message to diag. Frees everything it
	 * allocated on failure. */
	int (*build)(const config_setting_t *section, const struct els_build_env *env, void **conf,
		     struct els_diag *diag);
	void (*destroy)(void *conf);

	/* Decides one packet. Fills out->action/reason/rule. */
	enum els_action (*handle)(const void *conf, struct els_ctx *ctx, struct els_decision *out);

	/* Optional: sees the chain's final decision for the packet, e.g. to create a flow once a
	 * permit accepted its first packet. May turn an ACCEPT into a DROP (with its own reason)
	 * when it cannot honour it, e.g. a full flow table. Runs on the packet path under the same
	 * rules as handle. */
	void (*commit)(const void *conf, struct els_ctx *ctx, struct els_decision *final);

	/* Optional: the configured name of rule id (e.g. a permit's `id`), or NULL. */
	const char *(*rule_name)(const void *conf, uint32_t rule);

	/* Optional: housekeeping on the worker thread between batches (about every 100 ms), with
	 * ctx->hstate, out, now_ns, real_ns and generation set and pkt NULL: expiry dates,
	 * runtime deny entries that ran out. Same rules as handle: no allocation, no lock, no
	 * I/O. */
	void (*tick)(const void *conf, struct els_ctx *ctx);

	/* Optional: the handler's mutable per-worker state (scan table, fragment ranges, ...),
	 * made once when a worker starts, off the packet path, whether or not the current
	 * policy's chain names the handler: it outlives policy generations (a reload keeps a
	 * scanner denied), so it cannot depend on a conf. NULL on allocation failure (the
	 * worker does not start). handle, commit and tick find it in ctx->hstate. worker_free
	 * frees it when the worker ends. */
	void *(*worker_init)(const struct els_worker_env *env);
	void (*worker_free)(void *hstate);
};

/* Registry (engine/registry.c): NULL when no handler has that name. */
const struct els_handler *els_handler_find(const char *name);
/* NULL-terminated list of every registered handler. */
const struct els_handler *const *els_handler_all(void);
/* The registered handler with ELS_HANDLER_FLOW_STAGE (its name is the one records, metrics
 * and `stats` give flow tracking), or NULL when none is registered. */
const struct els_handler *els_handler_flow_stage(void);

/* A worker's states of every registered handler (worker_init of each that has one), indexed
 * like els_handler_all(), for els_ctx.hstates. NULL on allocation failure. */
void **els_handler_states_new(const struct els_worker_env *env);
void els_handler_states_free(void **hstates);

#endif
