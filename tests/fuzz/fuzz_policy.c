/* Fuzzes the whole config path: bytes -> a config file -> els_policy_load (every top-level
 * setting, the chain list, and each handler's build: iplist, tracker, header_filter). A policy
 * that builds then judges a few packets decoded from the same bytes, so odd but valid
 * policies are exercised on the packet path too. Errors are expected; crashes and leaks are
 * not, and a failed load must have said why. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "els/chain.h"
#include "els/decode.h"
#include "els/flow.h"
#include "els/policy.h"

/* libconfig 1.5 (Debian 12) leaks scanner buffers on some syntax errors; not ours. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:strbuf_append\nleak:libconfig_yylex\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct els_flow_table *flows;
	char path[64];
	struct els_diag d;

	if (size > 65536)
		return 0;
	if (!flows)
		flows = els_flow_table_new(64, 1);
	int fd = memfd_create("elsd.conf", 0);
	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, NULL, &d);
	if (!p && d.count == 0)
		abort(); /* a refusal must say why */
	if (p) {
		/* Judge the input's bytes as packets at a few offsets, both directions. */
		for (size_t off = 0; off < size && off < 256; off += 61) {
			struct els_pkt pkt;
			struct els_decision dec;
			els_decode(data + off, size - off, size - off, (off / 61) & 1, &pkt);
			struct els_ctx ctx = {.pkt = &pkt, .flows = flows, .now_ns = off,
					      .generation = 1};
			enum els_action a = els_chain_run(p, &ctx, &dec);
			if (a != ELS_ACCEPT && a != ELS_DROP)
				abort();
		}
		els_policy_free(p);
	}
	els_diag_free(&d);
	close(fd);
	return 0;
}
