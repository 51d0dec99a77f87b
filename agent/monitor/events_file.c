/* The event stream's file output: NDJSON lines appended to events.file, reopened on SIGUSR1
 * (see docs/events.md, "The file and rotation"). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "events_int.h"
#include "els/log.h"

void ev_file_open(struct ev_out *o)
{
	o->fd = open(o->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOCTTY, 0640);
	if (o->fd < 0 && !o->failing) {
		els_log(ELS_LL_WARNING, "events: cannot open %s: %s; retrying every second",
			o->path, strerror(errno));
		o->failing = true;
	} else if (o->fd >= 0 && o->failing) {
		els_log(ELS_LL_INFO, "events: writing %s again", o->path);
		o->failing = false;
	}
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w, n -= (size_t)w;
	}
	return 0;
}

void *ev_file_main(void *arg)
{
	struct ev_out *o = arg;
	char *buf = malloc((EV_BATCH + 1) * (ELS_EVE_MAX + 1));
	uint64_t next_open = 0;

	for (;;) {
		bool stop, reopen;
		unsigned n = ev_take(o, EV_WAIT_MS, &stop, &reopen);
		size_t len = 0, lines = 0;

		if (reopen && o->fd >= 0) {
			close(o->fd);
			o->fd = -1;
			next_open = 0;
		}
		if (o->fd < 0 && els_now_mono_ms() >= next_open) {
			ev_file_open(o);
			next_open = els_now_mono_ms() + 1000;
		}
		if (o->shed && o->fd >= 0 && buf) {
			struct ev_slot g;
			ev_gap_slot(o, &g);
			memcpy(buf, g.text, g.len);
			buf[g.len] = '\n';
			len = g.len + 1u;
		}
		for (unsigned i = 0; buf && i < n; i++) {
			memcpy(buf + len, o->batch[i].text, o->batch[i].len);
			len += o->batch[i].len;
			buf[len++] = '\n';
			lines++;
		}
		if (o->fd >= 0 && len) {
			if (write_all(o->fd, buf, len) == 0) {
				o->shed = 0;
			} else {
				if (!o->failing)
					els_log(ELS_LL_WARNING, "events: cannot write %s: %s",
						o->path, strerror(errno));
				o->failing = true;
				o->shed += lines;
				close(o->fd);
				o->fd = -1;
			}
		} else {
			o->shed += n;
		}
		if (stop)
			break;
	}
	free(buf);
	return NULL;
}
