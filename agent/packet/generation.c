/* Publishing policy generations to the workers without locks. The reloading thread swaps one
 * pointer; workers load it between packets and announce which generation they hold. Once all
 * of them announce the new one, nobody can hold the old one, and it is freed (quiescent-state
 * reclamation, as in userspace RCU, in a few lines because there is one writer). */
#include <stdatomic.h>
#include <time.h>

#include "generation.h"
#include "worker.h"

static _Atomic(struct els_policy *) current;
static uint32_t last_generation; /* reloading thread only */

const struct els_policy *els_gen_current(void)
{
	return atomic_load_explicit(&current, memory_order_acquire);
}

const struct els_policy *els_gen_publish(struct els_policy *p)
{
	p->generation = ++last_generation;
	return atomic_exchange_explicit(&current, p, memory_order_acq_rel);
}

bool els_gen_quiescent(struct els_worker *const *workers, unsigned n, uint32_t gen,
		       unsigned timeout_ms)
{
	for (unsigned waited = 0;; waited++) {
		unsigned behind = 0;
		for (unsigned i = 0; i < n; i++)
			if (atomic_load_explicit(&workers[i]->seen_gen, memory_order_acquire) <
			    gen)
				behind++;
		if (!behind)
			return true;
		if (waited >= timeout_ms)
			return false;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
}
