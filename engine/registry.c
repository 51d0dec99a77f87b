/* The handlers elsd knows, by the name the config's chain list uses. Adding a handler takes
 * more than its line here and its file in handlers/: its drop reasons go into els/reason.h
 * (ELS_REASONS), and any per-worker state it keeps into els/wstate.h (one struct for every
 * handler until each owns its state through the handler contract); the management `stats`
 * keep a slot per handler, ELS_STATS_HANDLERS (16) in agent/packet/worker.h, so the list
 * below holds at most 16. */
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

const struct els_handler *els_handler_find(const char *name)
{
	for (const struct els_handler *const *h = registry; *h; h++)
		if (strcmp((*h)->name, name) == 0)
			return *h;
	return NULL;
}
