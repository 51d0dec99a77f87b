/* The management endpoint's serving loop. It is the only part of elsd that parses bytes from
 * the network besides packet headers, so it runs as a program of its own (mgmt_exec.c), as
 * relayd's relay process does, unprivileged and confined. It authenticates clients, checks
 * each request's envelope, arguments and the client's role itself, and hands well-formed
 * requests to the main process with the client's certificate, from which the main process
 * decides the role again on its own. One poll loop, non-blocking TLS, a deadline per
 * connection: a slow or hostile client holds one slot, never the loop.
 *
 * Before authentication a connection is cheap to make, so it gets little: a short handshake
 * deadline, a per-address cap, and only max_clients - reserved_slots slots; when those are
 * full, the pre-auth connection that has made the least progress (fewest bytes sent, oldest
 * first) is evicted for the new one, so a flood of idle connections cannot keep a console
 * out. After it, a session lasts while its certificate does: a new CRL or its notAfter ends
 * it. Request bytes held across all clients are capped by buffer_mb. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "mgmt.h"
#include "mgmt_int.h"

#define AUDIT_PER_SEC	  20	/* handshake/over-capacity refusals reported per second */

uint64_t els_mgmt_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void audit(struct endpoint *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void audit(struct endpoint *e, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
}

void els_mgmt_log(struct els_ipc *ipc, const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(ipc, ELS_IPC_LOG, 0, text, strlen(text));
}

/* The audit record of something a client's session did or had done to it. */
void els_mgmt_audit_session(struct endpoint *e, const struct conn *k, const char *what,
			  const char *outcome)
{
	char text[96]; /* a monitor record's detail: the outcome stays whole */
	els_mgmt_audit_text(text, sizeof(text), k->identity, els_mgmt_role_name(k->role), k->peer,
			    what, outcome, "");
	els_ipc_send(e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
}

/* A monitor event that is no refusal (not alerted). */
static void note(struct endpoint *e, const char *text)
{
	els_ipc_send(e->ipc, ELS_IPC_NOTE, 0, text, strlen(text));
}

/* For refusals before authentication: a flood of them must not flood the monitor. */
void els_mgmt_audit_limited(struct endpoint *e, const char *fmt, ...)
{
	uint64_t sec = els_mgmt_now_ms() / 1000;
	char text[512];
	va_list ap;

	if (sec != e->audit_second) {
		if (e->audit_suppressed)
			audit(e, "mgmt: %u more refused connections not logged",
			      e->audit_suppressed);
		e->audit_second = sec;
		e->audit_count = 0;
		e->audit_suppressed = 0;
	}
	if (++e->audit_count > AUDIT_PER_SEC) {
		e->audit_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t n)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
			  (socklen_t)n);
	else
		snprintf(out, n, "?");
}

static void accept_all(struct endpoint *e)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(e->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		char peer[64];
		peer_name(&ss, peer, sizeof(peer));
		if (!els_mgmt_admit(e, peer)) {
			close(fd);
			continue;
		}
		struct conn *k = calloc(1, sizeof(*k));
		if (k)
			k->ssl = SSL_new(e->tls->ctx);
		if (!k || !k->ssl || SSL_set_fd(k->ssl, fd) != 1) {
			if (k)
				SSL_free(k->ssl);
			free(k);
			close(fd);
			continue;
		}
		k->fd = fd;
		k->st = C_HANDSHAKE;
		k->accepted = els_mgmt_now_ms();
		k->deadline = k->accepted + e->c->handshake_timeout_s * 1000ull;
		snprintf(k->identity, sizeof(k->identity), "?");
		snprintf(k->peer, sizeof(k->peer), "%s", peer);
		els_mgmt_frame_init(&k->fr);
		e->conns[e->nconns++] = k;
		if (!els_mgmt_conn_step(e, k))
			els_mgmt_conn_free(e, e->nconns - 1);
	}
}

static struct conn *find_token(struct endpoint *e, uint32_t token, unsigned *idx)
{
	for (unsigned i = 0; i < e->nconns; i++)
		if (e->conns[i]->st == C_WAITING && e->conns[i]->token == token) {
			*idx = i;
			return e->conns[i];
		}
	return NULL;
}

/* Messages from the main process. False: the channel is gone, stop. */
static bool from_parent(struct endpoint *e)
{
	struct els_ipc_msg m;
	int rc;
	while ((rc = els_ipc_recv(e->ipc, &m)) == 1) {
		unsigned idx;
		struct conn *k;
		char err[256];
		switch (m.type) {
		case ELS_IPC_RESPONSE:
			if (e->dial && e->dial->st == C_WAITING && e->dial->token == m.conn) {
				els_mgmt_respond(e, e->dial, (char *)m.body);
				m.body = NULL;
				if (!els_mgmt_conn_step(e, e->dial))
					els_dial_close(e, NULL);
				break;
			}
			k = find_token(e, m.conn, &idx);
			if (k) {
				els_mgmt_respond(e, k, (char *)m.body);
				m.body = NULL;
				if (!els_mgmt_conn_step(e, k))
					els_mgmt_conn_free(e, idx);
			}
			break;
		case ELS_IPC_CRL:
			if (els_mgmt_tls_set_crl(e->tls, (const char *)m.body, m.len, err,
						 sizeof(err)) < 0) {
				audit(e, "mgmt: new CRL refused, keeping the old one: %.200s", err);
			} else {
				note(e, "mgmt: CRL reloaded");
				els_mgmt_recheck_sessions(e);
			}
			break;
		case ELS_IPC_CONSOLE_CRL:
			if (els_mgmt_tls_set_console_crl(e->tls, (const char *)m.body, m.len, err,
							 sizeof(err)) < 0) {
				audit(e, "mgmt: new console CRL refused, keeping the old one: %.200s",
				      err);
			} else {
				note(e, "mgmt: console CRL reloaded");
				els_dial_recheck(e);
			}
			break;
		case ELS_IPC_DIAL:
			els_dial_start(e, m.fd, (const char *)m.body);
			m.fd = -1;
			break;
		case ELS_IPC_DIAL_STATE:
			els_dial_state(e, (char *)m.body);
			m.body = NULL;
			break;
		default:
			break; /* not for this side: ignore rather than trust */
		}
		if (m.fd >= 0)
			close(m.fd);
		free(m.body);
	}
	return rc == 0;
}

/* pfd: room for max_clients + 3 entries. Returns when the channel to the main process is
 * gone (or poll fails). */
static void serve(struct endpoint *e, struct pollfd *pfd)
{
	for (;;) {
		uint64_t now = els_mgmt_now_ms();
		time_t wall = time(NULL);
		/* Deadlines first: whatever a client does, it cannot outlive them, nor its
		 * certificate (checked at least once a second: poll wakes that often). */
		for (unsigned i = 0; i < e->nconns;) {
			struct conn *k = e->conns[i];
			if (k->authed && wall >= k->not_after) {
				els_mgmt_audit_session(e, k, "session", "closed (certificate has expired)");
				els_mgmt_conn_free(e, i);
				continue;
			}
			if (k->deadline && now >= k->deadline) {
				if (k->st == C_WAITING) {
					els_mgmt_respond(e, k,
						els_mgmt_error(-1, "unavailable", NULL,
							       "the agent did not answer in "
							       "time"));
					k->close_after = true;
					if (els_mgmt_conn_step(e, k)) {
						i++;
						continue;
					}
				} else if (k->st == C_HANDSHAKE) {
					els_mgmt_audit_limited(e, "mgmt handshake refused @%s: timed out",
						      k->peer);
				}
				els_mgmt_conn_free(e, i);
				continue;
			}
			i++;
		}
		els_dial_tick(e);
		uint64_t next = now + 1000;
		pfd[0] = (struct pollfd){
		    .fd = e->ipc->fd, .events = POLLIN | (els_ipc_pending(e->ipc) ? POLLOUT : 0)};
		pfd[1] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
		for (unsigned i = 0; i < e->nconns; i++) {
			struct conn *k = e->conns[i];
			pfd[i + 2] = (struct pollfd){.fd = k->fd, .events = k->events};
			if (k->deadline && k->deadline < next)
				next = k->deadline;
		}
		unsigned n = e->nconns;
		struct conn *dk = e->dial;
		pfd[n + 2] = (struct pollfd){.fd = dk ? dk->fd : -1, .events = dk ? dk->events : 0};
		int r = poll(pfd, n + 3, (int)(next > now ? next - now : 0));
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		if (pfd[0].revents & POLLOUT && els_ipc_flush(e->ipc) < 0)
			return;
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR) && !from_parent(e))
			return;
		/* Walk the snapshot backwards: conn_free moves the last entry into the freed
		 * slot, which then has already been handled. Entries added since (none here)
		 * and responses delivered above are skipped safely by the fd check. */
		for (unsigned i = n; i-- > 0;) {
			if (i >= e->nconns || !pfd[i + 2].revents)
				continue;
			struct conn *k = e->conns[i];
			if (k->fd != pfd[i + 2].fd)
				continue;
			if (!els_mgmt_conn_step(e, k))
				els_mgmt_conn_free(e, i);
		}
		if (dk && dk == e->dial && pfd[n + 2].revents && !els_mgmt_conn_step(e, dk))
			els_dial_close(e, NULL);
		if (pfd[1].revents & POLLIN)
			accept_all(e);
		if (els_ipc_flush(e->ipc) < 0)
			return;
	}
}


void els_mgmt_serve(const struct els_mgmt_conf *c, struct els_mgmt_tls *tls, struct els_ipc *ipc,
		    int lfd)
{
	struct endpoint e = {
	    .c = c,
	    .tls = tls,
	    .ipc = ipc,
	    .lfd = lfd,
	    .budget = (size_t)c->buffer_mb << 20,
	};
	e.conns = calloc(c->max_clients, sizeof(*e.conns));
	struct pollfd *pfd = calloc(c->max_clients + 3, sizeof(*pfd));
	if (!e.conns || !pfd) {
		els_mgmt_log(ipc, "out of memory for %u connections", c->max_clients);
		free(e.conns);
		free(pfd);
		return;
	}
	serve(&e, pfd);
	/* The main process is gone: the clients still connected are closed here, so that a
	 * caller other than the endpoint's exit (a test) gets everything back. */
	while (e.nconns)
		els_mgmt_conn_free(&e, e.nconns - 1);
	free(e.conns);
	free(e.state);
	free(pfd);
}
