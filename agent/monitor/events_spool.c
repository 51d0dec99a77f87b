/* The collector's disk buffer (see events_int.h and docs/events.md, "Spool and gaps").
 *
 * An append-only file of RFC 5424 messages, one a line, read from an offset; emptied with
 * ftruncate once all of it went out. Bounded by max bytes: what would pass it is shed and
 * counted by the caller. Read back after a restart, so it is treated as outside input: each
 * line is checked before it is sent, and a bad one is skipped and counted. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "events_int.h"

int ev_spool_open(struct ev_spool *s, const char *path, uint64_t max)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	s->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (s->fd < 0)
		return -errno;
	if (fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = errno ? -errno : -EINVAL;
		close(s->fd);
		s->fd = -1;
		return e;
	}
	s->path = strdup(path);
	s->max = max;
	s->size = (uint64_t)st.st_size;
	if (s->size) {
		/* the last line must end in a newline; cut back to the last one there is */
		char tail[EV_SPOOL_LINE_MAX + 1];
		size_t n = s->size < sizeof(tail) ? (size_t)s->size : sizeof(tail);
		ssize_t got = pread(s->fd, tail, n, (off_t)(s->size - n));
		if (got == (ssize_t)n && tail[n - 1] != '\n') {
			size_t keep = n;
			while (keep && tail[keep - 1] != '\n')
				keep--;
			s->size -= n - keep;
			s->cut = 1;
			if (ftruncate(s->fd, (off_t)s->size) < 0)
				return -errno;
		}
	}
	return s->path ? 0 : -ENOMEM;
}

void ev_spool_close(struct ev_spool *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	free(s->path);
	s->path = NULL;
}

int ev_spool_append(struct ev_spool *s, const char *msg, size_t n)
{
	char line[EV_SPOOL_LINE_MAX + 1];

	if (n > EV_SPOOL_LINE_MAX)
		return -EINVAL;
	if (s->size + n + 1 > s->max)
		return -ENOSPC;
	memcpy(line, msg, n);
	line[n] = '\n';
	ssize_t w = write(s->fd, line, n + 1);
	if (w != (ssize_t)(n + 1)) {
		int e = w < 0 ? -errno : -EIO;
		/* a short write leaves part of a line: cut the file back to where it was */
		if (w > 0 && ftruncate(s->fd, (off_t)s->size) < 0)
			return -errno;
		return e;
	}
	s->size += n + 1;
	return 0;
}

/* A message as ev_spool_append is given it: "<PRI>1 " with PRI 0..191, then printable
 * ASCII or UTF-8 bytes (no control characters; JSON escapes them all). */
static bool valid_msg(const char *m, size_t n)
{
	size_t i = 1;
	unsigned pri = 0;

	if (n < 4 || m[0] != '<')
		return false;
	while (i < n && i <= 4 && m[i] >= '0' && m[i] <= '9')
		pri = pri * 10 + (unsigned)(m[i++] - '0');
	if (i == 1 || i > 4 || pri > 191 || i + 2 >= n || m[i] != '>' || m[i + 1] != '1' ||
	    m[i + 2] != ' ')
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)m[i];
		if (c < 0x20 || c == 0x7f)
			return false;
	}
	return true;
}

int ev_spool_next(const char *buf, size_t len, size_t *msg_len, size_t *used)
{
	const char *nl = memchr(buf, '\n', len);

	*msg_len = 0;
	*used = 0;
	if (!nl) {
		if (len > EV_SPOOL_LINE_MAX) { /* too long to be ours: skip what is here */
			*used = len;
			return -1;
		}
		return 0;
	}
	size_t n = (size_t)(nl - buf);
	*used = n + 1;
	if (n > EV_SPOOL_LINE_MAX || !valid_msg(buf, n))
		return -1;
	*msg_len = n;
	return 1;
}

int ev_spool_send(struct ev_spool *s, size_t budget, ev_spool_send_fn fn, void *ctx, uint64_t *bad)
{
	static char buf[4 * EV_SPOOL_LINE_MAX]; /* the syslog sender is the only caller */
	size_t sent = 0;

	*bad += s->cut;
	s->cut = 0;
	while (!ev_spool_empty(s) && sent < budget) {
		ssize_t got = pread(s->fd, buf, sizeof(buf), (off_t)s->rd);
		size_t off = 0;

		if (got <= 0) {
			/* the file shrank under us (or cannot be read): nothing more to send */
			*bad += 1;
			s->rd = s->size;
			break;
		}
		while (off < (size_t)got) {
			size_t mlen, used;
			int r = ev_spool_next(buf + off, (size_t)got - off, &mlen, &used);

			if (r == 0) {
				/* a line cut by the end of the file (a crash mid-write): skip it */
				if (s->rd + off + ((size_t)got - off) >= s->size) {
					*bad += 1;
					off = (size_t)got;
				}
				break;
			}
			if (r < 0) {
				*bad += 1;
			} else {
				int rc = fn(ctx, buf + off, mlen);
				if (rc < 0) {
					s->rd += off;
					return rc;
				}
				sent += mlen;
			}
			off += used;
		}
		s->rd += off;
	}
	if (ev_spool_empty(s)) {
		if (ftruncate(s->fd, 0) < 0)
			return -errno;
		s->size = s->rd = 0;
	}
	return 0;
}
