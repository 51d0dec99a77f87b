/* The two-person rule of change control: who may approve a proposed policy version. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "change.h"

int change_may_approve(const struct change_rules *r, const char *state, const char *author,
		       const char *approver, const char *const *approved_by, size_t napproved,
		       char *reason, size_t len)
{
	if (strcmp(state, "proposed") != 0) {
		snprintf(reason, len,
			 "the version is %s, not proposed: only a proposal is approved", state);
		return -ESTALE;
	}
	if (r->two_person && strcmp(author, approver) == 0) {
		snprintf(reason, len,
			 "two-person rule: '%s' proposed this version and may not approve it; "
			 "another admin must",
			 approver);
		return -EPERM;
	}
	for (size_t i = 0; i < napproved; i++)
		if (strcmp(approved_by[i], approver) == 0) {
			snprintf(reason, len, "'%s' has already approved this version", approver);
			return -EALREADY;
		}
	reason[0] = 0;
	return 0;
}

bool change_approved_enough(const struct change_rules *r, size_t napproved)
{
	return napproved >= (r->approvals ? r->approvals : 1);
}
