/* Fuzzes replay input: the bytes are a capture file (pcap or pcapng, any link type libpcap
 * reads), judged by the example policy through the same worker code as live traffic. libpcap
 * parses the file; this checks our link-layer framing and everything after it, including the
 * --verdicts lines (text or JSON, by the input's length) written to /dev/null. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string.h>

#include "generation.h"
#include "replay.h"

static void drain(void *m)
{
	els_monitor_sync(m, 1000);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct els_worker w;
	static struct els_monitor *mon;
	static struct els_cidr local[2];
	static FILE *devnull;
	char path[64];

	if (!mon) {
		struct els_diag d;
		els_diag_init(&d, "elsd.conf");
		struct els_policy *p = els_policy_load(ELS_FUZZ_CONF, NULL, &d);
		/* The monitor is not under test here: a scratch file, never started, drained in
		 * this thread. */
		static char db[] = "/tmp/els-fuzz-replay-XXXXXX";
		close(mkstemp(db));
		unlink(db);
		struct els_monitor_opts mo = {.path = db, .producers = 1};
		mon = p ? els_monitor_open(&mo, &d) : NULL;
		if (!mon || els_worker_init(&w, 0, 64, els_monitor_ring(mon, 0)) < 0) {
			els_diag_print(&d, stderr);
			abort();
		}
		els_diag_free(&d);
		els_gen_publish(p);
		els_cidr_parse("198.18.0.2", &local[0], NULL);
		els_cidr_parse("2001:db8:1::2", &local[1], NULL);
		devnull = fopen("/dev/null", "w");
		if (!devnull)
			abort();
	}
	int fd = memfd_create("cap.pcap", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	struct els_replay_opts o = {.path = path,
				    .local = local,
				    .nlocal = 2,
				    .verdicts = devnull,
				    .verdicts_json = size & 1,
				    .drain = drain,
				    .drain_arg = mon};
	struct els_replay_result r;
	if (els_replay_run(&o, &w, &r) == 0 && r.accepted + r.dropped + r.skipped != r.packets)
		abort();
	/* Keep the ring drained (single-threaded: the monitor was never started). */
	els_monitor_sync(mon, 1000);
	close(fd);
	return 0;
}
