/* Canary selection for staged deployment: which agents of a group take a new policy first. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "change.h"

#define CANARY_MAX_AGENTS 100000u

int change_canary_parse(const char *spec, struct change_canary *out, const char **why)
{
	char *end;
	unsigned long v;

	if (!spec || !*spec) {
		*why = "empty: give a number of agents (\"2\") or a percentage (\"10%\")";
		return -EINVAL;
	}
	if (spec[0] < '0' || spec[0] > '9') {
		*why = "not a number of agents (\"2\") or a percentage (\"10%\")";
		return -EINVAL;
	}
	errno = 0;
	v = strtoul(spec, &end, 10);
	out->percent = *end == '%';
	if (out->percent)
		end++;
	if (errno || *end) {
		*why = "not a number of agents (\"2\") or a percentage (\"10%\")";
		return -EINVAL;
	}
	if (v == 0) {
		*why = "a canary of 0 agents would skip the health gate: at least 1 (or 1%)";
		return -EINVAL;
	}
	if (out->percent ? v > 100 : v > CANARY_MAX_AGENTS) {
		*why = out->percent ? "a percentage is at most 100%" : "at most 100000 agents";
		return -EINVAL;
	}
	out->value = (unsigned)v;
	return 0;
}

unsigned change_canary_count(const struct change_canary *c, unsigned n)
{
	unsigned k;

	if (n == 0)
		return 0;
	if (c->percent)
		k = (unsigned)(((unsigned long long)n * c->value + 99) / 100);
	else
		k = c->value;
	if (k < 1)
		k = 1;
	return k > n ? n : k;
}

static int pick_cmp(const void *a, const void *b)
{
	const struct change_agent_pick *x = a, *y = b;

	if (x->connected != y->connected)
		return x->connected ? -1 : 1;
	return strcmp(x->agent_id, y->agent_id);
}

void change_canary_assign(const struct change_canary *c, struct change_agent_pick *a, size_t n)
{
	unsigned k = change_canary_count(c, (unsigned)n);

	if (n)
		qsort(a, n, sizeof(*a), pick_cmp);
	for (size_t i = 0; i < n; i++)
		a[i].wave = i < k ? 0 : 1;
}
