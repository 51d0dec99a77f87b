/* blast: the benchmark's traffic generator and sinks.
 *
 *   blast udp-send DST PORT SECONDS [--srcs BASE N] [--sports N] [--size B] [--pps R] [--count N]
 *                                    [--dports N]
 *   blast syn-flood DST PORT SECONDS
 *   blast udp-sink PORT SECONDS
 *   blast tcp-send DST PORT SECONDS [--conns N]
 *   blast tcp-sink PORT SECONDS
 *
 * udp-send writes IPv4/UDP packets through a raw socket (IP_HDRINCL) with sendmmsg, cycling
 * over N source addresses x N source ports so that the receiver sees many flows (a raw
 * socket is what lets one process own 10,000 source ports without 10,000 sockets). It stops
 * after SECONDS and prints "sent PACKETS". --pps paces it (for the apply test, where loss
 * must come from the filter, not from an overload). --count stops it after N packets (one
 * packet per flow fills a flow table: --count = srcs x sports). --dports N sends packet k to
 * port PORT + k mod N as well: with N and the number of sources coprime, every (source, port)
 * pair comes once in srcs x N packets (distinct drop events for a logger).
 * syn-flood writes spoofed TCP SYNs, each from its own address in 198.18.128.0/17 and a
 * pseudo-random source port, as fast as the raw socket takes them for SECONDS; prints "sent
 * PACKETS". The server routes 198.18.128.0/17 back to the client namespace, which drops the
 * answers (nothing there owns those addresses), as a spoofed flood's answers are lost.
 * udp-sink drains a UDP port with recvmmsg for SECONDS and prints "received PACKETS"; the
 * benchmark counts delivered packets from the kernel's UDP counters, so a slow sink cannot
 * bias the figure.
 * tcp-send opens N connections and writes as fast as they drain for SECONDS; prints "sent
 * BYTES". tcp-sink accepts and reads until every connection it accepted has closed (or for
 * SECONDS at most), prints "received BYTES"; so a run costs the sender's time, not the limit.
 * Everything is bounded in time: each mode exits by itself. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH	64
#define MAXCONN 256

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "blast: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int udp_send(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: blast udp-send DST PORT SECONDS [options]\n");
		return 2;
	}
	struct in_addr dst, src_base;
	inet_pton(AF_INET, "198.18.0.1", &src_base);
	if (inet_pton(AF_INET, argv[2], &dst) != 1) {
		fprintf(stderr, "blast: bad address %s\n", argv[2]);
		return 2;
	}
	unsigned port = (unsigned)atoi(argv[3]);
	double secs = atof(argv[4]);
	unsigned nsrc = 1, nsport = 10000, size = 64;
	double pps = 0;
	uint64_t count = 0;
	unsigned ndport = 1;
	for (int i = 5; i < argc; i++) {
		if (!strcmp(argv[i], "--srcs") && i + 2 < argc) {
			inet_pton(AF_INET, argv[i + 1], &src_base);
			nsrc = (unsigned)atoi(argv[i + 2]);
			i += 2;
		} else if (!strcmp(argv[i], "--sports") && i + 1 < argc) {
			nsport = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			size = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--pps") && i + 1 < argc) {
			pps = atof(argv[++i]);
		} else if (!strcmp(argv[i], "--dports") && i + 1 < argc) {
			ndport = (unsigned)atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--count") && i + 1 < argc) {
			count = strtoull(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "blast: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (size < 28 || size > 1500 || !nsrc || !nsport || nsport > 60000 || !ndport ||
	    port + ndport > 65536) {
		fprintf(stderr, "blast: size 28-1500, srcs >= 1, sports 1-60000, dports within 65535\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		die("raw socket (needs CAP_NET_RAW)");
	int sb = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));

	static uint8_t pkts[BATCH][1500];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = dst};
	for (unsigned i = 0; i < BATCH; i++) {
		struct iphdr *ip = (struct iphdr *)pkts[i];
		struct udphdr *udp = (struct udphdr *)(ip + 1);
		memset(pkts[i], 0, size);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_UDP;
		ip->tot_len = htons((uint16_t)size); /* the kernel fills it in too */
		ip->daddr = dst.s_addr;
		udp->dest = htons((uint16_t)port);
		udp->len = htons((uint16_t)(size - 20));
		udp->check = 0; /* optional over IPv4 */
		iov[i] = (struct iovec){pkts[i], size};
		msg[i].msg_hdr = (struct msghdr){.msg_name = &sa,
						 .msg_namelen = sizeof(sa),
						 .msg_iov = &iov[i],
						 .msg_iovlen = 1};
	}
	uint32_t base = ntohl(src_base.s_addr);
	uint64_t sent = 0, nflows = (uint64_t)nsrc * nsport;
	double t0 = now_s(), end = t0 + secs;
	for (;;) {
		double t = now_s();
		if (t >= end || (count && sent >= count))
			break;
		if (pps > 0 && (double)sent > (t - t0) * pps) {
			usleep(200);
			continue;
		}
		unsigned batch = BATCH;
		if (count && count - sent < batch)
			batch = (unsigned)(count - sent);
		for (unsigned i = 0; i < batch; i++) {
			struct iphdr *ip = (struct iphdr *)pkts[i];
			struct udphdr *udp = (struct udphdr *)(ip + 1);
			uint64_t f = (sent + i) % nflows;
			ip->saddr = htonl(base + (uint32_t)(f % nsrc));
			udp->source = htons((uint16_t)(1024 + f / nsrc));
			if (ndport > 1)
				udp->dest = htons((uint16_t)(port + f % ndport));
		}
		int n = sendmmsg(fd, msg, batch, 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EPERM)
				continue; /* a full qdisc, or a local drop: count nothing */
			die("sendmmsg");
		}
		sent += (uint64_t)n;
	}
	printf("sent %llu\n", (unsigned long long)sent);
	return 0;
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int syn_flood(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: blast syn-flood DST PORT SECONDS\n");
		return 2;
	}
	struct in_addr dst;
	if (inet_pton(AF_INET, argv[2], &dst) != 1) {
		fprintf(stderr, "blast: bad address %s\n", argv[2]);
		return 2;
	}
	unsigned port = (unsigned)atoi(argv[3]);
	double secs = atof(argv[4]);
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (fd < 0)
		die("raw socket (needs CAP_NET_RAW)");
	int sb = 4 << 20;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sb, sizeof(sb));
	enum { LEN = 20 + 20 };
	static uint8_t pkts[BATCH][LEN];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = dst};
	for (unsigned i = 0; i < BATCH; i++) {
		struct iphdr *ip = (struct iphdr *)pkts[i];
		struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
		memset(pkts[i], 0, LEN);
		ip->version = 4;
		ip->ihl = 5;
		ip->ttl = 64;
		ip->protocol = IPPROTO_TCP;
		ip->tot_len = htons(LEN);
		ip->daddr = dst.s_addr;
		tcp->dest = htons((uint16_t)port);
		tcp->doff = 5;
		tcp->syn = 1;
		tcp->window = htons(65535);
		iov[i] = (struct iovec){pkts[i], LEN};
		msg[i].msg_hdr = (struct msghdr){.msg_name = &sa,
						 .msg_namelen = sizeof(sa),
						 .msg_iov = &iov[i],
						 .msg_iovlen = 1};
	}
	uint32_t x = 2463534242u; /* xorshift32: addresses, ports and sequence numbers */
	uint64_t sent = 0;
	double end = now_s() + secs;
	while (now_s() < end) {
		for (unsigned i = 0; i < BATCH; i++) {
			struct iphdr *ip = (struct iphdr *)pkts[i];
			struct tcphdr *tcp = (struct tcphdr *)(ip + 1);
			x ^= x << 13, x ^= x >> 17, x ^= x << 5;
			ip->saddr = htonl(0xC6128000u | (x & 0x7fff)); /* 198.18.128.0/17 */
			ip->id = (uint16_t)(x >> 16);
			tcp->source = htons((uint16_t)(1024 + (x >> 17) % 64000));
			tcp->seq = x;
			tcp->check = 0;
			/* pseudo-header + header, in 16-bit words */
			uint32_t s = (ip->saddr & 0xffff) + (ip->saddr >> 16) + (ip->daddr & 0xffff) +
				     (ip->daddr >> 16) + htons(IPPROTO_TCP) + htons(20);
			const uint16_t *w = (const uint16_t *)tcp;
			for (unsigned k = 0; k < 10; k++)
				s += w[k];
			tcp->check = csum_fold(s);
		}
		int n = sendmmsg(fd, msg, BATCH, 0);
		if (n < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EPERM)
				continue;
			die("sendmmsg");
		}
		sent += (uint64_t)n;
	}
	printf("sent %llu\n", (unsigned long long)sent);
	return 0;
}

static int bind_listen(unsigned port, int type)
{
	int fd = socket(AF_INET, type, 0);
	int one = 1, rb = 16 << 20;
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rb, sizeof(rb)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static int udp_sink(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int fd = bind_listen((unsigned)atoi(argv[2]), SOCK_DGRAM);
	double end = now_s() + atof(argv[3]);
	static uint8_t bufs[BATCH][2048];
	struct iovec iov[BATCH];
	struct mmsghdr msg[BATCH];
	uint64_t got = 0;
	for (unsigned i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){bufs[i], sizeof(bufs[i])};
		msg[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1};
	}
	printf("ready\n");
	fflush(stdout);
	while (now_s() < end) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int n = recvmmsg(fd, msg, BATCH, MSG_DONTWAIT, NULL);
		if (n > 0)
			got += (uint64_t)n;
	}
	printf("received %llu\n", (unsigned long long)got);
	return 0;
}

static int tcp_send(int argc, char **argv)
{
	if (argc < 5)
		return 2;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		return 2;
	double secs = atof(argv[4]);
	unsigned nconn = 8;
	if (argc > 6 && !strcmp(argv[5], "--conns"))
		nconn = (unsigned)atoi(argv[6]);
	if (nconn < 1 || nconn > MAXCONN)
		return 2;
	int ep = epoll_create1(0);
	static char buf[1 << 16];
	uint64_t sent = 0;
	for (unsigned i = 0; i < nconn; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		/* a filter that drops the SYN must fail the run, not hang it for two minutes */
		struct timeval limit = {.tv_sec = 5};
		if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit)) < 0 ||
		    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect");
		fcntl(fd, F_SETFL, O_NONBLOCK);
		struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	}
	double end = now_s() + secs;
	while (now_s() < end) {
		struct epoll_event evs[MAXCONN];
		int n = epoll_wait(ep, evs, MAXCONN, 100);
		for (int i = 0; i < n; i++) {
			ssize_t w = write(evs[i].data.fd, buf, sizeof(buf));
			if (w > 0)
				sent += (uint64_t)w;
			else if (w < 0 && errno != EAGAIN)
				die("write");
		}
	}
	printf("sent %llu\n", (unsigned long long)sent);
	return 0;
}

static int tcp_sink(int argc, char **argv)
{
	if (argc < 4)
		return 2;
	int lfd = bind_listen((unsigned)atoi(argv[2]), SOCK_STREAM);
	double end = now_s() + atof(argv[3]);
	int ep = epoll_create1(0);
	static char buf[1 << 18];
	uint64_t got = 0;
	unsigned accepted = 0, open_conns = 0;
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	printf("ready\n");
	fflush(stdout);
	while (now_s() < end && !(accepted > 0 && open_conns == 0)) {
		struct epoll_event evs[MAXCONN];
		int n = epoll_wait(ep, evs, MAXCONN, 100);
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (c >= 0) {
					struct epoll_event ce = {.events = EPOLLIN, .data.fd = c};
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
					accepted++, open_conns++;
				}
				continue;
			}
			ssize_t r = read(fd, buf, sizeof(buf));
			if (r > 0) {
				got += (uint64_t)r;
			} else if (r == 0 || errno != EAGAIN) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
				open_conns--;
			}
		}
	}
	printf("received %llu\n", (unsigned long long)got);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "udp-send"))
		return udp_send(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "udp-sink"))
		return udp_sink(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "tcp-send"))
		return tcp_send(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "tcp-sink"))
		return tcp_sink(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "syn-flood"))
		return syn_flood(argc, argv);
	fprintf(stderr,
		"usage: blast udp-send|udp-sink|tcp-send|tcp-sink|syn-flood ... (see bench/blast.c)\n");
	return 2;
}
