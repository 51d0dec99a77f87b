/* els_read_file_at: the one reader of small files (policy documents, list files, certificates,
 * CRLs). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/readfile.h"

static char dir[] = "/tmp/els-readfile-XXXXXX";
static int dfd = -1;

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	cr_assert_geq(dfd, 0);
}

static void teardown(void)
{
	unlinkat(dfd, "f", 0);
	unlinkat(dfd, "link", 0);
	unlinkat(dfd, "fifo", 0);
	close(dfd);
	rmdir(dir);
}

TestSuite(readfile, .init = setup, .fini = teardown);

static void put(const char *text)
{
	int fd = openat(dfd, "f", O_WRONLY | O_CREAT | O_TRUNC, 0600);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

Test(readfile, whole_file_nul_terminated)
{
	char *t;
	size_t n;

	put("deny 198.18.0.0/15\n");
	cr_assert_eq(els_read_file_at(dfd, "f", O_NOFOLLOW, 100, &t, &n), 0);
	cr_assert_eq(n, 19);
	cr_assert_str_eq(t, "deny 198.18.0.0/15\n");
	free(t);
}

Test(readfile, larger_than_max_is_efbig)
{
	char *t = (char *)1;
	size_t n = 1;

	put("0123456789");
	cr_assert_eq(els_read_file_at(dfd, "f", 0, 9, &t, &n), -EFBIG);
	cr_assert_null(t);
	cr_assert_eq(n, 0);
	cr_assert_eq(els_read_file_at(dfd, "f", 0, 10, &t, &n), 0);
	free(t);
}

Test(readfile, symlink_refused_with_nofollow)
{
	char *t;
	size_t n;

	put("x");
	cr_assert_eq(symlinkat("f", dfd, "link"), 0);
	cr_assert_eq(els_read_file_at(dfd, "link", O_NOFOLLOW, 100, &t, &n), -ELOOP);
	cr_assert_eq(els_read_file_at(dfd, "link", 0, 100, &t, &n), 0);
	free(t);
}

/* A FIFO planted where a file should be neither blocks the reader nor is read. */
Test(readfile, fifo_is_no_file_and_does_not_block, .timeout = 5)
{
	char *t;
	size_t n;

	cr_assert_eq(mkfifoat(dfd, "fifo", 0600), 0);
	cr_assert_eq(els_read_file_at(dfd, "fifo", 0, 100, &t, &n), -EINVAL);
	cr_assert_eq(els_read_file_at(dfd, "missing", 0, 100, &t, &n), -ENOENT);
}

Test(readfile, a_path_from_the_current_directory)
{
	char path[sizeof(dir) + 4], *t;
	size_t n;

	put("pem");
	snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_eq(els_read_file_at(AT_FDCWD, path, 0, 100, &t, &n), 0);
	cr_assert_str_eq(t, "pem");
	free(t);
}
