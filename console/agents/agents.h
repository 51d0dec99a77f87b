/* The agent port (agents_port.c) and agent sessions (agent_sess.c): agents dial in over TLS 1.3
 * with a certificate of role "agent" from agents.ca, say hello, then heartbeat; the console
 * records each in console_agents and sends them requests (console_agent_request, console.h). */
#ifndef ELS_CONSOLE_AGENTS_H
#define ELS_CONSOLE_AGENTS_H

#include <jansson.h>
#include <stddef.h>

#include "console.h"

struct console;

/* Listens on conf->agents. 0 or -errno with the reason logged. */
int console_agents_start(struct console *c);
/* Closes every session, marks this instance's agents disconnected, frees. */
void console_agents_free(struct console *c);
/* SIGHUP: reads the agent port's CA, certificate, key and CRL again for new connections
 * (the old ones stay on failure, 0 or -errno logged), then checks every session's
 * certificate against them and cuts (and audits) those no longer valid: revoked by the new
 * CRL, expired. */
int console_agents_reload(struct console *c);
/* Live sessions that said hello. */
size_t console_agents_count(struct console *c);
/* console_agent_request (console.h) for an agent connected to this instance only: -ENOENT
 * otherwise. The deployer and the relay use it (they must never forward). */
int console_agent_request_local(struct console *c, const char *agent_id, const char *cmd,
				json_t *args, const struct console_principal *on_behalf_of,
				unsigned timeout_s, console_agent_cb cb, void *arg);
/* Writes the state of the agents that sent frames since the last call (also every second
 * on its own). The deployer calls it first, so that it sees who is connected now. */
void console_agents_flush(struct console *c);
/* Cuts agent_id's session (it reconnects and is checked again). 0 or -ENOENT. */
int console_agents_disconnect(struct console *c, const char *agent_id, const char *why);

#endif
