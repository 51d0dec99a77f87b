/* The management endpoint process. It is the only part of elsd that parses bytes from the
 * network besides packet headers, so it runs apart, as relayd's relay process does: forked
 * from the main process, it keeps nothing but its end of a socketpair, reads its TLS material,
 * binds, then becomes an unprivileged user for good. It authenticates clients, checks each
 * request's envelope, arguments and the client's role itself, and hands only well-formed,
 * authorised requests to the main process, which executes them. One poll loop, non-blocking
 * TLS, a deadline per connection: a slow or hostile client holds one slot, never the loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipc.h"
#include "log.h"
#include "mgmt.h"
#include "sandbox.h"

#define PARENT_TIMEOUT_MS 60000 /* a request the main process has not answered by then */
#define AUDIT_PER_SEC	  20	/* handshake/over-capacity refusals reported per second */

enum conn_state { C_HANDSHAKE, C_READING, C_WAITING, C_WRITING };

struct conn {
	int fd;
	SSL *ssl;
	enum conn_state st;
	uint64_t deadline; /* ms, monotonic; 0 = none */
	uint32_t token;	   /* request at the main process (C_WAITING) */
	short events;	   /* what TLS waits for */
	bool close_after;  /* close once the response is written */
	int role;
	char identity[65];
	char peer[64];
	struct els_mgmt_frame fr;
	uint8_t *out;
	size_t outlen, outoff;
};

struct endpoint {
	const struct els_mgmt_conf *c;
	struct els_mgmt_tls tls;
	struct els_ipc ipc;
	int lfd;
	struct conn **conns;
	unsigned nconns;
	uint32_t next_token;
	uint64_t audit_second;
	unsigned audit_count, audit_suppressed;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void audit(struct endpoint *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void audit(struct endpoint *e, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(&e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
}

/* A monitor event that is no refusal (not alerted). */
static void note(struct endpoint *e, const char *text)
{
	els_ipc_send(&e->ipc, ELS_IPC_NOTE, 0, text, strlen(text));
}

/* For refusals before authentication: a flood of them must not flood the monitor. */
static void audit_limited(struct endpoint *e, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void audit_limited(struct endpoint *e, const char *fmt, ...)
{
	uint64_t sec = now_ms() / 1000;
	char text[512];
	va_list ap;

	if (sec != e->audit_second) {
		if (e->audit_suppressed)
			audit(e, "mgmt: %u more refused connections not logged",
			      e->audit_suppressed);
		e->audit_second = sec;
		e->audit_count = 0;
		e->audit_suppressed = 0;
	}
	if (++e->audit_count > AUDIT_PER_SEC) {
		e->audit_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	els_ipc_send(&e->ipc, ELS_IPC_AUDIT, 0, text, strlen(text));
}

static void conn_free(struct endpoint *e, unsigned i)
{
	struct conn *k = e->conns[i];
	if (k->ssl) {
		SSL_shutdown(k->ssl); /* best effort, non-blocking: a close_notify if it fits */
		SSL_free(k->ssl);
	}
	close(k->fd);
	els_mgmt_frame_free(&k->fr);
	free(k->out);
	free(k);
	e->conns[i] = e->conns[--e->nconns];
	ERR_clear_error();
}

/* Queues body as the response frame. Takes body (malloc'd) or, when NULL, answers internal. */
static void respond(struct endpoint *e, struct conn *k, char *body)
{
	if (!body)
		body = els_mgmt_error(-1, "internal", NULL, "out of memory");
	size_t len = body ? strlen(body) : 0;
	free(k->out);
	k->out = NULL;
	if (len && len <= ELS_MGMT_MAX_FRAME)
		k->out = malloc(len + 4);
	if (!k->out) {
		free(body);
		k->close_after = true;
		k->outlen = k->outoff = 0;
		k->st = C_WRITING;
		return;
	}
	k->out[0] = (uint8_t)(len >> 24);
	k->out[1] = (uint8_t)(len >> 16);
	k->out[2] = (uint8_t)(len >> 8);
	k->out[3] = (uint8_t)len;
	memcpy(k->out + 4, body, len);
	free(body);
	k->outlen = len + 4;
	k->outoff = 0;
	k->st = C_WRITING;
	k->deadline = now_ms() + e->c->timeout_s * 1000ull;
}

static void handle_request(struct endpoint *e, struct conn *k)
{
	struct els_mgmt_req req;
	char *err;
	const char *code;

	if (els_mgmt_request_check((const char *)k->fr.body, k->fr.len, k->role, &req, &err,
				   &code) < 0) {
		audit(e, "mgmt %s/%s@%s %s: %s", k->identity, els_mgmt_role_name(k->role), k->peer,
		      req.cmd_name, code);
		respond(e, k, err);
		return;
	}
	char *json = json_dumps(req.json, JSON_COMPACT);
	json_decref(req.json);
	const char *role = els_mgmt_role_name(k->role);
	size_t li = strlen(k->identity) + 1, lr = strlen(role) + 1, lp = strlen(k->peer) + 1;
	size_t lj = json ? strlen(json) : 0;
	char *msg = json ? malloc(li + lr + lp + lj) : NULL;
	int rc = -ENOMEM;
	if (msg) {
		memcpy(msg, k->identity, li);
		memcpy(msg + li, role, lr);
		memcpy(msg + li + lr, k->peer, lp);
		memcpy(msg + li + lr + lp, json, lj);
		k->token = ++e->next_token ? e->next_token : ++e->next_token;
		rc = els_ipc_send(&e->ipc, ELS_IPC_REQUEST, k->token, msg, li + lr + lp + lj);
	}
	free(msg);
	free(json);
	if (rc < 0) {
		respond(e, k,
			els_mgmt_error(req.id, "unavailable", NULL,
				       "the agent cannot take the request now (%s); retry",
				       strerror(-rc)));
		return;
	}
	k->st = C_WAITING;
	k->deadline = now_ms() + PARENT_TIMEOUT_MS;
}

static const char *handshake_error(SSL *ssl)
{
	long v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		return X509_verify_cert_error_string(v);
	unsigned long err = ERR_peek_error();
	const char *r = err ? ERR_reason_error_string(err) : NULL;
	return r ? r : "handshake failed (peer closed or sent garbage)";
}

/* Advances one connection as far as it goes without blocking. False: close it. */
static bool conn_step(struct endpoint *e, struct conn *k)
{
	for (;;) {
		int r, err;
		switch (k->st) {
		case C_HANDSHAKE:
			ERR_clear_error();
			r = SSL_accept(k->ssl);
			if (r == 1) {
				X509 *x = SSL_get1_peer_certificate(k->ssl);
				k->role =
				    x ? els_mgmt_cert_role(x, k->identity, sizeof(k->identity))
				      : ELS_ROLE_NONE;
				X509_free(x);
				k->st = C_READING;
				k->deadline = now_ms() + e->c->timeout_s * 1000ull;
				continue;
			}
			err = SSL_get_error(k->ssl, r);
			if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
				k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
				return true;
			}
			audit_limited(e, "mgmt handshake refused @%s: %s", k->peer,
				      handshake_error(k->ssl));
			return false;
		case C_READING: {
			uint8_t buf[16384];
			size_t want = k->fr.hdr_got < 4 ? 4 - k->fr.hdr_got : k->fr.len - k->fr.got;
			if (want > sizeof(buf))
				want = sizeof(buf);
			ERR_clear_error();
			/* Exactly up to the end of this frame: bytes of a next request stay in
			 * TLS until this one is answered. */
			r = SSL_read(k->ssl, buf, (int)want);
			if (r <= 0) {
				err = SSL_get_error(k->ssl, r);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
					k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
					return true;
				}
				return false; /* closed or broken */
			}
			size_t used;
			int fr = els_mgmt_frame_feed(&k->fr, buf, (size_t)r, &used);
			if (fr == ELS_FRAME_TOO_LARGE) {
				audit(e, "mgmt %s/%s@%s ?: frame_too_large", k->identity,
				      els_mgmt_role_name(k->role), k->peer);
				respond(e, k,
					els_mgmt_error(-1, "frame_too_large", NULL,
						       "frame length %u is not in 1..%u: closing",
						       k->fr.len, ELS_MGMT_MAX_FRAME));
				k->close_after = true;
				continue;
			}
			if (fr < 0)
				return false;
			if (fr == ELS_FRAME_DONE) {
				handle_request(e, k);
				els_mgmt_frame_reset(&k->fr);
			}
			continue;
		}
		case C_WAITING:
			k->events = 0;
			return true;
		case C_WRITING:
			if (k->outoff == k->outlen) {
				free(k->out);
				k->out = NULL;
				if (k->close_after)
					return false;
				k->st = C_READING;
				k->deadline = now_ms() + e->c->timeout_s * 1000ull;
				continue;
			}
			ERR_clear_error();
			r = SSL_write(k->ssl, k->out + k->outoff, (int)(k->outlen - k->outoff));
			if (r <= 0) {
				err = SSL_get_error(k->ssl, r);
				if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
					k->events = err == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
					return true;
				}
				return false;
			}
			k->outoff += (size_t)r;
			continue;
		}
	}
}

static void peer_name(const struct sockaddr_storage *ss, char *out, size_t n)
{
	if (ss->ss_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, (socklen_t)n);
	else if (ss->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, out,
			  (socklen_t)n);
	else
		snprintf(out, n, "?");
}

static void accept_all(struct endpoint *e)
{
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		int fd = accept4(e->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		char peer[64];
		peer_name(&ss, peer, sizeof(peer));
		if (e->nconns >= e->c->max_clients) {
			/* Accept-and-close rather than leave it in the backlog: the client learns
			 * at once, and the backlog stays free for when a slot opens. */
			audit_limited(e, "mgmt connection refused @%s: max_clients (%u) reached",
				      peer, e->c->max_clients);
			close(fd);
			continue;
		}
		struct conn *k = calloc(1, sizeof(*k));
		if (k)
			k->ssl = SSL_new(e->tls.ctx);
		if (!k || !k->ssl || SSL_set_fd(k->ssl, fd) != 1) {
			if (k)
				SSL_free(k->ssl);
			free(k);
			close(fd);
			continue;
		}
		k->fd = fd;
		k->st = C_HANDSHAKE;
		k->deadline = now_ms() + e->c->timeout_s * 1000ull;
		snprintf(k->identity, sizeof(k->identity), "?");
		snprintf(k->peer, sizeof(k->peer), "%s", peer);
		els_mgmt_frame_init(&k->fr);
		e->conns[e->nconns++] = k;
		if (!conn_step(e, k))
			conn_free(e, e->nconns - 1);
	}
}

static struct conn *find_token(struct endpoint *e, uint32_t token, unsigned *idx)
{
	for (unsigned i = 0; i < e->nconns; i++)
		if (e->conns[i]->st == C_WAITING && e->conns[i]->token == token) {
			*idx = i;
			return e->conns[i];
		}
	return NULL;
}

/* Messages from the main process. False: the channel is gone, stop. */
static bool from_parent(struct endpoint *e)
{
	struct els_ipc_msg m;
	int rc;
	while ((rc = els_ipc_recv(&e->ipc, &m)) == 1) {
		unsigned idx;
		struct conn *k;
		char err[256];
		switch (m.type) {
		case ELS_IPC_RESPONSE:
			k = find_token(e, m.conn, &idx);
			if (k) {
				respond(e, k, (char *)m.body);
				m.body = NULL;
				if (!conn_step(e, k))
					conn_free(e, idx);
			}
			break;
		case ELS_IPC_CRL:
			if (els_mgmt_tls_set_crl(&e->tls, (const char *)m.body, m.len, err,
						 sizeof(err)) < 0)
				audit(e, "mgmt: new CRL refused, keeping the old one: %.200s", err);
			else
				note(e, "mgmt: CRL reloaded");
			break;
		default:
			break; /* not for this side: ignore rather than trust */
		}
		free(m.body);
	}
	return rc == 0;
}

static int listen_on(const struct els_mgmt_conf *c, char *err, size_t n)
{
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	int one = 1;

	if (strchr(c->host, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(c->port);
		inet_pton(AF_INET6, c->host, &s6->sin6_addr);
		sl = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(c->port);
		inet_pton(AF_INET, c->host, &s4->sin_addr);
		sl = sizeof(*s4);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, n, "socket: %s", strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 128) < 0) {
		snprintf(err, n, "cannot listen on %s: %s", c->listen, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* For good: no way back to root, no capability in any set, none to be gained by exec.
 * Returns 1 when the endpoint already ran as that user (no switch), 0 after a switch. */
static int drop_privileges(const char *user, char *err, size_t n)
{
	struct passwd *pw = getpwnam(user);
	if (!pw) {
		snprintf(err, n, "management user \"%s\" does not exist", user);
		return -1;
	}
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL && errno != EPERM)
			break;
	/* Already that user (elsd started unprivileged as it): nothing to switch, the
	 * capability and no_new_privs steps below still apply. */
	bool same = getuid() == uid && geteuid() == uid;
	if (!same && (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
		      setresuid(uid, uid, uid) < 0)) {
		snprintf(err, n,
			 "cannot become user \"%s\": %s (elsd runs as uid %u: start it as root, "
			 "or give it CAP_SETUID and CAP_SETGID, or set management.user to the "
			 "account elsd runs as)",
			 user, strerror(errno), (unsigned)getuid());
		return -1;
	}
	if (setuid(0) == 0 || geteuid() != uid || (!same && getegid() != gid)) {
		snprintf(err, n, "privileges could be regained after becoming \"%s\"", user);
		return -1;
	}
	cap_t none = cap_init();
	if (!none || cap_set_proc(none) < 0) {
		snprintf(err, n, "cannot clear capabilities: %s", strerror(errno));
		cap_free(none);
		return -1;
	}
	cap_free(none);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, n, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
		return -1;
	}
	return same;
}

static void serve(struct endpoint *e)
{
	struct pollfd *pfd = calloc(e->c->max_clients + 2, sizeof(*pfd));
	if (!pfd)
		return;
	for (;;) {
		uint64_t now = now_ms();
		/* Deadlines first: whatever a client does, it cannot outlive them. */
		for (unsigned i = 0; i < e->nconns;) {
			struct conn *k = e->conns[i];
			if (k->deadline && now >= k->deadline) {
				if (k->st == C_WAITING) {
					respond(e, k,
						els_mgmt_error(-1, "unavailable", NULL,
							       "the agent did not answer in "
							       "time"));
					k->close_after = true;
					if (conn_step(e, k)) {
						i++;
						continue;
					}
				} else if (k->st == C_HANDSHAKE) {
					audit_limited(e, "mgmt handshake refused @%s: timed out",
						      k->peer);
				}
				conn_free(e, i);
				continue;
			}
			i++;
		}
		uint64_t next = now + 1000;
		pfd[0] = (struct pollfd){
		    .fd = e->ipc.fd, .events = POLLIN | (els_ipc_pending(&e->ipc) ? POLLOUT : 0)};
		pfd[1] = (struct pollfd){.fd = e->lfd, .events = POLLIN};
		for (unsigned i = 0; i < e->nconns; i++) {
			struct conn *k = e->conns[i];
			pfd[i + 2] = (struct pollfd){.fd = k->fd, .events = k->events};
			if (k->deadline && k->deadline < next)
				next = k->deadline;
		}
		unsigned n = e->nconns;
		int r = poll(pfd, n + 2, (int)(next > now ? next - now : 0));
		if (r < 0 && errno != EINTR)
			return;
		if (r <= 0)
			continue;
		if (pfd[0].revents & POLLOUT && els_ipc_flush(&e->ipc) < 0)
			return;
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR) && !from_parent(e))
			return;
		/* Walk the snapshot backwards: conn_free moves the last entry into the freed
		 * slot, which then has already been handled. Entries added since (none here)
		 * and responses delivered above are skipped safely by the fd check. */
		for (unsigned i = n; i-- > 0;) {
			if (i >= e->nconns || !pfd[i + 2].revents)
				continue;
			struct conn *k = e->conns[i];
			if (k->fd != pfd[i + 2].fd)
				continue;
			if (!conn_step(e, k))
				conn_free(e, i);
		}
		if (pfd[1].revents & POLLIN)
			accept_all(e);
		if (els_ipc_flush(&e->ipc) < 0)
			return;
	}
}

static void fatal_to_parent(struct els_ipc *ipc, const char *msg)
{
	els_ipc_send(ipc, ELS_IPC_FATAL, 0, msg, strlen(msg));
	_exit(1);
}

static void child_main(const struct els_mgmt_conf *c, int fd, pid_t parent)
{
	struct endpoint e = {.c = c, .lfd = -1};
	char err[512];
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* A `kill -HUP` or Ctrl-C meant for elsd must not kill the endpoint: it ends when the
	 * main process does (EOF on the socketpair, or the death signal). */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	signal(SIGCHLD, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != parent)
		_exit(1);
	prctl(PR_SET_NAME, "elsd-mgmt");
	/* Nothing of the main process stays open here: queues, monitor file, config. */
	if (fd != 3) {
		if (dup2(fd, 3) < 0)
			_exit(1);
		fd = 3;
	}
	fcntl(fd, F_SETFD, FD_CLOEXEC);
	close_range(4, ~0u, 0);
	els_ipc_init(&e.ipc, fd);
	if (chdir("/") < 0)
		fatal_to_parent(&e.ipc, "chdir /");

	if (els_mgmt_tls_load(&e.tls, c, err, sizeof(err)) < 0)
		fatal_to_parent(&e.ipc, err);
	e.lfd = listen_on(c, err, sizeof(err));
	if (e.lfd < 0)
		fatal_to_parent(&e.ipc, err);
	int same_uid = drop_privileges(c->user, err, sizeof(err));
	if (same_uid < 0)
		fatal_to_parent(&e.ipc, err);
	/* The filesystem is gone from here on: the TLS files are loaded, the CRL comes over the
	 * socketpair. Under the same uid as elsd, this is what keeps the endpoint from elsd's
	 * policy and monitor files, so without Landlock it must not run at all. */
	int abi = els_sandbox_endpoint(err, sizeof(err));
	if (abi < 0)
		fatal_to_parent(&e.ipc, err);
	if (abi == 0 && same_uid)
		fatal_to_parent(&e.ipc,
				"the endpoint would run under elsd's own account and this kernel has "
				"no Landlock to keep it from elsd's files: start elsd as root (the "
				"endpoint then becomes management.user), or use a kernel with Landlock");
	e.conns = calloc(c->max_clients, sizeof(*e.conns));
	if (!e.conns)
		fatal_to_parent(&e.ipc, "out of memory");
	els_ipc_send(&e.ipc, ELS_IPC_READY, 0, c->listen, strlen(c->listen));
	serve(&e);
	_exit(0);
}

int els_mgmt_spawn(const struct els_mgmt_conf *c, pid_t *pid, int *fd)
{
	int sv[2];
	pid_t parent = getpid();

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		els_log(ELS_LL_ERROR, "management: socketpair: %s", strerror(errno));
		return -errno;
	}
	fflush(stderr);
	pid_t p = fork();
	if (p < 0) {
		int rc = -errno;
		els_log(ELS_LL_ERROR, "management: fork: %s", strerror(errno));
		close(sv[0]);
		close(sv[1]);
		return rc;
	}
	if (p == 0) {
		close(sv[0]);
		child_main(c, sv[1], parent);
		_exit(1);
	}
	close(sv[1]);
	/* Wait for the endpoint to say it listens, so that a bad key or a busy port stops the
	 * start with the reason instead of leaving an agent nobody can manage. */
	struct els_ipc ipc;
	struct els_ipc_msg m = {0};
	int rc = -ETIMEDOUT;
	els_ipc_init(&ipc, sv[0]);
	for (uint64_t end = now_ms() + 10000; now_ms() < end;) {
		struct pollfd pf = {.fd = sv[0], .events = POLLIN};
		if (poll(&pf, 1, 200) < 0 && errno != EINTR)
			break;
		int r = els_ipc_recv(&ipc, &m);
		if (r == 0)
			continue;
		if (r < 0) {
			rc = r;
			els_log(ELS_LL_ERROR, "management: the endpoint process failed to start");
			break;
		}
		if (m.type == ELS_IPC_READY) {
			els_log(ELS_LL_INFO, "management: listening on %s (TLS 1.3, mutual)",
				(const char *)m.body);
			rc = 0;
		} else {
			els_log(ELS_LL_ERROR, "management: %s",
				m.type == ELS_IPC_FATAL ? (const char *)m.body
							: "unexpected message at start");
			rc = -EINVAL;
		}
		free(m.body);
		break;
	}
	if (rc < 0) {
		if (rc == -ETIMEDOUT)
			els_log(ELS_LL_ERROR, "management: the endpoint did not start in 10 s");
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
		els_ipc_close(&ipc);
		return rc;
	}
	free(ipc.buf); /* nothing partial can be pending after READY; keep only the fd */
	fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
	*pid = p;
	*fd = sv[0];
	return 0;
}
