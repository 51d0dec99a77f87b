/* One time vocabulary for elsd and its tools: CLOCK_MONOTONIC for timeouts and rates,
 * CLOCK_REALTIME for record stamps and --since, both in nanoseconds (lib/clock.c). */
#ifndef ELS_CLOCK_H
#define ELS_CLOCK_H

#include <stdint.h>
#include <time.h>

#define ELS_NS_PER_S  1000000000ull
#define ELS_NS_PER_MS 1000000ull

uint64_t els_now_mono(void);
uint64_t els_now_real(void);
/* CLOCK_MONOTONIC in milliseconds. */
uint64_t els_now_mono_ms(void);

/* *ts = now on clock (CLOCK_MONOTONIC or CLOCK_REALTIME, the one the condition variable
 * waits on) plus ms: an absolute deadline for pthread_cond_timedwait. */
void els_deadline_after_ms(struct timespec *ts, clockid_t clock, uint64_t ms);

#endif
