/* Time as the agent keeps it: CLOCK_MONOTONIC for timeouts and rates, CLOCK_REALTIME for
 * record stamps, both in nanoseconds (agent/generation.c). */
#ifndef ELS_CLOCK_H
#define ELS_CLOCK_H

#include <stdint.h>

#define ELS_NS_PER_S 1000000000ull

uint64_t els_now_mono(void);
uint64_t els_now_real(void);

#endif
