/* Policy generations published to the workers without locks (generation.c): the reloading
 * thread publishes, each worker picks the current one up between packets. */
#ifndef ELS_GENERATION_H
#define ELS_GENERATION_H

#include <stdbool.h>
#include <stdint.h>

#include "els/policy.h"

struct els_worker;

/* The published generation. */
const struct els_policy *els_gen_current(void);
/* Publishes p as the next generation; returns the previous one, which the caller frees once
 * els_gen_quiescent() says no worker can still be reading it. */
const struct els_policy *els_gen_publish(struct els_policy *p);
/* Waits until every worker has picked up generation gen (or timeout_ms passed): true then. */
bool els_gen_quiescent(struct els_worker *const *workers, unsigned n, uint32_t gen,
		       unsigned timeout_ms);

#endif
