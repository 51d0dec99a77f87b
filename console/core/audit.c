/* The console's audit trail (console_audit table). */
#include <stdio.h>
#include <stdlib.h>

#include "console.h"
#include "db.h"
#include "els/log.h"

void console_audit(struct console *c, const char *identity, const char *role, const char *action,
		   const char *target, const char *outcome, json_t *detail)
{
	char *d = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	const char *p[] = {identity, role, c->name, action, target, outcome, d};
	int rc = console_db_exec(c,
				 "INSERT INTO console_audit(identity, role, console, action, "
				 "target, outcome, detail) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)",
				 7, p);
	/* The record must exist somewhere: the journal when the database refuses it. */
	els_log(rc < 0 ? ELS_LL_ERROR : ELS_LL_INFO, "audit%s: %s/%s %s %s: %s%s%s",
		rc < 0 ? " (not in the database)" : "", identity ? identity : "-",
		role ? role : "-", action ? action : "-", target ? target : "-",
		outcome ? outcome : "-", d ? " " : "", d ? d : "");
	free(d);
	json_decref(detail);
}
