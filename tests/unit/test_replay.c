/* agent/packet/replay.c: a capture judged offline through the worker, as live traffic is, with
 * the shipped example policy (conf/elsd.conf): an inbound HTTPS SYN is admitted, one to SSH
 * dropped for want of a permit, a non-IP frame skipped, and each gets one verdict line. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generation.h"
#include "replay.h"

static char dir[] = "/tmp/els-replay-XXXXXX";
static char cap[64], db[64];

/* Everything in a directory of its own: the capture, the monitor file and its key. */
static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cap, sizeof(cap), "%s/cap.pcap", dir);
	snprintf(db, sizeof(db), "%s/monitor.db", dir);
}

static void teardown(void)
{
	static const char *const names[] = {"cap.pcap", "monitor.db", "monitor.db-wal",
					    "monitor.db-shm", "monitor.key"};
	char path[96];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

TestSuite(replay, .init = setup, .fini = teardown);

/* An IPv4 TCP SYN from 198.18.0.1:40000 to 198.18.0.2:dport, as an Ethernet frame. */
static size_t syn_frame(uint8_t *f, uint16_t dport)
{
	static const uint8_t eth[14] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00};
	uint8_t *ip = f + 14, *tcp = ip + 20;
	uint32_t sum = 0;

	memset(f, 0, 54);
	memcpy(f, eth, sizeof(eth));
	ip[0] = 0x45;
	ip[3] = 40; /* total length */
	ip[8] = 64;
	ip[9] = 6;
	inet_pton(AF_INET, "198.18.0.1", ip + 12);
	inet_pton(AF_INET, "198.18.0.2", ip + 16);
	for (int i = 0; i < 20; i += 2)
		sum += (uint32_t)(ip[i] << 8 | ip[i + 1]);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip[10] = (uint8_t)(~sum >> 8);
	ip[11] = (uint8_t)~sum;
	tcp[0] = 40000 >> 8;
	tcp[1] = 40000 & 0xff;
	tcp[2] = (uint8_t)(dport >> 8);
	tcp[3] = (uint8_t)dport;
	tcp[12] = 5 << 4;
	tcp[13] = 0x02; /* SYN */
	tcp[14] = 0xff;
	return 54;
}

static void write_capture(void)
{
	pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);
	pcap_dumper_t *d;
	uint8_t f[64];
	struct pcap_pkthdr h = {.ts = {1700000000, 0}};

	cr_assert_not_null(p);
	d = pcap_dump_open(p, cap);
	cr_assert_not_null(d);
	h.caplen = h.len = (bpf_u_int32)syn_frame(f, 443);
	pcap_dump((u_char *)d, &h, f);
	h.ts.tv_usec = 1000;
	h.caplen = h.len = (bpf_u_int32)syn_frame(f, 22);
	pcap_dump((u_char *)d, &h, f);
	f[12] = 0x08, f[13] = 0x06; /* ARP: not IP */
	h.ts.tv_usec = 2000;
	pcap_dump((u_char *)d, &h, f);
	pcap_dump_close(d);
	pcap_close(p);
}

static void drain(void *m)
{
	els_monitor_sync(m, 1000);
}

Test(replay, each_packet_judged_once_as_live)
{
	static struct els_worker w;
	struct els_diag d;
	struct els_policy *p;
	struct els_monitor *mon;
	struct els_cidr local;
	struct els_replay_result r;
	char *out = NULL;
	size_t outlen = 0;
	FILE *verdicts = open_memstream(&out, &outlen);

	write_capture();
	els_diag_init(&d, "elsd.conf");
	p = els_policy_load(ELS_SOURCE_DIR "/conf/elsd.conf", NULL, &d);
	cr_assert_not_null(p, "%s", d.count ? d.msgs[0] : "?");
	struct els_monitor_opts mo = {.path = db, .producers = 1};
	mon = els_monitor_open(&mo, &d);
	cr_assert_not_null(mon, "%s", d.count ? d.msgs[0] : "?");
	cr_assert_eq(els_worker_init(&w, 0, 64, els_monitor_ring(mon, 0)), 0);
	els_gen_publish(p);
	els_cidr_parse("198.18.0.2", &local, NULL);

	struct els_replay_opts o = {.path = cap,
				    .local = &local,
				    .nlocal = 1,
				    .verdicts = verdicts,
				    .drain = drain,
				    .drain_arg = mon};
	cr_assert_eq(els_replay_run(&o, &w, &r), 0);
	fclose(verdicts);
	cr_assert_eq(r.packets, 3);
	cr_assert_eq(r.accepted, 1, "the HTTPS SYN (permit https-in)");
	cr_assert_eq(r.dropped, 1, "the SSH SYN (no permit)");
	cr_assert_eq(r.skipped, 1, "the ARP frame");
	cr_assert_eq(r.local_matched, 2);
	cr_assert(strstr(out, "1 in accept header_filter permit proto=tcp src=198.18.0.1:40000 "
			      "dst=198.18.0.2:443"),
		  "%s", out);
	cr_assert(strstr(out, "2 in drop header_filter no_permit proto=tcp src=198.18.0.1:40000 "
			      "dst=198.18.0.2:22"),
		  "%s", out);
	cr_assert(strstr(out, "3 skip not-ip"), "%s", out);
	free(out);
	els_worker_fini(&w);
	els_monitor_close(mon);
	els_policy_free((struct els_policy *)els_gen_current());
	els_diag_free(&d);
}

Test(replay, an_unreadable_capture_is_an_error)
{
	static struct els_worker w;
	struct els_replay_result r;
	struct els_replay_opts o = {.path = "/nonexistent/cap.pcap"};

	cr_assert_eq(els_replay_run(&o, &w, &r), -1);
}
