/* Drop aggregation: one record per key and second, and no drop ever uncounted. */
#include <criterion/criterion.h>
#include <string.h>

#include "els/handler.h"
#include "els/monitor.h"

#define SEC 1000000000ull
#define T0  (1700000000ull * SEC)

static struct els_record drop(uint64_t ts, uint16_t dport)
{
	struct els_record r;

	memset(&r, 0, sizeof(r));
	r.kind = ELS_REC_DROP;
	r.verdict = ELS_DROP;
	r.ts_ns = ts;
	r.family = 4;
	r.proto = 6;
	r.src.b[0] = 198;
	r.src.b[1] = 51;
	r.src.b[2] = 100;
	r.src.b[3] = 7;
	r.dst.b[0] = 192;
	r.dst.b[3] = 1;
	r.sport = 40000;
	r.dport = dport;
	r.handler = "header_filter";
	r.reason = ELS_R_NO_PERMIT;
	r.count = 99; /* ignored by add */
	return r;
}

/* Pops everything from the ring into out; returns how many. */
static unsigned drain(struct els_ring *ring, struct els_record *out, unsigned max)
{
	const struct els_record *p;
	unsigned n = 0;

	while ((p = els_ring_peek(ring, NULL))) {
		cr_assert_lt(n, max);
		cr_assert_eq(p->kind, ELS_REC_DROP);
		cr_assert_eq(p->verdict, ELS_DROP);
		out[n++] = *p;
		els_ring_consume(ring);
	}
	return n;
}

Test(dropagg, flood_over_three_seconds_is_three_records)
{
	struct els_ring *ring = els_ring_new(64);
	struct els_dropagg *a = els_dropagg_new(1024, ring);
	struct els_record out[16];
	uint64_t sum = 0;
	unsigned n;

	for (unsigned i = 0; i < 10000; i++) {
		/* spread evenly over [T0, T0 + 3 s) */
		struct els_record r = drop(T0 + (uint64_t)i * (3 * SEC / 10000), 22);

		els_dropagg_add(a, &r);
		if (i % 100 == 0)
			els_dropagg_flush(a, r.ts_ns); /* as a worker does now and then */
	}
	/* the third second is still open */
	n = drain(ring, out, 16);
	cr_assert_eq(n, 2);
	els_dropagg_flush(a, T0 + 3 * SEC);
	n += drain(ring, out + n, 16 - n);
	cr_assert_eq(n, 3);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(out[i].ts_ns / SEC, T0 / SEC + i, "record %u is second %u", i, i);
		cr_assert_eq(out[i].dport, 22);
		cr_assert_gt(out[i].count, 3000);
		sum += out[i].count;
	}
	cr_assert_eq(sum, 10000);
	els_dropagg_flush(a, UINT64_MAX);
	cr_assert_null(els_ring_peek(ring, NULL), "nothing left after the last flush");
	cr_assert_eq(els_ring_lost(ring), 0);
	els_dropagg_free(a);
	els_ring_free(ring);
}

Test(dropagg, distinct_keys_count_separately)
{
	struct els_ring *ring = els_ring_new(256);
	struct els_dropagg *a = els_dropagg_new(1024, ring);
	struct els_record out[256];
	uint64_t per_port[5] = {0}, total = 0;
	unsigned n;

	for (unsigned i = 0; i < 1000; i++) {
		struct els_record r = drop(T0 + i, (uint16_t)(1 + i % 5));

		if (i % 2)
			r.reason = ELS_R_DENY_LIST; /* also part of the key */
		els_dropagg_add(a, &r);
	}
	els_dropagg_flush(a, UINT64_MAX);
	n = drain(ring, out, 256);
	/* 5 ports x 2 reasons = 10 keys, one record each unless two share a slot */
	cr_assert_geq(n, 10);
	for (unsigned i = 0; i < n; i++) {
		cr_assert(out[i].dport >= 1 && out[i].dport <= 5);
		per_port[out[i].dport - 1] += out[i].count;
		total += out[i].count;
	}
	for (unsigned p = 0; p < 5; p++)
		cr_assert_eq(per_port[p], 200, "port %u", p + 1);
	cr_assert_eq(total, 1000);
	els_dropagg_free(a);
	els_ring_free(ring);
}

Test(dropagg, slot_collisions_never_lose_counts)
{
	struct els_ring *ring = els_ring_new(4096);
	struct els_dropagg *a = els_dropagg_new(1, ring); /* one slot: every key collides */
	struct els_record out[4096];
	uint64_t c1 = 0, c2 = 0;
	unsigned n;

	for (unsigned i = 0; i < 1000; i++) {
		struct els_record r = drop(T0 + i, 80);

		els_dropagg_add(a, &r);
		els_dropagg_add(a, &r);
		r.dport = 443;
		els_dropagg_add(a, &r);
	}
	els_dropagg_flush(a, UINT64_MAX);
	n = drain(ring, out, 4096);
	cr_assert_eq(n, 2000, "each key change evicts the other key's entry");
	for (unsigned i = 0; i < n; i++) {
		if (out[i].dport == 80)
			c1 += out[i].count;
		else
			c2 += out[i].count;
	}
	cr_assert_eq(c1, 2000);
	cr_assert_eq(c2, 1000);
	els_dropagg_free(a);
	els_ring_free(ring);
}

Test(dropagg, flush_waits_for_the_second_to_end)
{
	struct els_ring *ring = els_ring_new(16);
	struct els_dropagg *a = els_dropagg_new(64, ring);
	struct els_record r = drop(T0 + 5 * SEC + 100, 22), out[4];

	els_dropagg_add(a, &r);
	els_dropagg_add(a, &r);
	els_dropagg_flush(a, T0 + 5 * SEC + SEC / 2);
	cr_assert_null(els_ring_peek(ring, NULL));
	els_dropagg_flush(a, T0 + 6 * SEC);
	cr_assert_eq(drain(ring, out, 4), 1);
	cr_assert_eq(out[0].count, 2);
	cr_assert_eq(out[0].ts_ns, T0 + 5 * SEC + 100, "the record keeps its first packet's time");
	cr_assert_eq(out[0].sport, 40000);
	cr_assert_str_eq(out[0].handler, "header_filter");
	els_dropagg_flush(a, UINT64_MAX);
	cr_assert_null(els_ring_peek(ring, NULL), "a flushed entry is not pushed twice");
	els_dropagg_free(a);
	els_ring_free(ring);
}

Test(dropagg, full_ring_counts_the_record_lost)
{
	struct els_ring *ring = els_ring_new(2);
	struct els_dropagg *a = els_dropagg_new(1, ring);

	for (unsigned i = 0; i < 5; i++) {
		struct els_record r = drop(T0, (uint16_t)(100 + i));

		els_dropagg_add(a, &r);
	}
	els_dropagg_flush(a, UINT64_MAX);
	/* five keys through one slot: five records, two fit, three are counted lost */
	cr_assert_eq(els_ring_pushed(ring), 2);
	cr_assert_eq(els_ring_lost(ring), 3);
	els_dropagg_free(a);
	els_ring_free(ring);
}

/* Half-open flow ends from 5000 different (spoofed) sources in one second are one record, of
 * their own kind and verdict, without a source; a drop with the same key stays apart. */
Test(dropagg, half_open_aggregates_over_sources)
{
	struct els_ring *ring = els_ring_new(64);
	struct els_dropagg *a = els_dropagg_new(1024, ring);
	const struct els_record *p;
	uint64_t half = 0, drops = 0;
	unsigned rows = 0;

	for (unsigned i = 0; i < 5000; i++) {
		struct els_record r = drop(T0 + i * 100000ull, 443);
		r.kind = ELS_REC_HALF_OPEN;
		r.verdict = ELS_ACCEPT;
		r.reason = ELS_R_FLOW_TIMEOUT;
		r.src.b[2] = (uint8_t)(i >> 8);
		r.src.b[3] = (uint8_t)i;
		els_dropagg_add(a, &r);
	}
	struct els_record d = drop(T0, 443);
	d.reason = ELS_R_FLOW_TIMEOUT; /* same reason and port: the kind keeps them apart */
	els_dropagg_add(a, &d);
	els_dropagg_flush(a, UINT64_MAX);
	while ((p = els_ring_peek(ring, NULL))) {
		rows++;
		if (p->kind == ELS_REC_HALF_OPEN) {
			cr_assert_eq(p->verdict, ELS_ACCEPT);
			cr_assert_eq(p->dport, 443);
			half += p->count;
		} else {
			cr_assert_eq(p->kind, ELS_REC_DROP);
			drops += p->count;
		}
		els_ring_consume(ring);
	}
	cr_assert_eq(rows, 2, "one half_open row and one drop row, not %u", rows);
	cr_assert_eq(half, 5000);
	cr_assert_eq(drops, 1);
	cr_assert_eq(els_ring_lost(ring), 0);
	els_dropagg_free(a);
	els_ring_free(ring);
}

/* A spoofed flood: 10,000 drops in one second, each from its own source. The first 64 sources
 * keep rows of their own, the rest of the second is one row without a source; nothing is
 * uncounted. A second later, sources get their own rows again. */
Test(dropagg, spoofed_sources_merge_after_64_rows)
{
	struct els_ring *ring = els_ring_new(256);
	struct els_dropagg *a = els_dropagg_new(4096, ring);
	struct els_record out[256];
	uint64_t sum = 0, merged = 0;
	unsigned n, own = 0, many = 0;

	for (unsigned i = 0; i < 10000; i++) {
		struct els_record r = drop(T0 + i * 50000ull, 22);
		r.src.b[2] = (uint8_t)(i >> 8);
		r.src.b[3] = (uint8_t)i;
		els_dropagg_add(a, &r);
	}
	struct els_record later = drop(T0 + SEC, 22);
	later.src.b[3] = 200;
	els_dropagg_add(a, &later);
	els_dropagg_flush(a, UINT64_MAX);
	n = drain(ring, out, 256);
	for (unsigned i = 0; i < n; i++) {
		sum += out[i].count;
		if (out[i].many_src) {
			many++;
			merged += out[i].count;
			cr_assert_eq(out[i].src.b[0], 0, "a merged row keeps no source");
		} else {
			own++;
		}
	}
	cr_assert_eq(sum, 10001, "every drop is counted once, not %llu", (unsigned long long)sum);
	cr_assert_eq(own, 65, "64 sources in the flood's second and one a second later, not %u",
		     own);
	cr_assert_eq(many, 1);
	cr_assert_eq(merged, 10000 - 64);
	cr_assert_eq(els_ring_lost(ring), 0);
	els_dropagg_free(a);
	els_ring_free(ring);
}

/* The server's answers to a spoofed flood, dropped on the way out once their flows are gone
 * (retransmitted SYN-ACKs): 10,000 drops in one second, each to its own destination address
 * and port. Outbound, the remote end is the destination: the first 64 keep rows of their own,
 * the rest is one row that keeps the local source and port but no destination. */
Test(dropagg, outbound_spoofed_destinations_merge_after_64_rows)
{
	struct els_ring *ring = els_ring_new(256);
	struct els_dropagg *a = els_dropagg_new(4096, ring);
	struct els_record out[256];
	uint64_t sum = 0, merged = 0;
	unsigned n, own = 0, many = 0;

	for (unsigned i = 0; i < 10000; i++) {
		struct els_record r = drop(T0 + i * 50000ull, (uint16_t)(10000 + i));
		r.dir = ELS_DIR_OUT;
		r.sport = 443;
		r.dst.b[2] = (uint8_t)(i >> 8);
		r.dst.b[3] = (uint8_t)i;
		els_dropagg_add(a, &r);
	}
	els_dropagg_flush(a, UINT64_MAX);
	n = drain(ring, out, 256);
	for (unsigned i = 0; i < n; i++) {
		sum += out[i].count;
		if (out[i].many_src) {
			many++;
			merged += out[i].count;
			cr_assert_eq(out[i].dst.b[0] | out[i].dst.b[3], 0, "no destination");
			cr_assert_eq(out[i].dport, 0, "no destination port");
			cr_assert_eq(out[i].src.b[0], 198, "the local source stays");
			cr_assert_eq(out[i].sport, 443, "the local port stays");
		} else {
			own++;
		}
	}
	cr_assert_eq(sum, 10000, "every drop is counted once, not %llu", (unsigned long long)sum);
	cr_assert_eq(own, 64, "64 destinations keep their rows, not %u", own);
	cr_assert_eq(many, 1);
	cr_assert_eq(merged, 10000 - 64);
	cr_assert_eq(els_ring_lost(ring), 0);
	els_dropagg_free(a);
	els_ring_free(ring);
}
