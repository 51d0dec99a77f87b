/* Private to agents_port.c and agent_sess.c. One event loop: no locks. */
#ifndef ELS_CONSOLE_AGENTS_INT_H
#define ELS_CONSOLE_AGENTS_INT_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "agents.h"
#include "console.h"
#include "els/mgmt.h"

#define CONSOLE_HELLO_MAX_FRAME (1u << 20) /* before hello: no 16 MiB bodies */

/* A request sent to an agent and not yet answered; queued in the order sent (the agent
 * answers in order). timed_out: its callback already ran; the answer is dropped. */
struct pending_req {
	struct pending_req *next;
	int64_t id;
	console_agent_cb cb;
	void *arg;
	struct event *timer;
	struct agent_sess *s;
	bool timed_out;
};

struct agent_sess {
	struct console *c;
	struct agent_sess *prev, *next; /* every session */
	struct agent_sess *hnext;	/* by id, once it said hello */
	struct agent_sess *pre_prev, *pre_next; /* before hello: oldest at the tail */
	bool in_pre;
	struct bufferevent *bev;
	struct event *deadline; /* handshake + hello must be done by then */
	char peer[64];
	char id[128]; /* certificate CN */
	bool authed;  /* TLS done, role agent */
	bool hello;
	bool closing;
	unsigned busy; /* inside a callback: free later */
	double cert_not_after, connected_since;
	struct els_mgmt_frame fr;
	struct pending_req *q_head, *q_tail;
	int64_t next_id;
};

struct console_agents {
	struct console *c;
	struct evconnlistener *lst;
	SSL_CTX *ctx;
	struct agent_sess *all;
	size_t nall, npreauth, nhello;
	struct agent_sess *pre_head, *pre_tail; /* sessions before hello, newest first */
	struct agent_sess **buckets;
	size_t nbuckets;
	json_t *dirty; /* agent_id -> row to upsert (connected, last state) */
	json_t *gone;  /* agent_id -> true: disconnected from this instance */
	struct event *flush_ev, *tick_ev;
	unsigned refused_logged; /* refusals logged this second */
	time_t refused_sec;
};

/* agents_port.c */
struct agent_sess *agents_find(struct console_agents *a, const char *id);
void agents_index(struct console_agents *a, struct agent_sess *s);
void agents_unindex(struct console_agents *a, struct agent_sess *s);
void agents_mark_state(struct console_agents *a, struct agent_sess *s, json_t *row);
void agents_mark_gone(struct console_agents *a, struct agent_sess *s);
/* Logs at most 20 refusals a second, then counts. */
void agents_log_refusal(struct console_agents *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Sessions before hello: a list, so that a full port gives way to a new connection by
 * closing the oldest unauthenticated one (an idle flood cannot keep agents out). */
void agents_pre_add(struct console_agents *a, struct agent_sess *s);
void agents_pre_del(struct console_agents *a, struct agent_sess *s);

/* agent_sess.c */
void sess_start(struct console_agents *a, evutil_socket_t fd, const char *peer);
void sess_close(struct agent_sess *s, const char *why);

#endif
