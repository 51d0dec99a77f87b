/* Config loading: the example parses, settings and defaults, and errors name file and line. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/monitor.h"
#include "els/policy.h"

static char path[64];

static void write_conf(const char *text)
{
	strcpy(path, "/tmp/els-test-policy-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static struct els_policy *load(const char *text, struct els_diag *d)
{
	write_conf(text);
	els_diag_init(d, path);
	return els_policy_load(path, NULL, d);
}

/* True when some message starts with "<path>:<line>: " and contains needle. */
static bool has_error(const struct els_diag *d, unsigned line, const char *needle)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	for (unsigned i = 0; i < d->count; i++)
		if (strncmp(d->msgs[i], prefix, strlen(prefix)) == 0 && strstr(d->msgs[i], needle))
			return true;
	return false;
}

static void dump(const struct els_diag *d)
{
	for (unsigned i = 0; i < d->count; i++)
		cr_log_info("%s", d->msgs[i]);
}

Test(policy, example_config_loads)
{
	struct els_diag d;
	els_diag_init(&d, "conf/elsd.conf");
	struct els_policy *p = els_policy_load(ELS_SOURCE_DIR "/conf/elsd.conf", NULL, &d);
	dump(&d);
	cr_assert_not_null(p);
	cr_assert_eq(p->nlinks, 4);
	cr_assert_str_eq(p->links[0].h->name, "anomaly", "the anomaly checks come first");
	cr_assert_str_eq(p->links[1].h->name, "iplist");
	cr_assert_str_eq(p->links[3].h->name, "header_filter");
	cr_assert_eq(strlen(p->hash), 64);
	cr_assert_eq(p->set.nlocal, 2);
	els_policy_free(p);
	els_diag_free(&d);
}

Test(policy, settings_and_defaults)
{
	struct els_diag d;
	struct els_policy *p = load("queues = \"2-5\";\nfail_open = true;\n"
				    "monitor = { path = \"/tmp/x.db\"; log = \"all\"; };\n"
				    "chain = [ \"tracker\" ];\n", &d);
	dump(&d);
	cr_assert_not_null(p);
	cr_assert_eq(p->set.queue_first, 2);
	cr_assert_eq(p->set.queue_last, 5);
	cr_assert(p->set.fail_open);
	cr_assert_str_eq(p->set.monitor_path, "/tmp/x.db");
	cr_assert_eq(p->set.log_mode, ELS_LOG_ALL);
	cr_assert_eq(p->set.copy_bytes, 256);
	cr_assert_eq(p->set.flow_capacity, 262144);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
}

Test(policy, every_error_is_reported_with_its_line)
{
	struct els_diag d;
	struct els_policy *p = load("queues = \"5-2\";\n"                /* 1 */
				    "fail_open = 1;\n"                   /* 2 */
				    "copy_bytes = 3;\n"                  /* 3 */
				    "monitor = { log = \"some\"; };\n"   /* 4 */
				    "chain = [ \"tracker\", \"nope\" ];\n" /* 5 */
				    "tracer = { };\n",                   /* 6 */
				    &d);
	dump(&d);
	cr_assert_null(p);
	cr_assert(has_error(&d, 1, "queues"));
	cr_assert(has_error(&d, 2, "fail_open"));
	cr_assert(has_error(&d, 3, "out of range"));
	cr_assert(has_error(&d, 4, "\"some\""));
	cr_assert(has_error(&d, 5, "unknown handler 'nope'"));
	cr_assert(has_error(&d, 6, "tracer"));
	els_diag_free(&d);
	unlink(path);
}

Test(policy, chain_order_and_duplicates)
{
	struct els_diag d;
	struct els_policy *p = load("chain = [ \"header_filter\",\n \"tracker\",\n \"tracker\" ];\n"
				    "header_filter = { permits = ( ); };\n", &d);
	dump(&d);
	cr_assert_null(p);
	cr_assert(has_error(&d, 3, "twice"));
	cr_assert(has_error(&d, 1, "before 'header_filter'"));
	els_diag_free(&d);
	unlink(path);
}

Test(policy, a_chain_without_the_flow_stage_loads_as_written)
{
	/* No flow stage is added behind the config's back: every packet meets the handlers. */
	struct els_diag d;
	struct els_policy *p = load("chain = [ \"iplist\", \"header_filter\" ];\n"
				    "header_filter = { permits = ( ); };\n", &d);
	dump(&d);
	cr_assert_not_null(p);
	cr_assert_eq(p->nlinks, 2);
	for (unsigned i = 0; i < p->nlinks; i++)
		cr_assert_not(p->links[i].h->flags & ELS_HANDLER_FLOW_STAGE);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
}

Test(policy, syntax_error_names_the_line)
{
	struct els_diag d;
	struct els_policy *p = load("queues = \"0\";\nchain = [ \"tracker\" \n", &d);
	cr_assert_null(p);
	cr_assert_eq(d.count, 1);
	cr_assert(strstr(d.msgs[0], path) != NULL);
	cr_assert(strstr(d.msgs[0], ":3: ") || strstr(d.msgs[0], ":2: "), "%s", d.msgs[0]);
	els_diag_free(&d);
	unlink(path);
}

Test(policy, missing_file)
{
	struct els_diag d;
	els_diag_init(&d, "x");
	cr_assert_null(els_policy_load("/nonexistent/elsd.conf", NULL, &d));
	cr_assert_eq(d.count, 1);
	cr_assert(strstr(d.msgs[0], "/nonexistent/elsd.conf: cannot read"), "%s", d.msgs[0]);
	els_diag_free(&d);
}

/* Found by fuzz_policy: a list where a group belongs used to crash the key check. */
Test(policy, list_where_a_group_belongs)
{
	struct els_diag d;
	struct els_policy *p = load("flows = [ \"tracker\" ];\nmonitor = ( 1 );\n"
				    "chain = [ \"tracker\" ];\n", &d);
	dump(&d);
	cr_assert_null(p);
	cr_assert(has_error(&d, 1, "'flows' must be a group"));
	cr_assert(has_error(&d, 2, "'monitor' must be a group"));
	els_diag_free(&d);
	unlink(path);
}

/* rules = { self_heal = ... }: agent/rulewatch.h. On by default; a wrong type or an unknown
 * key is an error with its line. */
Test(policy, rules_self_heal)
{
	struct els_diag d;
	struct els_policy *p = load("chain = [ \"tracker\" ];\n", &d);
	cr_assert_not_null(p);
	cr_assert(p->set.rules_self_heal, "self_heal is on by default");
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);

	p = load("chain = [ \"tracker\" ];\nrules = { self_heal = false; };\n", &d);
	dump(&d);
	cr_assert_not_null(p);
	cr_assert_not(p->set.rules_self_heal);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);

	p = load("chain = [ \"tracker\" ];\n"
		 "rules = {\n self_heal = 1;\n restore = true;\n};\n",
		 &d);
	cr_assert_null(p);
	cr_assert(has_error(&d, 3, "'rules.self_heal' must be true or false"));
	cr_assert(has_error(&d, 4, "unknown setting 'restore' in rules"));
	els_diag_free(&d);
	unlink(path);

	/* The restore limit: 10 per 10 s unless set, each bounded. */
	p = load("chain = [ \"tracker\" ];\n", &d);
	cr_assert_not_null(p);
	cr_assert_eq(p->set.rules_heal_max, 10);
	cr_assert_eq(p->set.rules_heal_window_s, 10);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
	p = load("chain = [ \"tracker\" ];\nrules = { heal_max = 3; heal_window_s = 2; };\n", &d);
	dump(&d);
	cr_assert_not_null(p);
	cr_assert_eq(p->set.rules_heal_max, 3);
	cr_assert_eq(p->set.rules_heal_window_s, 2);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
	p = load("chain = [ \"tracker\" ];\n"
		 "rules = {\n heal_max = 0;\n heal_window_s = 7200;\n};\n",
		 &d);
	dump(&d);
	cr_assert_null(p);
	cr_assert(has_error(&d, 3, "heal_max"));
	cr_assert(has_error(&d, 4, "heal_window_s"));
	els_diag_free(&d);
	unlink(path);
}
