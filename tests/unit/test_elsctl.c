/* elsctl's pure logic: agent addresses, fleet files, framing, error and table output.
 * The console is a program, not part of els_core, so its files are compiled in here. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../tools/elsctl/transport/endpoint.c"
#include "../../tools/elsctl/output.c"
#include "../../tools/elsctl/transport/wire.c"

static struct ctl_endpoint ep;
static const char *why;

Test(endpoint, host_and_port)
{
	cr_assert_eq(ctl_endpoint_parse("web1.example.net:7443", "1", &ep, &why), 0);
	cr_assert_str_eq(ep.host, "web1.example.net");
	cr_assert_str_eq(ep.port, "7443");
	cr_assert_str_eq(ep.label, "web1.example.net:7443");
	cr_assert(!ep.is_ip);
}

Test(endpoint, ipv4_is_ip)
{
	cr_assert_eq(ctl_endpoint_parse("198.18.0.2:9", "1", &ep, &why), 0);
	cr_assert(ep.is_ip);
	cr_assert_str_eq(ep.host, "198.18.0.2");
}

Test(endpoint, bracketed_ipv6)
{
	cr_assert_eq(ctl_endpoint_parse("[2001:db8::1]:7443", "1", &ep, &why), 0);
	cr_assert(ep.is_ip);
	cr_assert_str_eq(ep.host, "2001:db8::1");
	cr_assert_str_eq(ep.label, "[2001:db8::1]:7443");
}

Test(endpoint, default_port)
{
	cr_assert_eq(ctl_endpoint_parse("web1", "7443", &ep, &why), 0);
	cr_assert_str_eq(ep.port, "7443");
	cr_assert_eq(ctl_endpoint_parse("2001:db8::1", "7443", &ep, &why), 0);
	cr_assert(ep.is_ip);
	cr_assert_str_eq(ep.port, "7443");
	cr_assert_eq(ctl_endpoint_parse("web1", NULL, &ep, &why), -EINVAL);
}

Test(endpoint, rejects)
{
	static const char *const bad[] = {
	    "web1:0", "web1:65536", "web1:",   ":7443",	  "web1:74x3", "[2001:db8::1", "[web1]:1",
	    "-web:1", "a..b:1",	    "web_1:1", "web1.:1", "[::1]x",    "a b:1",	       "web-.x:1",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(ctl_endpoint_parse(bad[i], "7443", &ep, &why), -EINVAL, "%s accepted",
			     bad[i]);
}

Test(fleet, comments_blank_lines_and_order)
{
	struct ctl_endpoint *v = NULL;
	size_t n = 0;
	char err[256];

	cr_assert_eq(ctl_fleet_parse("f",
				     "# web servers\n\nweb1:7443\n  web2:7444   # second\n"
				     "\t198.18.0.2\r\n[::1]:9\n",
				     "7443", &v, &n, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(v[0].label, "web1:7443");
	cr_assert_str_eq(v[1].label, "web2:7444");
	cr_assert_str_eq(v[2].label, "198.18.0.2:7443");
	cr_assert_str_eq(v[3].label, "[::1]:9");
	free(v);
}

Test(fleet, errors_name_file_and_line)
{
	struct ctl_endpoint *v = NULL;
	size_t n = 0;
	char err[256];

	cr_assert_eq(
	    ctl_fleet_parse("fleet.txt", "web1:1\nweb2:x\n", "7443", &v, &n, err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "fleet.txt:2: 'web2:x'"), "%s", err);
	cr_assert_eq(ctl_fleet_parse("f", "web1:1 web2:1\n", "7443", &v, &n, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "f:1: one HOST:PORT per line"), "%s", err);
	cr_assert_eq(
	    ctl_fleet_parse("f", "web1:1\n# x\nweb1:1\n", "7443", &v, &n, err, sizeof(err)),
	    -EINVAL);
	cr_assert(strstr(err, "f:3: web1:1 is listed twice"), "%s", err);
	cr_assert_eq(ctl_fleet_parse("f", "# nothing\n\n", "7443", &v, &n, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "no agents"), "%s", err);
}

Test(fleet, file_read)
{
	char path[] = "/tmp/test_elsctl_fleetXXXXXX", err[256];
	int fd = mkstemp(path);
	struct ctl_endpoint *v = NULL;
	size_t n = 0;

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, "a:1\nb:2", 7), 7);
	close(fd);
	cr_assert_eq(ctl_fleet_file_read(path, "7443", &v, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(v[1].label, "b:2");
	free(v);
	unlink(path);
	cr_assert_lt(ctl_fleet_file_read(path, "7443", &v, &n, err, sizeof(err)), 0);
	cr_assert(strstr(err, "No such file"), "%s", err);
}

Test(frame, encode_is_big_endian_length_then_json)
{
	json_t *m = json_pack("{s:i}", "v", 1);
	unsigned char *buf = NULL;
	size_t len = 0;
	char err[128];

	cr_assert_eq(ctl_frame_encode(m, &buf, &len, err, sizeof(err)), 0);
	cr_assert_eq(len, 4 + strlen("{\"v\":1}"));
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[3], 7);
	cr_assert_eq(memcmp(buf + 4, "{\"v\":1}", 7), 0);
	cr_assert_eq(els_mgmt_frame_get_len(buf), 7);
	free(buf);
	json_decref(m);
}

Test(frame, body_length_limits)
{
	const unsigned char zero[4] = {0, 0, 0, 0}, max[4] = {1, 0, 0, 0}, over[4] = {1, 0, 0, 1},
			    huge[4] = {0xff, 0xff, 0xff, 0xff};

	cr_assert_eq(els_mgmt_frame_get_len(zero), -EMSGSIZE);
	cr_assert_eq(els_mgmt_frame_get_len(max), 16777216);
	cr_assert_eq(els_mgmt_frame_get_len(over), -EMSGSIZE);
	cr_assert_eq(els_mgmt_frame_get_len(huge), -EMSGSIZE);
}

/* The --since/--until grammar is lib/query/query.c's, tested in test_query.c. */

Test(output, durations)
{
	char b[32];

	ctl_fmt_duration(0.25, b, sizeof(b));
	cr_assert_str_eq(b, "250ms");
	ctl_fmt_duration(59, b, sizeof(b));
	cr_assert_str_eq(b, "59s");
	ctl_fmt_duration(3 * 3600 + 12 * 60 + 5, b, sizeof(b));
	cr_assert_str_eq(b, "3h12m");
	ctl_fmt_duration(2 * 86400 + 3600, b, sizeof(b));
	cr_assert_str_eq(b, "2d01h");
}

static char *capture(void (*fn)(FILE *, void *), void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(f, arg);
	fclose(f);
	return buf;
}

static void print_err(FILE *f, void *arg)
{
	ctl_print_error("web1:7443", arg, "new.conf", f);
}

Test(output, policy_errors_name_the_local_file)
{
	json_t *e =
	    json_loads("{\"code\":\"invalid_policy\",\"message\":\"policy has 2 errors\","
		       "\"details\":[{\"file\":\"<policy>\",\"line\":12,\"message\":\"bad\"},"
		       "{\"file\":\"/etc/elsd/deny.txt\",\"line\":null,\"message\":\"gone\"}]}",
		       0, NULL);
	char *out = capture(print_err, e), line[256];

	cr_assert_str_eq(out, "elsctl: web1:7443: invalid_policy: policy has 2 errors\n"
			      "  new.conf:12: bad\n"
			      "  /etc/elsd/deny.txt: gone\n");
	ctl_error_line(e, "new.conf", line, sizeof(line));
	cr_assert_str_eq(line, "invalid_policy: policy has 2 errors (first: new.conf:12: bad)");
	free(out);
	json_decref(e);
}

Test(output, forbidden_line)
{
	json_t *e =
	    json_loads("{\"code\":\"forbidden\",\"message\":\"bob (role auditor) may not run "
		       "policy.apply: it needs role admin\",\"details\":[]}",
		       0, NULL);
	char line[256];

	ctl_error_line(e, NULL, line, sizeof(line));
	cr_assert_str_eq(
	    line, "forbidden: bob (role auditor) may not run policy.apply: it needs role admin");
	json_decref(e);
}

static void print_table(FILE *f, void *arg)
{
	static const char *const hdr[] = {"A", "LONGER", "C"};
	static const char *const r1[] = {"wide-cell", "x", "last"};
	static const char *const r2[] = {"y", NULL, "z"};
	struct ctl_table *t = ctl_table_new(3, hdr);

	(void)arg;
	ctl_table_add(t, r1);
	ctl_table_add(t, r2);
	ctl_table_print(t, f);
	ctl_table_free(t);
}

Test(output, table_aligns_columns)
{
	char *out = capture(print_table, NULL);

	cr_assert_str_eq(out, "A          LONGER  C\n"
			      "wide-cell  x       last\n"
			      "y          -       z\n");
	free(out);
}

Test(output, json_text)
{
	char b[64];
	json_t *v =
	    json_pack("{s:n, s:I, s:b, s:s}", "n", "i", (json_int_t)1 << 40, "b", 1, "s", "x");

	cr_assert_str_eq(ctl_json_text(json_object_get(v, "n"), b, sizeof(b)), "-");
	cr_assert_str_eq(ctl_json_text(json_object_get(v, "missing"), b, sizeof(b)), "-");
	cr_assert_str_eq(ctl_json_text(json_object_get(v, "i"), b, sizeof(b)), "1099511627776");
	cr_assert_str_eq(ctl_json_text(json_object_get(v, "b"), b, sizeof(b)), "yes");
	cr_assert_str_eq(ctl_json_text(json_object_get(v, "s"), b, sizeof(b)), "x");
	json_decref(v);
}

Test(output, agent_strings_are_made_terminal_safe)
{
	json_t *r = json_pack("{s:s, s:[s], s:{s:s}}", "id", "e\x1b[2Jvil", "list",
			      "a\x07"
			      "b",
			      "nested", "text", "line 1\n\tline 2\x1b]0;t\x07");

	ctl_json_termsafe(r);
	cr_assert_str_eq(json_string_value(json_object_get(r, "id")), "e?vil");
	cr_assert_str_eq(json_string_value(json_array_get(json_object_get(r, "list"), 0)), "a?b");
	cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "nested"), "text")),
			 "line 1\n\tline 2?");
	json_decref(r);
}

static void print_evil_table(FILE *f, void *arg)
{
	static const char *const hdr[] = {"A", "B"};
	const char *row[] = {"x\ny", "z\x1b[31m"};
	struct ctl_table *t = ctl_table_new(2, hdr);

	(void)arg;
	ctl_table_add(t, row);
	ctl_table_print(t, f);
	ctl_table_free(t);
}

Test(output, table_cells_are_one_line_without_escapes)
{
	char *out = capture(print_evil_table, NULL);

	cr_assert_str_eq(out, "A    B\nx?y  z?\n");
	free(out);
}
