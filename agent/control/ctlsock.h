/* The local control socket: a UNIX stream socket (default /run/elsd/control.sock, mode 0600,
 * created by elsd's main process) through which root asks the running daemon to reload and
 * waits for the outcome: `elsd --reload`, which the unit's ExecReload runs, so that
 * `systemctl reload elsd` fails when the new config is rejected. Only root may ask: the peer's
 * uid is read from the kernel (SO_PEERCRED), whatever the socket's mode.
 *
 * The protocol is one request line ("reload" or "status") and an answer of text lines: the
 * first is "ok ..." or "error ...", the others are details (e.g. one FILE:LINE: message each).
 * The main thread serves it from its poll loop; a client that does not send its request
 * within a second is dropped, so the loop never waits long on one. */
#ifndef ELS_CTLSOCK_H
#define ELS_CTLSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELS_CTLSOCK_DEFAULT    "/run/elsd/control.sock"
#define ELS_CTLSOCK_ANSWER_MAX 4096

/* The outcome of the last reload (SIGHUP or the control socket), for `elsctl status` and the
 * service's STATUS= line. [M]: written and read on the main thread only. */
struct els_reload_result {
	bool done;	     /* false until the first reload */
	bool ok;	     /* the new config was applied */
	uint64_t time_s;     /* wall-clock time of the attempt (seconds since the epoch) */
	uint32_t generation; /* the generation running after it */
	char reason[256];    /* "generation N sha256 X", or the first FILE:LINE: message */
};

struct els_ctlsock;

/* Creates the socket at path (its directory is created 0755 if missing; a stale socket left
 * by a dead elsd is replaced; a live one is not). NULL after logging why: the daemon runs on
 * without it. */
struct els_ctlsock *els_ctlsock_open(const char *path);
/* Removes the socket file and frees s (NULL is fine). */
void els_ctlsock_close(struct els_ctlsock *s);
/* The listening descriptor to poll for POLLIN, or -1 for NULL. */
int els_ctlsock_fd(const struct els_ctlsock *s);

/* Answers one request: writes the answer's text (lines, the first "ok ..." or "error ...")
 * into ans (n bytes). */
typedef void els_ctlsock_fn(void *arg, const char *request, char *ans, size_t n);
/* Accepts one pending client, checks it is root, reads its request, answers it through fn and
 * closes the connection. Never blocks for more than about a second. */
void els_ctlsock_serve(struct els_ctlsock *s, els_ctlsock_fn *fn, void *arg);

/* Client side: sends request to the daemon at path, waits up to timeout_ms for the whole
 * answer and copies it into ans (n bytes, NUL-terminated). 0, or -errno (-ETIMEDOUT). */
int els_ctlsock_request(const char *path, const char *request, char *ans, size_t n, int timeout_ms);

#endif
