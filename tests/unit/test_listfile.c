/* Address list file parser: entries, comments, line numbers of bad lines, CRLF, files. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/listfile.h"

struct got {
	char text[1024];
	unsigned n;
	int fail_at; /* entry number whose add fails with -ENOMEM, 0 for never */
};

static int collect(const struct els_cidr *c, const char *file, unsigned line, void *arg)
{
	struct got *g = arg;
	char buf[ELS_ADDR_STRLEN];
	size_t len = strlen(g->text);

	if (++g->n == (unsigned)g->fail_at)
		return -ENOMEM;
	snprintf(g->text + len, sizeof(g->text) - len, "%s:%u=%s/%u ", file, line,
		 els_addr_str(&c->addr, c->family, buf), c->plen);
	return 0;
}

/* Feeds text split at '\n', as els_listfile_load would. */
static int feed_all(const char *text, struct els_diag *d, struct got *g)
{
	struct els_listfile lf;
	els_listfile_init(&lf, "list.txt", d, collect, g);
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) + 1 : strlen(p);
		els_listfile_feed(&lf, p, n);
		p += n;
	}
	return els_listfile_finish(&lf);
}

static char *all_msgs(const struct els_diag *d)
{
	static char out[8192];
	out[0] = '\0';
	for (unsigned i = 0; i < d->count; i++) {
		strncat(out, d->msgs[i], sizeof(out) - strlen(out) - 2);
		strcat(out, "\n");
	}
	return out;
}

Test(listfile, good_file_with_comments_and_blanks)
{
	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = feed_all("# blocklist\n"
			  "\n"
			  "198.51.100.0/24\n"
			  "   203.0.113.7   # a host\n"
			  "\t2001:db8::/32\t\n"
			  "#10.0.0.0/8\n"
			  "   \n"
			  "2001:db8::1\n"
			  "198.51.100.0/24\n" /* duplicate: fine here */
			  "0.0.0.0/0",	      /* no final newline */
			  &d, &g);
	cr_assert_eq(rc, 0, "%s", all_msgs(&d));
	cr_assert_eq(d.count, 0);
	cr_assert_str_eq(g.text, "list.txt:3=198.51.100.0/24 list.txt:4=203.0.113.7/32 "
				 "list.txt:5=2001:db8::/32 list.txt:8=2001:db8::1/128 "
				 "list.txt:9=198.51.100.0/24 list.txt:10=0.0.0.0/0 ");
	els_diag_free(&d);
}

Test(listfile, crlf_line_ends)
{
	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = feed_all("10.0.0.0/8\r\n# c\r\n\r\n10.1.2.3 # x\r\nfe80::/10\r\n", &d, &g);
	cr_assert_eq(rc, 0, "%s", all_msgs(&d));
	cr_assert_str_eq(g.text, "list.txt:1=10.0.0.0/8 list.txt:4=10.1.2.3/32 "
				 "list.txt:5=fe80::/10 ");
	els_diag_free(&d);
}

Test(listfile, every_bad_line_reported_with_its_number)
{
	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = feed_all("10.0.0.0/8\n"
			  "10.0.0.1/8\n" /* 2: host bits */
			  "# fine\n"
			  "300.1.1.1\n"	      /* 4 */
			  "10.0.0.0/33\n"     /* 5 */
			  "1.2.3.4 5.6.7.8\n" /* 6 */
			  "2001:db8::/129\n"  /* 7 */
			  "192.0.2.1\n",
			  &d, &g);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_eq(d.count, 5, "%s", all_msgs(&d));
	cr_assert_str_eq(d.msgs[0], "list.txt:2: bad entry: address has bits set "
				    "beyond the prefix length");
	cr_assert_str_eq(d.msgs[1], "list.txt:4: bad entry: not an IPv4 or IPv6 "
				    "address");
	cr_assert_str_eq(d.msgs[2], "list.txt:5: bad entry: IPv4 prefix length "
				    "above 32");
	cr_assert_str_eq(d.msgs[3], "list.txt:6: bad entry: expected one "
				    "address or CIDR per line");
	cr_assert_str_eq(d.msgs[4], "list.txt:7: bad entry: IPv6 prefix "
				    "length above 128");
	/* Good lines are still delivered: the caller throws the whole build away anyway. */
	cr_assert_str_eq(g.text, "list.txt:1=10.0.0.0/8 list.txt:8=192.0.2.1/32 ");
	els_diag_free(&d);
}

Test(listfile, messages_capped)
{
	struct els_diag d;
	struct got g = {0};
	struct els_listfile lf;
	els_diag_init(&d, NULL);
	els_listfile_init(&lf, "big.txt", &d, collect, &g);
	for (int i = 0; i < 50; i++)
		els_listfile_feed(&lf, "junk\n", 5);
	cr_assert_eq(els_listfile_finish(&lf), -EINVAL);
	cr_assert_eq(d.count, ELS_LISTFILE_MAX_MSGS + 1);
	cr_assert_str_eq(d.msgs[0], "big.txt:1: bad entry: not an IPv4 or IPv6 address");
	cr_assert_str_eq(d.msgs[ELS_LISTFILE_MAX_MSGS - 1],
			 "big.txt:20: bad entry: not an IPv4 or IPv6 address");
	cr_assert_str_eq(d.msgs[ELS_LISTFILE_MAX_MSGS], "big.txt: ... and 30 more bad lines");
	els_diag_free(&d);
}

Test(listfile, content_is_never_quoted)
{
	struct els_diag d;
	struct got g = {0};
	struct els_listfile lf;
	els_diag_init(&d, NULL);
	els_listfile_init(&lf, "bin", &d, collect, &g);
	const char nul[] = "10.0\0.0.1\n";
	els_listfile_feed(&lf, nul, sizeof(nul) - 1);
	els_listfile_feed(&lf, "\x1b[31mred\n", 9);
	char longline[200];
	memset(longline, '1', sizeof(longline));
	els_listfile_feed(&lf, longline, sizeof(longline));
	cr_assert_eq(els_listfile_finish(&lf), -EINVAL);
	cr_assert_eq(d.count, 3);
	/* Line numbers and reasons only: a list file may be a secret someone pointed at. */
	cr_assert_str_eq(d.msgs[0], "bin:1: bad entry: contains a NUL byte");
	cr_assert_str_eq(d.msgs[1], "bin:2: bad entry: not an IPv4 or IPv6 address");
	cr_assert_str_eq(d.msgs[2], "bin:3: bad entry: too long for an address or CIDR");
	cr_assert_eq(g.n, 0);
	els_diag_free(&d);
}

Test(listfile, add_failure_is_returned)
{
	struct els_diag d;
	struct got g = {.fail_at = 2};
	els_diag_init(&d, NULL);
	int rc = feed_all("10.0.0.1\n10.0.0.2\n10.0.0.3\n", &d, &g);
	cr_assert_eq(rc, -ENOMEM);
	cr_assert_eq(g.n, 2, "no more entries after the consumer failed");
	els_diag_free(&d);
}

Test(listfile, load_from_file)
{
	char path[] = "/tmp/els_listfile_XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	const char body[] = "# test\r\n198.18.0.0/15\r\nnope\r\n2001:db8::/48\n";
	cr_assert_eq(write(fd, body, sizeof(body) - 1), (ssize_t)sizeof(body) - 1);
	close(fd);

	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = els_listfile_load(path, &d, collect, &g);
	cr_assert_eq(rc, -EINVAL);
	cr_assert_eq(d.count, 1);
	char want[256];
	snprintf(want, sizeof(want), "%s:3: bad entry: not an IPv4 or IPv6 address", path);
	cr_assert_str_eq(d.msgs[0], want);
	cr_assert_eq(g.n, 2);
	els_diag_free(&d);
	unlink(path);
}

Test(listfile, missing_file)
{
	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = els_listfile_load("/nonexistent/els/list.txt", &d, collect, &g);
	cr_assert_eq(rc, -ENOENT);
	cr_assert_eq(d.count, 1);
	cr_assert_str_eq(
	    d.msgs[0],
	    "/nonexistent/els/list.txt: cannot open list file: No such file or directory");
	els_diag_free(&d);
}

Test(listfile, directory_is_an_error)
{
	struct els_diag d;
	struct got g = {0};
	els_diag_init(&d, NULL);
	int rc = els_listfile_load("/tmp", &d, collect, &g);
	cr_assert_lt(rc, 0);
	cr_assert_eq(d.count, 1);
	cr_assert(strstr(d.msgs[0], "/tmp: not a regular file"), "%s", d.msgs[0]);
	els_diag_free(&d);
}
