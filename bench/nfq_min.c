/* nfq_min: the floor for any userspace NFQUEUE filter. Accepts everything, with the best
 * known tuning: libmnl (no libnfnetlink layer), headers-only copy, every packet of a read
 * burst answered by one NFQNL_MSG_VERDICT_BATCH, GSO super-packets taken whole
 * (NFQA_CFG_F_GSO), NETLINK_NO_ENOBUFS, and a large receive buffer. It does not look at the
 * packets at all, so elsd's cost over it is exactly its decode, chain and records.
 *
 *   nfq_min QUEUE [COPY_BYTES] [MAXLEN]      runs until SIGTERM/SIGINT, prints the count */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BURST 128

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

struct state {
	uint32_t last_id;
	unsigned n;
};

static int on_packet(const struct nlmsghdr *nlh, void *data)
{
	struct state *s = data;
	struct nlattr *attr[NFQA_MAX + 1] = {0};
	if (nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return MNL_CB_OK;
	const struct nfqnl_msg_packet_hdr *ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	s->last_id = ntohl(ph->packet_id);
	s->n++;
	return MNL_CB_OK;
}

static int config(struct mnl_socket *nl, struct nlmsghdr *nlh)
{
	return mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: nfq_min QUEUE [COPY_BYTES] [MAXLEN]\n");
		return 2;
	}
	unsigned qn = (unsigned)atoi(argv[1]);
	unsigned copy = argc > 2 ? (unsigned)atoi(argv[2]) : 256;
	unsigned maxlen = argc > 3 ? (unsigned)atoi(argv[3]) : 4096;
	static char rx[65536 + 4096], tx[8192];
	struct mnl_socket *nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("nfq_min: netlink");
		return 1;
	}
	unsigned portid = mnl_socket_get_portid(nl);
	struct nlmsghdr *nlh = nfq_nlmsg_put(tx, NFQNL_MSG_CONFIG, qn);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
	if (config(nl, nlh) < 0) {
		perror("nfq_min: bind queue");
		return 1;
	}
	nlh = nfq_nlmsg_put(tx, NFQNL_MSG_CONFIG, qn);
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, (int)copy);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, maxlen);
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(NFQA_CFG_F_GSO));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
	if (config(nl, nlh) < 0) {
		perror("nfq_min: configure queue");
		return 1;
	}
	int fd = mnl_socket_get_fd(nl);
	int one = 1, rb = 8 << 20;
	setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fprintf(stderr, "nfq_min: bound to queue %u\n", qn);

	unsigned long long total = 0;
	while (!stop) {
		struct state s = {0, 0};
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		while (s.n < BURST) {
			ssize_t len = recv(fd, rx, sizeof(rx), MSG_DONTWAIT);
			if (len <= 0)
				break;
			mnl_cb_run(rx, (size_t)len, 0, portid, on_packet, &s);
		}
		if (!s.n)
			continue;
		/* Ids grow in queue order, so one batch verdict on the last id answers every
		 * packet read in this burst. */
		nlh = nfq_nlmsg_put(tx, NFQNL_MSG_VERDICT_BATCH, qn);
		nfq_nlmsg_verdict_put(nlh, (int)s.last_id, NF_ACCEPT);
		mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
		total += s.n;
	}
	nlh = nfq_nlmsg_put(tx, NFQNL_MSG_CONFIG, qn);
	nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_UNBIND);
	mnl_socket_sendto(nl, nlh, nlh->nlmsg_len);
	mnl_socket_close(nl);
	printf("packets %llu\n", total);
	return 0;
}
