/* agent/cfgerr.c: libconfig's errors, translated; the texts come from real libconfig runs
 * (policy_* tests load real files through els_policy_load and libconfig). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/cfgerr.h"
#include "els/policy.h"

static struct els_cfgerr explain(const char *text, unsigned line, const char *err)
{
	struct els_cfgerr e;
	els_cfgerr_explain(text, strlen(text), line, err, "/nonexistent-dir", &e);
	cr_log_info("%u: %s", e.line, e.msg);
	return e;
}

Test(cfgerr, mixed_array_says_use_parentheses)
{
	struct els_cfgerr e = explain("a = 1;\nports = [ \"https\", 8443 ];\n", 2,
				      "mismatched element type in array");
	cr_assert_eq(e.line, 2);
	cr_assert(strstr(e.msg, "use") || strstr(e.msg, "with ( )"));
	cr_assert_not_null(strstr(e.msg, "( \"https\", 8443 )"));
	cr_assert_not_null(strstr(e.msg, "mixed values"));
}

Test(cfgerr, array_of_groups_says_groups)
{
	struct els_cfgerr e =
	    explain("permits = [ { id = \"a\"; } ];\n", 1, "mismatched element type in array");
	cr_assert_not_null(strstr(e.msg, "list of groups with ( )"));
}

Test(cfgerr, syntax_error_names_the_line_text)
{
	struct els_cfgerr e = explain("queues = \"0\";\ncopy_bytes = = 256;\n", 2, "syntax error");
	cr_assert_eq(e.line, 2);
	cr_assert_not_null(strstr(e.msg, "'copy_bytes = = 256;'"));
}

Test(cfgerr, unclosed_string_points_where_it_starts)
{
	/* libconfig reports the end of the file; the string began on line 2 */
	struct els_cfgerr e = explain("a = 1;\nb = \"open;\nc = 2;\nd = 3;\n", 5, "syntax error");
	cr_assert_eq(e.line, 2);
	cr_assert_not_null(strstr(e.msg, "closing '\"' is missing"));
}

Test(cfgerr, semicolon_in_array)
{
	struct els_cfgerr e =
	    explain("x = 1;\ndeny = [ \"198.18.0.1\"; \"198.18.0.2\" ];\n", 2, "syntax error");
	cr_assert_eq(e.line, 2);
	cr_assert_not_null(strstr(e.msg, "separated by ','"));
}

Test(cfgerr, mismatched_bracket)
{
	struct els_cfgerr e = explain("a = (\n 1,\n 2 ];\n", 3, "syntax error");
	cr_assert_eq(e.line, 3);
	cr_assert_not_null(strstr(e.msg, "']' here closes the '(' opened on line 1"));
}

Test(cfgerr, unclosed_group_at_end_of_file)
{
	struct els_cfgerr e = explain("a = 1;\ng = {\n  b = 2;\n", 4, "syntax error");
	cr_assert_eq(e.line, 2);
	cr_assert_not_null(strstr(e.msg, "a '}' is missing"));
}

Test(cfgerr, brackets_in_strings_and_comments_do_not_count)
{
	struct els_cfgerr e =
	    explain("# a ( comment\ns = \"[\"; // {\n/* ( */ t = = 1;\n", 3, "syntax error");
	cr_assert_eq(e.line, 3);
	cr_assert_not_null(strstr(e.msg, "t = = 1;"));
}

Test(cfgerr, include_names_the_file_and_errno)
{
	struct els_cfgerr e =
	    explain("a = 1;\n@include \"lists/extra.conf\"\n", 2, "cannot open include file");
	cr_assert_eq(e.line, 2);
	cr_assert_not_null(strstr(e.msg, "\"lists/extra.conf\""));
	cr_assert_not_null(strstr(e.msg, "/nonexistent-dir/lists/extra.conf"));
	cr_assert_not_null(strstr(e.msg, "No such file or directory"));
}

Test(cfgerr, unknown_text_passes_through)
{
	struct els_cfgerr e = explain("a = 1;\n", 1, "something new");
	cr_assert_str_eq(e.msg, "something new");
	els_cfgerr_explain(NULL, 0, 3, "syntax error", NULL, &e);
	cr_assert_eq(e.line, 3);
	cr_assert_not_null(strstr(e.msg, "syntax error"));
}

struct pair {
	unsigned n, line;
	char joined[64];
};

static void on_glued(void *arg, unsigned line, const char *a, size_t alen, const char *b,
		     size_t blen)
{
	struct pair *p = arg;
	p->n++;
	p->line = line;
	snprintf(p->joined, sizeof(p->joined), "%.*s|%.*s", (int)alen, a, (int)blen, b);
}

Test(cfgerr, glued_strings_found)
{
	const char *t = "a = [ \"x\", \"y\" ];\nports = [ \"https\"\n  \"8443\" ];\nid = \"ok\";\n";
	struct pair p = {0};
	cr_assert_eq(els_cfgerr_glued(t, strlen(t), on_glued, &p), 1);
	cr_assert_eq(p.line, 3);
	cr_assert_str_eq(p.joined, "https|8443");
}

Test(cfgerr, glued_strings_across_a_comment_and_escapes)
{
	const char *t = "id = \"a\\\"b\" # c\n \"\";\nx = \"p\"; y = \"q\";\n";
	struct pair p = {0};
	cr_assert_eq(els_cfgerr_glued(t, strlen(t), on_glued, &p), 1);
	cr_assert_str_eq(p.joined, "a\\\"b|");
	cr_assert_eq(p.line, 2);
}

/* Through the real loader and libconfig: what elsd -n prints. */
static char path[64];

static struct els_diag load(const char *text)
{
	struct els_diag d;
	strcpy(path, "/tmp/els-test-cfgerr-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	els_diag_init(&d, path);
	struct els_policy *p = els_policy_load(path, NULL, &d);
	cr_assert_null(p);
	for (unsigned i = 0; i < d.count; i++)
		cr_log_info("%s", d.msgs[i]);
	unlink(path);
	return d;
}

static bool has(const struct els_diag *d, unsigned line, const char *needle)
{
	char prefix[128];
	snprintf(prefix, sizeof(prefix), "%s:%u: ", path, line);
	for (unsigned i = 0; i < d->count; i++)
		if (!strncmp(d->msgs[i], prefix, strlen(prefix)) && strstr(d->msgs[i], needle))
			return true;
	return false;
}

Test(cfgerr, loader_mixed_array)
{
	struct els_diag d = load("chain = [ \"iplist\" ];\nx = [ \"https\", 8443 ];\n");
	cr_assert(has(&d, 2, "with ( )"));
	els_diag_free(&d);
}

Test(cfgerr, loader_missing_comma_between_ports)
{
	struct els_diag d = load("chain = [ \"tracker\", \"header_filter\" ];\n"
				 "header_filter = { permits = (\n"
				 "  { id = \"w\"; dir = \"in\"; proto = \"tcp\"; local_ports = [ "
				 "\"https\" \"8443\" ]; }\n"
				 "); };\n");
	cr_assert(has(&d, 3, "https8443"));
	cr_assert(has(&d, 3, "no ',' between them"));
	els_diag_free(&d);
}

Test(cfgerr, loader_missing_include)
{
	struct els_diag d = load("@include \"no-such-elsd-part.conf\"\nchain = [ \"iplist\" ];\n");
	cr_assert(has(&d, 1, "\"no-such-elsd-part.conf\" (/tmp/no-such-elsd-part.conf): No such"));
	els_diag_free(&d);
}

Test(cfgerr, loader_unclosed_string)
{
	struct els_diag d = load("chain = [ \"iplist\" ];\nagent_id = \"web;\nqueues = \"0\";\n");
	cr_assert(has(&d, 2, "closing '\"' is missing"));
	els_diag_free(&d);
}
