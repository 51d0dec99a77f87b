/* Running a policy's chain of handlers over one decoded packet, and naming the deciding link
 * (engine/chain.c). */
#ifndef ELS_CHAIN_H
#define ELS_CHAIN_H

#include "els/policy.h"

/* Runs the chain on ctx->pkt and fills out (out->handler is the deciding link's index, or
 * ELS_HANDLER_DECODE / ELS_HANDLER_CHAIN). Always decides: ACCEPT or DROP. Packet path. */
enum els_action els_chain_run(const struct els_policy *p, struct els_ctx *ctx,
			      struct els_decision *out);

/* Calls each link's tick (housekeeping between batches) with ctx->hstate set. pkt NULL. */
void els_chain_tick(const struct els_policy *p, struct els_ctx *ctx);

/* The per-worker state of link l's handler in ctx (els_ctx.hstates), or NULL. */
void *els_chain_hstate(const struct els_chain_link *l, const struct els_ctx *ctx);

/* Name of the handler behind a decision index ("decode", "chain" for the special ones). */
const char *els_chain_handler_name(const struct els_policy *p, unsigned idx);
/* Configured name of the rule behind a decision, or NULL. */
const char *els_chain_rule_name(const struct els_policy *p, const struct els_decision *d);

#endif
