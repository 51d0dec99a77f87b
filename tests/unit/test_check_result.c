/* agent/control/check_result.c: what the confined policy-check child tells elsd, written and
 * read back, and the strict reading that makes anything malformed a failed check. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "check_result.h"
#include "els/handler.h"

static char buf[ELS_CHECK_MAX_OUT];

static int parse(const char *s, struct els_check_result *r)
{
	return els_check_result_parse(s, strlen(s), r);
}

Test(check_result, a_valid_policy_round_trips)
{
	static struct els_policy p;
	static struct els_check_result r;
	size_t n;

	memset(p.hash, 'a', 64);
	p.links[0].h = els_handler_find("iplist");
	p.links[1].h = els_handler_find("header_filter");
	p.nlinks = 2;
	n = els_check_result_format(buf, &p, NULL);
	cr_assert_eq(els_check_result_parse(buf, n, &r), 0, "%s", buf);
	cr_assert(r.ok);
	cr_assert_str_eq(r.sha256, p.hash);
	cr_assert_eq(r.nchain, 2);
	cr_assert_str_eq(r.chain[0], "iplist");
	cr_assert_str_eq(r.chain[1], "header_filter");
}

/* The child's messages come from the document a console sent: whatever bytes they hold, what
 * the parent reads back is printable, and the count of errors survives the cap on lines. */
Test(check_result, errors_round_trip_printable_and_counted)
{
	static struct els_check_result r;
	struct els_diag d;
	size_t n;

	els_diag_init(&d, "<policy>");
	els_diag_file(&d, "<policy>", 3, "unknown handler '\x1b[31mred'");
	for (unsigned i = 0; i < ELS_CHECK_MAX_MSGS + 5; i++)
		els_diag_file(&d, "<policy>", 10 + i, "error %u", i);
	n = els_check_result_format(buf, NULL, &d);
	cr_assert_eq(els_check_result_parse(buf, n, &r), 0, "%s", buf);
	cr_assert_not(r.ok);
	cr_assert_eq(r.nmsgs, ELS_CHECK_MAX_MSGS);
	cr_assert_eq(r.errors, ELS_CHECK_MAX_MSGS + 6);
	cr_assert_str_eq(r.msgs[0], "<policy>:3: unknown handler '?[31mred'");
	els_diag_free(&d);
}

Test(check_result, no_message_still_fails)
{
	static struct els_check_result r;
	struct els_diag d;
	size_t n;

	els_diag_init(&d, "<policy>");
	n = els_check_result_format(buf, NULL, &d);
	cr_assert_eq(els_check_result_parse(buf, n, &r), 0);
	cr_assert_not(r.ok);
	cr_assert_eq(r.errors, 1);
}

/* A child that was subverted, or cut short, is never read as a valid policy. */
Test(check_result, anything_malformed_is_refused)
{
	static struct els_check_result r;
	char hex[65], line[256];
	static const char *const bad[] = {
	    "",					   /* nothing: the child died */
	    "els-check 1\n",			   /* no verdict */
	    "els-check 2\nfail 1\n",		   /* another version */
	    "els-check 1\nfail 1",		   /* no final newline */
	    "els-check 1\nfail 1\nok x\n",	   /* something after the verdict */
	    "els-check 1\nfail 0\n",		   /* a failure with no error */
	    "els-check 1\nfail -1\n",		   /* ... or a negative count */
	    "els-check 1\nmsg a\nmsg b\nfail 1\n", /* fewer errors than messages */
	    "els-check 1\nok 1234\n",		   /* a short hash */
	    "els-check 1\nmsg x\tz\nfail 1\n",	   /* a control character */
	    "els-check 1\nwarn x\nfail 1\n",	   /* an unknown line */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(parse(bad[i], &r), -EINVAL, "accepted: %s", bad[i]);
	memset(hex, 'f', 64);
	hex[64] = 0;
	snprintf(line, sizeof(line), "els-check 1\nmsg x\nok %s iplist\n", hex);
	cr_expect_eq(parse(line, &r), -EINVAL, "a valid policy with error messages");
	snprintf(line, sizeof(line), "els-check 1\nok %s  iplist\n", hex);
	cr_expect_eq(parse(line, &r), -EINVAL, "an empty handler name");
	hex[0] = 'F';
	snprintf(line, sizeof(line), "els-check 1\nok %s iplist\n", hex);
	cr_expect_eq(parse(line, &r), -EINVAL, "an upper-case hash");
	hex[0] = 'f';
	snprintf(line, sizeof(line), "els-check 1\nok %s iplist\n", hex);
	cr_expect_eq(parse(line, &r), 0);
	cr_expect(r.ok);
}
