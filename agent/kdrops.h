/* Packets the kernel dropped for elsd's queues without elsd ever seeing them: a full queue
 * (queue_maxlen reached) or an overrun netlink socket buffer. The kernel counts both per queue
 * in /proc/net/netfilter/nfnetlink_queue (per network namespace); elsd turns their growth into
 * a log line and a monitor gap record, so a flood that outran it is never invisible. With
 * fail_open, a full queue lets packets pass instead, and the kernel does not count those. */
#ifndef ELS_KDROPS_H
#define ELS_KDROPS_H

#include <stdbool.h>
#include <stdint.h>

#define ELS_KDROPS_MAX 64

struct els_kdrops {
	unsigned first, last; /* queue numbers served */
	uint64_t queue_full[ELS_KDROPS_MAX], sockbuf[ELS_KDROPS_MAX];
	bool known[ELS_KDROPS_MAX];
	const char *path; /* the /proc file; tests may point elsewhere */
};

void els_kdrops_init(struct els_kdrops *k, unsigned first, unsigned last);

/* Reads the counters and calls fn for each queue whose counters grew since the last call
 * (the first reading of a queue is its baseline). 0, or -errno when the file is unreadable. */
int els_kdrops_poll(struct els_kdrops *k,
		    void (*fn)(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg),
		    void *arg);

#endif
