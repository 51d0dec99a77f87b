/* elsd dials its console (docs/console-protocol.md). The main process makes and connects the
 * TCP socket, because the endpoint may make none (seccomp, Landlock: mgmt_seccomp.c), never
 * stalling its loop: a non-blocking connect polled with everything else, names resolved with
 * getaddrinfo_a. The connected socket goes to the endpoint (ELS_IPC_DIAL, SCM_RIGHTS), which
 * does the TLS and the protocol (dialout.c) and says "up" or "down". After a failure or a loss
 * the next attempt waits a full-jitter exponential back-off: uniform in [1 s, cap], the cap
 * doubling from 1 s to 60 s with each failure in a row, back to 1 s once a connection was up. */
#ifndef ELS_DIALOUT_H
#define ELS_DIALOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "els/mgmt.h"

struct els_dialout;
struct els_policy;
struct els_worker;

/* NULL when c dials nothing (or out of memory). Copies what it needs of c (the settings are
 * read at start only; the policy holding c is freed at a reload). */
struct els_dialout *els_dialout_new(const struct els_mgmt_conf *c);
void els_dialout_free(struct els_dialout *d);

/* The descriptor to poll (-1: none) and its events; the loop's longest sleep (ms, -1: none). */
int els_dialout_fd(const struct els_dialout *d);
short els_dialout_events(const struct els_dialout *d);
int els_dialout_timeout_ms(const struct els_dialout *d);
/* Every turn of the loop, with the poll result of els_dialout_fd (0 if none): starts due
 * attempts, finishes connects. Returns a connected socket for the endpoint (the caller passes
 * it and closes it, then calls els_dialout_handed), or -1. */
int els_dialout_step(struct els_dialout *d, short revents);
/* The socket went to the endpoint (ok) or could not (then a retry is scheduled). */
void els_dialout_handed(struct els_dialout *d, bool ok);
/* The endpoint's word: up (the console's certificate was accepted) or down with why; also
 * down when the endpoint itself went away. Returns true when the monitor should record it
 * (a change of state, not every failed retry). */
bool els_dialout_report(struct els_dialout *d, bool up, const char *why);
/* Due to send the state (every heartbeat_s, and just before a socket is handed over). */
bool els_dialout_state_due(struct els_dialout *d);
/* console.address and console.group (NULL: none) as read at start. */
const char *els_dialout_address(const struct els_dialout *d);
const char *els_dialout_group(const struct els_dialout *d);
/* A socket went to the endpoint (handed over, or up). */
bool els_dialout_connected(const struct els_dialout *d);

/* ---- dialout_state.c ---- */

/* What hello and heartbeat say about the agent (docs/console-protocol.md). */
struct els_dialout_state_in {
	const char *group;	    /* console.group, or NULL */
	const struct els_policy *p; /* running */
	const struct els_worker *workers;
	unsigned nq;
	int rules_ok; /* 1, 0, or -1 unknown (no rule watch has said) */
	bool monitor_ok;
};
/* The state as a JSON object (malloc'd text), or NULL. */
char *els_dialout_state_json(const struct els_dialout_state_in *in);

#endif
