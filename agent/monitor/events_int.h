/* Event stream internals shared by events.c (taps, queues, start and stop), events_file.c and
 * events_syslog.c (the two outputs' sender threads), events_spool.c (the collector's disk
 * buffer) and events_tls.c (RFC 5425 transport). Not a public interface. */
#ifndef ELS_EVENTS_INT_H
#define ELS_EVENTS_INT_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "els/clock.h"
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

/* ---- queues and outputs (events.c: taps, queues, start and stop; events_file.c;
 * events_syslog.c) ---- */

#define EV_BATCH	  64	/* lines a sender takes off its queue at once */
#define EV_WAIT_MS	  500	/* a sender's longest sleep: bounds reconnect and reopen latency */
#define EV_CONNECT_MS	  5000	/* TCP connect and TLS handshake */
#define EV_SEND_MS	  5000	/* a collector that takes longer to accept a batch is dropped */
#define EV_BACKOFF_MIN_MS 1000	/* first reconnect attempt after a failure */
#define EV_BACKOFF_MAX_MS 10000 /* reconnect attempts back off up to this */
#define EV_SPOOL_CHUNK	  (256u * 1024) /* spool bytes sent per pass, between queue visits */
#define EV_STOP_MS	  3000		/* at stop: longest spent sending what is left */

/* One formatted line. */
struct ev_slot {
	uint64_t ts_ns;
	const char *type; /* the event_type: the syslog MSGID */
	uint8_t sev;	  /* RFC 5424 severity */
	uint16_t len;
	char text[ELS_EVE_MAX];
};

struct ev_state;

/* [I] set at start; [M] mu; [S] the sender thread's own. */
struct ev_out {
	const char *what;    /* [I] "file" or "syslog" */
	struct ev_state *st; /* [I] */
	pthread_mutex_t mu;
	pthread_cond_t cv;     /* [M] lines queued, stop or reopen */
	struct ev_slot *q;     /* [M] ring of cap slots */
	unsigned cap, head, n; /* [M] */
	uint64_t shed_q;       /* [M] lines the full queue refused, not yet seen by the sender */
	bool stop, reopen;     /* [M] */
	pthread_t thread;
	bool started;
	struct ev_slot *batch; /* [S] EV_BATCH slots */
	uint64_t shed;	       /* [S] shed lines not yet reported in a gap event */
	bool failing;	       /* [S] the last write or connect failed: logged once per streak */
	char why[320]; /* [S] the syslog output's last logged failure: a new one is logged */
	/* file */
	int fd;	    /* [S] */
	char *path; /* [I] */
	/* syslog */
	struct ev_tls tls;	    /* [S] */
	struct ev_spool spool;	    /* [S] */
	uint64_t next_try, backoff; /* [S] monotonic ms */
};

struct ev_state {
	struct ev_out *out[2];
	struct els_events_conf *conf; /* own copy: the TLS output points into it */
	char host[256];		      /* EVE host: agent_id or the host name */
	char sys_host[256]; /* the same as an RFC 5424 HOSTNAME (printable ASCII, no space) */
	int pid;
};

/* Waits up to ms for lines; copies up to EV_BATCH of them into o->batch and returns how
 * many; moves the queue's shed count into o->shed. *stop: stopping and nothing left;
 * *reopen: SIGUSR1 asked for a reopen. (events.c) */
unsigned ev_take(struct ev_out *o, unsigned ms, bool *stop, bool *reopen);
/* The gap event that reports o->shed lines. (events.c) */
void ev_gap_slot(struct ev_out *o, struct ev_slot *s);
/* Opens o->path for appending, logging a failure once per streak. (events_file.c) */
void ev_file_open(struct ev_out *o);
/* The sender threads' mains; arg is the struct ev_out. */
void *ev_file_main(void *arg);
void *ev_syslog_main(void *arg);

#endif
