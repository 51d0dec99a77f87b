/* iplist handler: built from config text, then asked about packets in both directions. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/addr.h"
#include "els/handler.h"

extern const struct els_handler els_handler_iplist;
static const struct els_handler *H = &els_handler_iplist;

static char dir[64];
static char conf_path[128];
static config_t cfg;
static struct els_diag diag;
static void *conf;

static void setup(void)
{
	strcpy(dir, "/tmp/els_iplist_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(conf_path, sizeof(conf_path), "%s/elsd.conf", dir);
	config_init(&cfg);
	els_diag_init(&diag, "elsd.conf");
	conf = NULL;
}

static void teardown(void)
{
	char cmd[128];
	if (conf)
		H->destroy(conf);
	config_destroy(&cfg);
	els_diag_free(&diag);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void write_file(const char *name, const char *body)
{
	char path[192];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(body, f);
	fclose(f);
}

static const char *msgs(void)
{
	static char out[4096];
	out[0] = '\0';
	for (unsigned i = 0; i < diag.count; i++)
		snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s\n", diag.msgs[i]);
	return out;
}

/* Builds the iplist section of text; returns build's result. */
static int build(const char *text)
{
	cr_assert(config_read_string(&cfg, text), "config: %s at line %d", config_error_text(&cfg),
		  config_error_line(&cfg));
	const config_setting_t *sec = config_lookup(&cfg, "iplist");
	struct els_build_env env = {.config_path = conf_path, .services_path = "/dev/null"};
	return H->build(sec, &env, &conf, &diag);
}

static void build_ok(const char *text)
{
	int rc = build(text);
	cr_assert_eq(rc, 0, "build failed: %s", msgs());
	cr_assert_eq(diag.count, 0);
	cr_assert_not_null(conf);
}

struct verdict {
	enum els_action action;
	unsigned reason, rule;
};

/* Asks the handler about a packet between this host and remote; local is what the other
 * address field holds (a host address that is on no list unless a test puts it there). */
static struct verdict ask_addr(enum els_dir dir_, const char *remote, const char *local)
{
	struct els_pkt p;
	struct els_cidr r, l;
	memset(&p, 0, sizeof(p));
	cr_assert_eq(els_cidr_parse(remote, &r, NULL), 0);
	cr_assert_eq(els_cidr_parse(local, &l, NULL), 0);
	p.family = r.family;
	p.dir = (uint8_t)dir_;
	p.proto = 6;
	if (dir_ == ELS_DIR_IN) {
		p.src = r.addr;
		p.dst = l.addr;
	} else {
		p.src = l.addr;
		p.dst = r.addr;
	}
	struct els_ctx ctx = {.pkt = &p};
	struct els_decision d = {0};
	enum els_action a = H->handle(conf, &ctx, &d);
	cr_assert_eq(a, d.action, "returned action and out->action differ");
	return (struct verdict){a, d.reason, d.rule};
}

static struct verdict ask(enum els_dir d, const char *remote)
{
	return ask_addr(d, remote, strchr(remote, ':') ? "2001:db8:1::2" : "198.18.0.2");
}

#define CHECK(v, act, rsn, rl)                                                                     \
	do {                                                                                       \
		struct verdict v_ = (v);                                                           \
		cr_assert_eq(v_.action, act, "action %d", v_.action);                              \
		cr_assert_eq(v_.reason, rsn, "reason %u", v_.reason);                              \
		cr_assert_eq(v_.rule, rl, "rule %u", v_.rule);                                     \
	} while (0)

TestSuite(iplist, .init = setup, .fini = teardown);

Test(iplist, deny_checks_the_remote_address_both_ways)
{
	build_ok("iplist = { deny = [ \"198.19.66.0/24\", \"2001:db8:666::/48\" ]; };");
	CHECK(ask(ELS_DIR_IN, "198.19.66.7"), ELS_DROP, ELS_R_DENY_LIST, 1);
	CHECK(ask(ELS_DIR_OUT, "198.19.66.7"), ELS_DROP, ELS_R_DENY_LIST, 1);
	CHECK(ask(ELS_DIR_IN, "2001:db8:666:1::9"), ELS_DROP, ELS_R_DENY_LIST, 2);
	CHECK(ask(ELS_DIR_OUT, "2001:db8:666::"), ELS_DROP, ELS_R_DENY_LIST, 2);
	CHECK(ask(ELS_DIR_IN, "198.19.67.7"), ELS_CONTINUE, ELS_R_NONE, 0);
	CHECK(ask(ELS_DIR_OUT, "2001:db8:667::1"), ELS_CONTINUE, ELS_R_NONE, 0);
	/* The local side of the packet is never judged, even if it lies in a denied range. */
	CHECK(ask_addr(ELS_DIR_IN, "192.0.2.1", "198.19.66.7"), ELS_CONTINUE, ELS_R_NONE, 0);
	CHECK(ask_addr(ELS_DIR_OUT, "192.0.2.1", "198.19.66.7"), ELS_CONTINUE, ELS_R_NONE, 0);
}

Test(iplist, allow_opens_a_hole_in_a_denied_range)
{
	build_ok("iplist = {\n"
		 "  deny = [ \"10.0.0.0/16\", \"10.0.5.128/25\" ];\n"
		 "  allow = [ \"10.0.5.0/24\", \"10.0.5.200\" ];\n"
		 "};");
	CHECK(ask(ELS_DIR_IN, "10.0.9.1"), ELS_DROP, ELS_R_DENY_LIST, 1);
	CHECK(ask(ELS_DIR_IN, "10.0.5.1"), ELS_CONTINUE, ELS_R_NONE, 3);
	CHECK(ask(ELS_DIR_OUT, "10.0.5.129"), ELS_DROP, ELS_R_DENY_LIST, 2);
	CHECK(ask(ELS_DIR_OUT, "10.0.5.200"), ELS_CONTINUE, ELS_R_NONE, 4);
	CHECK(ask(ELS_DIR_IN, "10.1.0.1"), ELS_CONTINUE, ELS_R_NONE, 0);
}

Test(iplist, default_drop_admits_only_the_allow_list)
{
	build_ok("iplist = { allow = [ \"203.0.113.0/24\", \"2001:db8:abc::/64\" ];\n"
		 "  default = \"drop\"; fail = \"open\"; };");
	CHECK(ask(ELS_DIR_IN, "203.0.113.9"), ELS_CONTINUE, ELS_R_NONE, 1);
	CHECK(ask(ELS_DIR_OUT, "2001:db8:abc::1"), ELS_CONTINUE, ELS_R_NONE, 2);
	CHECK(ask(ELS_DIR_IN, "203.0.114.9"), ELS_DROP, ELS_R_NOT_IN_ALLOW_LIST, 0);
	CHECK(ask(ELS_DIR_OUT, "2001:db8:abd::1"), ELS_DROP, ELS_R_NOT_IN_ALLOW_LIST, 0);
}

Test(iplist, default_continue_spelled_out)
{
	build_ok("iplist = { default = \"continue\"; };");
	CHECK(ask(ELS_DIR_IN, "203.0.113.9"), ELS_CONTINUE, ELS_R_NONE, 0);
}

Test(iplist, no_section_means_empty_lists)
{
	cr_assert_eq(H->build(NULL, NULL, &conf, &diag), 0, "%s", msgs());
	CHECK(ask(ELS_DIR_IN, "198.51.100.1"), ELS_CONTINUE, ELS_R_NONE, 0);
	CHECK(ask(ELS_DIR_OUT, "2001:db8::1"), ELS_CONTINUE, ELS_R_NONE, 0);
	cr_assert_null(H->rule_name(conf, 1));
}

Test(iplist, family_zero_packet_gets_the_default)
{
	build_ok("iplist = { deny = [ \"0.0.0.0/0\", \"::/0\" ]; default = \"drop\"; };");
	struct els_pkt p;
	memset(&p, 0, sizeof(p));
	struct els_ctx ctx = {.pkt = &p};
	struct els_decision d = {0};
	cr_assert_eq(H->handle(conf, &ctx, &d), ELS_DROP);
	cr_assert_eq(d.reason, ELS_R_NOT_IN_ALLOW_LIST);
}

Test(iplist, unknown_key_names_key_and_line)
{
	int rc = build("# comment\n"
		       "iplist = {\n"
		       "  deny = [ ];\n"
		       "  denny = [ \"10.0.0.0/8\" ];\n"
		       "};\n");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(conf);
	cr_assert_eq(diag.count, 1, "%s", msgs());
	cr_assert(strstr(diag.msgs[0], "elsd.conf:4: unknown setting 'denny' in iplist") ==
		      diag.msgs[0],
		  "%s", diag.msgs[0]);
}

Test(iplist, bad_inline_entries_name_their_lines)
{
	int rc = build("iplist = {\n"
		       "  deny = [ \"10.0.0.0/8\",\n"
		       "           \"10.0.0.1/8\",\n"
		       "           \"not-an-ip\" ];\n"
		       "  allow = [ 42 ];\n"
		       "  default = \"maybe\";\n"
		       "};\n");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(conf);
	cr_assert_eq(diag.count, 4, "%s", msgs());
	cr_assert_str_eq(diag.msgs[0], "elsd.conf:6: iplist: 'default' must be \"continue\" "
				       "(addresses on neither list go on to the next handler) or "
				       "\"drop\"");
	cr_assert_str_eq(diag.msgs[1], "elsd.conf:3: iplist: deny entry \"10.0.0.1/8\": address "
				       "has bits set beyond the prefix length");
	cr_assert_str_eq(diag.msgs[2], "elsd.conf:4: iplist: deny entry \"not-an-ip\": not an "
				       "IPv4 or IPv6 address");
	cr_assert_str_eq(diag.msgs[3], "elsd.conf:5: iplist: allow entry \"?\": not a string");
}

Test(iplist, list_not_a_list)
{
	cr_assert_eq(build("iplist = { deny = \"10.0.0.0/8\"; deny_files = 3; };"), -EINVAL);
	cr_assert_eq(diag.count, 2, "%s", msgs());
	cr_assert(strstr(diag.msgs[0], "'deny' must be a list"), "%s", diag.msgs[0]);
	cr_assert(strstr(diag.msgs[1], "'deny_files' must be a list of file paths"), "%s",
		  diag.msgs[1]);
}

Test(iplist, relative_list_files_and_rule_order)
{
	write_file("deny.txt", "# bad hosts\n192.0.2.0/24\r\n192.0.2.0/24\n2001:db8:bad::/48\n");
	char abs_allow[192];
	snprintf(abs_allow, sizeof(abs_allow), "%s/allow.txt", dir);
	write_file("allow.txt", "192.0.2.99\n");
	char text[512];
	snprintf(text, sizeof(text),
		 "iplist = {\n"
		 "  deny = [ \"198.51.100.0/24\" ];\n"
		 "  deny_files = [ \"deny.txt\" ];\n"
		 "  allow = [ \"192.0.2.98\" ];\n"
		 "  allow_files = [ \"%s\" ];\n"
		 "};\n",
		 abs_allow);
	build_ok(text);
	/* Ids: 1 inline deny, 2-4 deny.txt (3 is the repeat), 5 inline allow, 6 allow.txt. */
	CHECK(ask(ELS_DIR_IN, "198.51.100.1"), ELS_DROP, ELS_R_DENY_LIST, 1);
	CHECK(ask(ELS_DIR_IN, "192.0.2.1"), ELS_DROP, ELS_R_DENY_LIST, 2);
	CHECK(ask(ELS_DIR_OUT, "2001:db8:bad::1"), ELS_DROP, ELS_R_DENY_LIST, 4);
	CHECK(ask(ELS_DIR_IN, "192.0.2.98"), ELS_CONTINUE, ELS_R_NONE, 5);
	CHECK(ask(ELS_DIR_IN, "192.0.2.99"), ELS_CONTINUE, ELS_R_NONE, 6);
}

Test(iplist, bad_line_in_list_file)
{
	write_file("deny.txt", "10.0.0.0/8\n\nbogus\n10.0.0.0/33\n");
	int rc = build("iplist = { deny_files = [ \"deny.txt\" ]; };");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_eq(diag.count, 2, "%s", msgs());
	char want[256];
	snprintf(want, sizeof(want), "%s/deny.txt:3: bad entry: not an IPv4", dir);
	cr_assert(strstr(diag.msgs[0], want) == diag.msgs[0], "%s", diag.msgs[0]);
	snprintf(want, sizeof(want), "%s/deny.txt:4: bad entry: IPv4 prefix", dir);
	cr_assert(strstr(diag.msgs[1], want) == diag.msgs[1], "%s", diag.msgs[1]);
}

Test(iplist, missing_list_file)
{
	int rc = build("iplist = {\n  allow_files = [ \"nope.txt\" ];\n};");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(conf);
	cr_assert_eq(diag.count, 2, "%s", msgs());
	char want[256];
	snprintf(want, sizeof(want),
		 "%s/nope.txt: cannot open list file: No such file or directory", dir);
	cr_assert_str_eq(diag.msgs[0], want);
	cr_assert_str_eq(
	    diag.msgs[1],
	    "elsd.conf:2: iplist: allow_files names \"nope.txt\", which cannot be read");
}

Test(iplist, same_prefix_on_both_lists)
{
	write_file("allow.txt", "# ok\n10.9.0.0/16\n");
	int rc = build("iplist = {\n"
		       "  deny = [ \"10.8.0.0/16\",\n"
		       "           \"10.9.0.0/16\" ];\n"
		       "  allow = [ \"10.8.0.0/16\" ];\n"
		       "  allow_files = [ \"allow.txt\" ];\n"
		       "};\n");
	cr_assert_eq(rc, -EINVAL);
	cr_assert_null(conf);
	cr_assert_eq(diag.count, 2, "%s", msgs());
	cr_assert_str_eq(diag.msgs[0], "elsd.conf:4: 10.8.0.0/16 is on the allow list here and on "
				       "the deny list at elsd.conf:2: remove one of them");
	char want[256];
	snprintf(want, sizeof(want),
		 "%s/allow.txt:2: 10.9.0.0/16 is on the allow list here and on the deny list at "
		 "elsd.conf:3: remove one of them",
		 dir);
	cr_assert_str_eq(diag.msgs[1], want);
}

Test(iplist, config_from_a_file_names_that_file)
{
	/* Read through libconfig's file reader, as elsd does: messages carry the real path. */
	write_file("elsd.conf",
		   "iplist = {\n  deny = [ \"1.2.3.4\" ];\n  allow = [ \"1.2.3.4\" ];\n};\n");
	cr_assert(config_read_file(&cfg, conf_path));
	struct els_build_env env = {.config_path = conf_path};
	cr_assert_eq(H->build(config_lookup(&cfg, "iplist"), &env, &conf, &diag), -EINVAL);
	char want[512];
	snprintf(want, sizeof(want),
		 "%s:3: 1.2.3.4/32 is on the allow list here and on the deny list at %s:2: remove "
		 "one of them",
		 conf_path, conf_path);
	cr_assert_eq(diag.count, 1, "%s", msgs());
	cr_assert_str_eq(diag.msgs[0], want);
}
