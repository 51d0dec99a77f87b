/* Which management requests become monitor rows: every refusal and every request that
 * changes something, each time; a successful read (status, stats, flows, log, policy.get,
 * list.get) at most once per identity and role per window, the next one carrying how many
 * were left out. Health checks poll `status` every few seconds; one row per poll would bury
 * the rows that matter. See docs/management.md, "Audit". */
#ifndef ELS_CONTROL_AUDIT_H
#define ELS_CONTROL_AUDIT_H

#include <stdbool.h>
#include <stdint.h>

#include "els/clock.h"

#define ELS_AUDIT_READ_WINDOW_NS (10 * 60 * ELS_NS_PER_S) /* 10 minutes */
#define ELS_AUDIT_READ_SLOTS	 64 /* identities remembered; the oldest gives way */

struct els_audit_reads {
	struct els_audit_read_slot {
		char identity[256];
		int role;
		bool used;
		uint64_t recorded_ns; /* monotonic time of the identity's last recorded read */
		unsigned unrecorded;  /* reads left out since then */
	} slot[ELS_AUDIT_READ_SLOTS];
};

/* A command that only reads (and so may be left out when it succeeds). */
bool els_audit_is_read(const char *cmd);

/* Is this successful read of identity/role due a row at now_ns (monotonic)? When it is,
 * *left_out is how many of its reads were not recorded before it; when it is not, it is
 * counted. A slot given up for a new identity with reads left out is described in
 * evicted/evicted_role/evicted_count (count 0: none), for the caller to record. */
bool els_audit_read_due(struct els_audit_reads *a, const char *identity, int role, uint64_t now_ns,
			unsigned *left_out, char evicted[256], int *evicted_role,
			unsigned *evicted_count);

#endif
