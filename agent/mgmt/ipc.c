/* Messages over the main process <-> management endpoint socketpair (see ipc.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "els/mgmt.h"
#include "ipc.h"
#include "mgmt.h"

struct els_ipc_out {
	struct els_ipc_out *next;
	int fd; /* passed with this datagram (a dup, closed once sent), or -1 */
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
	case ELS_IPC_CONSOLE_CRL:
		return 4u << 20;
	case ELS_IPC_DIAL:
	case ELS_IPC_DIAL_STATUS:
		return 512;
	case ELS_IPC_DIAL_STATE:
		return 1u << 20;
	case ELS_IPC_CONSOLE_REQUEST:
		return 4 + ELS_MGMT_PEER_MAX + IDENT_MAX + ELS_MGMT_MAX_FRAME;
	default:
		return 0;
	}
}

void els_ipc_init(struct els_ipc *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	c->rfd = -1;
}

void els_ipc_close(struct els_ipc *c)
{
	while (c->head) {
		struct els_ipc_out *o = c->head;
		c->head = o->next;
		if (o->fd >= 0)
			close(o->fd);
		free(o);
	}
	if (c->rfd >= 0)
		close(c->rfd);
	c->rfd = -1;
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
		ssize_t n;
		if (o->fd >= 0) {
			union {
				char buf[CMSG_SPACE(sizeof(int))];
				struct cmsghdr align;
			} u = {0};
			struct iovec iov = {.iov_base = o->data, .iov_len = o->len};
			struct msghdr mh = {.msg_iov = &iov,
					    .msg_iovlen = 1,
					    .msg_control = u.buf,
					    .msg_controllen = sizeof(u.buf)};
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
			n = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		} else {
			n = send(c->fd, o->data, o->len, MSG_DONTWAIT | MSG_NOSIGNAL);
		}
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
		if (o->fd >= 0)
			close(o->fd);
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
		o->fd = -1;
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

int els_ipc_send_fd(struct els_ipc *c, unsigned type, const void *body, size_t len, int fd)
{
	if (type != ELS_IPC_DIAL || len > ELS_IPC_FRAG_MAX || len > els_ipc_max_body(type))
		return -EMSGSIZE;
	if (c->queued + len + sizeof(struct els_ipc_hdr) > ELS_IPC_QUEUE_MAX)
		return -ENOBUFS;
	struct els_ipc_out *o = malloc(sizeof(*o) + sizeof(struct els_ipc_hdr) + len);
	if (!o)
		return -ENOMEM;
	o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (o->fd < 0) {
		int e = errno;
		free(o);
		return -e;
	}
	struct els_ipc_hdr h = {
	    .type = (uint16_t)type, .len = (uint32_t)len, .total = (uint32_t)len};
	memcpy(o->data, &h, sizeof(h));
	if (len)
		memcpy(o->data + sizeof(h), body, len);
	o->len = sizeof(h) + len;
	o->next = NULL;
	if (c->tail)
		c->tail->next = o;
	else
		c->head = o;
	c->tail = o;
	c->queued += o->len;
	int rc = els_ipc_flush(c);
	return rc < 0 ? rc : 0;
}

static void drop_partial(struct els_ipc *c)
{
	free(c->buf);
	c->buf = NULL;
	c->got = 0;
	memset(&c->cur, 0, sizeof(c->cur));
	if (c->rfd >= 0)
		close(c->rfd);
	c->rfd = -1;
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
	/* A descriptor only where one belongs: anything else sent with one breaks the rules. */
	if ((c->rfd >= 0) != (c->cur.type == ELS_IPC_DIAL))
		return -EBADMSG;
	m->type = c->cur.type;
	m->conn = c->cur.conn;
	m->fd = c->rfd;
	c->rfd = -1;
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
		union {
			char buf[CMSG_SPACE(sizeof(int) * 4)];
			struct cmsghdr align;
		} u;
		struct iovec iov = {.iov_base = dgram, .iov_len = sizeof(dgram)};
		struct msghdr mh = {
		    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			return -errno;
		}
		/* Every descriptor that came is taken (closed unless it is the one allowed), so
		 * none leaks whatever the peer sends. */
		int nfds = 0;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
				continue;
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t j = 0; j < k; j++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + j * sizeof(int), sizeof(int));
				if (nfds++ == 0 && c->rfd < 0)
					c->rfd = fd;
				else
					close(fd);
			}
		}
		if (nfds > 1 || (mh.msg_flags & MSG_CTRUNC)) {
			drop_partial(c);
			return -EBADMSG;
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
