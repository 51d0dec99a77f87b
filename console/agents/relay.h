/* Requests to agents held by another console instance, through the shared database (the
 * table console_agent_requests, NOTIFY els_agent_req / els_agent_resp). No instance talks to
 * another directly: the database is the only thing they share, and it is already trusted
 * with every agent's state. */
#ifndef ELS_CONSOLE_RELAY_H
#define ELS_CONSOLE_RELAY_H

#include <jansson.h>

#include "console.h"

int console_relay_start(struct console *c);
void console_relay_free(struct console *c);
/* console_agent_request for an agent this instance does not hold (console.h says the rest). */
int console_relay_request(struct console *c, const char *agent_id, const char *cmd, json_t *args,
			  const struct console_principal *on_behalf_of, unsigned timeout_s,
			  console_agent_cb cb, void *arg);

#endif
