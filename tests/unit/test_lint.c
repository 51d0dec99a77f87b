/* Policy lint (handlers/header_filter_lint.c): each warning on a real config loaded by the
 * real loader, with its line; and what must not warn. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/lint.h"
#include "els/policy.h"

static char path[64];
static char *out;

/* Loads a chain of tracker + header_filter with these permits, lints it; returns the count
 * and leaves the text in `out`. */
static unsigned lint_permits(const char *permits)
{
	char text[4096];
	size_t len = 0;
	struct els_diag d;

	snprintf(text, sizeof(text),
		 "chain = [ \"tracker\", \"header_filter\" ];\n"
		 "header_filter = { permits = (\n%s\n); };\n",
		 permits);
	strcpy(path, "/tmp/els-test-lint-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, NULL, &d);
	for (unsigned i = 0; i < d.count; i++)
		cr_log_error("%s", d.msgs[i]);
	cr_assert_not_null(p);
	free(out);
	FILE *f = open_memstream(&out, &len);
	unsigned n = els_policy_lint(p, f);
	fclose(f);
	cr_log_info("%s", out);
	els_policy_free(p);
	els_diag_free(&d);
	unlink(path);
	return n;
}

/* Permits start on line 3 of the file. */
static bool warned(unsigned line, const char *needle)
{
	char prefix[96];
	snprintf(prefix, sizeof(prefix), "%s:%u: warning: ", path, line);
	for (const char *l = out; l && *l;) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		char buf[512];
		snprintf(buf, sizeof(buf), "%.*s", (int)n, l);
		if (!strncmp(buf, prefix, strlen(prefix)) && strstr(buf, needle))
			return true;
		l = nl ? nl + 1 : l + n;
	}
	return false;
}

Test(lint, example_config_is_clean)
{
	struct els_diag d;
	els_diag_init(&d, "x");
	struct els_policy *p = els_policy_load(ELS_SOURCE_DIR "/conf/elsd.conf", NULL, &d);
	cr_assert_not_null(p);
	FILE *f = fopen("/dev/null", "w");
	cr_assert_eq(els_policy_lint(p, f), 0);
	fclose(f);
	els_policy_free(p);
	els_diag_free(&d);
}

Test(lint, inbound_any_protocol)
{
	cr_assert_eq(lint_permits("{ id = \"all\"; dir = \"in\"; proto = \"any\"; }"), 1);
	cr_assert(warned(3, "permit 'all' admits every protocol and every port inbound"));
	/* outbound any is a choice, not an exposure */
	cr_assert_eq(lint_permits("{ id = \"out\"; dir = \"out\"; proto = \"any\"; }"), 0);
}

Test(lint, inbound_any_port)
{
	cr_assert_eq(lint_permits("{ id = \"t\"; dir = \"in\"; proto = \"udp\"; }"), 1);
	cr_assert(warned(3, "opens every local UDP port inbound to any address"));
	cr_assert_eq(lint_permits("{ id = \"t\"; dir = \"in\"; proto = \"tcp\"; "
				  "local_ports = [ 22 ]; remote = [ \"198.18.5.0/24\" ]; }"),
		     0);
}

Test(lint, no_id)
{
	cr_assert_eq(
	    lint_permits("{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; },\n"
			 "{ dir = \"out\"; proto = \"udp\"; remote_ports = [ 53 ]; }"),
	    1);
	cr_assert(warned(4, "permit 2 has no id"));
}

Test(lint, exact_duplicate_through_service_names)
{
	cr_assert_eq(
	    lint_permits(
		"{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443, 80 ]; },\n"
		"{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ \"http\", \"https\" "
		"]; }"),
	    1);
	cr_assert(warned(4, "permit 'b' matches exactly what permit 'a' (line 3) matches"));
}

Test(lint, shadowed_by_a_range)
{
	cr_assert_eq(
	    lint_permits("{ id = \"wide\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ "
			 "\"8000-8100\" ]; },\n"
			 "{ id = \"one\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8080 ];\n"
			 "  remote = [ \"198.18.0.0/24\" ]; }"),
	    1);
	cr_assert(warned(4, "permit 'one' never matches: the broader permit 'wide' (line 3)"));
}

Test(lint, not_shadowed)
{
	/* the earlier one is narrower in remotes, gated, expiring, or in another direction */
	cr_assert_eq(
	    lint_permits("{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ];\n"
			 "  remote = [ \"198.18.0.0/24\" ]; },\n"
			 "{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ]; }"),
	    0);
	cr_assert_eq(
	    lint_permits("{ id = \"g\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ];\n"
			 "  requires = \"tcp/443\"; },\n"
			 "{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 8443 ]; }"),
	    0);
	cr_assert_eq(
	    lint_permits("{ id = \"e\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ];\n"
			 "  expires = \"2099-01-01\"; },\n"
			 "{ id = \"b\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ]; }"),
	    0);
	cr_assert_eq(
	    lint_permits("{ id = \"o\"; dir = \"out\"; proto = \"tcp\"; local_ports = [ 22 ]; },\n"
			 "{ id = \"i\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 22 ]; }"),
	    0);
	/* ICMP types: echo-request does not cover echo-reply */
	cr_assert_eq(
	    lint_permits("{ id = \"p\"; dir = \"in\"; proto = \"icmp\"; icmp_types = [ 8 ]; },\n"
			 "{ id = \"q\"; dir = \"in\"; proto = \"icmp\"; icmp_types = [ 0 ]; }"),
	    0);
}

Test(lint, port_zero_is_not_covered_by_any_port)
{
	/* a permit without ports leaves port 0 out, so one naming 0 is not shadowed */
	unsigned n = lint_permits(
	    "{ id = \"any\"; dir = \"out\"; proto = \"udp\"; },\n"
	    "{ id = \"zero\"; dir = \"out\"; proto = \"udp\"; remote_ports = [ 0 ]; }");
	cr_assert_eq(n, 0);
}

Test(lint, glued_strings)
{
	cr_assert_eq(
	    lint_permits("{ id = \"a\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ 443 ];\n"
			 "  owner = \"web\" \"team\"; }"),
	    1);
	cr_assert(warned(4, "\"web\" \"team\" are two strings with no ','"));
}
