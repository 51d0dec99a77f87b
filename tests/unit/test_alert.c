/* agent/daemon/alert.c: the alert line's fields, the cleaning of untrusted text put into a
 * quoted value, and the rate limit that a remote party cannot flood syslog through. Alerts
 * also go to stderr (no JOURNAL_STREAM here), which each test reads back. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "els/clock.h"
#include "els/monitor.h"
#include "els/reason.h"

static char errpath[] = "/tmp/els-alert-XXXXXX";

static void setup(void)
{
	int fd = mkstemp(errpath);

	cr_assert_geq(fd, 0);
	close(fd);
	unsetenv("JOURNAL_STREAM");
	cr_assert_not_null(freopen(errpath, "w", stderr));
	setvbuf(stderr, NULL, _IONBF, 0);
}

static void teardown(void)
{
	unlink(errpath);
}

TestSuite(alert, .init = setup, .fini = teardown);

/* Lines of stderr so far that contain needle. */
static unsigned lines_with(const char *needle, char *last, size_t lastlen)
{
	FILE *f = fopen(errpath, "r");
	char line[1024];
	unsigned n = 0;

	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle)) {
			n++;
			if (last)
				snprintf(last, lastlen, "%s", line);
		}
	fclose(f);
	return n;
}

Test(alert, clean_leaves_no_way_out_of_a_quoted_value)
{
	char b[32];

	cr_assert_str_eq(els_alert_clean(b, sizeof(b),
					 "a\"b\\c\nd\x7f"
					 "e"),
			 "a_b_c_d_e");
	cr_assert_str_eq(els_alert_clean(b, 6, "0123456789"), "01234");
	cr_assert_str_eq(els_alert_clean(b, sizeof(b), NULL), "");
	cr_assert_str_eq(els_alert_clean(b, sizeof(b), "CN=alice, O=\xc3\xa9"),
			 "CN=alice, O=\xc3\xa9");
}

Test(alert, format_of_a_packet_and_of_an_address)
{
	struct els_record r = {.reason = ELS_R_SCAN_DETECTED,
			       .family = 4,
			       .proto = 6,
			       .sport = 40000,
			       .dport = 22,
			       .handler = "scan"};
	char b[512];

	inet_pton(AF_INET, "198.18.0.1", r.src.b);
	inet_pton(AF_INET, "198.18.0.2", r.dst.b);
	snprintf(r.rule_name, sizeof(r.rule_name), "ssh");
	els_alert_format(&r, b, sizeof(b));
	cr_assert_str_eq(b, "event=scan_detected src=198.18.0.1 dst=198.18.0.2 dir=in proto=tcp "
			    "sport=40000 dport=22 rule=ssh handler=scan");
	r.proto = 0; /* an event about a scanner, not a packet */
	r.rule_name[0] = 0;
	snprintf(r.detail, sizeof(r.detail), "ports=20");
	els_alert_format(&r, b, sizeof(b));
	cr_assert_str_eq(b, "event=scan_detected src=198.18.0.1 handler=scan ports=20");
	els_alert_format(&r, b, 20); /* cut, never overrun */
	cr_assert_eq(strlen(b), 19);
}

/* A burst of 20 goes out, then 5 a second; the next one out says how many were held. */
Test(alert, limited_alerts_cannot_flood)
{
	char last[1024] = "", want[64];
	unsigned out;

	uint64_t t0 = els_now_mono(), slots;

	for (int i = 0; i < 50; i++)
		els_alert_limited(ELS_R_MGMT_REFUSED, "peer=198.18.0.9 try=%d", i);
	/* the burst of 20, and one more per 200 ms slot the calls took (a slow build) */
	slots = (els_now_mono() - t0) / (ELS_NS_PER_S / 5) + 1;
	out = lines_with("event=mgmt_refused", NULL, 0);
	cr_assert(out >= 20 && out <= 20 + slots && out < 50, "%u alerts of 50 went out", out);
	/* an unlimited alert of another reason is not held by that flood */
	els_alert(ELS_R_SCAN_DETECTED, "src=198.18.0.7");
	cr_assert_eq(lines_with("event=scan_detected", NULL, 0), 1);
	nanosleep(&(struct timespec){.tv_nsec = 450 * 1000000L}, NULL);
	els_alert_limited(ELS_R_MGMT_REFUSED, "peer=198.18.0.9 try=last");
	cr_assert_eq(lines_with("event=mgmt_refused", last, sizeof(last)), out + 1);
	snprintf(want, sizeof(want), "try=last (and %u more held back)", 50 - out);
	cr_assert(strstr(last, want), "%s", last);
}
