/* Existing TCP connections from the kernel's socket table (sock_diag / inet_diag), see
 * import.h. Two dumps per family: the listening sockets first (they say which connections the
 * remote end opened), then the established and closing ones. */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "import.h"

/* include/net/tcp_states.h */
enum {
	ST_ESTABLISHED = 1,
	ST_FIN_WAIT1 = 4,
	ST_FIN_WAIT2 = 5,
	ST_CLOSE_WAIT = 8,
	ST_LAST_ACK = 9,
	ST_LISTEN = 10,
	ST_CLOSING = 11,
};

#define LISTEN_MASK (1u << ST_LISTEN)
#define CONN_MASK                                                                                  \
	((1u << ST_ESTABLISHED) | (1u << ST_FIN_WAIT1) | (1u << ST_FIN_WAIT2) |                    \
	 (1u << ST_CLOSE_WAIT) | (1u << ST_LAST_ACK) | (1u << ST_CLOSING))

struct dump {
	struct els_import_list *l;
	uint8_t *listening; /* bit per local port that a listening socket holds */
	int added;
	bool listen_pass;
};

/* An IPv6 socket address as the packets carry it: a v4-mapped one is IPv4 on the wire. */
static uint8_t wire_addr(uint8_t family, const __be32 *in, struct els_addr *out)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	memset(out, 0, sizeof(*out));
	if (family == AF_INET) {
		memcpy(out->b, in, 4);
		return ELS_AF_INET;
	}
	if (memcmp(in, mapped, 12) == 0) {
		memcpy(out->b, (const uint8_t *)in + 12, 4);
		return ELS_AF_INET;
	}
	memcpy(out->b, in, 16);
	return ELS_AF_INET6;
}

static bool is_loopback(uint8_t family, const struct els_addr *a)
{
	static const uint8_t v6lo[16] = {[15] = 1};
	return family == ELS_AF_INET ? a->b[0] == 127 : memcmp(a->b, v6lo, 16) == 0;
}

static int on_msg(const struct nlmsghdr *nlh, void *arg)
{
	struct dump *d = arg;
	const struct inet_diag_msg *m = mnl_nlmsg_get_payload(nlh);
	struct els_import_conn c = {.proto = IPPROTO_TCP};
	struct els_addr src, dst;
	uint16_t sport, dport;
	uint8_t fam;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return MNL_CB_OK;
	sport = ntohs(m->id.idiag_sport);
	dport = ntohs(m->id.idiag_dport);
	if (d->listen_pass) {
		if (m->idiag_state == ST_LISTEN)
			d->listening[sport / 8] |= (uint8_t)(1u << (sport % 8));
		return MNL_CB_OK;
	}
	if (!((1u << m->idiag_state) & CONN_MASK))
		return MNL_CB_OK;
	fam = wire_addr(m->idiag_family, m->id.idiag_src, &src);
	if (wire_addr(m->idiag_family, m->id.idiag_dst, &dst) != fam)
		return MNL_CB_OK;
	/* Loopback connections never reach the queue: the steering rules accept lo first. */
	if (is_loopback(fam, &src) || is_loopback(fam, &dst))
		return MNL_CB_OK;
	c.family = fam;
	c.state = m->idiag_state == ST_ESTABLISHED ? ELS_FS_ESTABLISHED : ELS_FS_FIN_WAIT;
	/* A connection to a port this host listens on was opened by the remote end. */
	if (d->listening[sport / 8] & (1u << (sport % 8))) {
		c.dir = ELS_DIR_IN;
		c.init_addr = dst, c.init_port = dport;
		c.resp_addr = src, c.resp_port = sport;
	} else {
		c.dir = ELS_DIR_OUT;
		c.init_addr = src, c.init_port = sport;
		c.resp_addr = dst, c.resp_port = dport;
	}
	if (els_import_list_add(d->l, &c) == 0)
		d->added++;
	return MNL_CB_OK;
}

static int dump_one(struct mnl_socket *nl, uint8_t family, uint32_t states, struct dump *d)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct inet_diag_req_v2 *r;
	unsigned portid = mnl_socket_get_portid(nl);
	static uint32_t last_seq;
	uint32_t seq = ++last_seq;
	int rc;

	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	r = mnl_nlmsg_put_extra_header(nlh, sizeof(*r));
	r->sdiag_family = family;
	r->sdiag_protocol = IPPROTO_TCP;
	r->idiag_states = states;
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0)
			return -errno;
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, on_msg, d); /* buf: the answer now */
		if (rc < 0)
			return -errno;
		if (rc == MNL_CB_STOP)
			return 0;
	}
}

int els_import_sockets(struct els_import_list *l)
{
	struct dump d = {.l = l};
	struct mnl_socket *nl = mnl_socket_open(NETLINK_SOCK_DIAG);
	int rc = -ENOMEM;

	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		rc = -errno;
		goto out;
	}
	d.listening = calloc(65536 / 8, 1);
	if (!d.listening)
		goto out;
	d.listen_pass = true;
	if ((rc = dump_one(nl, AF_INET, LISTEN_MASK, &d)) < 0 ||
	    (rc = dump_one(nl, AF_INET6, LISTEN_MASK, &d)) < 0)
		goto out;
	d.listen_pass = false;
	if ((rc = dump_one(nl, AF_INET, CONN_MASK, &d)) < 0 ||
	    (rc = dump_one(nl, AF_INET6, CONN_MASK, &d)) < 0)
		goto out;
	rc = d.added;
out:
	free(d.listening);
	mnl_socket_close(nl);
	return rc;
}
