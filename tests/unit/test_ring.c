/* The SPSC ring: capacity, loss counting, loss placement, wraparound, and a two-thread run. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "els/monitor.h"

static struct els_record rec_n(uint64_t n)
{
	struct els_record r;

	memset(&r, 0, sizeof(r));
	r.ts_ns = n;
	r.count = n * 2654435761u; /* a second field derived from n catches a torn copy */
	r.kind = ELS_REC_DROP;
	return r;
}

static uint64_t pop(struct els_ring *r, uint64_t *lost_before)
{
	const struct els_record *p = els_ring_peek(r, lost_before);
	uint64_t v;

	cr_assert_not_null(p);
	v = p->ts_ns;
	cr_assert_eq(p->count, v * 2654435761u);
	els_ring_consume(r);
	return v;
}

Test(ring, capacity_rounds_up)
{
	struct els_ring *r = els_ring_new(5);

	cr_assert_eq(els_ring_capacity(r), 8);
	els_ring_free(r);
	r = els_ring_new(1024);
	cr_assert_eq(els_ring_capacity(r), 1024);
	els_ring_free(r);
}

Test(ring, fill_to_capacity_then_count_losses)
{
	struct els_ring *r = els_ring_new(8);
	struct els_record x;
	uint64_t lb;

	cr_assert_null(els_ring_peek(r, &lb));
	cr_assert_eq(els_ring_space(r), 8);
	for (uint64_t i = 0; i < 8; i++) {
		x = rec_n(i);
		cr_assert(els_ring_push(r, &x), "push %lu into a ring of 8", (unsigned long)i);
	}
	cr_assert_eq(els_ring_space(r), 0);
	for (int i = 0; i < 3; i++) {
		x = rec_n(100);
		cr_assert_not(els_ring_push(r, &x));
	}
	cr_assert_eq(els_ring_lost(r), 3);
	cr_assert_eq(els_ring_pushed(r), 8);
	for (uint64_t i = 0; i < 8; i++) {
		cr_assert_eq(pop(r, &lb), i);
		cr_assert_eq(lb, 0, "records pushed before the loss carry lost_before 0");
	}
	cr_assert_eq(els_ring_space(r), 8);
	cr_assert_null(els_ring_peek(r, &lb));
	/* the loss is placed before the next record pushed after it */
	x = rec_n(9);
	cr_assert(els_ring_push(r, &x));
	cr_assert_eq(pop(r, &lb), 9);
	cr_assert_eq(lb, 3);
	els_ring_free(r);
}

Test(ring, wraparound_keeps_order)
{
	struct els_ring *r = els_ring_new(4);
	uint64_t next_in = 0, next_out = 0;

	/* push 3, pop 2, repeatedly: the indices wrap the 4 slots many times */
	for (int round = 0; round < 1000; round++) {
		for (int k = 0; k < 3; k++) {
			struct els_record x = rec_n(next_in);

			if (els_ring_push(r, &x))
				next_in++;
		}
		for (int k = 0; k < 2; k++)
			cr_assert_eq(pop(r, NULL), next_out++);
	}
	while (els_ring_peek(r, NULL))
		cr_assert_eq(pop(r, NULL), next_out++);
	cr_assert_eq(next_out, next_in);
	cr_assert_eq(els_ring_pushed(r), next_in);
	cr_assert_gt(els_ring_lost(r), 0, "a ring of 4 fed 3 for 2 must have overflowed");
	cr_assert_eq(next_in + els_ring_lost(r), 3000);
	els_ring_free(r);
}

#define STRESS_N 2000000u

struct stress {
	struct els_ring *r;
	uint64_t refused;
};

static void *producer(void *arg)
{
	struct stress *s = arg;

	for (uint64_t i = 0; i < STRESS_N; i++) {
		struct els_record x = rec_n(i);

		x.pkts[1] = ~i;
		/* retry: every value gets through, every refusal is counted; yield so that a
		 * busy two-core machine still runs the consumer */
		while (!els_ring_push(s->r, &x)) {
			s->refused++;
			sched_yield();
		}
	}
	return NULL;
}

Test(ring, two_thread_stress_checksum, .timeout = 60)
{
	struct stress s = {.r = els_ring_new(1024)};
	uint64_t expect = 0, got = 0, n = 0, lb, last_lb = 0;
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, producer, &s), 0);
	while (n < STRESS_N) {
		const struct els_record *p = els_ring_peek(s.r, &lb);

		if (!p) {
			sched_yield();
			continue;
		}
		cr_assert_eq(p->ts_ns, n, "record %lu out of order", (unsigned long)n);
		cr_assert_eq(p->count, n * 2654435761u);
		cr_assert_eq(p->pkts[1], ~n);
		cr_assert_geq(lb, last_lb);
		last_lb = lb;
		got = got * 31 + p->ts_ns;
		expect = expect * 31 + n;
		els_ring_consume(s.r);
		n++;
	}
	pthread_join(t, NULL);
	cr_assert_eq(got, expect);
	cr_assert_null(els_ring_peek(s.r, NULL));
	cr_assert_eq(els_ring_lost(s.r), s.refused);
	cr_assert_eq(els_ring_pushed(s.r), STRESS_N);
	els_ring_free(s.r);
}
