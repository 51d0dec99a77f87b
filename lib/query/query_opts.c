/* The filter options of els-log and `elsctl log`, written once (include/els/query.h). */
#include <getopt.h>
#include <stddef.h>

#include "els/query.h"

static const struct {
	const char *name; /* the long option and the els_query_set filter */
	int val;	  /* the short option, or ELS_QUERY_OPT_* for a long-only one */
} filters[] = {
    {"since", 's'},
    {"until", 'u'},
    {"kind", 'k'},
    {"verdict", 'v'},
    {"addr", ELS_QUERY_OPT_ADDR},
    {"port", 'p'},
    {"reason", 'r'},
    {"handler", 'H'},
    {"limit", 'l'},
    {"before-seq", ELS_QUERY_OPT_BEFORE},
    {"after-seq", ELS_QUERY_OPT_AFTER},
};
#define NFILTERS (sizeof(filters) / sizeof(filters[0]))
_Static_assert(NFILTERS == ELS_QUERY_NOPTS, "ELS_QUERY_NOPTS counts the filters");

unsigned els_query_longopts(struct option *lo)
{
	for (size_t i = 0; i < NFILTERS; i++)
		lo[i] = (struct option){filters[i].name, required_argument, NULL, filters[i].val};
	return NFILTERS;
}

const char *els_query_opt_name(int val)
{
	for (size_t i = 0; i < NFILTERS; i++)
		if (filters[i].val == val)
			return filters[i].name;
	return NULL;
}
