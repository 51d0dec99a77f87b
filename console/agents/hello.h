/* The agent's hello and heartbeat frames (CONSOLE.md, "Agent <-> console protocol"), checked
 * into the row console_agents keeps. Pure: no I/O, so the fuzz target drives it directly. */
#ifndef ELS_CONSOLE_HELLO_H
#define ELS_CONSOLE_HELLO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

enum console_frame_kind {
	CONSOLE_FRAME_WRONG_ID = -2, /* agent_id differs from the certificate: audited */
	CONSOLE_FRAME_BAD = -1,
	CONSOLE_FRAME_HELLO = 1,
	CONSOLE_FRAME_HEARTBEAT = 2,
	CONSOLE_FRAME_RESPONSE = 3,
};

#define CONSOLE_HELLO_MAX_LIST 10000 /* listeners, permits */

/* Classifies one frame body from an agent whose certificate CN is cn. For a hello or
 * heartbeat, *row gets a new JSON object with the console_agents columns the agent reports
 * (agent_id, host, grp, version, policy_sha256, policy_generation, managed, rules_ok,
 * monitor_ok, listeners, permits, counters, agent_time_epoch), absent fields left out; for a
 * response, *row gets the whole parsed frame. The caller json_decrefs *row. CONSOLE_FRAME_BAD
 * with why set (and *row NULL) for anything else: not JSON, not an object, v != 1, a type it
 * does not know, agent_id different from cn, a field of the wrong type or too long. */
int console_frame_parse(const char *body, size_t len, const char *cn, json_t **row, char *why,
			size_t whyn);

/* "2026-12-05T01:00:00Z" (optionally with a fraction of a second) -> seconds since the epoch.
 * 0 or -EINVAL for anything else, including dates that do not exist. */
int console_parse_utc(const char *s, double *out);

#endif
