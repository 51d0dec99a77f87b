/* The management trust boundary, unit by unit: list file names a console may use, the safe
 * opener (symlink, FIFO, device, size), policy documents (agent settings, @include, NUL, size),
 * and the policy checker's result format. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "check_result.h"
#include "els/listfile.h"
#include "els/policy.h"

static char dir[] = "/tmp/els_boundary_XXXXXX";
static int dfd = -1;

static void setup(void)
{
	strcpy(dir, "/tmp/els_boundary_XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_geq(dfd, 0);
}

static void teardown(void)
{
	char cmd[128];
	close(dfd);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static void put(const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static int count(const struct els_cidr *c, const char *f, unsigned l, void *arg)
{
	(void)c, (void)f, (void)l;
	(*(unsigned *)arg)++;
	return 0;
}

static char *all(const struct els_diag *d)
{
	static char buf[8192];
	buf[0] = 0;
	for (unsigned i = 0; i < d->count; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s\n", d->msgs[i]);
	return buf;
}

TestSuite(boundary, .init = setup, .fini = teardown);

Test(boundary, list_file_names)
{
	const char *why;
	cr_assert_eq(els_listfile_name_check("deny.txt", &why), 0);
	cr_assert_eq(els_listfile_name_check("deny-managed_2.list", NULL), 0);
	static const char *const bad[] = {
	    "",		"..",	   ".",	  "../x",      "/etc/shadow", "a/b",
	    "sub/../x", ".hidden", "x\n", "x\x1b[31m", "./deny.txt",  NULL};
	for (const char *const *b = bad; *b; b++) {
		why = NULL;
		cr_assert_eq(els_listfile_name_check(*b, &why), -EINVAL, "'%s' accepted", *b);
		cr_assert_not_null(why);
	}
	char longname[ELS_LISTFILE_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	cr_assert_eq(els_listfile_name_check(longname, NULL), -EINVAL);
}

Test(boundary, load_at_refuses_what_is_not_a_regular_file)
{
	struct els_diag d;
	unsigned n = 0;
	put("target", "SECRET 10.0.0.1\n");
	cr_assert_eq(symlinkat("target", dfd, "link"), 0);
	cr_assert_eq(mkfifoat(dfd, "fifo", 0600), 0);
	cr_assert_eq(mkdirat(dfd, "sub", 0700), 0);
	els_diag_init(&d, NULL);
	cr_assert_eq(els_listfile_load_at(dfd, "link", "link", 1024, &d, count, &n), -ELOOP);
	cr_assert(strstr(all(&d), "symbolic link"), "%s", all(&d));
	/* A FIFO with no writer: O_NONBLOCK opens it at once, fstat refuses it. */
	cr_assert_eq(els_listfile_load_at(dfd, "fifo", "fifo", 1024, &d, count, &n), -EINVAL);
	cr_assert_eq(els_listfile_load_at(dfd, "sub", "sub", 1024, &d, count, &n), -EINVAL);
	if (mknodat(dfd, "zero", S_IFCHR | 0600, makedev(1, 5)) == 0)
		cr_assert_eq(els_listfile_load_at(dfd, "zero", "zero", 1024, &d, count, &n),
			     -EINVAL);
	cr_assert_eq(n, 0);
	cr_assert_null(strstr(all(&d), "SECRET"));
	els_diag_free(&d);
}

Test(boundary, load_at_caps_the_size)
{
	struct els_diag d;
	unsigned n = 0;
	put("big", "10.0.0.1\n10.0.0.2\n10.0.0.3\n");
	els_diag_init(&d, NULL);
	cr_assert_eq(els_listfile_load_at(dfd, "big", "big", 10, &d, count, &n), -EFBIG);
	cr_assert(strstr(all(&d), "larger than 10 bytes"), "%s", all(&d));
	cr_assert_eq(els_listfile_load_at(dfd, "big", "big", 1024, &d, count, &n), 0);
	cr_assert_eq(n, 3);
	els_diag_free(&d);
}

Test(boundary, long_lines_use_no_memory_and_keep_line_numbers)
{
	struct els_diag d;
	unsigned n = 0;
	size_t len = 100000;
	char *text = malloc(len + 64);
	memset(text, 'x', len);
	strcpy(text + len, "\n10.0.0.1\nbad\n");
	put("long", text);
	free(text);
	els_diag_init(&d, NULL);
	cr_assert_eq(els_listfile_load_at(dfd, "long", "long", 1 << 20, &d, count, &n), -EINVAL);
	cr_assert_eq(n, 1);
	cr_assert_eq(d.count, 2, "%s", all(&d));
	cr_assert_str_eq(d.msgs[0], "long:1: bad entry: too long for an address or CIDR");
	cr_assert_str_eq(d.msgs[1], "long:3: bad entry: not an IPv4 or IPv6 address");
	els_diag_free(&d);
}

static struct els_policy *doc(const char *text, struct els_diag *d)
{
	els_diag_init(d, NULL);
	return els_policy_load_document(text, strlen(text), "<policy>", dfd, dir, "/dev/null", d);
}

Test(boundary, document_with_only_policy_is_accepted)
{
	struct els_diag d;
	put("deny.txt", "198.51.100.0/24\n");
	struct els_policy *p = doc("chain = [ \"iplist\" ];\n"
				   "iplist = { deny_files = [ \"deny.txt\" ]; };\n",
				   &d);
	cr_assert_not_null(p, "%s", all(&d));
	cr_assert_eq(p->nlinks, 1);
	cr_assert_eq(strlen(p->hash), 64);
	els_policy_free(p);
	els_diag_free(&d);
}

Test(boundary, agent_settings_are_refused_by_name_and_line)
{
	struct els_diag d;
	struct els_policy *p = doc("chain = [ \"iplist\" ];\n"
				   "management = {\n"
				   "  sweep_command = [ \"/bin/sh\" ];\n"
				   "};\n"
				   "user = \"root\";\n"
				   "monitor = { path = \"/tmp/x\"; };\n"
				   "queues = 3;\n"
				   "policy_dir = \"/\";\n"
				   "console = { address = \"evil.example:7444\"; };\n",
				   &d);
	cr_assert_null(p);
	const char *m = all(&d);
	cr_assert(strstr(m, "<policy>:2: 'management' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:3: 'management.sweep_command' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:5: 'user' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:6: 'monitor' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:7: 'queues' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:8: 'policy_dir' is an agent setting"), "%s", m);
	/* Which console the agent dials and trusts is the host's decision alone. */
	cr_assert(strstr(m, "<policy>:9: 'console' is an agent setting"), "%s", m);
	cr_assert(strstr(m, "<policy>:9: 'console.address' is an agent setting"), "%s", m);
	els_diag_free(&d);
}

Test(boundary, include_nul_size_and_paths_are_refused)
{
	struct els_diag d;
	put("secret", "TOPSECRET\n");
	cr_assert_null(doc("  @include \"secret\"\nchain = [ \"iplist\" ];\n", &d));
	cr_assert(strstr(all(&d), "<policy>:1: directives such as @include are refused"), "%s",
		  all(&d));
	els_diag_free(&d);

	els_diag_init(&d, NULL);
	const char nul[] = "chain = [ \"iplist\" ];\n\0x";
	cr_assert_null(
	    els_policy_load_document(nul, sizeof(nul) - 1, "<policy>", dfd, dir, "/dev/null", &d));
	cr_assert(strstr(all(&d), "NUL byte"), "%s", all(&d));
	els_diag_free(&d);

	els_diag_init(&d, NULL);
	char *big = malloc(ELS_POLICY_DOC_MAX + 2);
	memset(big, '#', ELS_POLICY_DOC_MAX + 1);
	big[ELS_POLICY_DOC_MAX + 1] = 0;
	cr_assert_null(els_policy_load_document(big, ELS_POLICY_DOC_MAX + 1, "<policy>", dfd, dir,
						"/dev/null", &d));
	cr_assert(strstr(all(&d), "more than the 1048576"), "%s", all(&d));
	free(big);
	els_diag_free(&d);

	static const char *const names[] = {"../secret", "/etc/shadow", "secret", ".x", NULL};
	for (const char *const *n = names; *n; n++) {
		char text[256];
		snprintf(text, sizeof(text),
			 "chain = [ \"iplist\" ];\niplist = { deny_files = [ \"%s\" ]; };\n", *n);
		cr_assert_null(doc(text, &d), "%s accepted", *n);
		cr_assert_null(strstr(all(&d), "TOPSECRET"), "%s", all(&d));
		els_diag_free(&d);
	}
}

Test(boundary, check_result_round_trip)
{
	struct els_diag d;
	struct els_check_result *r = malloc(sizeof(*r));
	char *buf = malloc(ELS_CHECK_MAX_OUT);
	els_diag_init(&d, "<policy>");
	els_diag_file(&d, "<policy>", 3, "'user' is an agent setting\x1b[31m");
	els_diag_file(&d, NULL, 0, "second");
	size_t n = els_check_result_format(buf, NULL, &d);
	cr_assert_eq(els_check_result_parse(buf, n, r), 0, "%.*s", (int)n, buf);
	cr_assert(!r->ok);
	cr_assert_eq(r->errors, 2);
	cr_assert_eq(r->nmsgs, 2);
	cr_assert_str_eq(r->msgs[0], "<policy>:3: 'user' is an agent setting?[31m");
	els_diag_free(&d);

	put("deny.txt", "");
	struct els_policy *p = doc("chain = [ \"iplist\" ];\n", &d);
	cr_assert_not_null(p);
	n = els_check_result_format(buf, p, &d);
	cr_assert_eq(els_check_result_parse(buf, n, r), 0, "%.*s", (int)n, buf);
	cr_assert(r->ok);
	cr_assert_str_eq(r->sha256, p->hash);
	cr_assert_eq(r->nchain, 1);
	cr_assert_str_eq(r->chain[0], "iplist");
	els_policy_free(p);
	els_diag_free(&d);
	free(buf);
	free(r);
}

Test(boundary, check_result_malformed_is_refused)
{
	struct els_check_result *r = malloc(sizeof(*r));
	static const char *const bad[] = {
	    "",
	    "els-check 1\n",
	    "els-check 2\nfail 1\n",
	    "els-check 1\nok abc iplist\n",
	    "els-check 1\nmsg x\nok " /* ok after messages */
	    "0000000000000000000000000000000000000000000000000000000000000000\n",
	    "els-check 1\nfail 0\n",
	    "els-check 1\nfail 1\nfail 1\n",
	    "els-check 1\nfail 1",
	    "els-check 1\nmsg \x01\nfail 1\n",
	    "els-check 1\nbogus\nfail 1\n",
	    "els-check 1\nmsg a\nmsg b\nfail 1\n", /* fewer errors than messages */
	    NULL};
	for (const char *const *b = bad; *b; b++)
		cr_assert_eq(els_check_result_parse(*b, strlen(*b), r), -EINVAL, "accepted: %s",
			     *b);
	free(r);
}
