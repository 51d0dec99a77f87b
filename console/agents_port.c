/* Skeleton: the agent port arrives in the next commit. */
#include <errno.h>

#include "agents.h"
#include "console.h"

int console_agents_start(struct console *c)
{
	(void)c;
	return 0;
}

void console_agents_free(struct console *c)
{
	(void)c;
}

size_t console_agents_count(struct console *c)
{
	(void)c;
	return 0;
}

int console_agents_disconnect(struct console *c, const char *agent_id, const char *why)
{
	(void)c;
	(void)agent_id;
	(void)why;
	return -ENOENT;
}

int console_agent_request(struct console *c, const char *agent_id, const char *cmd, json_t *args,
			  const struct console_principal *on_behalf_of, unsigned timeout_s,
			  console_agent_cb cb, void *arg)
{
	(void)c;
	(void)agent_id;
	(void)cmd;
	(void)on_behalf_of;
	(void)timeout_s;
	(void)cb;
	(void)arg;
	json_decref(args);
	return -ENOENT;
}

bool console_agent_connected(struct console *c, const char *agent_id)
{
	(void)c;
	(void)agent_id;
	return false;
}
