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

#define PARENT_TIMEOUT_MS 60000 /* a request the main process has not answered by then */
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

/* The budget: a connection holds what it buffers until its answer is written. */
static bool hold(struct endpoint *e, struct conn *k, size_t n)
{
	if (e->held + n > e->budget)
		return false;
	e->held += n;
	k->held += n;
	return true;
}

static void release(struct endpoint *e, struct conn *k)
{
	e->held -= k->held;
	k->held = 0;
}

void els_mgmt_conn_free(struct endpoint *e, unsigned i)
{
	struct conn *k = e->conns[i];
	if (k->ssl) {
		SSL_shutdown(k->ssl); /* best effort, non-blocking: a close_notify if it fits */
		SSL_free(k->ssl);
	}
	close(k->fd);
	release(e, k);
	els_mgmt_frame_free(&k->fr);
	free(k->out);
	free(k->der);
	free(k);
	e->conns[i] = e->conns[--e->nconns];
	ERR_clear_error();
}

/* Queues body as the response frame. Takes body (malloc'd) or, when NULL, answers internal.
 * Every request gets an answer: one too large for a frame becomes an error answer. */
static void respond(struct endpoint *e, struct conn *k, char *body);
void els_mgmt_respond(struct endpoint *e, struct conn *k, char *body)
{
	respond(e, k, body);
}

static void respond(struct endpoint *e, struct conn *k, char *body)
{
	if (!body)
		body = els_mgmt_error(-1, "internal", NULL, "out of memory");
	size_t len = body ? strlen(body) : 0;
	if (len > ELS_MGMT_MAX_FRAME) {
		free(body);
		body = els_mgmt_error(-1, "internal", NULL,
				      "the answer (%zu bytes) is larger than a frame (%u bytes)",
				      len, ELS_MGMT_MAX_FRAME);
		len = body ? strlen(body) : 0;
	}
	free(k->out);
	k->out = NULL;
	if (len) {
		/* An answer is counted but never refused: the request that asked for it was
		 * admitted, and its bytes are released as the answer is queued. */
		release(e, k);
		e->held += len + 4;
		k->held = len + 4;
		k->out = malloc(len + 4);
	}
	if (!k->out) {
		free(body);
		k->close_after = true;
		k->outlen = k->outoff = 0;
		k->st = C_WRITING;
		return;
	}
	k->out[0] = (uint8_t)(len >> 24);
	k->out[1] = (uint8_t)(len >> 16);
	k->out[2] = (uint8_t)(len >> 8);
	k->out[3] = (uint8_t)len;
	memcpy(k->out + 4, body, len);
	free(body);
	k->outlen = len + 4;
	k->outoff = 0;
	k->st = C_WRITING;
	k->deadline = els_mgmt_now_ms() + e->c->timeout_s * 1000ull;
}

/* To the main process: the client's certificates, its address and the checked request. The
 * role the endpoint found goes nowhere: the main process maps the certificate itself. */
static void handle_request(struct endpoint *e, struct conn *k)
{
	struct els_mgmt_req req;
	char *err;
	const char *code;

	if (k->dial) {
		els_dial_request(e, k);
		return;
	}
	if (els_mgmt_request_check((const char *)k->fr.body, k->fr.len, k->role, &req, &err,
				   &code) < 0) {
		els_mgmt_audit_session(e, k, req.cmd_name, code);
		respond(e, k, err);
		return;
	}
	char *json = json_dumps(req.json, JSON_COMPACT);
	json_decref(req.json);
	size_t lp = strlen(k->peer) + 1, lj = json ? strlen(json) : 0;
	size_t total = 4 + k->derlen + lp + lj;
	char *msg = json ? malloc(total) : NULL;
	int rc = -ENOMEM;
	if (msg) {
		uint8_t *m = (uint8_t *)msg;
		m[0] = (uint8_t)(k->derlen >> 24);
		m[1] = (uint8_t)(k->derlen >> 16);
		m[2] = (uint8_t)(k->derlen >> 8);
		m[3] = (uint8_t)k->derlen;
		memcpy(m + 4, k->der, k->derlen);
		memcpy(m + 4 + k->derlen, k->peer, lp);
		memcpy(m + 4 + k->derlen + lp, json, lj);
		k->token = ++e->next_token ? e->next_token : ++e->next_token;
		rc = els_ipc_send(e->ipc, ELS_IPC_REQUEST, k->token, msg, total);
	}
	free(msg);
	free(json);
	if (rc < 0) {
		respond(e, k,
			els_mgmt_error(req.id, "unavailable", NULL,
				       "the agent cannot take the request now (%s); retry",
				       strerror(-rc)));
		return;
	}
	k->st = C_WAITING;
	k->deadline = els_mgmt_now_ms() + PARENT_TIMEOUT_MS;
}

/* After the handshake: who the client is, until when, and the certificates to forward. */
static void authenticated(struct endpoint *e, struct conn *k)
{
	X509 *x = SSL_get1_peer_certificate(k->ssl);
	STACK_OF(X509) *chain = SSL_get_peer_cert_chain(k->ssl); /* without the leaf, here */
	k->authed = true;
	k->role = x ? els_mgmt_cert_role(x, k->identity, sizeof(k->identity)) : ELS_ROLE_NONE;
	if (!x || els_mgmt_cert_not_after(x, &k->not_after) < 0)
		k->not_after = 0; /* unreadable: the expiry check closes the session at once */
	size_t cap = ELS_MGMT_PEER_MAX, len = 0;
	uint8_t *buf = malloc(cap);
	for (int i = -1; buf && x && i < (chain ? sk_X509_num(chain) : 0); i++) {
		X509 *c = i < 0 ? x : sk_X509_value(chain, i);
		int n = i2d_X509(c, NULL);
		if (n <= 0 || len + (size_t)n > cap)
			break; /* the main process verifies what it gets; a short chain fails there */
		uint8_t *p = buf + len;
		i2d_X509(c, &p);
		len += (size_t)n;
	}
	k->der = buf;
	k->derlen = buf ? len : 0;
	X509_free(x);
	k->st = C_READING;
	k->deadline = els_mgmt_now_ms() + e->c->timeout_s * 1000ull;
}

static const char *handshake_error(SSL *ssl)
{
	long v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		return X509_verify_cert_error_string(v);
	unsigned long err = ERR_peek_error();
	const char *r = err ? ERR_reason_error_string(err) : NULL;
	return r ? r : "handshake failed (peer closed or sent garbage)";
}

/* Advances one connection as far as it goes without blocking. False: close it. */
static bool conn_step(struct endpoint *e, struct conn *k);
bool els_mgmt_conn_step(struct endpoint *e, struct conn *k)
{
	return conn_step(e, k);
}

static bool conn_step(struct endpoint *e, struct conn *k)
{
	for (;;) {
		int r, err;
		/* A hello/heartbeat frame goes out whole between responses (never inside one). */
		if (k->dial && k->pushlen && (k->st != C_WRITING || k->outoff == 0) &&
		    k->st != C_HANDSHAKE) {
			int pr = els_dial_push(k);
			if (pr < 0)
				return false;
			if (pr == 0)
				return true;
		}
		switch (k->st) {
		case C_HANDSHAKE:
			ERR_clear_error();
			r = k->dial ? SSL_connect(k->ssl) : SSL_accept(k->ssl);
			if (r == 1) {
				authenticated(e, k);
				if (k->dial && !els_dial_authenticated(e, k))
					return false;
				continue;
			}
			err = SSL_get_error(k->ssl, r);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return true;
			}
			if (k->dial) {
				snprintf(k->dial_why, sizeof(k->dial_why), "handshake failed: %s",
					 handshake_error(k->ssl));
				return false;
			}
			els_mgmt_audit_limited(e, "mgmt handshake refused @%s: %s", k->peer,
				      handshake_error(k->ssl));
			return false;
		case C_READING: {
			uint8_t buf[16384];
			size_t want = k->skip			? k->skip
				      : k->fr.hdr_got < 4 ? 4 - k->fr.hdr_got
							  : k->fr.len - k->fr.got;
			if (want > sizeof(buf))
				want = sizeof(buf);
			ERR_clear_error();
			/* Exactly up to the end of this frame: bytes of a next request stay in
			 * TLS until this one is answered. */
			r = SSL_read(k->ssl, buf, (int)want);
			if (r <= 0) {
				err = SSL_get_error(k->ssl, r);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
					k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
					return true;
				}
				return false; /* closed or broken */
			}
			if (k->skip) {
				k->skip -= (size_t)r;
				continue;
			}
			size_t used;
			int fr = els_mgmt_frame_feed(&k->fr, buf, (size_t)r, &used);
			if (fr == ELS_FRAME_TOO_LARGE) {
				els_mgmt_audit_session(e, k, "?", "frame_too_large");
				respond(e, k,
					els_mgmt_error(-1, "frame_too_large", NULL,
						       "frame length %u is not in 1..%u: closing",
						       k->fr.len, ELS_MGMT_MAX_FRAME));
				k->close_after = true;
				continue;
			}
			if (fr < 0)
				return false;
			/* The whole announced body is held from the header on (the header is
			 * read alone, above), so what all clients may make the endpoint buffer
			 * is capped before a byte of it arrives. */
			if (fr == ELS_FRAME_MORE && k->fr.hdr_got == 4 && !k->held &&
			    !hold(e, k, (size_t)k->fr.len)) {
				els_mgmt_audit_limited(e, "mgmt %s/%s@%s ?: busy (buffer_mb %u reached)",
					      k->identity, els_mgmt_role_name(k->role), k->peer,
					      e->c->buffer_mb);
				/* The body is read and dropped rather than the connection cut: a
				 * close with unread bytes would reset it, and the client would
				 * never see the answer. */
				k->skip = k->fr.len;
				els_mgmt_frame_reset(&k->fr);
				respond(e, k,
					els_mgmt_error(-1, "busy", NULL,
						       "the agent holds %u MiB of requests from "
						       "other clients (buffer_mb); retry later",
						       e->c->buffer_mb));
				continue;
			}
			if (fr == ELS_FRAME_DONE) {
				handle_request(e, k);
				els_mgmt_frame_reset(&k->fr);
			}
			continue;
		}
		case C_WAITING:
			k->events = 0;
			return true;
		case C_WRITING:
			if (k->outoff == k->outlen) {
				free(k->out);
				k->out = NULL;
				release(e, k);
				if (k->close_after)
					return false;
				k->st = C_READING;
				k->deadline = els_mgmt_now_ms() + e->c->timeout_s * 1000ull;
				continue;
			}
			ERR_clear_error();
			r = SSL_write(k->ssl, k->out + k->outoff, (int)(k->outlen - k->outoff));
			if (r <= 0) {
				err = SSL_get_error(k->ssl, r);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
					k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
					return true;
				}
				return false;
			}
			k->outoff += (size_t)r;
			continue;
		}
	}
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
		if (!conn_step(e, k))
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
				respond(e, e->dial, (char *)m.body);
				m.body = NULL;
				if (!conn_step(e, e->dial))
					els_dial_close(e, NULL);
				break;
			}
			k = find_token(e, m.conn, &idx);
			if (k) {
				respond(e, k, (char *)m.body);
				m.body = NULL;
				if (!conn_step(e, k))
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

static void serve(struct endpoint *e)
{
	struct pollfd *pfd = calloc(e->c->max_clients + 3, sizeof(*pfd));
	if (!pfd)
		return;
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
					respond(e, k,
						els_mgmt_error(-1, "unavailable", NULL,
							       "the agent did not answer in "
							       "time"));
					k->close_after = true;
					if (conn_step(e, k)) {
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
			if (!conn_step(e, k))
				els_mgmt_conn_free(e, i);
		}
		if (dk && dk == e->dial && pfd[n + 2].revents && !conn_step(e, dk))
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
	if (!e.conns) {
		els_mgmt_log(ipc, "out of memory for %u connections", c->max_clients);
		return;
	}
	serve(&e);
}
