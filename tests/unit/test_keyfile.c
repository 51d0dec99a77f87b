/* els/keyfile.h: the secrecy check on the descriptor, and the PEM key read through it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/keyfile.h"

static char dir[] = "/tmp/els-keyfile-XXXXXX";
static char path[sizeof(dir) + 16];

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/k.pem", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(keyfile, .init = setup, .fini = teardown);

/* Writes a fresh P-256 key in PEM to path with the given mode. */
static void write_key(mode_t mode)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	FILE *f = fopen(path, "w");

	cr_assert(k && f);
	cr_assert(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL));
	fclose(f);
	EVP_PKEY_free(k);
	cr_assert_eq(chmod(path, mode), 0);
}

Test(keyfile, private_key_is_read)
{
	char err[256] = "";
	EVP_PKEY *k;

	write_key(0600);
	k = els_keyfile_read_pkey("the test key", path, err, sizeof(err));
	cr_assert_not_null(k, "%s", err);
	EVP_PKEY_free(k);
}

Test(keyfile, group_readable_is_refused_with_the_fix)
{
	char err[256] = "";

	write_key(0640);
	cr_assert_null(els_keyfile_read_pkey("the test key", path, err, sizeof(err)));
	cr_assert(strstr(err, "the test key ") && strstr(err, path), "%s", err);
	cr_assert(strstr(err, "accessible by group or others (mode 0640): run chmod 600"), "%s",
		  err);
}

Test(keyfile, world_writable_is_refused)
{
	char err[256] = "";
	int fd;

	write_key(0602);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(els_keyfile_check(fd, "k", path, err, sizeof(err)), -EPERM);
	close(fd);
}

/* The check is on the open descriptor: what was opened is judged, whatever the path names by
 * the time of the check. */
Test(keyfile, the_descriptor_is_judged_not_the_path)
{
	char err[256] = "";
	int fd;

	write_key(0644);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	unlink(path);
	write_key(0600); /* a new, secret file under the same name */
	cr_assert_eq(els_keyfile_check(fd, "k", path, err, sizeof(err)), -EPERM, "%s", err);
	close(fd);
}

Test(keyfile, someone_elses_key_is_refused)
{
	char err[256] = "";
	int fd;

	if (geteuid() != 0)
		cr_skip_test("needs root to give the file away");
	write_key(0600);
	cr_assert_eq(chown(path, 65534, 65534), 0);
	fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(els_keyfile_check(fd, "k", path, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "belongs to uid 65534"), "%s", err);
	close(fd);
}

Test(keyfile, not_a_regular_file_or_missing)
{
	char err[256] = "";
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	cr_assert_eq(els_keyfile_check(fd, "k", dir, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "not a regular file"), "%s", err);
	close(fd);
	cr_assert_eq(els_keyfile_open("k", "/nonexistent/key", 0, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "k /nonexistent/key: "), "%s", err);
}

Test(keyfile, garbage_is_not_a_key)
{
	char err[256] = "";
	FILE *f = fopen(path, "w");

	fputs("not a key\n", f);
	fclose(f);
	chmod(path, 0600);
	cr_assert_null(els_keyfile_read_pkey("k", path, err, sizeof(err)));
	cr_assert(strstr(err, "k "), "%s", err);
}
