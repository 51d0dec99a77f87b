/* Reading the files the configuration names. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "console.h"

int console_read_file(const char *path, size_t max, char **out, size_t *len)
{
	struct stat st;
	int rc = 0;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	*out = NULL;
	*len = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((size_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		rc = -ENOMEM;
		goto out;
	}
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EIO;
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = 0;
	*out = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	close(fd);
	return rc;
}

int console_check_secret(int fd, const char *path, char *err, size_t n)
{
	struct stat st;
	if (fstat(fd, &st) < 0) {
		snprintf(err, n, "cannot stat %s: %s", path, strerror(errno));
		return -errno;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		snprintf(err, n, "%s belongs to another user (uid %u): refusing the key", path,
			 (unsigned)st.st_uid);
		return -EPERM;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, n, "%s is readable by group or others (mode %04o): chmod 600 it",
			 path, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}
