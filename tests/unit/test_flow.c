/* The flow table: key normalisation, lookup, expiry order, eviction, fragment memory. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "els/flow.h"
#include "els/reason.h"

#define S 1000000000ull
/* expiry may end a flow up to one sort unit after its time (include/els/flow.h) */
#define DUE (1ull << ELS_FLOW_DUE_SHIFT)

static struct els_pkt v4(uint32_t src, uint32_t dst, uint8_t proto, uint16_t sport, uint16_t dport)
{
	struct els_pkt p;

	memset(&p, 0, sizeof(p));
	p.family = ELS_AF_INET;
	p.proto = proto;
	for (int i = 0; i < 4; i++) {
		p.src.b[i] = (uint8_t)(src >> (24 - 8 * i));
		p.dst.b[i] = (uint8_t)(dst >> (24 - 8 * i));
	}
	p.sport = sport;
	p.dport = dport;
	p.flags = ELS_PKT_HAS_PORTS;
	p.wire_len = 60;
	return p;
}

static struct els_flow_key key_n(uint32_t n, uint8_t proto)
{
	struct els_pkt p = v4(0x0a000000u + (n >> 16), 0xc6120002u, proto, (uint16_t)n, 443);
	struct els_flow_key k;
	uint8_t side;

	cr_assert(els_flow_key_of(&p, &k, &side));
	return k;
}

struct ends {
	unsigned n;
	unsigned reason[16];
	struct els_flow_key key[16];
};

static void on_end(const struct els_flow *f, unsigned reason, void *arg)
{
	struct ends *e = arg;

	if (e->n < 16) {
		e->reason[e->n] = reason;
		e->key[e->n] = f->key;
	}
	e->n++;
}

static bool key_eq(const struct els_flow_key *a, const struct els_flow_key *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

Test(flow, key_normalised_both_directions)
{
	struct els_pkt out = v4(0xc6120002u, 0x0a000001u, 6, 443, 51000);
	struct els_pkt in = v4(0x0a000001u, 0xc6120002u, 6, 51000, 443);
	struct els_flow_key k1, k2;
	uint8_t s1, s2;

	cr_assert(els_flow_key_of(&out, &k1, &s1));
	cr_assert(els_flow_key_of(&in, &k2, &s2));
	cr_assert(key_eq(&k1, &k2));
	cr_assert_neq(s1, s2);
	/* the lower address is side 0 */
	cr_assert_eq(k1.addr[0].b[0], 10);
	cr_assert_eq(k1.port[0], 51000);
	cr_assert_eq(s2, 0);

	/* junk past an IPv4 address must not split the flow */
	in.src.b[7] = 0x55;
	cr_assert(els_flow_key_of(&in, &k2, &s2));
	cr_assert(key_eq(&k1, &k2));

	/* same addresses: the port pair decides */
	struct els_pkt a = v4(0x7f000001u, 0x7f000001u, 17, 5000, 53);
	struct els_pkt b = v4(0x7f000001u, 0x7f000001u, 17, 53, 5000);
	cr_assert(els_flow_key_of(&a, &k1, &s1));
	cr_assert(els_flow_key_of(&b, &k2, &s2));
	cr_assert(key_eq(&k1, &k2));
	cr_assert_eq(s1, 1);
	cr_assert_eq(s2, 0);
}

Test(flow, key_ipv6_and_icmp_echo)
{
	struct els_pkt req, rep;
	struct els_flow_key k1, k2;
	uint8_t s1, s2;

	memset(&req, 0, sizeof(req));
	req.family = ELS_AF_INET6;
	req.proto = 58;
	req.src.b[0] = 0x20;
	req.src.b[15] = 9;
	req.dst.b[0] = 0x20;
	req.dst.b[15] = 2;
	req.flags = ELS_PKT_HAS_ICMP | ELS_PKT_ICMP_ECHO;
	req.icmp_type = 128;
	req.icmp_id = 0x1234;
	rep = req;
	rep.src = req.dst;
	rep.dst = req.src;
	rep.icmp_type = 129;
	cr_assert(els_flow_key_of(&req, &k1, &s1));
	cr_assert(els_flow_key_of(&rep, &k2, &s2));
	cr_assert(key_eq(&k1, &k2));
	cr_assert_eq(k1.port[0], 0x1234);
	cr_assert_eq(k1.port[1], 0x1234);
	cr_assert_eq(s1, 1);
	cr_assert_eq(s2, 0);

	/* another echo id is another flow */
	rep.icmp_id = 0x1235;
	cr_assert(els_flow_key_of(&rep, &k2, &s2));
	cr_assert_not(key_eq(&k1, &k2));
}

Test(flow, key_refused)
{
	struct els_pkt p = v4(1, 2, 6, 1000, 80);
	struct els_flow_key k;
	uint8_t side;

	p.flags = ELS_PKT_FRAGMENT | ELS_PKT_LATER_FRAG;
	cr_assert_not(els_flow_key_of(&p, &k, &side));
	p.flags = ELS_PKT_HAS_ICMP; /* ICMP that is not echo: no id */
	p.proto = 1;
	cr_assert_not(els_flow_key_of(&p, &k, &side));
	p.flags = 0; /* e.g. GRE: no ports */
	p.proto = 47;
	cr_assert_not(els_flow_key_of(&p, &k, &side));
	p = v4(1, 2, 6, 1000, 80);
	p.family = ELS_AF_NONE;
	cr_assert_not(els_flow_key_of(&p, &k, &side));
	/* the echo flag on a non-ICMP protocol is not trusted */
	p = v4(1, 2, 17, 0, 0);
	p.flags = ELS_PKT_ICMP_ECHO;
	cr_assert_not(els_flow_key_of(&p, &k, &side));
}

Test(flow, insert_lookup_remove)
{
	struct els_flow_table *t = els_flow_table_new(16, 42);
	struct els_flow_key k = key_n(1, 6), k2 = key_n(2, 6);

	cr_assert_not_null(t);
	cr_assert_eq(els_flow_capacity(t), 16);
	cr_assert_null(els_flow_lookup(t, &k));
	struct els_flow *f = els_flow_insert(t, &k, 5 * S, NULL, NULL);
	cr_assert_not_null(f);
	cr_assert_eq(f->state, ELS_FS_NONE);
	cr_assert_eq(f->pkts[0] + f->pkts[1] + f->bytes[0] + f->bytes[1], 0);
	cr_assert_eq(f->first_ns, 5 * S);
	cr_assert_eq(els_flow_lookup(t, &k), f);
	cr_assert_null(els_flow_insert(t, &k, 5 * S, NULL, NULL), "duplicate key refused");
	cr_assert_not_null(els_flow_insert(t, &k2, 5 * S, NULL, NULL));
	cr_assert_eq(els_flow_count(t), 2);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_remove(t, f);
	cr_assert_null(els_flow_lookup(t, &k));
	cr_assert_not_null(els_flow_lookup(t, &k2));
	cr_assert_eq(els_flow_count(t), 1);
	cr_assert_eq(els_flow_table_check(t), 0);
	/* the freed slot is reused */
	cr_assert_eq(els_flow_insert(t, &k, 6 * S, NULL, NULL), f);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

Test(flow, bad_capacity)
{
	cr_assert_null(els_flow_table_new(0, 1));
	cr_assert_null(els_flow_table_new(ELS_FLOW_MAX_CAPACITY + 1u, 1));
}

Test(flow, expiry_order_and_reasons)
{
	struct els_flow_table *t = els_flow_table_new(8, 7);
	struct els_flow_key k[4] = {key_n(1, 6), key_n(2, 6), key_n(3, 17), key_n(4, 6)};
	struct els_flow *f[4];
	struct ends e = {0};

	for (int i = 0; i < 4; i++)
		f[i] = els_flow_insert(t, &k[i], 0, NULL, NULL);
	els_flow_touch(t, f[0], ELS_FS_ESTABLISHED, 1 * S, 100 * S); /* expires 101 */
	els_flow_touch(t, f[1], ELS_FS_TIME_WAIT, 2 * S, 10 * S);    /* expires 12 */
	els_flow_touch(t, f[2], ELS_FS_UNREPLIED, 3 * S, 30 * S);    /* expires 33 */
	els_flow_touch(t, f[3], ELS_FS_ESTABLISHED, 4 * S, 100 * S); /* expires 104 */
	cr_assert_eq(f[1]->expire_ns, 12 * S);
	cr_assert_eq(els_flow_table_check(t), 0);

	cr_assert_eq(els_flow_expire(t, 11 * S, 100, on_end, &e), 0);
	cr_assert_eq(els_flow_expire(t, 12 * S - 1, 100, on_end, &e), 0, "never early");
	cr_assert_eq(els_flow_expire(t, 12 * S + DUE, 100, on_end, &e), 1);
	cr_assert_eq(e.reason[0], ELS_R_FLOW_CLOSED, "TIME_WAIT ends as closed");
	cr_assert(key_eq(&e.key[0], &k[1]));
	cr_assert_eq(els_flow_expire(t, 50 * S, 100, on_end, &e), 1);
	cr_assert_eq(e.reason[1], ELS_R_FLOW_TIMEOUT);
	cr_assert(key_eq(&e.key[1], &k[2]));

	/* touching moves f[0] behind f[3]: at 104 only f[3] is due */
	els_flow_touch(t, f[0], ELS_FS_ESTABLISHED, 60 * S, 100 * S);
	cr_assert_eq(els_flow_expire(t, 104 * S + DUE, 100, on_end, &e), 1);
	cr_assert(key_eq(&e.key[2], &k[3]));
	cr_assert_eq(els_flow_count(t), 1);
	cr_assert_eq(els_flow_expire(t, 160 * S - 1, 100, on_end, &e), 0);
	cr_assert_eq(els_flow_expire(t, 160 * S + DUE, 100, on_end, &e), 1);
	cr_assert(key_eq(&e.key[3], &k[0]));
	cr_assert_eq(els_flow_count(t), 0);
	cr_assert_eq(e.n, 4);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

/* A touch in the same state leaves the flow in place while its expiry moves by no more than the
 * slack (max(1 s, timeout / 16)), and moves it to the tail beyond that. However the flows are
 * touched, none ends early, none ends later than its slack plus a unit after its time, none
 * that stays busy ends at all, and the lists stay consistent. */
Test(flow, slack_bounds_expiry)
{
	enum { N = 16 };
	const uint64_t T = 10 * S, TICK = S / 10, LATE = S + DUE + TICK; /* slack 1 s at T = 10 s */
	struct els_flow_table *t = els_flow_table_new(64, 5);
	struct els_flow *f[N];
	uint64_t last[N];
	struct ends e = {0};

	for (uint32_t i = 0; i < N; i++) {
		struct els_flow_key k = key_n(i + 1, 17);
		f[i] = els_flow_insert(t, &k, 0, NULL, NULL);
		els_flow_touch(t, f[i], ELS_FS_ESTABLISHED, i * TICK, T);
		last[i] = i * TICK;
	}
	uint32_t place = f[0]->queued_due;
	els_flow_touch(t, f[0], ELS_FS_ESTABLISHED, S / 2, T);
	cr_assert_eq(f[0]->queued_due, place, "half a second on: within the slack, not moved");
	last[0] = S / 2;
	/* Flow 0 is touched once more at 5 s and then falls idle, behind flows queued later (the
	 * case that a requeue by position would end almost a timeout late); the odd flows fall
	 * idle at once; the other even ones stay busy. */
	for (uint64_t now = TICK; now <= 40 * S; now += TICK) {
		for (unsigned i = 2; i < N; i += 2) {
			els_flow_touch(t, f[i], ELS_FS_ESTABLISHED, now, T);
			last[i] = now;
		}
		if (now == 5 * S) {
			els_flow_touch(t, f[0], ELS_FS_ESTABLISHED, now, T);
			last[0] = now;
		}
		unsigned before = e.n;
		els_flow_expire(t, now, 1000, on_end, &e);
		cr_assert_eq(els_flow_table_check(t), 0);
		for (unsigned n = before; n < e.n && n < 16; n++) {
			unsigned i = (unsigned)e.key[n].port[0] - 1; /* key_n(i + 1): port i + 1 */
			cr_assert(i < N && (i % 2 == 1 || i == 0), "only idle flows end (%u)", i);
			cr_assert_geq(now, last[i] + T, "flow %u ended early", i);
			cr_assert_leq(now, last[i] + T + LATE, "flow %u ended %llu ns late", i,
				      (unsigned long long)(now - last[i] - T));
		}
	}
	cr_assert_eq(e.n, N / 2 + 1, "the idle half and flow 0 ended, no busy flow");
	/* a new state moves the flow at once */
	els_flow_touch(t, f[2], ELS_FS_TIME_WAIT, 41 * S, 1 * S);
	cr_assert_eq(els_flow_expire(t, 42 * S + DUE, 1000, on_end, &e), 1);
	cr_assert_eq(e.reason[N / 2 + 1], ELS_R_FLOW_CLOSED);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

Test(flow, expiry_budget)
{
	struct els_flow_table *t = els_flow_table_new(64, 7);
	struct ends e = {0};

	for (uint32_t i = 0; i < 40; i++) {
		struct els_flow_key k = key_n(i, i % 2 ? 6 : 17);
		struct els_flow *f = els_flow_insert(t, &k, 0, NULL, NULL);
		els_flow_touch(t, f, ELS_FS_UNREPLIED, i, 1 * S);
	}
	cr_assert_eq(els_flow_expire(t, 100 * S, 15, on_end, &e), 15);
	cr_assert_eq(els_flow_count(t), 25);
	cr_assert_eq(els_flow_expire(t, 100 * S, 100, NULL, NULL), 25);
	cr_assert_eq(els_flow_count(t), 0);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

Test(flow, eviction_prefers_non_established)
{
	struct els_flow_table *t = els_flow_table_new(3, 9);
	struct els_flow_key k[6];
	struct els_flow *f[3];
	struct ends e = {0};

	for (int i = 0; i < 6; i++)
		k[i] = key_n((uint32_t)i + 1, i == 2 ? 17 : 6);
	for (int i = 0; i < 3; i++)
		f[i] = els_flow_insert(t, &k[i], 0, NULL, NULL);
	/* the established flow is the least recently seen, yet it is kept */
	els_flow_touch(t, f[0], ELS_FS_ESTABLISHED, 1 * S, 7200 * S);
	els_flow_touch(t, f[1], ELS_FS_SYN_SENT, 3 * S, 30 * S);
	els_flow_touch(t, f[2], ELS_FS_UNREPLIED, 2 * S, 30 * S);

	struct els_flow *n = els_flow_insert(t, &k[3], 4 * S, on_end, &e);
	cr_assert_not_null(n);
	cr_assert_eq(e.n, 1);
	cr_assert_eq(e.reason[0], ELS_R_FLOW_EVICTED);
	cr_assert(key_eq(&e.key[0], &k[2]), "the older of the non-established flows goes first");
	cr_assert_null(els_flow_lookup(t, &k[2]));
	cr_assert_not_null(els_flow_lookup(t, &k[0]));
	els_flow_touch(t, n, ELS_FS_ESTABLISHED, 4 * S, 7200 * S);

	cr_assert_not_null(els_flow_insert(t, &k[4], 5 * S, on_end, &e));
	cr_assert(key_eq(&e.key[1], &k[1]));
	struct els_flow *m = els_flow_lookup(t, &k[4]);
	els_flow_touch(t, m, ELS_FS_ESTABLISHED, 5 * S, 7200 * S);

	/* all established: refused, nothing ended */
	cr_assert_null(els_flow_insert(t, &k[5], 6 * S, on_end, &e));
	cr_assert_eq(e.n, 2);
	cr_assert_eq(els_flow_count(t), 3);
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

Test(flow, capacity_one)
{
	struct els_flow_table *t = els_flow_table_new(1, 3);
	struct els_flow_key a = key_n(1, 6), b = key_n(2, 6);
	struct ends e = {0};

	struct els_flow *f = els_flow_insert(t, &a, 0, on_end, &e);
	cr_assert_not_null(f);
	/* a fresh flow (state NONE) can be evicted by the next one */
	struct els_flow *g = els_flow_insert(t, &b, 1, on_end, &e);
	cr_assert_eq(g, f, "the only slot is reused");
	cr_assert_eq(e.n, 1);
	cr_assert(key_eq(&e.key[0], &a));
	cr_assert(key_eq(&g->key, &b));
	cr_assert_null(els_flow_lookup(t, &a));
	els_flow_touch(t, g, ELS_FS_ESTABLISHED, 1, 10 * S);
	cr_assert_null(els_flow_insert(t, &a, 2, on_end, &e));
	cr_assert_null(els_flow_insert(t, &b, 2, on_end, &e), "duplicate");
	cr_assert_eq(e.n, 1);
	els_flow_remove(t, g);
	cr_assert_eq(els_flow_count(t), 0);
	cr_assert_not_null(els_flow_insert(t, &a, 3, on_end, &e));
	cr_assert_eq(els_flow_table_check(t), 0);
	els_flow_table_free(t);
}

static void count_cb(const struct els_flow *f, void *arg)
{
	(void)f;
	(*(unsigned *)arg)++;
}

Test(flow, foreach_visits_live_flows)
{
	struct els_flow_table *t = els_flow_table_new(10, 3);
	struct els_flow *f[10];
	unsigned n = 0;

	for (uint32_t i = 0; i < 10; i++) {
		struct els_flow_key k = key_n(i, 6);
		f[i] = els_flow_insert(t, &k, 0, NULL, NULL);
	}
	els_flow_remove(t, f[3]);
	els_flow_remove(t, f[7]);
	els_flow_foreach(t, count_cb, &n);
	cr_assert_eq(n, 8);
	els_flow_table_free(t);
}

Test(flow, million_flows, .timeout = 60)
{
	const uint32_t cap = 1000000;
	struct els_flow_table *t = els_flow_table_new(cap, 0x1234567890abcdefull);
	uint32_t nb = 1;

	cr_assert_not_null(t);
	while (nb < cap)
		nb <<= 1;
	for (uint32_t i = 0; i < cap; i++) {
		struct els_flow_key k = key_n(i, 6);
		struct els_flow *f = els_flow_insert(t, &k, i, NULL, NULL);
		cr_assert_not_null(f);
		els_flow_touch(t, f, ELS_FS_ESTABLISHED, i, 7200 * S);
	}
	cr_assert_eq(els_flow_count(t), cap);
	for (uint32_t i = 0; i < cap; i += 9973) {
		struct els_flow_key k = key_n(i, 6);
		struct els_flow *f = els_flow_lookup(t, &k);
		cr_assert_not_null(f);
		cr_assert_eq(f->first_ns, i);
	}
	struct els_flow_key extra = key_n(cap, 6);
	cr_assert_null(els_flow_insert(t, &extra, cap, NULL, NULL), "full of established flows");
	cr_assert_eq(els_flow_table_check(t), 0);
	printf("flow table: sizeof(struct els_flow) = %zu, %u buckets, %.2f bytes per flow\n",
	       sizeof(struct els_flow), nb, (double)sizeof(struct els_flow) + 4.0 * nb / cap);
	els_flow_table_free(t);
}

static struct els_pkt frag(uint32_t id, bool later)
{
	struct els_pkt p = v4(0x0a000001u, 0xc6120002u, 17, 5000, 53);

	p.frag_id = id;
	p.flags = ELS_PKT_FRAGMENT | (later ? ELS_PKT_LATER_FRAG : ELS_PKT_HAS_PORTS);
	p.frag_off = later ? 1480 : 0;
	return p;
}

Test(flow, fragment_memory)
{
	struct els_flow_table *t = els_flow_table_new(4, 5);
	struct els_pkt first = frag(77, false), later = frag(77, true);

	cr_assert_not(els_frag_admitted(t, &later, 1 * S), "nothing admitted yet");
	els_frag_admit(t, &first, 1 * S);
	cr_assert(els_frag_admitted(t, &later, 2 * S));
	cr_assert(els_frag_admitted(t, &later, 30 * S));
	cr_assert_not(els_frag_admitted(t, &later, 31 * S), "lifetime is 30 s");

	struct els_pkt other = frag(78, true);
	cr_assert_not(els_frag_admitted(t, &other, 2 * S), "another datagram id");
	other = later;
	other.proto = 6;
	cr_assert_not(els_frag_admitted(t, &other, 2 * S), "another protocol");
	other = later;
	other.src = later.dst;
	other.dst = later.src;
	cr_assert_not(els_frag_admitted(t, &other, 2 * S), "the reverse direction");
	els_flow_table_free(t);
}

Test(flow, fragment_memory_overwrites)
{
	struct els_flow_table *t = els_flow_table_new(4, 5);
	unsigned still = 0;

	/* more datagrams than slots: the memory stays fixed, so some must be forgotten */
	for (uint32_t id = 0; id < 5000; id++) {
		struct els_pkt p = frag(id, false);
		els_frag_admit(t, &p, 1 * S);
	}
	for (uint32_t id = 0; id < 5000; id++) {
		struct els_pkt p = frag(id, true);
		still += els_frag_admitted(t, &p, 2 * S);
	}
	cr_assert_lt(still, 5000);
	cr_assert_gt(still, 0);
	struct els_pkt last = frag(4999, true);
	cr_assert(els_frag_admitted(t, &last, 2 * S), "the newest is always remembered");
	els_flow_table_free(t);
}

Test(flow, state_names)
{
	cr_assert_str_eq(els_flow_state_name(ELS_FS_ESTABLISHED), "established");
	cr_assert_str_eq(els_flow_state_name(ELS_FS_TIME_WAIT), "time_wait");
	cr_assert_str_eq(els_flow_state_name(ELS_FS__COUNT), "?");
}
