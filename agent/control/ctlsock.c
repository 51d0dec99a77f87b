/* The local control socket (see ctlsock.h): root's way to reload elsd and hear the outcome. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlsock.h"
#include "els/clock.h"
#include "els/policy.h"
#include "els/log.h"

#define REQUEST_MAX	64
#define REQUEST_WAIT_MS 1000

struct els_ctlsock {
	int fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (!*path || strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memcpy(sa->sun_path, path, strlen(path));
	return 0;
}

/* A socket file at path that nobody accepts on is left by an elsd that died: it may go. One
 * that answers belongs to a running elsd and must stay. Anything else is not ours to remove. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	int rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

struct els_ctlsock *els_ctlsock_open(const char *path)
{
	struct sockaddr_un sa;
	struct els_ctlsock *s = NULL;
	char *dir = strdup(path);
	int rc, fd = -1;

	if ((rc = fill_addr(path, &sa)) < 0 || !dir) {
		els_log(ELS_LL_ERROR, "control socket %s: %s; `elsd --reload` will not work", path,
			dir ? "path too long" : "out of memory");
		goto out;
	}
	/* Under systemd the unit's RuntimeDirectory made it; run by hand, elsd makes it. */
	if (mkdir(dirname(dir), 0755) < 0 && errno != EEXIST) {
		els_log(ELS_LL_ERROR,
			"control socket: cannot create %s: %s; `elsd --reload` will "
			"not work",
			dir, strerror(errno));
		goto out;
	}
	if ((rc = clear_stale(path, &sa)) < 0) {
		els_log(ELS_LL_ERROR,
			"control socket %s: %s; `elsd --reload` will not reach this elsd", path,
			rc == -EADDRINUSE ? "another elsd answers there"
			: rc == -EEXIST	  ? "exists and is not a socket"
					  : strerror(-rc));
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    /* before listen: nobody can connect in between, so no wider mode is ever usable */
	    chmod(path, 0600) < 0 || listen(fd, 8) < 0) {
		els_log(ELS_LL_ERROR, "control socket %s: %s; `elsd --reload` will not work", path,
			strerror(errno));
		goto out;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		goto out;
	s->fd = fd;
	fd = -1;
	memcpy(s->path, sa.sun_path, sizeof(s->path));
out:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(dir);
	return s;
}

void els_ctlsock_close(struct els_ctlsock *s)
{
	if (!s)
		return;
	close(s->fd);
	/* After a privilege drop the directory may no longer be ours to write: the next start
	 * replaces the stale socket then. */
	unlink(s->path);
	free(s);
}

int els_ctlsock_fd(const struct els_ctlsock *s)
{
	return s ? s->fd : -1;
}

/* Reads one line (without its newline) into buf within REQUEST_WAIT_MS. 0 or -errno. */
static int read_request(int fd, char *buf, size_t n)
{
	uint64_t deadline = els_now_mono() + (uint64_t)REQUEST_WAIT_MS * 1000000u;
	size_t len = 0;

	for (;;) {
		uint64_t now = els_now_mono();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r <= 0)
			continue;
		ssize_t got = read(fd, buf + len, n - 1 - len);
		if (got < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		len += (size_t)got;
		buf[len] = '\0';
		char *nl = strchr(buf, '\n');
		if (nl) {
			*nl = '\0';
			return 0;
		}
		if (got == 0)
			return len ? 0 : -ECONNRESET;
		if (len == n - 1)
			return -EMSGSIZE;
	}
}

void els_ctlsock_serve(struct els_ctlsock *s, els_ctlsock_fn *fn, void *arg)
{
	char req[REQUEST_MAX], ans[ELS_CTLSOCK_ANSWER_MAX];
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (!s)
		return;
	int fd = accept4(s->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != 0) {
		els_log(ELS_LL_WARNING,
			"control socket: refused a client (pid %d, uid %d): root only",
			len == sizeof(cred) ? (int)cred.pid : -1,
			len == sizeof(cred) ? (int)cred.uid : -1);
		snprintf(ans, sizeof(ans),
			 "error permission denied: the control socket is for root\n");
		/* read what it sent: closing on unread data would reset the connection, and the
		 * client would never see why */
		read_request(fd, req, sizeof(req));
		goto answer;
	}
	int rc = read_request(fd, req, sizeof(req));
	if (rc < 0) {
		snprintf(ans, sizeof(ans), "error no request: %s\n", strerror(-rc));
		goto answer;
	}
	fn(arg, req, ans, sizeof(ans));
answer:
	/* The answer is far smaller than a socket buffer: it goes out at once or not at all. */
	if (send(fd, ans, strlen(ans), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		els_log(ELS_LL_WARNING,
			"control socket: the client went away before the answer: %s",
			strerror(errno));
	close(fd);
}

int els_ctlsock_request(const char *path, const char *request, char *ans, size_t n, int timeout_ms)
{
	struct sockaddr_un sa;
	char line[REQUEST_MAX];
	size_t len = 0;
	int rc = fill_addr(path, &sa);

	if (rc < 0)
		return rc;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(line, sizeof(line), "%s\n", request);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, line, strlen(line), MSG_NOSIGNAL) < 0) {
		rc = -errno;
		goto out;
	}
	uint64_t deadline = els_now_mono() + (uint64_t)timeout_ms * 1000000u;
	for (;;) {
		uint64_t now = els_now_mono();
		if (now >= deadline) {
			rc = -ETIMEDOUT;
			goto out;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int r = poll(&p, 1, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR) {
			rc = -errno;
			goto out;
		}
		if (r <= 0)
			continue;
		ssize_t got = read(fd, ans + len, n - 1 - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = -errno;
			goto out;
		}
		len += (size_t)got;
		if (got == 0 || len == n - 1)
			break;
	}
	rc = len ? 0 : -ECONNRESET;
out:
	ans[len] = '\0';
	close(fd);
	return rc;
}
