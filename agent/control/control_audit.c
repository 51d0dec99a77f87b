/* The read-request limiter of the management audit (control_audit.h). */
#include <stdio.h>
#include <string.h>

#include "control_audit.h"
#include "els/mgmt.h"

bool els_audit_is_read(const char *cmd)
{
	/* policy.validate only reads too, but it is no poll: it runs the checker on a
	 * document someone wrote, which is worth a row each time (it is no ELS_MGMT_CMD_READ). */
	return els_mgmt_command_is(cmd, ELS_MGMT_CMD_READ);
}

bool els_audit_read_due(struct els_audit_reads *a, const char *identity, int role, uint64_t now_ns,
			unsigned *left_out, char evicted[256], int *evicted_role,
			unsigned *evicted_count)
{
	struct els_audit_read_slot *s = NULL, *oldest = NULL;

	*left_out = 0;
	*evicted_count = 0;
	for (unsigned i = 0; i < ELS_AUDIT_READ_SLOTS; i++) {
		struct els_audit_read_slot *t = &a->slot[i];

		if (t->used && t->role == role && strcmp(t->identity, identity) == 0) {
			s = t;
			break;
		}
		if (!oldest || !t->used || (oldest->used && t->recorded_ns < oldest->recorded_ns))
			oldest = t;
	}
	if (s && now_ns - s->recorded_ns < ELS_AUDIT_READ_WINDOW_NS) {
		s->unrecorded++;
		return false;
	}
	if (!s) {
		s = oldest;
		if (s->used && s->unrecorded) {
			snprintf(evicted, 256, "%s", s->identity);
			*evicted_role = s->role;
			*evicted_count = s->unrecorded;
		}
		memset(s, 0, sizeof(*s));
		s->used = true;
		s->role = role;
		snprintf(s->identity, sizeof(s->identity), "%s", identity);
	}
	*left_out = s->unrecorded;
	s->unrecorded = 0;
	s->recorded_ns = now_ns;
	return true;
}
