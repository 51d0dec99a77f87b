/* The metrics exposition writer: label values escaped as the Prometheus text format asks
 * (admin-written permit ids can hold quotes, backslashes, newlines, bytes that are not UTF-8),
 * samples and families in the exact shape a scraper parses; and the `metrics` setting. */
#include <criterion/criterion.h>
#include <libconfig.h>
#include <string.h>

#include "metrics.h"

static char *label(const char *v)
{
	static char out[256];
	struct els_mbuf b = {0};
	els_mbuf_label_value(&b, v);
	cr_assert(!b.oom);
	snprintf(out, sizeof(out), "%s", b.p ? b.p : "");
	els_mbuf_free(&b);
	return out;
}

Test(metrics_text, plain_values_pass_unchanged)
{
	cr_assert_str_eq(label("https-in"), "https-in");
	cr_assert_str_eq(label(""), "");
	cr_assert_str_eq(label("caf\xc3\xa9 \xe2\x82\xac"), "caf\xc3\xa9 \xe2\x82\xac");
}

Test(metrics_text, quote_backslash_newline_escaped)
{
	cr_assert_str_eq(label("a\"b"), "a\\\"b");
	cr_assert_str_eq(label("a\\b"), "a\\\\b");
	cr_assert_str_eq(label("a\nb"), "a\\nb");
	/* An id that tries to close the label and start a sample of its own stays one value. */
	cr_assert_str_eq(label("x\"} 1\nels_fake 9\n#"), "x\\\"} 1\\nels_fake 9\\n#");
	cr_assert_str_eq(label("\\\""), "\\\\\\\"");
}

Test(metrics_text, invalid_utf8_replaced)
{
	cr_assert_str_eq(label("a\xff-"), "a\xef\xbf\xbd-");
	cr_assert_str_eq(label("\xc3"), "\xef\xbf\xbd"); /* cut sequence */
	cr_assert_str_eq(label("\xed\xa0\x80"),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");	 /* surrogate */
	cr_assert_str_eq(label("\xc0\xaf"), "\xef\xbf\xbd\xef\xbf\xbd"); /* overlong */
	/* f5..ff start no sequence, even when continuation bytes follow (found by fuzzing) */
	cr_assert_str_eq(label("\xff\x93\x9a"), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	cr_assert_str_eq(label("\xf5\x80\x80\x80-"),
			 "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd-");
}

Test(metrics_text, samples_and_families)
{
	struct els_mbuf b = {0};
	els_metric_family(&b, "els_x_total", "counter", "Things.");
	els_metric_u64(&b, "els_x_total", NULL, 7);
	els_metric_u64(&b, "els_x_total", (const char *const[]){"queue", "0", NULL}, 0);
	els_metric_u64(&b, "els_x_total",
		       (const char *const[]){"id", "a\"b", "verdict", "drop", NULL},
		       18446744073709551615ull);
	els_metric_f64(&b, "els_t", NULL, 1.5);
	cr_assert(!b.oom);
	cr_assert_str_eq(b.p, "# HELP els_x_total Things.\n"
			      "# TYPE els_x_total counter\n"
			      "els_x_total 7\n"
			      "els_x_total{queue=\"0\"} 0\n"
			      "els_x_total{id=\"a\\\"b\",verdict=\"drop\"} 18446744073709551615\n"
			      "els_t 1.5\n");
	els_mbuf_free(&b);
}

Test(metrics_text, buffer_grows_past_first_block)
{
	struct els_mbuf b = {0};
	for (int i = 0; i < 2000; i++)
		els_metric_u64(&b, "els_many", (const char *const[]){"n", "xxxxxxxx", NULL},
			       (uint64_t)i);
	cr_assert(!b.oom);
	cr_assert_eq(strlen(b.p), b.len);
	cr_assert(strstr(b.p, "els_many{n=\"xxxxxxxx\"} 1999\n"));
	els_mbuf_free(&b);
}

/* Parses text as a config root and returns the diagnostics' first message, or "" when ok. */
static const char *parse(const char *text, struct els_metrics_conf **out)
{
	static char msg[512];
	config_t cfg;
	struct els_diag d;
	config_init(&cfg);
	cr_assert(config_read_string(&cfg, text) == CONFIG_TRUE, "%s", config_error_text(&cfg));
	els_diag_init(&d, "/etc/elsd/elsd.conf");
	els_metrics_config_parse(config_root_setting(&cfg), "/etc/elsd/elsd.conf", out, &d);
	snprintf(msg, sizeof(msg), "%s", d.count ? d.msgs[0] : "");
	els_diag_free(&d);
	config_destroy(&cfg);
	return msg;
}

Test(metrics_config, absent_means_off)
{
	struct els_metrics_conf *c = (void *)1;
	cr_assert_str_eq(parse("queues = \"0\";", &c), "");
	cr_assert_null(c);
}

Test(metrics_config, loopback_unix_and_tls)
{
	struct els_metrics_conf *c = NULL;
	cr_assert_str_eq(parse("metrics = { listen = \"127.0.0.1:9764\"; };", &c), "");
	cr_assert_str_eq(c->host, "127.0.0.1");
	cr_assert_eq(c->port, 9764);
	cr_assert_null(c->cert);
	els_metrics_config_free(c);
	cr_assert_str_eq(parse("metrics = { listen = \"[::1]:9764\"; };", &c), "");
	els_metrics_config_free(c);
	cr_assert_str_eq(parse("metrics = { listen = \"/run/elsd/metrics.sock\"; };", &c), "");
	cr_assert_str_eq(c->unix_path, "/run/elsd/metrics.sock");
	els_metrics_config_free(c);
	cr_assert_str_eq(parse("metrics = { listen = \"0.0.0.0:9764\"; tls = { cert = \"a.crt\"; "
			       "key = \"a.key\"; ca = \"/x/ca.crt\"; crl = \"crl.pem\"; }; };",
			       &c),
			 "");
	cr_assert_str_eq(c->cert, "/etc/elsd/a.crt"); /* relative to the config file */
	cr_assert_str_eq(c->ca, "/x/ca.crt");
	els_metrics_config_free(c);
}

Test(metrics_config, refusals_say_what_to_do)
{
	struct els_metrics_conf *c = NULL;
	cr_assert(strstr(parse("metrics = { listen = \"0.0.0.0:9764\"; };", &c),
			 "reachable from other hosts"));
	cr_assert_null(c);
	cr_assert(strstr(parse("metrics = { listen = \"localhost:9764\"; };", &c), "numeric"));
	cr_assert(strstr(parse("metrics = { listen = \"127.0.0.1:0\"; };", &c), "1..65535"));
	cr_assert(strstr(parse("metrics = { };", &c), "'listen' is required"));
	cr_assert(strstr(parse("metrics = { listen = \"127.0.0.1:1\"; port = 2; };", &c),
			 "unknown setting 'port'"));
	cr_assert(
	    strstr(parse("metrics = { listen = \"0.0.0.0:1\"; tls = { cert = \"a\"; }; };", &c),
		   "'key' is required"));
	cr_assert_null(c);
}

/* ---- hits per permit across generations (agent/metrics.c, worker.h permit_hits) ---- */

#include <stdlib.h>
#include <unistd.h>

#include "worker.h"

static struct els_policy *policy_with(const char *permits, uint32_t gen)
{
	char path[] = "/tmp/els-test-metrics-XXXXXX", text[1024];
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	snprintf(text, sizeof(text),
		 "chain = [ \"tracker\", \"header_filter\" ];\n"
		 "header_filter = { permits = ( %s ); };\n",
		 permits);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	struct els_diag d;
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, NULL, &d);
	cr_assert_not_null(p, "%s", d.count ? d.msgs[0] : "?");
	els_diag_free(&d);
	unlink(path);
	p->generation = gen;
	return p;
}

/* The value of `els_permit_hits_total{id="ID"}` on m's page, -1 when absent. */
static long long hits(struct els_metrics *m, const char *id)
{
	struct els_mbuf b = {0};
	char needle[128];
	els_metrics_render(m, &b);
	cr_assert(!b.oom);
	snprintf(needle, sizeof(needle), "\nels_permit_hits_total{id=\"%s\"} ", id);
	const char *at = strstr(b.p, needle);
	long long v = at ? atoll(at + strlen(needle)) : -1;
	els_mbuf_free(&b);
	return v;
}

Test(metrics_permits, hits_follow_the_id_across_generations)
{
	struct els_worker *w = calloc(2, sizeof(*w));
	char sock[] = "/tmp/els-test-metrics-sock-XXXXXX";
	cr_assert_not_null(mkdtemp(sock));
	char sockpath[128];
	snprintf(sockpath, sizeof(sockpath), "%s/m.sock", sock);
	struct els_metrics_conf conf = {.listen = sockpath, .unix_path = sockpath};
	struct els_metrics_src src = {.workers = w, .nq = 2, .queue_first = 0, .queue_last = 1};
	struct els_metrics *m = els_metrics_open(&conf, &src);
	cr_assert_not_null(m);

	/* generation 1: a at position 1, b at 2, c at 3; two workers count */
	struct els_policy *p1 = policy_with(
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 80 ]; },"
	    "{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 81 ]; },"
	    "{ id = \"c\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 82 ]; }",
	    1);
	els_metrics_policy(m, p1);
	w[0].st.permit_hits[1][0] = 3;
	w[1].st.permit_hits[1][0] = 1;
	w[1].st.permit_hits[1][2] = 10;
	w[0].st.permit_hits[1][1] = 5;
	cr_assert_eq(hits(m, "a"), 4);
	cr_assert_eq(hits(m, "b"), 5);
	cr_assert_eq(hits(m, "c"), 10);

	/* generation 2 reorders (b first, a second) and drops c; workers still finishing
	 * generation 1 count on in its bank until they move, and nothing goes backwards */
	struct els_policy *p2 = policy_with(
	    "{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 81 ]; },"
	    "{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 80 ]; }",
	    2);
	w[0].st.permit_hits[0][0] = 99; /* a stale bank: prepare must clear it */
	els_metrics_permits_prepare(w, 2, 2);
	els_metrics_policy(m, p2);
	cr_assert_eq(hits(m, "a"), 4);
	cr_assert_eq(hits(m, "c"), -1);
	w[1].st.permit_hits[1][0] = 2;	/* a late generation-1 hit on a (position 1) */
	w[0].st.permit_hits[0][1] = 4;	/* generation 2: a is at position 2 now */
	w[0].st.permit_hits[0][0] = 1;	/* and b at 1 */
	cr_assert_eq(hits(m, "a"), 9);
	cr_assert_eq(hits(m, "b"), 6);
	els_metrics_settle(m); /* every worker is on generation 2 */
	cr_assert_eq(hits(m, "a"), 9);
	cr_assert_eq(hits(m, "b"), 6);

	/* generation 3 removes b: its sample goes; a keeps its count */
	struct els_policy *p3 =
	    policy_with("{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 80 ]; }", 3);
	els_metrics_permits_prepare(w, 2, 3);
	cr_assert_eq(w[1].st.permit_hits[1][0], 0); /* generation 1's bank, settled, is reused */
	els_metrics_policy(m, p3);
	els_metrics_settle(m);
	cr_assert_eq(hits(m, "a"), 9);
	cr_assert_eq(hits(m, "b"), -1);

	els_metrics_free(m);
	els_policy_free(p1);
	els_policy_free(p2);
	els_policy_free(p3);
	free(w);
	rmdir(sock);
}
