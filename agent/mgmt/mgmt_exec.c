/* Starting the management endpoint as a program of its own. The main process is multithreaded
 * and holds secrets (the monitor's chain key, the policy); a fork of it would carry both into
 * the one process that parses network bytes. So elsd re-executes itself (/proc/self/exe
 * --mgmt-endpoint) through posix_spawn: a fresh address space, an empty environment, default
 * signal dispositions and mask, a session of its own, fd 3 = its end of the socketpair and
 * 0-2 = /dev/null, nothing else. Its settings come as the first message on the socketpair;
 * it answers READY once it listens, or FATAL with the reason. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "els/log.h"
#include "mgmt.h"
#include "privdrop.h"
#include "sandbox.h"

#define START_WAIT_MS	     10000
#define ENDPOINT_LOG_PER_SEC 20

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- settings over the socketpair ---- */

int els_mgmt_conf_pack(const struct els_mgmt_conf *c, char **out, size_t *len)
{
	FILE *f = open_memstream(out, len);
	if (!f)
		return -ENOMEM;
	/* Only what the endpoint needs: no sweep command, nothing of the policy. */
	if (c->listen) {
		fprintf(f, "listen=%s%c", c->listen, 0);
		fprintf(f, "host=%s%c", c->host, 0);
		fprintf(f, "port=%u%c", c->port, 0);
	}
	if (c->console_address) {
		fprintf(f, "console_address=%s%c", c->console_address, 0);
		fprintf(f, "console_host=%s%c", c->console_host, 0);
		fprintf(f, "console_port=%u%c", c->console_port, 0);
		fprintf(f, "console_ca=%s%c", c->console_ca, 0);
		fprintf(f, "console_cert=%s%c", c->console_cert, 0);
		fprintf(f, "console_key=%s%c", c->console_key, 0);
		fprintf(f, "console_crl=%s%c", c->console_crl, 0);
		fprintf(f, "heartbeat_s=%u%c", c->heartbeat_s, 0);
		if (c->console_group)
			fprintf(f, "console_group=%s%c", c->console_group, 0);
	}
	fprintf(f, "ca=%s%c", c->ca, 0);
	fprintf(f, "cert=%s%c", c->cert, 0);
	fprintf(f, "key=%s%c", c->key, 0);
	fprintf(f, "crl=%s%c", c->crl, 0);
	fprintf(f, "user=%s%c", c->user, 0);
	fprintf(f, "max_clients=%u%c", c->max_clients, 0);
	fprintf(f, "timeout_s=%u%c", c->timeout_s, 0);
	fprintf(f, "handshake_timeout_s=%u%c", c->handshake_timeout_s, 0);
	fprintf(f, "reserved_slots=%u%c", c->reserved_slots, 0);
	fprintf(f, "per_source=%u%c", c->per_source, 0);
	fprintf(f, "per_source_preauth=%u%c", c->per_source_preauth, 0);
	fprintf(f, "buffer_mb=%u%c", c->buffer_mb, 0);
	return fclose(f) == 0 ? 0 : -ENOMEM;
}

static int set_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(v, &end, 10);
	if (!*v || *end || errno || x < lo || x > hi)
		return -EINVAL;
	*out = (unsigned)x;
	return 0;
}

int els_mgmt_conf_unpack(const char *buf, size_t len, struct els_mgmt_conf *c, char *err, size_t n)
{
	static const char *const strs[] = {"listen",	  "ca",		"cert",
					   "key",	  "crl",	"user",
					   "console_address", "console_ca", "console_cert",
					   "console_key", "console_crl", "console_group"};
	char **dst[] = {&c->listen,	  &c->ca,	  &c->cert,	    &c->key,
			&c->crl,	  &c->user,	  &c->console_address, &c->console_ca,
			&c->console_cert, &c->console_key, &c->console_crl, &c->console_group};
	unsigned port = 0, cport = 0;
	struct {
		const char *name;
		unsigned *v, lo, hi;
	} nums[] = {
	    {"port", &port, 1, 65535},
	    {"console_port", &cport, 1, 65535},
	    {"heartbeat_s", &c->heartbeat_s, 1, 3600},
	    {"max_clients", &c->max_clients, 1, 1024},
	    {"timeout_s", &c->timeout_s, 1, 3600},
	    {"handshake_timeout_s", &c->handshake_timeout_s, 1, 60},
	    {"reserved_slots", &c->reserved_slots, 0, 1023},
	    {"per_source", &c->per_source, 1, 1024},
	    {"per_source_preauth", &c->per_source_preauth, 1, 1024},
	    {"buffer_mb", &c->buffer_mb, ELS_MGMT_MAX_FRAME >> 20, 4096},
	};

	memset(c, 0, sizeof(*c));
	for (size_t off = 0; off < len;) {
		const char *kv = buf + off, *nul = memchr(kv, 0, len - off), *eq;
		if (!nul || !(eq = memchr(kv, '=', (size_t)(nul - kv)))) {
			snprintf(err, n, "settings: malformed entry at byte %zu", off);
			return -EINVAL;
		}
		size_t kl = (size_t)(eq - kv);
		const char *v = eq + 1;
		bool known = false;
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
			if (strlen(strs[i]) == kl && !memcmp(kv, strs[i], kl)) {
				free(*dst[i]);
				*dst[i] = strdup(v);
				known = true;
			}
		for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
			if (strlen(nums[i].name) == kl && !memcmp(kv, nums[i].name, kl)) {
				if (set_uint(v, nums[i].lo, nums[i].hi, nums[i].v) < 0) {
					snprintf(err, n, "settings: bad %s", nums[i].name);
					return -EINVAL;
				}
				known = true;
			}
		if (kl == 4 && !memcmp(kv, "host", 4)) {
			snprintf(c->host, sizeof(c->host), "%s", v);
			known = true;
		}
		if (kl == 12 && !memcmp(kv, "console_host", 12)) {
			snprintf(c->console_host, sizeof(c->console_host), "%s", v);
			known = true;
		}
		if (!known) {
			snprintf(err, n, "settings: unknown entry %.*s", (int)(kl > 40 ? 40 : kl),
				 kv);
			return -EINVAL;
		}
		off = (size_t)(nul - buf) + 1;
	}
	c->port = (uint16_t)port;
	c->console_port = (uint16_t)cport;
	/* Always: ca .. user; the listener's or the console's only with their address. */
	for (size_t i = 1; i < 6; i++)
		if (!*dst[i]) {
			snprintf(err, n, "settings: %s missing", strs[i]);
			return -EINVAL;
		}
	if (!c->listen && !c->console_address) {
		snprintf(err, n, "settings: neither a listen address nor a console address");
		return -EINVAL;
	}
	if (c->listen && (!c->host[0] || !c->port || !c->max_clients)) {
		snprintf(err, n, "settings: listen address missing");
		return -EINVAL;
	}
	if (c->console_address &&
	    (!c->console_host[0] || !c->console_port || !c->heartbeat_s || !c->console_ca ||
	     !c->console_cert || !c->console_key || !c->console_crl)) {
		snprintf(err, n, "settings: console settings incomplete");
		return -EINVAL;
	}
	return 0;
}

/* ---- the main process's side ---- */

/* A descriptor moved to 10 or above, so that the dup2 to 0-3 in the child always copies
 * (dup2 onto itself would keep FD_CLOEXEC). */
static int high_fd(int fd)
{
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return h;
}

void els_mgmt_log_line(const char *line)
{
	static uint64_t second;
	static unsigned count, suppressed;
	uint64_t sec = now_ms() / 1000;
	char clean[256];
	size_t o = 0;

	if (sec != second) {
		if (suppressed)
			els_log(ELS_LL_WARNING, "management endpoint: %u more lines not logged",
				suppressed);
		second = sec;
		count = suppressed = 0;
	}
	if (++count > ENDPOINT_LOG_PER_SEC) {
		suppressed++;
		return;
	}
	/* The endpoint may be compromised: nothing it says may forge a line of elsd's log or
	 * move a terminal's cursor. */
	for (const unsigned char *s = (const unsigned char *)line; *s && o + 1 < sizeof(clean); s++)
		clean[o++] = *s >= 0x20 && *s < 0x7f ? (char)*s : '?';
	clean[o] = 0;
	els_log(ELS_LL_INFO, "management endpoint: %s", clean);
}

static int spawn(int child_end, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	char *argv[] = {"elsd", ELS_MGMT_ENDPOINT_FLAG, NULL};
	char *envp[] = {NULL};
	int rc;

	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -errno;
	null = high_fd(null);
	if (null < 0)
		return -errno;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	posix_spawn_file_actions_adddup2(&fa, null, 0);
	posix_spawn_file_actions_adddup2(&fa, null, 1);
	posix_spawn_file_actions_adddup2(&fa, null, 2);
	posix_spawn_file_actions_adddup2(&fa, child_end, ELS_MGMT_ENDPOINT_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, ELS_MGMT_ENDPOINT_FD + 1);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	/* Its own session: a Ctrl-C or SIGHUP to elsd's terminal or group never reaches it. */
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
					  POSIX_SPAWN_SETSID);
	/* /proc/self/exe is resolved in the new process, a copy of elsd until the exec: the
	 * very binary that runs, even if the file was replaced since (an upgrade). */
	rc = -posix_spawn(pid, "/proc/self/exe", &fa, &at, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	close(null);
	return rc;
}

int els_mgmt_spawn(const struct els_mgmt_conf *c, pid_t *pid, int *fd)
{
	int sv[2];
	pid_t p;
	char *conf = NULL;
	size_t conf_len = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		els_log(ELS_LL_ERROR, "management: socketpair: %s", strerror(errno));
		return -errno;
	}
	sv[1] = high_fd(sv[1]);
	int rc = sv[1] < 0 ? -errno : spawn(sv[1], &p);
	if (sv[1] >= 0)
		close(sv[1]);
	if (rc < 0) {
		els_log(ELS_LL_ERROR,
			"management: cannot start the endpoint (/proc/self/exe %s): %s",
			ELS_MGMT_ENDPOINT_FLAG, strerror(-rc));
		close(sv[0]);
		return rc;
	}
	struct els_ipc ipc;
	struct els_ipc_msg m = {0};
	els_ipc_init(&ipc, sv[0]);
	rc = els_mgmt_conf_pack(c, &conf, &conf_len);
	if (rc == 0)
		rc = els_ipc_send(&ipc, ELS_IPC_CONFIG, 0, conf, conf_len);
	free(conf);
	if (rc < 0)
		els_log(ELS_LL_ERROR, "management: cannot send the endpoint its settings: %s",
			strerror(-rc));
	else
		rc = -ETIMEDOUT;
	/* Wait for the endpoint to say it listens, so that a bad key or a busy port stops the
	 * start with the reason instead of leaving an agent nobody can manage. */
	for (uint64_t end = now_ms() + START_WAIT_MS; rc == -ETIMEDOUT && now_ms() < end;) {
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
			if (c->listen)
				els_log(ELS_LL_INFO, "management: listening on %s (TLS 1.3, mutual)",
					(const char *)m.body);
			else
				els_log(ELS_LL_INFO, "management: endpoint started, no listener "
						     "(it dials the console only)");
			rc = 0;
		} else if (m.type == ELS_IPC_LOG) {
			els_mgmt_log_line((const char *)m.body);
		} else {
			els_log(ELS_LL_ERROR, "management: %s",
				m.type == ELS_IPC_FATAL ? (const char *)m.body
							: "unexpected message at start");
			rc = -EINVAL;
		}
		free(m.body);
		m.body = NULL;
	}
	if (rc < 0) {
		if (rc == -ETIMEDOUT)
			els_log(ELS_LL_ERROR, "management: the endpoint did not start in %u s",
				START_WAIT_MS / 1000);
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

/* ---- the endpoint's start ---- */

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
	/* A connection reaches the endpoint once its first bytes (a ClientHello) have come, or
	 * after the kernel's SYN-ACK retries for about this long: one opened only to hold a
	 * slot costs the endpoint nothing meanwhile, and a console's arrives with its progress
	 * already visible to the eviction order (mgmt.c). */
	int defer = (int)c->handshake_timeout_s;
	setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
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
	const char *step;
	int rc;

	els_privdrop_bounding(-1); /* while root may still do it */
	/* Already that user (elsd started unprivileged as it): nothing to switch, the
	 * capability and no_new_privs steps below still apply. */
	bool same = getuid() == uid && geteuid() == uid;
	if (!same && (rc = els_privdrop_become(uid, gid, &step)) < 0) {
		snprintf(err, n,
			 "cannot become user \"%s\": %s (elsd runs as uid %u: start it as root, "
			 "or give it CAP_SETUID and CAP_SETGID, or set management.user to the "
			 "account elsd runs as)",
			 user, strerror(-rc), (unsigned)getuid());
		return -1;
	}
	if (setuid(0) == 0 || geteuid() != uid || (!same && getegid() != gid)) {
		snprintf(err, n, "privileges could be regained after becoming \"%s\"", user);
		return -1;
	}
	if (els_privdrop_confine(err, n) < 0)
		return -1;
	return same;
}

static _Noreturn void fatal_to_parent(struct els_ipc *ipc, const char *msg)
{
	els_ipc_send(ipc, ELS_IPC_FATAL, 0, msg, strlen(msg));
	_exit(1);
}

/* The settings: the first message, within the start-up wait of the main process. */
static void read_settings(struct els_ipc *ipc, struct els_mgmt_conf *c)
{
	struct els_ipc_msg m = {0};
	char err[256];
	for (uint64_t end = now_ms() + START_WAIT_MS; now_ms() < end;) {
		struct pollfd pf = {.fd = ipc->fd, .events = POLLIN};
		if (poll(&pf, 1, 200) < 0 && errno != EINTR)
			_exit(1);
		int r = els_ipc_recv(ipc, &m);
		if (r == 0)
			continue;
		if (r < 0)
			_exit(1);
		if (m.type != ELS_IPC_CONFIG)
			fatal_to_parent(ipc, "management endpoint: expected its settings first");
		if (els_mgmt_conf_unpack((const char *)m.body, m.len, c, err, sizeof(err)) < 0)
			fatal_to_parent(ipc, err);
		free(m.body);
		return;
	}
	_exit(1);
}

int els_mgmt_endpoint_main(void)
{
	static struct els_mgmt_conf c;
	struct els_mgmt_tls tls;
	struct els_ipc ipc;
	struct stat st;
	char err[512];

	/* Only ever started by elsd: fd 3 must be the socketpair. */
	if (fstat(ELS_MGMT_ENDPOINT_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "elsd: %s is elsd's own, not for use from a shell\n",
			ELS_MGMT_ENDPOINT_FLAG);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	/* A `kill -HUP` or Ctrl-C meant for elsd must not kill the endpoint: it ends when the
	 * main process does (EOF on the socketpair, or the death signal). */
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	prctl(PR_SET_NAME, "elsd-mgmt");
	fcntl(ELS_MGMT_ENDPOINT_FD, F_SETFD, FD_CLOEXEC);
	close_range(ELS_MGMT_ENDPOINT_FD + 1, ~0u, 0);
	els_ipc_init(&ipc, ELS_MGMT_ENDPOINT_FD);
	if (chdir("/") < 0)
		fatal_to_parent(&ipc, "chdir /");
	read_settings(&ipc, &c);

	if (els_mgmt_tls_load(&tls, &c, err, sizeof(err)) < 0)
		fatal_to_parent(&ipc, err);
	int lfd = c.listen ? listen_on(&c, err, sizeof(err)) : -1;
	if (c.listen && lfd < 0)
		fatal_to_parent(&ipc, err);
	int same_uid = drop_privileges(c.user, err, sizeof(err));
	if (same_uid < 0)
		fatal_to_parent(&ipc, err);
	/* The filesystem is gone from here on: the TLS files are loaded, the CRL comes over the
	 * socketpair. Under the same uid as elsd, this is what keeps the endpoint from elsd's
	 * policy and monitor files, so without Landlock it must not run at all. */
	int abi = els_sandbox_endpoint(err, sizeof(err));
	if (abi < 0)
		fatal_to_parent(&ipc, err);
	if (abi == 0 && same_uid)
		fatal_to_parent(
		    &ipc, "the endpoint would run under elsd's own account and this kernel has "
			  "no Landlock to keep it from elsd's files: start elsd as root (the "
			  "endpoint then becomes management.user), or use a kernel with Landlock");
	/* Last: from here no socket can be made, no program run, no namespace entered. */
	if (els_mgmt_seccomp(err, sizeof(err)) < 0)
		fatal_to_parent(&ipc, err);
	els_mgmt_log(&ipc, "confined: uid %u, no capabilities, Landlock ABI %d, seccomp filter",
		     (unsigned)getuid(), abi);
	const char *ready = c.listen ? c.listen : "-";
	els_ipc_send(&ipc, ELS_IPC_READY, 0, ready, strlen(ready));
	els_mgmt_serve(&c, &tls, &ipc, lfd);
	_exit(0);
}
