/* els-console's shared context: what every module of the daemon (main, db, http, agents port,
 * deployer, and the api_* and web_* route files) receives. One event loop, one thread: nothing
 * here is locked, and every callback runs on c->base.
 *
 * Ownership: main.c creates the struct console and everything it points to, and frees them at
 * exit in the reverse order. Modules keep their private state behind the opaque pointers. */
#ifndef ELS_CONSOLE_H
#define ELS_CONSOLE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "conf.h"

struct event_base;
struct console_http;	 /* http.c */
struct console_agents;	 /* agents_port.c */
struct console_deployer; /* deployer.c */
struct console_db;	 /* db.c */
struct console_relay;	 /* relay.c */

struct console {
	struct event_base *base;
	struct console_conf *conf; /* never changes after start */
	const char *name;      /* this instance's name (conf->name): console_agents.connected_to */
	struct console_db *db; /* db.h: console_db_query() and friends; PGconn inside */
	struct console_http *http;
	struct console_agents *agents;
	struct console_deployer *deployer;
	struct console_relay *relay;
};

/* Who asked: a certificate identity (CN) and its role (ELS_ROLE_*, include/els/mgmt.h). */
struct console_principal {
	const char *identity;
	int role;
};

/* ---- files.c ---- */

/* Reads a whole regular file (at most max bytes) into a malloc'd NUL-terminated buffer:
 * 0, or -errno (-EFBIG when larger than max, -EINVAL when not a regular file). */
int console_read_file(const char *path, size_t max, char **out, size_t *len);

/* ---- audit.c ---- */

/* Records one console action or refusal in console_audit (identity, role, this instance,
 * action, target, outcome, detail). detail (may be NULL) is stolen. A failure to write is
 * logged with the whole record, so the trail is never silently short. */
void console_audit(struct console *c, const char *identity, const char *role, const char *action,
		   const char *target, const char *outcome, json_t *detail);

/* ---- agent_sess.c: requests to connected agents ---- */

/* The answer to console_agent_request: response is the agent's response frame (borrowed, valid
 * during the call; {"id","ok",...}), or NULL when there is none (agent gone, timed out, refused
 * the frame); error then says why. Called exactly once, always from the event loop, never from
 * inside console_agent_request itself. */
typedef void (*console_agent_cb)(struct console *c, void *arg, json_t *response, const char *error);

/* Sends {"v":1,"id":N,"cmd":cmd,"args":args,"on_behalf_of":{identity,role}} to agent_id.
 * When another live instance holds the agent, the request goes through the database to it
 * (relay.c: console_agent_requests + NOTIFY) and its answer comes back the same way. args
 * (may be NULL: {}) is stolen. on_behalf_of NULL means the console itself, as auditor.
 * timeout_s 0: agents.request_timeout_s. Returns 0 (cb will be called), -ENOENT when no live
 * instance holds the agent (cb is not called), -EIO (database) or -ENOMEM. The agent answers
 * requests one at a time, in order. */
int console_agent_request(struct console *c, const char *agent_id, const char *cmd, json_t *args,
			  const struct console_principal *on_behalf_of, unsigned timeout_s,
			  console_agent_cb cb, void *arg);

/* Whether agent_id holds a session with this instance now. */
bool console_agent_connected(struct console *c, const char *agent_id);

#endif
