/* The local control socket (agent/ctlsock.c): request and answer, mode 0600, a stale socket
 * replaced, a live one or a plain file left alone, a silent client dropped, root only. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctlsock.h"

static char dir[64], path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/els-ctlsock.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/run/control.sock", dir);
}

static void teardown(void)
{
	char sub[96];
	unlink(path);
	snprintf(sub, sizeof(sub), "%s/run", dir);
	rmdir(sub);
	rmdir(dir);
}

TestSuite(ctlsock, .init = setup, .fini = teardown);

static void answer(void *arg, const char *req, char *ans, size_t n)
{
	(*(int *)arg)++;
	snprintf(ans, n, "ok you said %s\nsecond line\n", req);
}

struct server {
	struct els_ctlsock *s;
	int calls;
	int serves; /* how many clients to serve */
};

static void *serve(void *arg)
{
	struct server *sv = arg;
	for (int i = 0; i < sv->serves; i++) {
		struct pollfd p = {.fd = els_ctlsock_fd(sv->s), .events = POLLIN};
		if (poll(&p, 1, 5000) == 1)
			els_ctlsock_serve(sv->s, answer, &sv->calls);
	}
	return NULL;
}

Test(ctlsock, request_and_answer)
{
	struct server sv = {.s = els_ctlsock_open(path), .serves = 1};
	pthread_t t;
	char ans[256];
	struct stat st;

	cr_assert_not_null(sv.s, "the socket and its directory are created");
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISSOCK(st.st_mode));
	cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
	pthread_create(&t, NULL, serve, &sv);
	cr_assert_eq(els_ctlsock_request(path, "reload", ans, sizeof(ans), 5000), 0);
	pthread_join(t, NULL);
	/* the tests run as root (ctest as CI does); another uid would be refused */
	if (geteuid() == 0) {
		cr_assert_str_eq(ans, "ok you said reload\nsecond line\n");
		cr_assert_eq(sv.calls, 1);
	} else {
		cr_assert(strncmp(ans, "error permission denied", 23) == 0, "%s", ans);
		cr_assert_eq(sv.calls, 0, "a non-root client never reaches the handler");
	}
	els_ctlsock_close(sv.s);
	cr_assert_eq(access(path, F_OK), -1, "close removes the socket file");
}

Test(ctlsock, a_live_socket_is_not_taken_over)
{
	struct els_ctlsock *a = els_ctlsock_open(path);
	cr_assert_not_null(a);
	cr_assert_null(els_ctlsock_open(path), "a second daemon must not steal the socket");
	els_ctlsock_close(a);
}

Test(ctlsock, a_stale_socket_is_replaced)
{
	struct els_ctlsock *a = els_ctlsock_open(path);
	cr_assert_not_null(a);
	/* a daemon that died: its socket file stays, nobody listens */
	close(els_ctlsock_fd(a));
	struct els_ctlsock *b = els_ctlsock_open(path);
	cr_assert_not_null(b, "the stale socket is replaced");
	free(a); /* its fd is closed and its file now b's */
	els_ctlsock_close(b);
}

Test(ctlsock, a_plain_file_is_left_alone)
{
	char sub[96];
	snprintf(sub, sizeof(sub), "%s/run", dir);
	mkdir(sub, 0755);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("precious\n", f);
	fclose(f);
	cr_assert_null(els_ctlsock_open(path));
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert(S_ISREG(st.st_mode), "the file is still there");
}

Test(ctlsock, no_daemon)
{
	char ans[64];
	cr_assert_eq(els_ctlsock_request(path, "reload", ans, sizeof(ans), 1000), -ENOENT);
}

Test(ctlsock, a_silent_client_is_dropped_within_a_second_or_two)
{
	struct els_ctlsock *s = els_ctlsock_open(path);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int calls = 0;
	char buf[128];

	cr_assert_not_null(s);
	strcpy(sa.sun_path, path);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	time_t t0 = time(NULL);
	els_ctlsock_serve(s, answer, &calls); /* the client says nothing */
	cr_assert_leq(time(NULL) - t0, 2, "serve gave up on a silent client");
	cr_assert_eq(calls, 0);
	ssize_t n = read(c, buf, sizeof(buf) - 1);
	cr_assert_gt(n, 0);
	buf[n] = '\0';
	cr_assert(strncmp(buf, "error ", 6) == 0, "%s", buf);
	close(c);
	els_ctlsock_close(s);
}
