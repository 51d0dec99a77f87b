/* Fuzzes decode + the full chain of the shipped example policy on one packet: the bytes are
 * the IP packet, as NFQUEUE would hand it over. A small flow table makes eviction and state
 * paths reachable; the first byte's low bit picks the direction. Every packet must get exactly
 * one final verdict, and the table must stay consistent. The same packets also go through the
 * live queue's path, with the flow key and bucket built ahead (struct els_flow_hint), into a
 * second table: both must reach the same decision and keep the same number of flows. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/chain.h"
#include "els/decode.h"
#include "els/flow.h"
#include "els/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct els_policy *pol;
	static struct els_flow_table *flows, *hinted;
	static uint64_t now;

	if (!pol) {
		struct els_diag d;
		els_diag_init(&d, "elsd.conf");
		pol = els_policy_load(ELS_FUZZ_CONF, NULL, &d);
		if (!pol) {
			els_diag_print(&d, stderr);
			abort();
		}
		pol->generation = 1;
		els_diag_free(&d);
		flows = els_flow_table_new(16, 7);
		hinted = els_flow_table_new(16, 7);
	}
	if (size < 1)
		return 0;
	/* An exact-size copy, so a read past the packet trips ASan. */
	uint8_t *buf = malloc(size - 1 ? size - 1 : 1);
	memcpy(buf, data + 1, size - 1);
	struct els_pkt pkt;
	struct els_decision d;
	els_decode(buf, size - 1, size - 1 + (data[0] >> 1), data[0] & 1, &pkt);
	now += 1000000000ull * (data[0] >> 5); /* let timeouts fire sometimes */
	struct els_ctx ctx = {.pkt = &pkt, .flows = flows, .now_ns = now, .generation = 1};
	enum els_action a = els_chain_run(pol, &ctx, &d);
	if (a != ELS_ACCEPT && a != ELS_DROP)
		abort();
	if (a == ELS_DROP && d.reason == ELS_R_NONE)
		abort();

	struct els_flow_hint hint;
	struct els_decision hd;
	bool has = els_flow_key_of(&pkt, &hint.key, &hint.side);
	if (has) {
		hint.bucket = els_flow_bucket(hinted, &hint.key);
		els_flow_prefetch(hinted, hint.bucket);
	}
	struct els_ctx hctx = {.pkt = &pkt, .flows = hinted, .now_ns = now, .generation = 1,
			       .flow_hint = has ? &hint : NULL};
	enum els_action ha = els_chain_run(pol, &hctx, &hd);
	if (ha != a || hd.reason != d.reason || hd.rule != d.rule || hd.handler != d.handler)
		abort();

	els_flow_expire(flows, now, 4, NULL, NULL);
	els_flow_expire(hinted, now, 4, NULL, NULL);
	if (els_flow_count(flows) > els_flow_capacity(flows) || els_flow_table_check(flows) != 0 ||
	    els_flow_table_check(hinted) != 0 || els_flow_count(hinted) != els_flow_count(flows))
		abort();
	free(buf);
	return 0;
}
