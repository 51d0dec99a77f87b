/* The handlers elsd knows, by the name the config's chain list uses. Adding a handler means
 * one line here and one file beside this one. */
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
