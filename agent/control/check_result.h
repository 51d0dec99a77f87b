/* What the policy checker child (elsd --check-policy-fd) tells the main process, as text on
 * its stdout:
 *
 *   els-check 1
 *   msg <file>:<line>: <message>        0..ELS_CHECK_MAX_MSGS lines, printable ASCII only
 *   ok <sha256 hex> <handler> ...       the document is a valid policy: its chain
 *   fail <number of errors>             or: it is not (the msg lines say why, the first ones)
 *
 * Nothing else; at most ELS_CHECK_MAX_OUT bytes. The parent parses it strictly: anything
 * malformed is a failed check, never a valid policy. */
#ifndef ELS_CHECK_RESULT_H
#define ELS_CHECK_RESULT_H

#include <stdbool.h>
#include <stddef.h>

#include "els/diag.h"
#include "els/policy.h"

#define ELS_CHECK_MAX_MSGS 50
#define ELS_CHECK_MAX_MSG  400
#define ELS_CHECK_MAX_OUT  (ELS_CHECK_MAX_MSGS * (ELS_CHECK_MAX_MSG + 8) + 1024)

struct els_check_result {
	bool ok;
	char sha256[65];
	char chain[ELS_CHAIN_MAX][32];
	unsigned nchain;
	unsigned errors; /* as counted by the child (may exceed nmsgs) */
	char msgs[ELS_CHECK_MAX_MSGS][ELS_CHECK_MAX_MSG + 1];
	unsigned nmsgs;
};

/* Formats the result of checking a document (p NULL: failed, with d's messages) into buf
 * (ELS_CHECK_MAX_OUT bytes). Returns the length. */
size_t els_check_result_format(char *buf, const struct els_policy *p, const struct els_diag *d);

/* Parses the child's output. 0, or -EINVAL when it is not exactly the format above. */
int els_check_result_parse(const char *buf, size_t len, struct els_check_result *r);

#endif
