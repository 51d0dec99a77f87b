/* The handlers elsd knows, by the name the config's chain list uses. Adding a handler takes
 * its line here, its file in handlers/ (with its per-worker state, if any, behind its
 * worker_init/worker_free hooks) and its drop reasons in els/reason.h (ELS_REASONS); the
 * management `stats` keep a slot per handler, ELS_STATS_HANDLERS (16) in
 * agent/packet/worker.h, so the list below holds at most 16. */
#include <stdlib.h>
#include <string.h>

#include "els/handler.h"

extern const struct els_handler els_handler_iplist;
extern const struct els_handler els_handler_header_filter;
extern const struct els_handler els_handler_tracker;
extern const struct els_handler els_handler_anomaly;
extern const struct els_handler els_handler_scan;

static const struct els_handler *const registry[] = {
	&els_handler_iplist,
	&els_handler_tracker,
	&els_handler_header_filter,
	&els_handler_anomaly,
	&els_handler_scan,
	NULL,
};
_Static_assert(sizeof(registry) / sizeof(registry[0]) - 1 <= 16,
	       "the stats keep 16 handler slots (ELS_STATS_HANDLERS)");

const struct els_handler *const *els_handler_all(void)
{
	return registry;
}

const struct els_handler *els_handler_flow_stage(void)
{
	for (const struct els_handler *const *h = registry; *h; h++)
		if ((*h)->flags & ELS_HANDLER_FLOW_STAGE)
			return *h;
	return NULL;
}

const struct els_handler *els_handler_find(const char *name)
{
	for (const struct els_handler *const *h = registry; *h; h++)
		if (strcmp((*h)->name, name) == 0)
			return *h;
	return NULL;
}

#define NREG (sizeof(registry) / sizeof(registry[0]) - 1)

void **els_handler_states_new(const struct els_worker_env *env)
{
	void **st = calloc(NREG, sizeof(*st));

	if (!st)
		return NULL;
	for (unsigned i = 0; i < NREG; i++)
		if (registry[i]->worker_init && !(st[i] = registry[i]->worker_init(env))) {
			els_handler_states_free(st);
			return NULL;
		}
	return st;
}

void els_handler_states_free(void **hstates)
{
	if (!hstates)
		return;
	for (unsigned i = 0; i < NREG; i++)
		if (registry[i]->worker_free && hstates[i])
			registry[i]->worker_free(hstates[i]);
	free(hstates);
}
