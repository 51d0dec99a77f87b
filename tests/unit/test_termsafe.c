/* lib/termsafe.c: untrusted text made safe for a terminal. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "els/termsafe.h"

static void expect(const char *in, size_t len, bool keep, const char *want)
{
	char *got = els_termsafe(in, len, keep);

	cr_assert_not_null(got);
	cr_expect_str_eq(got, want, "input of %zu bytes", len);
	cr_expect_eq(els_termsafe_clean(in, len, keep), strcmp(in, want) == 0 && len == strlen(in));
	free(got);
}
#define EXPECT(in, keep, want) expect(in, sizeof(in) - 1, keep, want)

Test(termsafe, plain_text_and_utf8_pass_unchanged)
{
	EXPECT("web1 https-in 198.18.0.1", false, "web1 https-in 198.18.0.1");
	EXPECT("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", false,
	       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
}

Test(termsafe, csi_sequences_are_one_question_mark)
{
	EXPECT("e\x1b[2Jvil", false, "e?vil");
	EXPECT("\x1b[1;31mred\x1b[0m", false, "?red?");
	EXPECT("a\x1b[", false, "a?"); /* cut short at the end */
}

Test(termsafe, osc_and_dcs_strings_are_removed_whole)
{
	EXPECT("x\x1b]0;owned title\x07y", false, "x?y");
	EXPECT("x\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\y", false, "x?link?y");
	EXPECT("x\x1bPq#0;2;0;0;0\x1b\\y", false, "x?y");
	EXPECT("x\x1b]0;never ends", false, "x?");
}

Test(termsafe, c1_controls_in_utf8_and_raw)
{
	EXPECT("a\xc2\x9b"
	       "2Jb",
	       false, "a?b"); /* C1 CSI */
	EXPECT("a\xc2\x9d"
	       "0;t\x07"
	       "b",
	       false, "a?b"); /* C1 OSC */
	EXPECT("a\xc2\x85"
	       "b",
	       false, "a?b"); /* NEL */
	EXPECT("a\x9b"
	       "2Jb",
	       false, "a?2Jb"); /* a raw byte: invalid UTF-8 */
}

Test(termsafe, c0_del_and_invalid_bytes)
{
	EXPECT("ok\rFAKE", false, "ok?FAKE");
	EXPECT("a\x7f"
	       "b\x08"
	       "c",
	       false, "a?b?c");
	EXPECT("\xc0\xaf\xed\xa0\x80", false, "?????"); /* overlong '/', a surrogate */
	expect("a\0b", 3, false, "a?b");
}

Test(termsafe, newlines_and_tabs_only_when_asked)
{
	EXPECT("line 1\n\tline 2\n", true, "line 1\n\tline 2\n");
	EXPECT("line 1\n\tline 2", false, "line 1??line 2");
	EXPECT("a\r\n", true, "a?\n");
}
