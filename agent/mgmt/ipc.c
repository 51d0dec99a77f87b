/* Messages over the main process <-> management endpoint socketpair (see ipc.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "els/mgmt.h"
#include "ipc.h"
#include "mgmt.h"

struct els_ipc_out {
	struct els_ipc_out *next;
	size_t len;
	uint8_t data[]; /* header + fragment */
};

/* The request carries the peer's address, a short string, before the JSON. */
#define IDENT_MAX 256

size_t els_ipc_max_body(unsigned type)
{
	switch (type) {
	case ELS_IPC_READY:
		return 256;
	case ELS_IPC_FATAL:
		return 1024;
	case ELS_IPC_REQUEST:
		return 4 + ELS_MGMT_PEER_MAX + IDENT_MAX + ELS_MGMT_MAX_FRAME;
	case ELS_IPC_RESPONSE:
		return ELS_MGMT_MAX_FRAME;
	case ELS_IPC_AUDIT:
	case ELS_IPC_NOTE:
	case ELS_IPC_LOG:
		return 512;
	case ELS_IPC_CONFIG:
		return 16384;
	case ELS_IPC_CRL:
		return 4u << 20;
	default:
		return 0;
	}
}

void els_ipc_init(struct els_ipc *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
}

void els_ipc_close(struct els_ipc *c)
{
	while (c->head) {
		struct els_ipc_out *o = c->head;
		c->head = o->next;
		free(o);
	}
	c->tail = NULL;
	c->queued = 0;
	free(c->buf);
	c->buf = NULL;
	c->got = 0;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

bool els_ipc_pending(const struct els_ipc *c)
{
	return c->head != NULL;
}

int els_ipc_flush(struct els_ipc *c)
{
	while (c->head) {
		struct els_ipc_out *o = c->head;
		ssize_t n = send(c->fd, o->data, o->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			if (errno == EINTR)
				continue;
			return -errno;
		}
		c->head = o->next;
		if (!c->head)
			c->tail = NULL;
		c->queued -= o->len;
		free(o);
	}
	return 0;
}

int els_ipc_send(struct els_ipc *c, unsigned type, uint32_t conn, const void *body, size_t len)
{
	const uint8_t *p = body;
	size_t off = 0;

	if (len > els_ipc_max_body(type))
		return -EMSGSIZE;
	if (c->queued + len + sizeof(struct els_ipc_hdr) > ELS_IPC_QUEUE_MAX)
		return -ENOBUFS;
	do {
		size_t n = len - off > ELS_IPC_FRAG_MAX ? ELS_IPC_FRAG_MAX : len - off;
		struct els_ipc_out *o = malloc(sizeof(*o) + sizeof(struct els_ipc_hdr) + n);
		if (!o)
			return -ENOMEM; /* fragments already queued make a message the peer drops */
		struct els_ipc_hdr h = {
		    .type = (uint16_t)type,
		    .flags = off + n < len ? ELS_IPC_F_MORE : 0,
		    .conn = conn,
		    .len = (uint32_t)n,
		    .total = (uint32_t)len,
		};
		memcpy(o->data, &h, sizeof(h));
		if (n)
			memcpy(o->data + sizeof(h), p + off, n);
		o->len = sizeof(h) + n;
		o->next = NULL;
		if (c->tail)
			c->tail->next = o;
		else
			c->head = o;
		c->tail = o;
		c->queued += o->len;
		off += n;
	} while (off < len);
	int rc = els_ipc_flush(c);
	return rc < 0 ? rc : 0;
}

static void drop_partial(struct els_ipc *c)
{
	free(c->buf);
	c->buf = NULL;
	c->got = 0;
	memset(&c->cur, 0, sizeof(c->cur));
}

int els_ipc_accept(struct els_ipc *c, const uint8_t *dgram, size_t n, struct els_ipc_msg *m)
{
	struct els_ipc_hdr h;

	if (n < sizeof(h))
		return -EBADMSG;
	memcpy(&h, dgram, sizeof(h));
	size_t max = els_ipc_max_body(h.type);
	if (!max || h.len != n - sizeof(h) || h.total > max || h.len > ELS_IPC_FRAG_MAX ||
	    (h.flags & ~ELS_IPC_F_MORE))
		return -EBADMSG;
	if (c->buf) {
		/* A continuation must match the message it continues. */
		if (h.type != c->cur.type || h.conn != c->cur.conn || h.total != c->cur.total)
			return -EBADMSG;
	} else {
		c->buf = malloc((size_t)h.total + 1);
		if (!c->buf)
			return -ENOMEM;
		c->cur = h;
		c->got = 0;
	}
	if (c->got + h.len > c->cur.total)
		return -EBADMSG;
	if (h.len)
		memcpy(c->buf + c->got, dgram + sizeof(h), h.len);
	c->got += h.len;
	bool more = h.flags & ELS_IPC_F_MORE;
	if (more != (c->got < c->cur.total))
		return -EBADMSG; /* the sender's "more" must agree with the announced total */
	if (more)
		return 0;
	c->buf[c->got] = 0;
	m->type = c->cur.type;
	m->conn = c->cur.conn;
	m->body = c->buf;
	m->len = c->got;
	c->buf = NULL;
	c->got = 0;
	memset(&c->cur, 0, sizeof(c->cur));
	return 1;
}

int els_ipc_recv(struct els_ipc *c, struct els_ipc_msg *m)
{
	static uint8_t dgram[sizeof(struct els_ipc_hdr) + ELS_IPC_FRAG_MAX + 1];

	for (;;) {
		ssize_t n = recv(c->fd, dgram, sizeof(dgram), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		if (n == 0)
			return -EPIPE;
		if ((size_t)n > sizeof(dgram) - 1) {
			drop_partial(c);
			return -EBADMSG;
		}
		int rc = els_ipc_accept(c, dgram, (size_t)n, m);
		if (rc < 0)
			drop_partial(c);
		if (rc != 0)
			return rc;
	}
}
