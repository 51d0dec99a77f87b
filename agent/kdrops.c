#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kdrops.h"

void els_kdrops_init(struct els_kdrops *k, unsigned first, unsigned last)
{
	memset(k, 0, sizeof(*k));
	k->first = first;
	k->last = last;
	k->path = "/proc/net/netfilter/nfnetlink_queue";
}

int els_kdrops_poll(struct els_kdrops *k,
		    void (*fn)(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg),
		    void *arg)
{
	FILE *f = fopen(k->path, "re");
	char line[256];

	if (!f)
		return -errno;
	/* queue_number peer_portid queue_total copy_mode copy_range queue_dropped
	 * user_dropped id_sequence 1 */
	while (fgets(line, sizeof(line), f)) {
		unsigned q, portid, total, mode, range, seq, one;
		unsigned long long qd, ud;
		if (sscanf(line, "%u %u %u %u %u %llu %llu %u %u", &q, &portid, &total, &mode,
			   &range, &qd, &ud, &seq, &one) != 9 ||
		    q < k->first || q > k->last || q - k->first >= ELS_KDROPS_MAX)
			continue;
		unsigned i = q - k->first;
		/* A counter that went down means a new queue instance (elsd rebound): rebase. */
		if (k->known[i] && qd >= k->queue_full[i] && ud >= k->sockbuf[i] &&
		    (qd > k->queue_full[i] || ud > k->sockbuf[i]))
			fn(q, qd - k->queue_full[i], ud - k->sockbuf[i], arg);
		k->queue_full[i] = qd;
		k->sockbuf[i] = ud;
		k->known[i] = true;
	}
	fclose(f);
	return 0;
}
