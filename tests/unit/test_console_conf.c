/* els-console's configuration (console/core/conf.c): defaults, every kind of error with its file
 * and line, paths beside the file, the listen syntax. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

static char dir[] = "/tmp/els-console-conf.XXXXXX";
static char path[256];

static void setup(void)
{
	cr_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/console.conf", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

static const char minimal[] =
    "console = { name = \"console-1\"; };\n"
    "agents = { ca = \"ca.crt\"; cert = \"c.crt\"; key = \"c.key\"; crl = \"crl.pem\"; };\n"
    "api = { ca = \"/etc/x/ca.crt\"; cert = \"c.crt\"; key = \"c.key\"; crl = \"crl.pem\"; };\n"
    "database = { conninfo = \"dbname=els\"; };\n";

/* Loads text; returns the rc, diagnostics joined by '\n' in out. */
static int load(const char *text, struct console_conf **c, char *out, size_t n)
{
	FILE *f = fopen(path, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	struct els_diag d;
	els_diag_init(&d, path);
	int rc = console_conf_load(path, c, &d);
	out[0] = 0;
	for (unsigned i = 0; i < d.count; i++) {
		strncat(out, d.msgs[i], n - strlen(out) - 2);
		strcat(out, "\n");
	}
	els_diag_free(&d);
	return rc;
}

TestSuite(console_conf, .init = setup, .fini = teardown);

Test(console_conf, minimal_file_gets_the_defaults)
{
	struct console_conf *c;
	char diag[2048], want[512];
	cr_assert_eq(load(minimal, &c, diag, sizeof(diag)), 0, "%s", diag);
	cr_assert_str_eq(c->name, "console-1");
	cr_assert_str_eq(c->agents.listen, "0.0.0.0:7444");
	cr_assert_str_eq(c->agents.host, "0.0.0.0");
	cr_assert_eq(c->agents.port, 7444);
	cr_assert_str_eq(c->api.host, "127.0.0.1");
	cr_assert_eq(c->api.port, 8443);
	cr_assert_eq(c->heartbeat_timeout_s, 35);
	cr_assert_eq(c->handshake_timeout_s, 10);
	cr_assert_eq(c->agents_max, 20000);
	cr_assert(c->two_person, "two-person rule on unless switched off");
	cr_assert_eq(c->drift_silent_after_s, 60);
	cr_assert_eq(c->deploy_health_wait_s, 30);
	cr_assert_float_eq(c->deploy_max_drop_rate_ratio, 5.0, 1e-9);
	cr_assert_eq(c->deploy_interval_ms, 2000);
	cr_assert_str_eq(c->sql_dir, ELS_CONSOLE_SQL_DIR);
	/* Relative paths are taken from the file's directory; absolute ones stay. */
	snprintf(want, sizeof(want), "%s/ca.crt", dir);
	cr_assert_str_eq(c->agents.ca, want);
	cr_assert_str_eq(c->api.ca, "/etc/x/ca.crt");
	cr_assert_not_null(console_conf_setting(c, "console.name"));
	cr_assert_null(console_conf_setting(c, "deploy.health_wait_s"));
	console_conf_free(c);
}

Test(console_conf, settings_override_defaults)
{
	char text[2048], diag[2048];
	struct console_conf *c;
	snprintf(text, sizeof(text),
		 "%schange_control = { two_person = false; };\n"
		 "drift = { silent_after_s = 120; };\n"
		 "deploy = { health_wait_s = 5; max_drop_rate_ratio = 2.5; interval_ms = 500; };\n",
		 minimal);
	cr_assert_eq(load(text, &c, diag, sizeof(diag)), 0, "%s", diag);
	cr_assert_not(c->two_person);
	cr_assert_eq(c->drift_silent_after_s, 120);
	cr_assert_eq(c->deploy_health_wait_s, 5);
	cr_assert_float_eq(c->deploy_max_drop_rate_ratio, 2.5, 1e-9);
	cr_assert_eq(c->deploy_interval_ms, 500);
	console_conf_free(c);
}

Test(console_conf, every_error_named_with_its_line)
{
	struct console_conf *c = (void *)1;
	char diag[4096];
	const char *text = "console = { name = \"bad name\"; };\n" /* 1 */
			   "agents = { listen = \"example.org:7444\"; ca = \"a\"; cert = \"b\"; "
			   "key = \"c\";\n"					    /* 2 */
			   "  crl = \"d\"; heartbeat_timeout_s = 2; typo = 1; };\n" /* 3 */
			   "api = { listen = \"[::1]:8443\"; ca = 5; cert = \"b\"; key = \"c\"; "
			   "crl = \"d\"; };\n"
			   "deploy = { max_drop_rate_ratio = 0.5; };\n"	   /* 5 */
			   "change_control = { two_person = \"yes\"; };\n" /* 6 */
			   "surprise = { a = 1; };\n";			   /* 7 */
	cr_assert_lt(load(text, &c, diag, sizeof(diag)), 0);
	cr_assert_null(c);
	const char *want[] = {
	    ":1: console.name \"bad name\"",
	    ":2: agents.listen \"example.org:7444\" is not a numeric ADDRESS:PORT",
	    ":3: agents.heartbeat_timeout_s = 2 is out of range 3..86400",
	    ":3: unknown key agents.typo",
	    ":4: api.ca must be a string",
	    ":5: deploy.max_drop_rate_ratio = 0.5 is out of range",
	    ":6: change_control.two_person must be true or false",
	    ":7: unknown section \"surprise\"",
	    "database.conninfo is required",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert(strstr(diag, want[i]), "missing \"%s\" in:\n%s", want[i], diag);
}

Test(console_conf, syntax_error_has_its_line)
{
	struct console_conf *c;
	char diag[1024];
	cr_assert_lt(load("console = { name = \"x\" }\nagents = ;\n", &c, diag, sizeof(diag)), 0);
	cr_assert(strstr(diag, "console.conf:2: syntax error"), "%s", diag);
}

Test(console_conf, missing_file)
{
	struct console_conf *c;
	struct els_diag d;
	els_diag_init(&d, "/nonexistent/console.conf");
	cr_assert_lt(console_conf_load("/nonexistent/console.conf", &c, &d), 0);
	cr_assert_eq(d.count, 1);
	cr_assert(strstr(d.msgs[0], "/nonexistent/console.conf: cannot read the file"), "%s",
		  d.msgs[0]);
	els_diag_free(&d);
}

Test(console_conf, same_address_for_both_listeners_refused)
{
	struct console_conf *c;
	char text[2048], diag[1024];
	snprintf(text, sizeof(text), "%s", minimal);
	char *p = strstr(text, "api = { ");
	memmove(p + 33, p + 8, strlen(p + 8) + 1);
	memcpy(p + 8, "listen = \"0.0.0.0:7444\"; ", 25);
	cr_assert_lt(load(text, &c, diag, sizeof(diag)), 0, "%s", text);
	cr_assert(strstr(diag, "api.listen and agents.listen are the same address"), "%s", diag);
}

Test(console_conf, listen_syntax)
{
	char host[64];
	uint16_t port;
	cr_assert_eq(console_parse_listen("127.0.0.1:8443", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "127.0.0.1");
	cr_assert_eq(port, 8443);
	cr_assert_eq(console_parse_listen("[2001:db8::1]:7444", host, sizeof(host), &port), 0);
	cr_assert_str_eq(host, "2001:db8::1");
	cr_assert_eq(port, 7444);
	const char *bad[] = {"",	 "127.0.0.1",	"127.0.0.1:0",	"127.0.0.1:65536",
			     "::1:7444", "[::1]7444",	"host.name:80", "1.2.3.4:-1",
			     ":80",	 "1.2.3.4:80x", "[::1]:",	"1.2.3.4: 80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_lt(console_parse_listen(bad[i], host, sizeof(host), &port), 0, "%s",
			     bad[i]);
}
