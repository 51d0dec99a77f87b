/* The management endpoint's connections, one step at a time: the TLS handshake and who the
 * client is, reading a request frame within the buffer_mb budget, handing it to the main
 * process, and writing the answer back. The poll loop that drives them is in mgmt.c. */
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

/* To the main process as one IPC message of type: the length of the peer's certificates
 * (4 bytes, big-endian), the certificates (DER), the peer address with its NUL, the request's
 * JSON (ipc.h). Takes req->json; k waits for the answer, or gets "unavailable" at once. */
void els_mgmt_forward(struct endpoint *e, struct conn *k, struct els_mgmt_req *req,
		      unsigned type)
{
	char *json = json_dumps(req->json, JSON_COMPACT);
	json_decref(req->json);
	size_t lp = strlen(k->peer) + 1, lj = json ? strlen(json) : 0;
	size_t total = 4 + k->derlen + lp + lj;
	uint8_t *m = json ? malloc(total) : NULL;
	int rc = -ENOMEM;
	if (m) {
		m[0] = (uint8_t)(k->derlen >> 24);
		m[1] = (uint8_t)(k->derlen >> 16);
		m[2] = (uint8_t)(k->derlen >> 8);
		m[3] = (uint8_t)k->derlen;
		memcpy(m + 4, k->der, k->derlen);
		memcpy(m + 4 + k->derlen, k->peer, lp);
		memcpy(m + 4 + k->derlen + lp, json, lj);
		k->token = ++e->next_token ? e->next_token : ++e->next_token;
		rc = els_ipc_send(e->ipc, type, k->token, m, total);
	}
	free(m);
	free(json);
	if (rc < 0) {
		respond(e, k,
			els_mgmt_error(req->id, "unavailable", NULL,
				       "the agent cannot take the request now (%s); retry",
				       strerror(-rc)));
		return;
	}
	k->st = C_WAITING;
	k->deadline = els_mgmt_now_ms() + PARENT_TIMEOUT_MS;
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
	els_mgmt_forward(e, k, &req, ELS_IPC_REQUEST);
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
