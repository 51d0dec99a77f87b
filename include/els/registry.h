/* The PPS registry view of a policy (DoDI 8551.01: every port, protocol and service declared,
 * with its justification, owner, category and mitigations): reports and attack-surface audits
 * read the header filter's permits through here. Off the packet path
 * (handlers/header_filter_report.c). */
#ifndef ELS_REGISTRY_H
#define ELS_REGISTRY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "els/addr.h"
#include "els/owner.h"

struct els_policy;

/* Prints the registry of p: every permit with its direction, protocol, ports and their IANA
 * service names (from services_path; NULL: /etc/services), addresses, mode, session gate,
 * expiry (marking expired ones), metadata, and hits: flows it admitted and last admission,
 * counted from the `admit` (and `would_drop`) records of the monitor file at monitor_path
 * (NULL or unreadable: "hits unknown", said once). Returns the number of expired permits, or
 * -ENOENT when the chain has no header_filter. */
int els_registry_report(const struct els_policy *p, const char *monitor_path,
			const char *services_path, FILE *out);

/* The same registry as one JSON object (docs/els-policy.md, "Registry as JSON"): path,
 * sha256, mode, hits_source (null when hits are unknown, with hits_error), and permits[], each
 * with id, line, dir, what, remote, local, mode, requires, grace_s, expires, expired,
 * justification, owner, category, mitigations, and hits, last_hit, would_drop when known.
 * Returns as els_registry_report. */
int els_registry_report_json(const struct els_policy *p, const char *monitor_path,
			     const char *services_path, FILE *out);

/* For audits: the id of the first enforcing, unexpired inbound permit that lets a new flow of
 * proto (IPPROTO_TCP or IPPROTO_UDP) reach local port `port` on local address `local` (family
 * 4/6; an all-zero address means "any local address", as a wildcard listener has), or NULL.
 * *restricted says whether that permit limits remotes or needs a session. */
const char *els_registry_inbound(const struct els_policy *p, uint8_t proto, uint8_t family,
				 const struct els_addr *local, uint16_t port, bool *restricted);

/* For audits: whether the permit named id binds its port to a service (service, exe, user,
 * group): 0 when it does not (or there is no such permit); 1 when owner o satisfies it; -1
 * when o does not. want (may be NULL) receives what the permit asks, "service=... exe=...". */
int els_registry_service_check(const struct els_policy *p, const char *id,
			       const struct els_owner *o, char *want, size_t wlen);

/* Calls fn for every port range an enforcing, unexpired inbound TCP/UDP permit names in
 * local_ports (permits without local_ports name no port and are skipped). */
void els_registry_inbound_ports(const struct els_policy *p,
				void (*fn)(void *arg, const char *id, uint8_t proto, uint16_t lo,
					   uint16_t hi),
				void *arg);

#endif
