/* elsd -n: whether service-bound permits will see their sockets' owners (docs/els-policy.md,
 * "Privileges"). */
#ifndef ELS_OWNER_CAPS_H
#define ELS_OWNER_CAPS_H

#include <stdio.h>

#include "els/policy.h"

/* One "FILE:LINE: warning: ..." to out for every permit bound by service= or exe= when the
 * packet workers will lack CAP_DAC_READ_SEARCH or CAP_SYS_PTRACE (this process lacks them,
 * or the policy's `user` drop keeps CAP_NET_ADMIN alone). Returns the number of warnings. */
unsigned els_owner_caps_lint(const struct els_policy *p, FILE *out);

#endif
