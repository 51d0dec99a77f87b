/* els-console's browser pages, the parts without a server (console/web/web_util.c): the times a
 * query string may carry, and a traffic table as CSV (quoting, formula guard). */
#include <criterion/criterion.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

static time_t t_of(const char *s)
{
	time_t t = 0;
	cr_assert_eq(web_parse_time(s, &t), 0, "%s", s);
	return t;
}

Test(web_time, accepted_forms)
{
	cr_assert_eq(t_of("1970-01-01"), 0);
	cr_assert_eq(t_of("2026-12-05T01:00:00Z"), 1796432400);
	cr_assert_eq(t_of("2026-12-05T01:00Z"), 1796432400);
	cr_assert_eq(t_of("2026-12-05 01:00:00"), 1796432400);
	cr_assert_eq(t_of("2026-12-05T01:00:00.123456Z"), 1796432400);
	cr_assert_eq(t_of("2026-12-05T03:00:00+02:00"), 1796432400);
	cr_assert_eq(t_of("2026-12-04T19:30:00-0530"), 1796432400);
	cr_assert_eq(t_of("2024-02-29"), 1709164800);
	char buf[32];
	web_format_time(1796432400, buf, sizeof(buf));
	cr_assert_str_eq(buf, "2026-12-05T01:00:00Z");
}

Test(web_time, refused)
{
	const char *bad[] = {"",
			     "2026",
			     "2026-12-5",
			     "2026-13-01",
			     "2026-02-29",
			     "2026-12-05T",
			     "2026-12-05T25:00",
			     "2026-12-05T01:60",
			     "2026-12-05T01:00:00X",
			     "2026-12-05T01:00:00.Z",
			     "2026-12-05T01:00+2",
			     "1969-12-31",
			     "2026-12-05'; DROP TABLE x; --",
			     "now()",
			     "1970-01-01T00:00:00+01:00"};
	time_t t;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(web_parse_time(bad[i], &t), -EINVAL, "%s", bad[i]);
	cr_assert_eq(web_parse_time(NULL, &t), -EINVAL);
}

Test(web_text, plain)
{
	cr_assert(web_plain_text("web-01", 255));
	cr_assert(web_plain_text("<img src=x>\"'\\", 255));
	cr_assert_not(web_plain_text("", 255));
	cr_assert_not(web_plain_text("a\nb", 255));
	cr_assert_not(web_plain_text("a\x7f", 255));
	cr_assert_not(web_plain_text("abcd", 3));
}

Test(web_csv, quoting_and_formulas)
{
	json_t *t =
	    json_loads("{\"columns\":[\"src\",\"port\",\"packets\",\"note\"],\"rows\":["
		       "{\"src\":\"198.18.0.1\",\"port\":22,\"packets\":5,\"note\":null},"
		       "{\"src\":\"a,b\",\"port\":23,\"packets\":1.5,\"note\":\"say \\\"hi\\\"\"},"
		       "{\"src\":\"=HYPERLINK(\\\"x\\\")\",\"port\":-1,\"note\":\"+1\\nline\"}]}",
		       0, NULL);
	cr_assert_not_null(t);
	size_t len = 0;
	char *csv = web_table_csv(t, &len);
	cr_assert_not_null(csv);
	cr_assert_eq(strlen(csv), len);
	cr_assert_str_eq(csv, "src,port,packets,note\r\n"
			      "198.18.0.1,22,5,\r\n"
			      "\"a,b\",23,1.5,\"say \"\"hi\"\"\"\r\n"
			      "\"'=HYPERLINK(\"\"x\"\")\",-1,,\"'+1\nline\"\r\n");
	free(csv);
	json_decref(t);
}

Test(web_csv, wrong_shapes)
{
	const char *bad[] = {"{}",
			     "{\"columns\":[],\"rows\":[]}",
			     "{\"columns\":[1],\"rows\":[]}",
			     "{\"columns\":[\"a\"],\"rows\":[1]}",
			     "{\"columns\":[\"a\"]}",
			     "[]"};
	size_t len;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *t = json_loads(bad[i], JSON_DECODE_ANY, NULL);
		cr_assert_null(web_table_csv(t, &len), "%s", bad[i]);
		json_decref(t);
	}
	cr_assert_null(web_table_csv(NULL, &len));
}
