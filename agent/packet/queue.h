/* NFQUEUE source: one netlink socket and one thread per queue number. */
#ifndef ELS_QUEUE_H
#define ELS_QUEUE_H

#include <stdatomic.h>
#include <stdbool.h>

#include "worker.h"

struct els_queue;

struct els_queue_opts {
	unsigned num;         /* queue number */
	unsigned copy_bytes;  /* headers-only copy range */
	unsigned maxlen;      /* kernel queue length */
	bool fail_open;       /* NFQA_CFG_F_FAIL_OPEN */
};

/* Binds the queue (needs CAP_NET_ADMIN). NULL with a message on stderr on failure. The queue
 * keeps a pointer to w, which must outlive it. */
struct els_queue *els_queue_open(const struct els_queue_opts *o, struct els_worker *w);

/* The worker loop: runs until *stop becomes true, then drains what the kernel has already
 * queued (each packet still gets its verdict) and returns 0. Returns -1 when the netlink
 * socket fails for good (the caller stops the daemon, so that its supervisor restarts it). */
int els_queue_run(struct els_queue *q, const atomic_bool *stop);

void els_queue_close(struct els_queue *q);

#endif
