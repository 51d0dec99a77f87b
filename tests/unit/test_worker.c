/* agent/packet/worker.c through its header (worker.h): crafted IPv4 packets judged by a worker
 * with a real policy, without NFQUEUE. Each test checks the verdict, the reason, the counters
 * and the records the worker writes to its monitor ring: admits, aggregated drops after a
 * tick, observe mode's would_drop, log = "all", a permit revoked by a new generation, flow
 * expiry at a tick, the live decode/warm/judge pipeline, and the held (deferred) verdict of a
 * service-bound permit while its socket's owner is looked up (a real sock_diag lookup of a
 * listener this test opens on 127.0.0.1).
 *
 * What needs NFQUEUE is not here: the batch receive and verdict sending of queue.c, the verdict
 * marks, and offload to conntrack. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "alert.h"
#include "els/chain.h"
#include "els/decode.h"
#include "generation.h"
#include "owner.h"
#include "worker.h"

#define MS 1000000ull
#define S  1000000000ull
/* mono_ns values start well after 0 so that the first tick is due. */
#define T0 (1000 * S)
#define R0 1700000000000000000ull

/* Links agent/daemon/alert.c, as elsd does: its constructor hands the handlers' per-worker
 * state the alert drain, without which a worker cannot start. */
static int (*const alert_linked)(struct els_ring *) __attribute__((used)) = els_alert_register;

static char dir[] = "/tmp/els-worker-XXXXXX";
static char conf[96];
static struct els_worker w;
static struct els_ring *ring;
static struct els_record recs[64];
static unsigned nrecs;

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf, sizeof(conf), "%s/elsd.conf", dir);
	ring = els_ring_new(256);
	cr_assert_not_null(ring);
	cr_assert_eq(els_worker_init(&w, 0, 64, ring), 0);
}

static void teardown(void)
{
	els_worker_fini(&w);
	els_ring_free(ring);
	const struct els_policy *p = els_gen_current();
	if (p)
		els_policy_free((struct els_policy *)p);
	unlink(conf);
	rmdir(dir);
}

TestSuite(worker, .init = setup, .fini = teardown);

/* The chain and header filter used unless a test says otherwise: one inbound TCP permit, one
 * outbound UDP permit. */
#define HF_PERMITS                                                                                 \
	"{ id = \"web-in\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; },\n"           \
	"{ id = \"dns-out\"; dir = \"out\"; proto = \"udp\"; remote_ports = [ 53 ];\n"             \
	"  remote = [ \"198.18.0.53\" ]; }\n"

/* Loads a config of this text and publishes it as the next generation; the worker picks it
 * up. The previous generation is freed (no other worker reads it). */
static const char *top_extra = ""; /* settings before the chain, for one test */

static void publish(const char *log, const char *hf_extra, const char *permits)
{
	FILE *f = fopen(conf, "w");
	struct els_diag d;

	cr_assert_not_null(f);
	fprintf(f,
		"local_addresses = [ \"198.18.0.2\" ];\n"
		"flows = { capacity = 64; };\n"
		"%s\n"
		"monitor = { log = \"%s\"; };\n"
		"chain = [ \"tracker\", \"header_filter\" ];\n"
		"tracker = { udp_unreplied = 30; udp_established = 120; };\n"
		"header_filter = { %s permits = (\n%s); };\n",
		top_extra, log, hf_extra, permits);
	fclose(f);
	els_diag_init(&d, conf);
	struct els_policy *p = els_policy_load(conf, "/dev/null", &d);
	cr_assert_not_null(p, "%s", d.count ? d.msgs[0] : "?");
	els_diag_free(&d);
	const struct els_policy *old = els_gen_publish(p);
	els_worker_refresh(&w);
	cr_assert_eq(w.pol, p);
	if (old)
		els_policy_free((struct els_policy *)old);
}

static uint16_t csum(const uint8_t *b, size_t n)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An IPv4 packet (no link header, as NFQUEUE hands it) of proto 6 or 17. */
static size_t ip4(uint8_t *b, uint8_t proto, const char *src, uint16_t sport, const char *dst,
		  uint16_t dport, uint8_t tcp_flags)
{
	size_t l4 = proto == 6 ? 20 : 8 + 4;
	uint8_t *t = b + 20;

	memset(b, 0, 20 + l4);
	b[0] = 0x45;
	b[2] = (uint8_t)((20 + l4) >> 8);
	b[3] = (uint8_t)(20 + l4);
	b[8] = 64;
	b[9] = proto;
	inet_pton(AF_INET, src, b + 12);
	inet_pton(AF_INET, dst, b + 16);
	uint16_t c = csum(b, 20);
	b[10] = (uint8_t)(c >> 8);
	b[11] = (uint8_t)c;
	t[0] = (uint8_t)(sport >> 8), t[1] = (uint8_t)sport;
	t[2] = (uint8_t)(dport >> 8), t[3] = (uint8_t)dport;
	if (proto == 6) {
		t[12] = 5 << 4;
		t[13] = tcp_flags;
		t[14] = 0xff;
	} else {
		t[4] = 0, t[5] = (uint8_t)l4;
	}
	return 20 + l4;
}

static enum els_action judge(const uint8_t *b, size_t n, enum els_dir d, uint64_t mono,
			     struct els_decision *dec)
{
	return els_worker_packet_decision(&w, b, n, n, d, mono, R0 + mono, dec);
}

/* Takes everything out of the ring into recs. */
static void drain(void)
{
	const struct els_record *r;
	uint64_t lost;

	nrecs = 0;
	while ((r = els_ring_peek(ring, &lost))) {
		cr_assert_lt(nrecs, sizeof(recs) / sizeof(recs[0]));
		recs[nrecs++] = *r;
		els_ring_consume(ring);
	}
}

static uint64_t ctr(_Atomic uint64_t *c)
{
	return atomic_load(c);
}

/* Sums over every stats slot: the slot numbering is the policy's business. */
static uint64_t decided_sum(int dropped)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < ELS_STATS_HANDLERS + 2; i++)
		n += ctr(&w.st.decided[i][dropped]);
	return n;
}

static uint64_t drops_of(unsigned reason)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < ELS_STATS_HANDLERS + 2; i++)
		n += ctr(&w.st.drops[i][reason]);
	return n;
}

Test(worker, udp_flow_admitted_once_then_known)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n;

	publish("default", "", HF_PERMITS);
	n = ip4(b, 17, "198.18.0.2", 40000, "198.18.0.53", 53, 0);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	drain();
	cr_assert_eq(nrecs, 1, "one admit record for the new flow, got %u", nrecs);
	cr_assert_eq(recs[0].kind, ELS_REC_ADMIT);
	cr_assert_eq(recs[0].reason, ELS_R_PERMIT);
	cr_assert_str_eq(recs[0].rule_name, "dns-out");
	cr_assert_str_eq(recs[0].handler, "header_filter");
	cr_assert_eq(recs[0].dport, 53);
	cr_assert_eq(recs[0].sport, 40000);
	cr_assert_eq(recs[0].generation, w.pol->generation);
	cr_assert_eq(recs[0].ts_ns, R0 + T0);

	/* the answer: part of the flow, no record under log = "default" */
	n = ip4(b, 17, "198.18.0.53", 53, "198.18.0.2", 40000, 0);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + MS, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_FLOW);
	drain();
	cr_assert_eq(nrecs, 0);

	cr_assert_eq(ctr(&w.st.packets), 2);
	cr_assert_eq(ctr(&w.st.accepted), 2);
	cr_assert_eq(ctr(&w.st.dropped), 0);
	cr_assert_eq(ctr(&w.st.decode_errors), 0);
	cr_assert_eq(decided_sum(0), 2);
	cr_assert_eq(decided_sum(1), 0);
	/* dns-out is the second permit: its hit is counted in this generation's bank */
	cr_assert_eq(ctr(&w.st.permit_hits[w.pol->generation & 1][1]), 1);
	cr_assert_eq(ctr(&w.st.permit_hits[w.pol->generation & 1][0]), 0);
}

Test(worker, drop_counted_at_once_recorded_aggregated_at_the_tick)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 22, 0x02);

	publish("default", "", HF_PERMITS);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + (uint64_t)i * MS, &d), ELS_DROP);
		cr_assert_eq(d.reason, ELS_R_NO_PERMIT);
	}
	cr_assert_eq(ctr(&w.st.packets), 3);
	cr_assert_eq(ctr(&w.st.dropped), 3);
	cr_assert_eq(ctr(&w.st.accepted), 0);
	cr_assert_eq(decided_sum(1), 3);
	cr_assert_eq(drops_of(ELS_R_NO_PERMIT), 3);
	drain();
	cr_assert_eq(nrecs, 0, "drops wait in the aggregator until the tick");

	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	drain();
	cr_assert_eq(nrecs, 1, "three drops of one second, one record: got %u", nrecs);
	cr_assert_eq(recs[0].kind, ELS_REC_DROP);
	cr_assert_eq(recs[0].reason, ELS_R_NO_PERMIT);
	cr_assert_eq(recs[0].count, 3);
	cr_assert_eq(recs[0].dport, 22);
	cr_assert_eq(recs[0].verdict, ELS_DROP);
	cr_assert_str_eq(recs[0].handler, "header_filter");
}

Test(worker, decode_error_dropped_and_counted_as_such)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 8443, 0x02);

	publish("default", "", HF_PERMITS);
	b[0] = 0x43; /* IHL 3: shorter than an IPv4 header */
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0, &d), ELS_DROP);
	cr_assert_eq(d.handler, ELS_HANDLER_DECODE);
	cr_assert_eq(d.reason, ELS_R_BAD_IHL);
	cr_assert_eq(ctr(&w.st.decode_errors), 1);
	cr_assert_eq(ctr(&w.st.decided[ELS_STATS_DECODE][1]), 1);
	cr_assert_eq(ctr(&w.st.drops[ELS_STATS_DECODE][ELS_R_BAD_IHL]), 1);
	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_DROP);
	cr_assert_eq(recs[0].reason, ELS_R_BAD_IHL);
}

Test(worker, observe_mode_passes_and_records_would_drop)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 22, 0x02);

	publish("default", "mode = \"observe\";", HF_PERMITS);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0, &d), ELS_ACCEPT);
	cr_assert(d.flags & ELS_DEC_OBSERVE);
	cr_assert_eq(ctr(&w.st.accepted), 1);
	cr_assert_eq(ctr(&w.st.dropped), 0);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_WOULD_DROP);
	cr_assert_eq(recs[0].reason, ELS_R_NO_PERMIT);
	cr_assert_eq(recs[0].dport, 22);
	cr_assert_eq(recs[0].verdict, ELS_ACCEPT);
	/* the flow it opened ends as a half-open one (aggregated), never with an admit */
	els_worker_finish(&w, R0 + T0 + S, NULL, NULL);
	drain();
	for (unsigned i = 0; i < nrecs; i++)
		cr_assert_neq(recs[i].kind, ELS_REC_ADMIT);
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_HALF_OPEN);
	cr_assert_eq(recs[0].reason, ELS_R_FLOW_SHUTDOWN);
}

Test(worker, log_all_records_every_accepted_packet)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n;

	publish("all", "", HF_PERMITS);
	n = ip4(b, 17, "198.18.0.2", 40000, "198.18.0.53", 53, 0);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0, &d), ELS_ACCEPT);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + MS, &d), ELS_ACCEPT);
	drain();
	cr_assert_eq(nrecs, 2);
	cr_assert_eq(recs[0].kind, ELS_REC_ADMIT);
	cr_assert_eq(recs[1].kind, ELS_REC_ACCEPT);
	cr_assert_eq(recs[1].reason, ELS_R_FLOW);
	cr_assert_str_eq(recs[1].rule_name, "dns-out", "a known flow's packet names its permit");
}

Test(worker, reload_revokes_a_flow_whose_permit_is_gone)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n = ip4(b, 17, "198.18.0.2", 40000, "198.18.0.53", 53, 0);

	publish("default", "", HF_PERMITS);
	uint32_t g1 = w.pol->generation;
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0, &d), ELS_ACCEPT);
	drain();

	/* the next generation has no dns-out */
	publish("default", "",
		"{ id = \"web-in\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; }\n");
	uint32_t g2 = w.pol->generation;
	cr_assert_neq(g1, g2);
	cr_assert_eq(atomic_load(&w.seen_gen), g2, "the worker says which generation it runs");
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + MS, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_PERMIT_REVOKED);
	drain();
	cr_assert_eq(nrecs, 1, "the flow's end now, its packet's drop at the tick");
	cr_assert_eq(recs[0].kind, ELS_REC_FLOW_END);
	cr_assert_eq(recs[0].reason, ELS_R_PERMIT_REVOKED);
	cr_assert_str_eq(recs[0].rule_name, "dns-out");
	cr_assert_eq(recs[0].generation, g1, "the end names the generation that admitted it");
	cr_assert_eq(recs[0].pkts[0], 2, "the admitted packet and the one that found it revoked");
	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_DROP);
	cr_assert_eq(recs[0].reason, ELS_R_PERMIT_REVOKED);
	cr_assert_str_eq(recs[0].rule_name, "dns-out", "the drop names the revoked permit");
	cr_assert_eq(recs[0].generation, g2);
}

Test(worker, tick_expires_flows_and_reports_occupancy)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n = ip4(b, 17, "198.18.0.2", 40000, "198.18.0.53", 53, 0);

	publish("default", "", HF_PERMITS);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0, &d), ELS_ACCEPT);
	drain();
	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	cr_assert_eq(ctr(&w.st.flows_live), 1);
	drain();
	cr_assert_eq(nrecs, 0, "not yet expired (udp_unreplied = 30 s)");
	/* within the tick period: nothing runs */
	els_worker_tick(&w, T0 + 31 * S, R0 + T0 + 31 * S);
	els_worker_tick(&w, T0 + 31 * S + MS, R0 + T0 + 31 * S);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_FLOW_END);
	cr_assert_eq(recs[0].reason, ELS_R_FLOW_TIMEOUT);
	cr_assert_str_eq(recs[0].rule_name, "dns-out");
	cr_assert_eq(recs[0].dport, 53);
	cr_assert_eq(ctr(&w.st.flows_live), 0);
}

Test(worker, pipeline_judges_a_batch_as_replay_does)
{
	uint8_t b[4][64];
	size_t n[4];
	struct els_decoded dp[4];
	struct els_decision d;
	enum els_action want[4] = {ELS_ACCEPT, ELS_DROP, ELS_ACCEPT, ELS_ACCEPT};
	unsigned want_reason[4] = {ELS_R_PERMIT, ELS_R_NO_PERMIT, ELS_R_FLOW, ELS_R_PERMIT};

	publish("default", "", HF_PERMITS);
	n[0] = ip4(b[0], 17, "198.18.0.2", 40000, "198.18.0.53", 53, 0);
	n[1] = ip4(b[1], 17, "198.18.0.2", 40001, "198.18.0.54", 53, 0); /* not dns-out's remote */
	n[2] = ip4(b[2], 17, "198.18.0.53", 53, "198.18.0.2", 40000, 0); /* packet 0's answer */
	n[3] = ip4(b[3], 6, "198.18.0.1", 40000, "198.18.0.2", 8443, 0x02);
	enum els_dir dirs[4] = {ELS_DIR_OUT, ELS_DIR_OUT, ELS_DIR_IN, ELS_DIR_IN};
	/* the whole batch decoded and warmed before the first is judged, as queue.c does */
	for (int i = 0; i < 4; i++)
		els_worker_decode(&w, b[i], n[i], n[i], dirs[i], &dp[i]);
	for (int i = 0; i < 4; i++)
		els_worker_warm(&w, &dp[i]);
	for (int i = 0; i < 4; i++) {
		enum els_action a =
		    els_worker_judge(&w, &dp[i].pkt, dp[i].has_flow ? &dp[i].hint : NULL,
				     T0 + (uint64_t)i, R0 + T0, &d);
		cr_assert_eq(a, want[i], "packet %d", i);
		cr_assert_eq(d.reason, want_reason[i], "packet %d: reason %u", i, d.reason);
	}
	cr_assert_eq(ctr(&w.st.packets), 4);
	cr_assert_eq(ctr(&w.st.accepted), 3);
	cr_assert_eq(ctr(&w.st.dropped), 1);
	drain();
	/* the UDP flow's admit; the TCP SYN's admit waits for its handshake */
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_ADMIT);
	cr_assert_str_eq(recs[0].rule_name, "dns-out");
}

Test(worker, tcp_admit_written_when_the_handshake_completes)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n;

	publish("default", "", HF_PERMITS);
	n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 8443, 0x02);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0, &d), ELS_ACCEPT);
	drain();
	cr_assert_eq(nrecs, 0, "a SYN alone may be a spoofed flood's: no admit yet");
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.0.1", 40000, 0x12);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + MS, &d), ELS_ACCEPT);
	n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 8443, 0x10);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + 2 * MS, &d), ELS_ACCEPT);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_ADMIT);
	cr_assert_str_eq(recs[0].rule_name, "web-in");
	cr_assert_eq(recs[0].dport, 8443);
	cr_assert_eq(recs[0].sport, 40000, "initiator first");
	els_worker_finish(&w, R0 + T0 + S, NULL, NULL);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_FLOW_END);
	cr_assert_eq(recs[0].reason, ELS_R_FLOW_SHUTDOWN);
	cr_assert_eq(recs[0].pkts[0], 2);
	cr_assert_eq(recs[0].pkts[1], 1);
}

/* ---- service-bound permits ---- */

static const char *svc_permit(char *buf, size_t n, uint16_t port, const char *exe)
{
	snprintf(buf, n,
		 "{ id = \"svc\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ %u ]; "
		 "exe = \"%s\"; }\n",
		 port, exe);
	return buf;
}

Test(worker, service_permit_without_owner_lookup)
{
	uint8_t b[64];
	char permits[512];
	struct els_decision d;
	size_t n = ip4(b, 6, "198.18.0.1", 40000, "198.18.0.2", 9000, 0x02);

	publish("default", "fail = \"closed\";",
		svc_permit(permits, sizeof(permits), 9000, "/usr/sbin/nginx"));
	/* replay: no sockets to ask, addresses and ports decide */
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	/* live, with no owner lookup running: every owner is unknown, the fail policy decides */
	w.live = true;
	n = ip4(b, 6, "198.18.0.1", 40001, "198.18.0.2", 9000, 0x02);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + MS, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_OWNER_UNKNOWN);
	cr_assert_eq(drops_of(ELS_R_OWNER_UNKNOWN), 1);
}

/* A TCP listener on 127.0.0.1 (port chosen by the kernel): the socket sock_diag finds. */
static int listener(uint16_t *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 4), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &al), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* Judges a SYN to the listener as the queue does for a held packet: DEFER first, then again
 * once the resolver answered. Returns the final action. */
static enum els_action judge_held(struct els_owners *o, const uint8_t *b, size_t n,
				  struct els_decision *d)
{
	els_owners_begin(o, 0, 0, false, true);
	enum els_action a = judge(b, n, ELS_DIR_IN, T0, d);
	cr_assert_eq(a, ELS_DEFER, "the first judging waits for the owner (got %d)", a);
	cr_assert_eq(ctr(&w.st.packets), 0, "a held packet is not counted yet");
	drain();
	cr_assert_eq(nrecs, 0, "nor recorded");
	struct pollfd p = {.fd = els_owners_fd(o), .events = POLLIN};
	unsigned got = 0;
	for (int i = 0; i < 50 && !got; i++) {
		poll(&p, 1, 100);
		got = els_owners_poll(o);
	}
	cr_assert_gt(got, 0, "the resolver answers within 5 s");
	els_owners_begin(o, 0, 0, false, true);
	return judge(b, n, ELS_DIR_IN, T0 + MS, d);
}

Test(worker, service_permit_held_until_owner_known_then_admitted)
{
	uint8_t b[64];
	char permits[512], exe[256];
	struct els_decision d;
	uint16_t port;
	int lfd = listener(&port);
	ssize_t l = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	cr_assert_gt(l, 0);
	exe[l] = '\0';
	publish("default", "fail = \"closed\";", svc_permit(permits, sizeof(permits), port, exe));
	struct els_owners *o = els_owners_new(0);
	cr_assert_not_null(o);
	w.owners = o;
	w.live = true;
	size_t n = ip4(b, 6, "127.0.0.1", 40000, "127.0.0.1", port, 0x02);
	enum els_action a = judge_held(o, b, n, &d);
	cr_assert_eq(a, ELS_ACCEPT, "this test program holds the listener: reason %u", d.reason);
	cr_assert_eq(d.reason, ELS_R_PERMIT);
	cr_assert_eq(ctr(&w.st.packets), 1);
	cr_assert_eq(ctr(&w.st.accepted), 1);
	w.owners = NULL;
	els_owners_free(o);
	close(lfd);
}

Test(worker, service_permit_held_then_wrong_service_names_the_owner)
{
	uint8_t b[64];
	char permits[512], want[32];
	struct els_decision d;
	uint16_t port;
	int lfd = listener(&port);

	publish("default", "fail = \"closed\";",
		svc_permit(permits, sizeof(permits), port, "/bin/false"));
	struct els_owners *o = els_owners_new(0);
	cr_assert_not_null(o);
	w.owners = o;
	w.live = true;
	size_t n = ip4(b, 6, "127.0.0.1", 40000, "127.0.0.1", port, 0x02);
	enum els_action a = judge_held(o, b, n, &d);
	cr_assert_eq(a, ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_WRONG_SERVICE);
	cr_assert_eq(drops_of(ELS_R_WRONG_SERVICE), 1);
	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	drain();
	cr_assert_eq(nrecs, 1);
	cr_assert_eq(recs[0].kind, ELS_REC_DROP);
	cr_assert_eq(recs[0].reason, ELS_R_WRONG_SERVICE);
	cr_assert_str_eq(recs[0].rule_name, "svc");
	snprintf(want, sizeof(want), "pid=%d", (int)getpid());
	cr_assert(strstr(recs[0].detail, want), "the record names the socket's owner: %s",
		  recs[0].detail);
	w.owners = NULL;
	els_owners_free(o);
	close(lfd);
}

/* syn_guard: the kernel's SYNPROXY made the handshake, and the server's SYN-ACK is the first
 * packet elsd sees. The client's SYN is judged there: permitted, the flow is established at
 * once (SYNPROXY checked the client's ACK) with its admit record; refused, the SYN-ACK drops
 * with the SYN's reason, and so does a SYN-ACK of an unguarded port that meets no flow. */
Test(worker, syn_guard_judges_the_handshake_at_the_synack)
{
	uint8_t b[64];
	struct els_decision d;
	size_t n;

	top_extra = "syn_guard = [ 8443, 9443 ];";
	publish("default", "", HF_PERMITS);
	top_extra = "";
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.1.9", 40000, 0x12);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0, &d), ELS_ACCEPT);
	cr_assert_eq(ctr(&w.st.packets), 1, "one queued packet counts once, not as three");
	cr_assert_eq(ctr(&w.st.accepted), 1);
	cr_assert_eq(decided_sum(0), 1);
	n = ip4(b, 6, "198.18.1.9", 40000, "198.18.0.2", 8443, 0x18);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + MS, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_FLOW, "the client's data meets an established flow");
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.1.9", 40000, 0x18);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + 2 * MS, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_FLOW);
	drain();
	cr_assert_eq(nrecs, 1, "one admit record, got %u", nrecs);
	cr_assert_eq(recs[0].kind, ELS_REC_ADMIT);
	cr_assert_str_eq(recs[0].rule_name, "web-in");
	cr_assert_eq(recs[0].dport, 8443, "recorded as the client's connection");
	cr_assert_eq(recs[0].sport, 40000);
	cr_assert_eq(recs[0].dir, ELS_DIR_IN);

	/* the connection closes; the client reuses its ports at once: the new SYN-ACK meets
	 * the flow in TIME_WAIT, which it reopens (a second admit) */
	n = ip4(b, 6, "198.18.1.9", 40000, "198.18.0.2", 8443, 0x11);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + 3 * MS, &d), ELS_ACCEPT);
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.1.9", 40000, 0x11);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + 3 * MS, &d), ELS_ACCEPT);
	n = ip4(b, 6, "198.18.1.9", 40000, "198.18.0.2", 8443, 0x10);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + 3 * MS, &d), ELS_ACCEPT);
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.1.9", 40000, 0x12);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + 4 * MS, &d), ELS_ACCEPT,
		     "a port reuse opens the flow again");
	n = ip4(b, 6, "198.18.1.9", 40000, "198.18.0.2", 8443, 0x18);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + 4 * MS, &d), ELS_ACCEPT);
	cr_assert_eq(d.reason, ELS_R_FLOW);
	drain();
	unsigned admits = 0;
	for (unsigned i = 0; i < nrecs; i++)
		admits += recs[i].kind == ELS_REC_ADMIT;
	cr_assert_eq(admits, 1, "the reopened connection has its own admit record");

	/* guarded, but no permit: the SYN's refusal drops the SYN-ACK */
	n = ip4(b, 6, "198.18.0.2", 9443, "198.18.1.9", 40001, 0x12);
	uint64_t pk = ctr(&w.st.packets), dr = ctr(&w.st.dropped);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + 3 * MS, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_NO_PERMIT);
	cr_assert_eq(ctr(&w.st.packets), pk + 1, "the refused SYN-ACK counts once");
	cr_assert_eq(ctr(&w.st.dropped), dr + 1);
	cr_assert_eq(drops_of(ELS_R_NO_PERMIT), 1);
	n = ip4(b, 6, "198.18.1.9", 40001, "198.18.0.2", 9443, 0x18);
	cr_assert_eq(judge(b, n, ELS_DIR_IN, T0 + 4 * MS, &d), ELS_DROP,
		     "no flow was made for the refused connection");
	/* not guarded: a SYN-ACK without its SYN is out of state, as ever */
	n = ip4(b, 6, "198.18.0.2", 8080, "198.18.1.9", 40002, 0x12);
	cr_assert_eq(judge(b, n, ELS_DIR_OUT, T0 + 5 * MS, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_OUT_OF_STATE);
	/* guarded and permitted, but sent by a process's socket (a raw socket's forgery): it
	 * opens nothing */
	struct els_pkt forged;
	n = ip4(b, 6, "198.18.0.2", 8443, "198.18.1.9", 40003, 0x12);
	els_decode(b, n, n, ELS_DIR_OUT, &forged);
	forged.flags |= ELS_PKT_FROM_SOCKET;
	cr_assert_eq(els_worker_judge(&w, &forged, NULL, T0 + 5 * MS, R0 + T0 + 5 * MS, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_OUT_OF_STATE, "a process's SYN-ACK is no handshake of the kernel's");
	els_worker_tick(&w, T0 + S, R0 + T0 + S);
	drain();
	bool refused = false;
	for (unsigned i = 0; i < nrecs; i++)
		refused |= recs[i].kind == ELS_REC_DROP && recs[i].reason == ELS_R_NO_PERMIT &&
			   recs[i].dport == 9443 && recs[i].dir == ELS_DIR_IN;
	cr_assert(refused, "the refused SYN is recorded as the client's, inbound to 9443");
}
