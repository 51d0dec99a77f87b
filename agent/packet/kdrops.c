#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "kdrops.h"

void els_kdrops_init(struct els_kdrops *k, unsigned first, unsigned last)
{
	memset(k, 0, sizeof(*k));
	k->first = first;
	k->last = last;
	k->fd = -1;
	/* /proc/net is a link to self/net: the directory of this process's network namespace. */
	k->path = "/proc/self/net/netfilter/nfnetlink_queue";
}

void els_kdrops_fini(struct els_kdrops *k)
{
	if (k->path && k->fd >= 0) /* a zeroed struct, never initialised, holds no fd */
		close(k->fd);
	k->fd = -1;
}

static void parse_line(struct els_kdrops *k, const char *line,
		       void (*fn)(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg),
		       void *arg)
{
	unsigned q, portid, total, mode, range, seq, one;
	unsigned long long qd, ud;

	/* queue_number peer_portid queue_total copy_mode copy_range queue_dropped
	 * user_dropped id_sequence 1 */
	if (sscanf(line, "%u %u %u %u %u %llu %llu %u %u", &q, &portid, &total, &mode, &range, &qd,
		   &ud, &seq, &one) != 9 ||
	    q < k->first || q > k->last || q - k->first >= ELS_KDROPS_MAX)
		return;
	unsigned i = q - k->first;
	/* A counter that went down means a new queue instance (elsd rebound): rebase. */
	if (k->known[i] && qd >= k->queue_full[i] && ud >= k->sockbuf[i] &&
	    (qd > k->queue_full[i] || ud > k->sockbuf[i]))
		fn(q, qd - k->queue_full[i], ud - k->sockbuf[i], arg);
	k->queue_full[i] = qd;
	k->sockbuf[i] = ud;
	k->known[i] = true;
}

int els_kdrops_poll(struct els_kdrops *k,
		    void (*fn)(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg),
		    void *arg)
{
	/* A line is under 100 bytes and there are at most ELS_KDROPS_MAX queues of ours among
	 * up to 65536: read in pieces, carrying a partial line over. */
	char buf[4096];
	size_t have = 0;
	off_t off = 0;

	if (k->fd < 0) {
		if (k->open_err)
			return k->open_err;
		k->fd = open(k->path, O_RDONLY | O_CLOEXEC);
		if (k->fd < 0) {
			k->open_err = -errno;
			return k->open_err;
		}
	}
	for (;;) {
		ssize_t n = pread(k->fd, buf + have, sizeof(buf) - 1 - have, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		off += n;
		have += (size_t)n;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = strchr(line, '\n'))) {
			*nl = '\0';
			parse_line(k, line, fn, arg);
			line = nl + 1;
		}
		have = strlen(line);
		if (have == sizeof(buf) - 1)
			have = 0; /* no line is this long: not the file we know, skip it */
		memmove(buf, line, have);
	}
	if (have) {
		buf[have] = '\0';
		parse_line(k, buf, fn, arg);
	}
	return 0;
}
