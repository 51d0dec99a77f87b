/* Stable names of reasons (see include/els/reason.h). */
#include "els/reason.h"

static const char *const reason_names[] = {
#define ELS_X_NAME(e, s) [ELS_R_##e] = s,
	ELS_REASON_LIST(ELS_X_NAME)
#undef ELS_X_NAME
};

const char *els_reason_name(unsigned reason)
{
	return reason < ELS_R__COUNT ? reason_names[reason] : "?";
}
