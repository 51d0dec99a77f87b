/* Internals shared by owner.c (worker side) and owner_proc.c (the resolver thread). */
#ifndef ELS_OWNER_INT_H
#define ELS_OWNER_INT_H

#include <pthread.h>

#include "owner.h"

#define OWNER_RING 256 /* requests / answers in flight per queue (a power of two) */

struct owner_req {
	uint64_t inode;
	uint32_t uid; /* the socket's, from sock_diag */
};

struct owner_ans {
	bool found;
	struct els_owner o;
};

/* Single producer, single consumer: head written by the producer, tail by the consumer. */
struct owner_req_ring {
	_Atomic uint32_t head, tail;
	struct owner_req e[OWNER_RING];
};
struct owner_ans_ring {
	_Atomic uint32_t head, tail;
	struct owner_ans e[OWNER_RING];
};

/* The resolver thread (owner_proc.c). */
struct owner_resolver {
	pthread_t thread;
	bool started;
	_Atomic bool stop;
	int req_fd;		    /* eventfd: the worker signals requests */
	int ans_fd;		    /* eventfd: the resolver signals answers */
	struct owner_req_ring *req; /* worker -> resolver */
	struct owner_ans_ring *ans; /* resolver -> worker */
	struct els_owners_stats *st;
	unsigned queue;
};

int owner_resolver_start(struct owner_resolver *r);
void owner_resolver_stop(struct owner_resolver *r);

#endif
