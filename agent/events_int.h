/* Event stream internals shared by events.c (queues, threads, outputs), events_spool.c (the
 * collector's disk buffer) and events_tls.c (RFC 5425 transport). Not a public interface. */
#ifndef ELS_EVENTS_INT_H
#define ELS_EVENTS_INT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "events.h"

/* ---- spool (events_spool.c): one RFC 5424 message per line, oldest first ---- */

/* Longest spooled message: a syslog header (< 400 bytes) and an ELS_EVE_MAX line. */
#define EV_SPOOL_LINE_MAX 3072

struct ev_spool {
	int fd;
	char *path;
	uint64_t max;  /* bytes the file may hold */
	uint64_t size; /* bytes in the file */
	uint64_t rd;   /* bytes already sent from its start */
	uint64_t cut;  /* a partial last line found at open (a crash mid-write), removed */
};

/* Opens or creates path (0600) and keeps what an earlier run left in it, less a partial last
 * line (counted in cut, so that the next append does not glue onto it). 0 or -errno. */
int ev_spool_open(struct ev_spool *s, const char *path, uint64_t max);
void ev_spool_close(struct ev_spool *s);
/* Appends one message; -ENOSPC when it would pass max (the caller counts it shed), -errno
 * on a write error. */
int ev_spool_append(struct ev_spool *s, const char *msg, size_t n);
static inline bool ev_spool_empty(const struct ev_spool *s)
{
	return s->rd >= s->size;
}

/* Called with each valid spooled message; 0 to go on, <0 to stop (not sent: kept). */
typedef int (*ev_spool_send_fn)(void *ctx, const char *msg, size_t n);
/* Sends up to about budget bytes of what is spooled, oldest first. Lines that are not a
 * message this program writes (the file is outside input after a crash or an edit) are
 * skipped and added to *bad. Empties the file once everything is sent. 0, or the send
 * function's error. */
int ev_spool_send(struct ev_spool *s, size_t budget, ev_spool_send_fn fn, void *ctx, uint64_t *bad);

/* The spool reader's parser, for the fuzz target: looks at buf[0..len) for the next line.
 * Returns 1 with a valid message in [0, *msg_len) and *used bytes (line and newline) eaten,
 * 0 when no whole line is there yet (more input needed; *used = 0), -1 for an invalid line
 * (or one longer than EV_SPOOL_LINE_MAX, eaten up to its newline or all of buf) with *used
 * bytes to skip. */
int ev_spool_next(const char *buf, size_t len, size_t *msg_len, size_t *used);

/* ---- TLS transport (events_tls.c) ---- */

struct ev_tls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	const struct els_events_conf *c;
};

/* Loads the CA, client certificate and key (a key others can read is refused). 0, or -1 with
 * a message in err. */
int ev_tls_init(struct ev_tls *t, const struct els_events_conf *c, char *err, size_t n);
void ev_tls_free(struct ev_tls *t);
/* Connects and completes the handshake, verifying the collector's certificate against the CA
 * and its name, within timeout_ms. 0, or -1 with a message in err. */
int ev_tls_connect(struct ev_tls *t, unsigned timeout_ms, char *err, size_t n);
/* Writes all of buf within timeout_ms. 0, or -1 (the connection is then closed). */
int ev_tls_send(struct ev_tls *t, const char *buf, size_t n, unsigned timeout_ms);
/* False when the collector has closed or reset the connection (it never sends us data, so
 * anything readable is a close, an alert or a session ticket). */
bool ev_tls_alive(struct ev_tls *t);
void ev_tls_close(struct ev_tls *t);
static inline bool ev_tls_connected(const struct ev_tls *t)
{
	return t->ssl != NULL;
}

#endif
