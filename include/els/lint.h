/* Policy lint: what `elsd -n` warns about in a valid configuration because it is legal but
 * almost never meant (handlers/header_filter_lint.c). Off the packet path. */
#ifndef ELS_LINT_H
#define ELS_LINT_H

#include <stdio.h>

struct els_policy;

/* Writes one "FILE:LINE: warning: ..." line to out for each: an inbound permit with proto
 * "any" or that opens every local TCP/UDP port; a permit that matches exactly the traffic of
 * an earlier one (duplicate) or only traffic an earlier, broader one already matches
 * (shadowed: it never matches); a permit without an id; two strings that libconfig joined for
 * want of a comma; a syn_guard port that no permit opens to every source. Returns the number
 * of warnings. */
unsigned els_policy_lint(const struct els_policy *p, FILE *out);

#endif
