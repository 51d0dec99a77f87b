/* The clocks every layer reads (include/els/clock.h). */
#include "els/clock.h"

static uint64_t now_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * ELS_NS_PER_S + (uint64_t)ts.tv_nsec;
}

uint64_t els_now_mono(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

uint64_t els_now_real(void)
{
	return now_ns(CLOCK_REALTIME);
}

uint64_t els_now_mono_ms(void)
{
	return now_ns(CLOCK_MONOTONIC) / ELS_NS_PER_MS;
}

void els_deadline_after_ms(struct timespec *ts, clockid_t clock, uint64_t ms)
{
	clock_gettime(clock, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000 * ELS_NS_PER_MS);
	if (ts->tv_nsec >= (long)ELS_NS_PER_S) {
		ts->tv_sec++;
		ts->tv_nsec -= (long)ELS_NS_PER_S;
	}
}
