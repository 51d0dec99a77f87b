/* Messages between the main process and the management endpoint: fragmentation, size checks
 * on both sides, and refusal of malformed datagrams. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc.h"

static struct els_ipc a, b;

static void setup(void)
{
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	els_ipc_init(&a, sv[0]);
	els_ipc_init(&b, sv[1]);
}

static void teardown(void)
{
	els_ipc_close(&a);
	els_ipc_close(&b);
}

TestSuite(ipc, .init = setup, .fini = teardown);

/* Receives one message, flushing the sender while the socket buffer is full. */
static int recv_one(struct els_ipc_msg *m)
{
	for (int i = 0; i < 100000; i++) {
		int rc = els_ipc_recv(&b, m);
		if (rc != 0)
			return rc;
		cr_assert_geq(els_ipc_flush(&a), 0);
	}
	return 0;
}

Test(ipc, small_message_round_trip)
{
	struct els_ipc_msg m;
	cr_assert_eq(els_ipc_send(&a, ELS_IPC_AUDIT, 7, "hello", 5), 0);
	cr_assert_eq(recv_one(&m), 1);
	cr_assert_eq(m.type, ELS_IPC_AUDIT);
	cr_assert_eq(m.conn, 7);
	cr_assert_eq(m.len, 5);
	cr_assert_str_eq((char *)m.body, "hello");
	free(m.body);
	cr_assert_eq(els_ipc_recv(&b, &m), 0, "nothing more");
}

Test(ipc, empty_body)
{
	struct els_ipc_msg m;
	cr_assert_eq(els_ipc_send(&a, ELS_IPC_AUDIT, 0, "", 0), 0);
	cr_assert_eq(recv_one(&m), 1);
	cr_assert_eq(m.len, 0);
	cr_assert_eq(m.body[0], 0);
	free(m.body);
}

Test(ipc, large_message_is_fragmented_and_reassembled_in_order)
{
	size_t len = 5 * ELS_IPC_FRAG_MAX + 123; /* more than the socket buffer holds */
	char *big = malloc(len);
	for (size_t i = 0; i < len; i++)
		big[i] = (char)('a' + i % 26);
	cr_assert_eq(els_ipc_send(&a, ELS_IPC_RESPONSE, 42, big, len), 0);
	cr_assert_eq(els_ipc_send(&a, ELS_IPC_AUDIT, 0, "after", 5), 0);
	struct els_ipc_msg m;
	cr_assert_eq(recv_one(&m), 1);
	cr_assert_eq(m.type, ELS_IPC_RESPONSE);
	cr_assert_eq(m.conn, 42);
	cr_assert_eq(m.len, len);
	cr_assert_eq(memcmp(m.body, big, len), 0);
	free(m.body);
	cr_assert_eq(recv_one(&m), 1);
	cr_assert_str_eq((char *)m.body, "after");
	free(m.body);
	free(big);
}

Test(ipc, sender_refuses_a_body_over_the_type_maximum)
{
	size_t max = els_ipc_max_body(ELS_IPC_AUDIT);
	char *buf = calloc(1, max + 1);
	cr_assert_eq(els_ipc_send(&a, ELS_IPC_AUDIT, 0, buf, max + 1), -EMSGSIZE);
	cr_assert_eq(els_ipc_send(&a, 999, 0, buf, 1), -EMSGSIZE, "unknown type");
	free(buf);
}

static struct els_ipc_hdr hdr(unsigned type, unsigned flags, uint32_t len, uint32_t total)
{
	return (struct els_ipc_hdr){
	    .type = (uint16_t)type, .flags = (uint16_t)flags, .len = len, .total = total};
}

static int accept_hdr(struct els_ipc *c, struct els_ipc_hdr h, const char *body,
		      struct els_ipc_msg *m)
{
	uint8_t d[sizeof(h) + 64];
	memcpy(d, &h, sizeof(h));
	memcpy(d + sizeof(h), body, h.len);
	return els_ipc_accept(c, d, sizeof(h) + h.len, m);
}

Test(ipc, receiver_checks_every_datagram)
{
	struct els_ipc c;
	struct els_ipc_msg m;
	els_ipc_init(&c, -1);
	uint8_t shortd[3] = {0};
	cr_assert_eq(els_ipc_accept(&c, shortd, 3, &m), -EBADMSG, "shorter than a header");
	cr_assert_eq(accept_hdr(&c, hdr(99, 0, 1, 1), "x", &m), -EBADMSG, "unknown type");
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, 0, 1, 600), "x", &m), -EBADMSG,
		     "total above the type's maximum, before any allocation");
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, 4, 1, 1), "x", &m), -EBADMSG,
		     "unknown flag");
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, 0, 1, 2), "x", &m), -EBADMSG,
		     "last fragment short of the total");
	els_ipc_close(&c);

	els_ipc_init(&c, -1);
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, ELS_IPC_F_MORE, 1, 2), "x", &m), 0);
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_READY, 0, 1, 2), "y", &m), -EBADMSG,
		     "a continuation of another type");
	els_ipc_close(&c);

	els_ipc_init(&c, -1);
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, ELS_IPC_F_MORE, 1, 2), "x", &m), 0);
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, 0, 2, 2), "yz", &m), -EBADMSG,
		     "more bytes than announced");
	els_ipc_close(&c);

	els_ipc_init(&c, -1);
	struct els_ipc_hdr h = hdr(ELS_IPC_AUDIT, 0, 2, 2);
	uint8_t d[sizeof(h) + 3];
	memcpy(d, &h, sizeof(h));
	cr_assert_eq(els_ipc_accept(&c, d, sizeof(d), &m), -EBADMSG,
		     "len disagrees with the datagram size");
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, ELS_IPC_F_MORE, 1, 2), "x", &m), 0);
	cr_assert_eq(accept_hdr(&c, hdr(ELS_IPC_AUDIT, 0, 1, 2), "y", &m), 1);
	cr_assert_str_eq((char *)m.body, "xy");
	free(m.body);
	els_ipc_close(&c);
}

Test(ipc, peer_close_is_epipe)
{
	struct els_ipc_msg m;
	close(a.fd);
	a.fd = -1;
	cr_assert_eq(els_ipc_recv(&b, &m), -EPIPE);
}

Test(ipc, queue_cap_refuses_when_the_peer_does_not_read)
{
	size_t len = els_ipc_max_body(ELS_IPC_RESPONSE);
	char *buf = calloc(1, len);
	int rc = 0;
	for (int i = 0; i < 10 && rc == 0; i++)
		rc = els_ipc_send(&a, ELS_IPC_RESPONSE, 1, buf, len);
	cr_assert_eq(rc, -ENOBUFS);
	cr_assert(els_ipc_pending(&a));
	free(buf);
}

/* The console connection's socket travels with ELS_IPC_DIAL (SCM_RIGHTS): the receiver gets a
 * working descriptor of its own; a descriptor sent with any other type breaks the rules and
 * is closed, never kept. */
Test(ipc, a_descriptor_travels_with_dial_only)
{
	int p[2];
	struct els_ipc_msg m;
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(els_ipc_send_fd(&a, ELS_IPC_DIAL, "198.18.7.2:7444", 15, p[1]), 0);
	close(p[1]);
	cr_assert_eq(recv_one(&m), 1);
	cr_assert_eq(m.type, ELS_IPC_DIAL);
	cr_assert_str_eq((char *)m.body, "198.18.7.2:7444");
	cr_assert_geq(m.fd, 0);
	cr_assert_eq(write(m.fd, "x", 1), 1, "the passed descriptor is the pipe's write end");
	char c = 0;
	cr_assert_eq(read(p[0], &c, 1), 1);
	cr_assert_eq(c, 'x');
	close(m.fd);
	free(m.body);
	cr_assert_eq(els_ipc_send_fd(&a, ELS_IPC_AUDIT, "x", 1, p[0]), -EMSGSIZE,
		     "no other type may carry one");
	/* A forged one: an AUDIT datagram with a descriptor attached. */
	struct els_ipc_hdr h = {.type = ELS_IPC_AUDIT, .len = 1, .total = 1};
	char dg[sizeof(h) + 1];
	memcpy(dg, &h, sizeof(h));
	dg[sizeof(h)] = 'y';
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u = {0};
	struct iovec iov = {.iov_base = dg, .iov_len = sizeof(dg)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof(u.buf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
	cr_assert_eq(sendmsg(a.fd, &mh, 0), (ssize_t)sizeof(dg));
	cr_assert_eq(els_ipc_recv(&b, &m), -EBADMSG);
	cr_assert_eq(b.rfd, -1, "the stray descriptor was closed, not kept");
	close(p[0]);
}
