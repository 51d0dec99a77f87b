/* svc_flows: new TCP flows per second, for the service-bound permit figures of bench/run.
 *
 *   svc_flows listen PORT SECONDS
 *   svc_flows connect DST PORT SECONDS [--par N]
 *
 * listen accepts and closes connections on PORT for SECONDS. connect keeps N (default 16)
 * connection attempts in flight to DST:PORT for SECONDS, each closed with a reset as soon as
 * it is established (so no TIME_WAIT runs the source ports out), and prints "connections C
 * failed F": every connection is one new flow through elsd's header filter. Bounded in time. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int do_listen(int port, double secs)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4096) < 0) {
		perror("svc_flows: listen");
		return 1;
	}
	double end = now() + secs;
	while (now() < end) {
		int c = accept4(s, NULL, NULL, SOCK_NONBLOCK);
		if (c >= 0) {
			close(c);
			continue;
		}
		usleep(200);
	}
	return 0;
}

static int start(int ep, const struct sockaddr_in *a)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	if (connect(s, (const struct sockaddr *)a, sizeof(*a)) < 0 && errno != EINPROGRESS) {
		close(s);
		return -1;
	}
	struct epoll_event ev = {.events = EPOLLOUT, .data.fd = s};
	epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	return s;
}

static int do_connect(const char *dst, int port, double secs, int par)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	long ok = 0, failed = 0;
	int ep = epoll_create1(0);

	if (inet_pton(AF_INET, dst, &a.sin_addr) != 1) {
		fprintf(stderr, "svc_flows: bad address %s\n", dst);
		return 2;
	}
	for (int i = 0; i < par; i++)
		start(ep, &a);
	double end = now() + secs;
	struct epoll_event evs[64];
	while (now() < end) {
		int n = epoll_wait(ep, evs, 64, 100);
		for (int i = 0; i < n; i++) {
			int s = evs[i].data.fd, err = 0;
			socklen_t l = sizeof(err);
			getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &l);
			if (err)
				failed++;
			else
				ok++;
			struct linger lg = {.l_onoff = 1, .l_linger = 0}; /* reset: no TIME_WAIT */
			setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
			close(s);
			start(ep, &a);
		}
	}
	printf("connections %ld failed %ld\n", ok, failed);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "listen") == 0)
		return do_listen(atoi(argv[2]), atof(argv[3]));
	if (argc >= 5 && strcmp(argv[1], "connect") == 0) {
		int par = argc >= 7 && strcmp(argv[5], "--par") == 0 ? atoi(argv[6]) : 16;
		return do_connect(argv[2], atoi(argv[3]), atof(argv[4]), par > 0 ? par : 16);
	}
	fprintf(stderr, "usage: svc_flows listen PORT SECONDS | connect DST PORT SECONDS "
			"[--par N]\n");
	return 2;
}
