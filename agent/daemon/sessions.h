/* The administrator's own session, before a policy cuts it: the established TCP connections of
 * this host (from the kernel, over sock_diag) judged against a policy as the packet that
 * opened each of them would be. elsd runs it at start, on every reload or apply, and `elsd -n`
 * runs it, so that an enforcing policy that would cut the SSH session it is deployed over
 * says so by name before and when it does (docs/install.md, "A safe first install"). */
#ifndef ELS_SESSIONS_H
#define ELS_SESSIONS_H

#include <stdbool.h>

#include "els/policy.h"

/* Called once per established connection p does not grant. msg names it, e.g. "an
 * established ssh session from 198.18.0.1:51234 to port 22 is not permitted by the new policy
 * and will be cut"; observe is true when p only records it (observe mode) and cuts nothing
 * until it enforces. */
typedef void els_sessions_fn(void *arg, const char *msg, bool observe);

/* Checks every established TCP connection (IPv4 and IPv6, loopback left out: the steering
 * rules accept it) against p. `what` names the policy in messages ("the new policy").
 * Returns how many p would cut while enforcing (observe-only ones are reported but not
 * counted), or -errno when the kernel could not be asked. Off the packet path. */
int els_sessions_check(const struct els_policy *p, const char *what, els_sessions_fn *fn,
		       void *arg);

/* For the daemon: runs the check and logs each connection p would cut as a warning with an
 * ELS_ALERT event=session_cut, each it would cut once enforcing as info; the first 20 of each
 * by name, then a count, so that a big cut cannot flood the journal. */
void els_sessions_warn(const struct els_policy *p, const char *what);

#endif
