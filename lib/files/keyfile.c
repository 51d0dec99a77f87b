/* Secret files: one check on the descriptor that is read (include/els/keyfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/keyfile.h"

#define PKEY_MAX 65536

int els_keyfile_check(int fd, const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s %s is not a regular file", what, path);
		return -EINVAL;
	}
	/* A key others can read may have leaked; one others can write, they may have chosen. */
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen,
			 "%s %s is accessible by group or others (mode %04o): run chmod 600 %s",
			 what, path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s %s belongs to uid %u: it must be owned by root or by the user that "
			 "reads it (uid %u)",
			 what, path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	return 0;
}

int els_keyfile_open(const char *what, const char *path, int flags, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | flags), rc;

	if (fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
		return rc;
	}
	rc = els_keyfile_check(fd, what, path, err, errlen);
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

EVP_PKEY *els_keyfile_read_pkey(const char *what, const char *path, char *err, size_t errlen)
{
	char buf[PKEY_MAX];
	size_t got = 0;
	EVP_PKEY *k = NULL;
	BIO *b;
	int fd = els_keyfile_open(what, path, 0, err, errlen);

	if (fd < 0)
		return NULL;
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s %s: %s", what, path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		got += (size_t)r;
		if (got == sizeof(buf)) {
			snprintf(err, errlen, "%s %s is larger than 64 KiB: not a key", what, path);
			goto out;
		}
	}
	b = BIO_new_mem_buf(buf, (int)got);
	if (b)
		k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
	BIO_free(b);
	if (!k) {
		unsigned long e = ERR_get_error();

		snprintf(err, errlen, "%s %s: %s", what, path,
			 e ? ERR_reason_error_string(e) : "no PEM private key");
	}
	ERR_clear_error();
out:
	explicit_bzero(buf, got);
	close(fd);
	return k;
}
