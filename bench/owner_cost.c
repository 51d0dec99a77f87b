/* owner_cost: what a service-bound permit adds to a new flow in elsd's worker, measured on
 * the very code it runs (agent/packet/owner.c): the sock_diag lookup of the socket a SYN to
 * PORT meets and the cache read of its owner, N times, as p50/p99 in microseconds; plus how
 * long one miss (a socket never seen: the /proc scan on the resolver thread) takes.
 *
 *   owner_cost PORT N      (a listener on 127.0.0.1:PORT must exist; run as root)
 *
 * Prints "hit_p50_us X hit_p99_us Y miss_ms Z". bench/run builds it against the sources. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "els/clock.h"
#include "owner.h"

static uint64_t ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* elsd keeps its clocks in agent/packet/generation.c, which this program does not link. */
uint64_t els_now_mono(void)
{
	return ns();
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: owner_cost PORT N\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	struct els_owners *o = els_owners_new(0);
	struct els_pkt p = {.family = ELS_AF_INET,
			    .proto = 6,
			    .dir = ELS_DIR_IN,
			    .flags = ELS_PKT_HAS_PORTS,
			    .tcp_flags = 0x02};
	const struct els_owner *w;
	uint64_t *t = calloc((size_t)n, sizeof(*t));

	if (!o || !t || n < 1)
		return 1;
	inet_pton(AF_INET, "127.0.0.1", p.src.b);
	inet_pton(AF_INET, "127.0.0.1", p.dst.b);
	p.dport = (uint16_t)port;
	p.sport = 40000;

	els_owners_begin(o, 0, 0, false, true);
	uint64_t t0 = ns();
	enum els_owner_res r = els_owners_query(o, &p, ELS_OWNER_NEED_PROC, &w);
	if (r != ELS_OWNER_PENDING) {
		fprintf(stderr, "owner_cost: no listener on 127.0.0.1:%d (answer %d)\n", port, r);
		return 1;
	}
	while (!els_owners_poll(o))
		usleep(50);
	double miss_ms = (double)(ns() - t0) / 1e6;
	for (int i = 0; i < n; i++) {
		p.sport = (uint16_t)(1024 + i % 60000); /* each a new flow's SYN */
		uint64_t a = ns();
		els_owners_begin(o, 0, 0, false, true);
		r = els_owners_query(o, &p, ELS_OWNER_NEED_PROC, &w);
		t[i] = ns() - a;
		if (r != ELS_OWNER_FOUND) {
			fprintf(stderr, "owner_cost: lookup %d answered %d\n", i, r);
			return 1;
		}
	}
	qsort(t, (size_t)n, sizeof(*t), cmp);
	printf("hit_p50_us %.2f hit_p99_us %.2f miss_ms %.2f owner_pid %u\n",
	       (double)t[n / 2] / 1e3, (double)t[(size_t)n * 99 / 100] / 1e3, miss_ms, w->pid);
	els_owners_free(o);
	free(t);
	return 0;
}
