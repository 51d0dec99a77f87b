/* Between the endpoint's serving loop (mgmt.c), its connections (mgmt_conn.c) and its
 * admission and session rules (mgmt_sessions.c): the connection and endpoint state, endpoint
 * process only. */
#ifndef ELS_MGMT_INT_H
#define ELS_MGMT_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "mgmt.h"

enum conn_state { C_HANDSHAKE, C_READING, C_WAITING, C_WRITING };

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state st;
	uint64_t accepted; /* ms, monotonic: the eviction order among pre-auth connections */
	uint64_t deadline; /* ms, monotonic; 0 = none */
	time_t not_after;  /* the certificate's end, once authenticated */
	bool authed;	   /* the handshake completed */
	uint32_t token;	   /* request at the main process (C_WAITING) */
	short events;	   /* what TLS waits for */
	bool close_after;  /* close once the response is written */
	int role;
	char identity[65];
	char peer[64];
	uint8_t *der; /* the peer's certificates as forwarded with each request */
	size_t derlen;
	size_t held; /* bytes of the buffer_mb budget this connection holds */
	size_t skip; /* body bytes of a refused (busy) frame still to read and drop */
	struct els_mgmt_frame fr;
	uint8_t *out;
	size_t outlen, outoff;
	/* The console connection (dialout.c): the agent is the TLS client, requests carry
	 * on_behalf_of, and hello/heartbeat frames go out between responses. */
	bool dial;
	bool hello_sent;
	uint8_t *push; /* a hello/heartbeat frame being written, never inside a response */
	size_t pushlen, pushoff;
	uint64_t push_since; /* ms: when the frame was queued (a stalled write is a loss) */
	uint64_t next_beat;  /* ms: the next heartbeat */
	char dial_why[160];  /* why the console connection ends, once known */
};

struct endpoint {
	const struct els_mgmt_conf *c;
	struct els_mgmt_tls *tls;
	struct els_ipc *ipc;
	int lfd;
	struct conn **conns;
	unsigned nconns;
	uint32_t next_token;
	size_t held, budget; /* request/response bytes held across clients, and the cap */
	uint64_t audit_second;
	unsigned audit_count, audit_suppressed;
	struct conn *dial; /* the console connection, or NULL */
	char *state;	   /* the last ELS_IPC_DIAL_STATE body (a JSON object) */
};

uint64_t els_mgmt_now_ms(void);
/* A monitor event about a client's session: "mgmt CN/ROLE@PEER what: outcome". */
void els_mgmt_audit_session(struct endpoint *e, const struct conn *k, const char *what,
			    const char *outcome);
/* A refusal before authentication, at most AUDIT_PER_SEC a second. */
void els_mgmt_audit_limited(struct endpoint *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Closes and frees e->conns[i]; the last entry moves into its place. */
void els_mgmt_conn_free(struct endpoint *e, unsigned i);

/* Queues body (taken; NULL: internal) as k's response frame (mgmt_conn.c). */
void els_mgmt_respond(struct endpoint *e, struct conn *k, char *body);
/* A checked request (its JSON taken) to the main process as an IPC message of type
 * (ELS_IPC_REQUEST, ELS_IPC_CONSOLE_REQUEST) with k's certificates and address; k then waits
 * for the answer, or is answered "unavailable" at once (mgmt_conn.c). */
void els_mgmt_forward(struct endpoint *e, struct conn *k, struct els_mgmt_req *req,
		      unsigned type);
/* Advances k as far as it goes without blocking; false: close it (mgmt_conn.c). */
bool els_mgmt_conn_step(struct endpoint *e, struct conn *k);

/* ---- dialout.c (endpoint side of the console connection) ---- */

/* A connected socket from the main process (ELS_IPC_DIAL): starts the TLS client on it,
 * replacing a previous console connection. Takes fd. */
void els_dial_start(struct endpoint *e, int fd, const char *addr);
/* The handshake finished: checks the console's role (the CA, CRL and name were checked by
 * OpenSSL), reports "up" and sends hello. False: close. */
bool els_dial_authenticated(struct endpoint *e, struct conn *k);
/* A complete request frame from the console: on_behalf_of gives the role, the main process
 * gets it as ELS_IPC_CONSOLE_REQUEST. */
void els_dial_request(struct endpoint *e, struct conn *k);
/* Writes what is left of the hello/heartbeat frame: 1 written, 0 would block (k->events
 * set), -1 broken. */
int els_dial_push(struct conn *k);
/* Deadlines of the console connection (handshake, heartbeat due, a stalled write, the
 * certificate's end), called every turn of the loop. */
void els_dial_tick(struct endpoint *e);
/* A new state from the main process (taken). */
void els_dial_state(struct endpoint *e, char *json);
/* A new console CRL: closes the console connection if its certificate fails it now. */
void els_dial_recheck(struct endpoint *e);
/* Closes the console connection and tells the main process why ("down REASON"). */
void els_dial_close(struct endpoint *e, const char *why);

/* ---- mgmt_sessions.c ---- */

/* Makes room for a new connection from peer: true when it may be taken (see mgmt.c). */
bool els_mgmt_admit(struct endpoint *e, const char *peer);
/* Checks every authenticated session against the current CRL; closes those that fail. */
void els_mgmt_recheck_sessions(struct endpoint *e);

#endif
