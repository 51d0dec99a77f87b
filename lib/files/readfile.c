/* One reader for the small files the agent reads whole (include/els/readfile.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "els/readfile.h"

int els_read_file_at(int dirfd, const char *name, int flags, size_t max, char **text, size_t *len)
{
	struct stat st;
	int rc = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | flags);

	*text = NULL;
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
	if ((uint64_t)st.st_size > max) {
		rc = -EFBIG;
		goto out;
	}
	*text = malloc((size_t)st.st_size + 1);
	if (!*text) {
		rc = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, *text + *len, (size_t)st.st_size + 1 - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			break;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
		if (*len > (size_t)st.st_size) {
			rc = -EFBIG; /* grew while being read */
			break;
		}
	}
out:
	if (rc < 0) {
		free(*text);
		*text = NULL;
		*len = 0;
	} else {
		(*text)[*len] = 0;
	}
	close(fd);
	return rc;
}
