/* Packets the kernel dropped for elsd's queues without elsd ever seeing them: a full queue
 * (queue_maxlen reached) or an overrun netlink socket buffer. The kernel counts both per queue
 * in /proc/net/netfilter/nfnetlink_queue (per network namespace); elsd turns their growth into
 * a log line and a monitor gap record, so a flood that outran it is never invisible. With
 * fail_open, a full queue lets packets pass instead, and the kernel does not count those.
 *
 * The file is opened once, at start, and kept open: every later reading re-reads the same
 * descriptor from offset 0. A sandbox that hides the file afterwards (a /proc remounted with
 * subset=pid, as systemd's ProcSubset=pid does, or a privilege drop) cannot stop the reports.
 * The open file also stays bound to the network namespace elsd started in. */
#ifndef ELS_KDROPS_H
#define ELS_KDROPS_H

#include <stdbool.h>
#include <stdint.h>

#define ELS_KDROPS_MAX 64

struct els_kdrops {
	unsigned first, last; /* queue numbers served */
	uint64_t queue_full[ELS_KDROPS_MAX], sockbuf[ELS_KDROPS_MAX];
	bool known[ELS_KDROPS_MAX];
	const char *path; /* the /proc file; tests may point elsewhere before the first poll */
	int fd;		  /* path, open from the first poll on; -1 before, or when it failed */
	int open_err;	  /* why the open failed (-errno), 0 otherwise */
};

void els_kdrops_init(struct els_kdrops *k, unsigned first, unsigned last);

/* Reads the counters and calls fn for each queue whose counters grew since the last call
 * (the first reading of a queue is its baseline). The first call opens path and keeps it open
 * (call it before privileges are dropped). 0, or -errno when the file cannot be read. */
int els_kdrops_poll(struct els_kdrops *k,
		    void (*fn)(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg),
		    void *arg);

/* Closes the file. Safe on a zeroed struct that was never initialised. */
void els_kdrops_fini(struct els_kdrops *k);

#endif
