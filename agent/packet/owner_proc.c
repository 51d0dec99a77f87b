/* Socket owners, resolver side: a thread per queue that turns socket inodes into processes
 * (lib/owner/owner_proc.c reads /proc). Off the packet path: it may take milliseconds on a busy host,
 * and the packets that wait for it are held by their queue meanwhile (owner.h). */
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "owner_int.h"

#define RESOLVE_BATCH 64

static void *resolver_main(void *arg)
{
	struct owner_resolver *r = arg;
	struct owner_ans batch[RESOLVE_BATCH];
	struct pollfd pfd = {.fd = r->req_fd, .events = POLLIN};

	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		uint64_t v;
		uint32_t t = atomic_load_explicit(&r->req->tail, memory_order_relaxed);
		uint32_t h = atomic_load_explicit(&r->req->head, memory_order_acquire);
		if (t == h) {
			poll(&pfd, 1, 200);
			if (read(r->req_fd, &v, sizeof(v)) < 0) {
				/* EAGAIN: woken by the timeout */
			}
			continue;
		}
		unsigned n = 0;
		for (; t != h && n < RESOLVE_BATCH; t++) {
			const struct owner_req *q = &r->req->e[t % OWNER_RING];
			memset(&batch[n], 0, sizeof(batch[n]));
			batch[n].o.inode = q->inode;
			batch[n].o.uid = q->uid;
			n++;
		}
		atomic_store_explicit(&r->req->tail, t, memory_order_release);
		struct els_owner o[RESOLVE_BATCH];
		bool found[RESOLVE_BATCH];
		for (unsigned i = 0; i < n; i++)
			o[i] = batch[i].o;
		els_owner_scan(o, found, n);
		for (unsigned i = 0; i < n; i++) {
			batch[i].o = o[i];
			batch[i].found = found[i];
		}
		/* The answer ring has the request ring's size, and the worker asks only while it
		 * has a free slot, so this waits only when the worker is stopping. */
		for (unsigned i = 0; i < n; i++) {
			struct owner_ans_ring *a = r->ans;
			uint32_t ah = atomic_load_explicit(&a->head, memory_order_relaxed);
			while (ah - atomic_load_explicit(&a->tail, memory_order_acquire) >=
				   OWNER_RING &&
			       !atomic_load_explicit(&r->stop, memory_order_relaxed))
				usleep(1000);
			a->e[ah % OWNER_RING] = batch[i];
			atomic_store_explicit(&a->head, ah + 1, memory_order_release);
		}
		uint64_t one = 1;
		if (write(r->ans_fd, &one, sizeof(one)) < 0) {
			/* EAGAIN: already signalled */
		}
	}
	return NULL;
}

int owner_resolver_start(struct owner_resolver *r)
{
	atomic_store(&r->stop, false);
	if (pthread_create(&r->thread, NULL, resolver_main, r) != 0)
		return -1;
	char name[16];
	snprintf(name, sizeof(name), "els-owner%u", r->queue);
	pthread_setname_np(r->thread, name);
	r->started = true;
	return 0;
}

void owner_resolver_stop(struct owner_resolver *r)
{
	if (!r->started)
		return;
	atomic_store(&r->stop, true);
	uint64_t one = 1;
	if (write(r->req_fd, &one, sizeof(one)) < 0) {
		/* the thread's poll times out within 200 ms anyway */
	}
	pthread_join(r->thread, NULL);
	r->started = false;
}
