/* Ruleset integrity watch (see rulewatch.h). */
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/capability.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "els/clock.h"
#include "els/monitor.h"
#include "els/reason.h"
#include "els/log.h"
#include "metrics.h"
#include "rulewatch.h"

#define QUIET_NS       (20 * ELS_NS_PER_MS)  /* a burst of changes ends after this much quiet */
#define BURST_MAX_NS   (300 * ELS_NS_PER_MS) /* ...or is checked this long after it began */
#define PERIOD_NS      (10 * ELS_NS_PER_S)   /* checked anyway: iptables-legacy is not announced */
#define RUN_TIMEOUT_MS 10000		     /* an els-rules that hangs is killed */
#define HEAL_DEFAULT   10 /* restores per window and window seconds (rules.heal_max, heal_window_s): */
			  /* bounded so that a fight with another manager cannot spin */
#define OUT_MAX	       1024
#ifndef ELS_NS_PER_MS
#define ELS_NS_PER_MS 1000000ull
#endif

struct els_rulewatch {
	pthread_t thread;
	int stop_fd;		     /* eventfd: the main thread's stop */
	struct mnl_socket *nl;	     /* NFNLGRP_NFTABLES notifications */
	atomic_bool self_heal;	     /* [A] rules.self_heal, from reloads */
	_Atomic unsigned heal_max;   /* [A] rules.heal_max */
	_Atomic uint64_t heal_win;   /* [A] rules.heal_window_s, in ns */
	_Atomic uint32_t generation; /* [A] recorded with events */
	struct els_ring *ring;	     /* [T] this thread's monitor ring */
	char *program, *config, *self_exe;
	char *env[8]; /* [I] the clean environment of els-rules */
	/* [T] what the last checks found */
	bool armed; /* the rules were seen in place once */
	bool told_unarmed;
	bool recheck;		    /* a restore ran: check again, for changes made while it ran */
	bool admin_removed;	    /* `els-rules remove`: no restore until they are back */
	char last_failure[OUT_MAX]; /* the restore failure last alerted */
	char last_finding[OUT_MAX]; /* the alteration last alerted, so it is alerted once */
	uint64_t heal_window_ns;
	unsigned heals;
};

/* Runs `els-rules ARGS... -c CONFIG` and collects its last non-empty output line (without the
 * journal's "<N>" prefix and the program's name) into out. Returns its exit status, or -1. */
static int run_rules(struct els_rulewatch *w, const char *a1, const char *a2, char *out,
		     size_t outlen)
{
	char *argv[6];
	unsigned ac = 0;
	argv[ac++] = w->program;
	argv[ac++] = (char *)a1;
	if (a2)
		argv[ac++] = (char *)a2;
	argv[ac++] = "-c";
	argv[ac++] = w->config;
	argv[ac] = NULL;
	int pfd[2];
	posix_spawn_file_actions_t fa;
	pid_t pid;
	int rc = -1, status;
	char buf[4096];
	size_t n = 0;

	out[0] = '\0';
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 2);
	/* The child starts with no blocked signals (elsd blocks SIGTERM and friends). */
	posix_spawnattr_t at;
	sigset_t none;
	sigemptyset(&none);
	posix_spawnattr_init(&at);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
	int e = posix_spawn(&pid, w->program, &fa, &at, argv, w->env);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	if (e != 0) {
		close(pfd[0]);
		snprintf(out, outlen, "cannot run %s: %s", w->program, strerror(e));
		return -1;
	}
	uint64_t deadline = els_now_mono() + (uint64_t)RUN_TIMEOUT_MS * ELS_NS_PER_MS;
	for (;;) {
		uint64_t now = els_now_mono();
		if (now >= deadline) {
			kill(pid, SIGKILL);
			snprintf(buf, sizeof(buf), "%s %s: killed after %d ms", w->program, a1,
				 RUN_TIMEOUT_MS);
			n = strlen(buf);
			break;
		}
		struct pollfd p = {.fd = pfd[0], .events = POLLIN};
		if (poll(&p, 1, (int)((deadline - now) / ELS_NS_PER_MS) + 1) < 0 && errno != EINTR)
			break;
		ssize_t r = read(pfd[0], buf + n, sizeof(buf) - 1 - n);
		if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN))
			break;
		if (r > 0) {
			n += (size_t)r;
			if (n == sizeof(buf) - 1) { /* keep the tail: the last line is the result */
				memmove(buf, buf + n / 2, n - n / 2);
				n -= n / 2;
			}
		}
	}
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	char *line = strrchr(buf, '\n');
	line = line ? line + 1 : buf;
	if (line[0] == '<' && line[1] && line[2] == '>')
		line += 3;
	if (strncmp(line, "els-rules: ", 11) == 0)
		line += 11;
	snprintf(out, outlen, "%s", line);
	return rc;
}

static void record(struct els_rulewatch *w, unsigned reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void record(struct els_rulewatch *w, unsigned reason, const char *fmt, ...)
{
	struct els_record r = {.kind = ELS_REC_EVENT,
			       .ts_ns = els_now_real(),
			       .count = 1,
			       .reason = (uint16_t)reason,
			       .generation = atomic_load(&w->generation),
			       .handler = "rulewatch"};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	if (w->ring && !els_ring_push(w->ring, &r))
		els_log(ELS_LL_WARNING, "rules: monitor ring full, event not recorded: %s",
			r.detail);
}

/* True while restores stay under heal_max per heal window. */
static bool heal_allowed(struct els_rulewatch *w, uint64_t now)
{
	if (now - w->heal_window_ns >= atomic_load(&w->heal_win)) {
		w->heal_window_ns = now;
		w->heals = 0;
	}
	return w->heals < atomic_load(&w->heal_max);
}

static void set_heal(struct els_rulewatch *w, const struct els_rulewatch_opts *o)
{
	atomic_store(&w->self_heal, o->self_heal);
	atomic_store(&w->heal_max, o->heal_max ? o->heal_max : HEAL_DEFAULT);
	atomic_store(&w->heal_win,
		     (uint64_t)(o->heal_window_s ? o->heal_window_s : HEAL_DEFAULT) * ELS_NS_PER_S);
}

/* Reads every pending notification; true when one is about tables, chains or rules (set
 * elements, e.g. a ban list, change often and never move the steering rules), or some were
 * lost (ENOBUFS: the socket overflowed, so anything may have changed). */
static bool drain_notifications(struct els_rulewatch *w)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool relevant = false;

	while (w->nl) {
		ssize_t n = mnl_socket_recvfrom(w->nl, buf, sizeof(buf));
		if (n < 0) {
			if (errno == ENOBUFS) {
				relevant = true;
				continue;
			}
			break; /* EAGAIN: drained */
		}
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		int len = (int)n;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
			if (NFNL_SUBSYS_ID(h->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
				continue;
			switch (NFNL_MSG_TYPE(h->nlmsg_type)) {
			case NFT_MSG_NEWTABLE:
			case NFT_MSG_DELTABLE:
			case NFT_MSG_NEWCHAIN:
			case NFT_MSG_DELCHAIN:
			case NFT_MSG_NEWRULE:
			case NFT_MSG_DELRULE:
				relevant = true;
				break;
			default:
				break;
			}
		}
	}
	return relevant;
}

static void restore(struct els_rulewatch *w, uint64_t detected_ns, const char *finding)
{
	char out[OUT_MAX], clean[OUT_MAX];
	uint64_t now = els_now_mono();

	if (!heal_allowed(w, now)) {
		unsigned max = atomic_load(&w->heal_max);
		unsigned long long win_s = atomic_load(&w->heal_win) / ELS_NS_PER_S;
		if (w->heals++ == max) { /* once per window */
			els_log(ELS_LL_ERROR,
				"rules: %u restores in %llu s and they keep being changed: not "
				"restoring until the window ends (another firewall manager?)",
				max, win_s);
			record(w, ELS_R_RULES_ALTERED, "restores paused: %u in %llu s", max, win_s);
			els_alert(ELS_R_RULES_ALTERED, "restore=paused restores=%u window_s=%llu",
				  max, win_s);
		}
		return;
	}
	w->heals++;
	int rc = run_rules(w, "install", "--restore", out, sizeof(out));
	/* Our own changes are announced too: read them now, so that they are not taken for
	 * somebody else's, and check once more right after, since somebody else's change made
	 * while the restore ran was read with them. */
	drain_notifications(w);
	w->recheck = true;
	uint64_t ms = (els_now_mono() - detected_ns) / ELS_NS_PER_MS;
	els_alert_clean(clean, sizeof(clean), out);
	if (rc == 0) {
		els_log(ELS_LL_WARNING, "rules: restored %llu ms after the change was seen: %s",
			(unsigned long long)ms, out);
		record(w, ELS_R_RULES_RESTORED, "steering rules restored in %llu ms",
		       (unsigned long long)ms);
		els_alert(ELS_R_RULES_RESTORED, "restore_ms=%llu checked=\"%.300s\"",
			  (unsigned long long)ms, clean);
		w->last_finding[0] = '\0';
		w->last_failure[0] = '\0';
	} else if (rc == 6) {
		/* Put back while the restore waited for els-rules' lock, by another run (a
		 * firewall loader's `els-rules release`, packaging/dropins): not a restore of
		 * ours, so it does not count towards the pause. */
		w->heals--;
		els_log(ELS_LL_WARNING, "rules: back %llu ms after the change was seen, put back "
			"by another els-rules run: %s", (unsigned long long)ms, out);
		record(w, ELS_R_RULES_RESTORED, "steering rules back in %llu ms (another run)",
		       (unsigned long long)ms);
		els_alert(ELS_R_RULES_RESTORED, "restore_ms=%llu by=other checked=\"%.300s\"",
			  (unsigned long long)ms, clean);
		w->last_finding[0] = '\0';
		w->last_failure[0] = '\0';
	} else if (rc == 5) { /* said once; checks go on, restores wait for an install */
		w->heals--;
		w->admin_removed = true;
		els_log(ELS_LL_WARNING, "rules: %s", out);
		record(w, ELS_R_RULES_ALTERED, "not restored: removed by the administrator");
	} else if (strcmp(out, w->last_failure) != 0) { /* each distinct failure once */
		snprintf(w->last_failure, sizeof(w->last_failure), "%s", out);
		els_log(ELS_LL_ERROR, "rules: restoring failed (exit %d): %s (was: %s)", rc, out,
			finding);
		record(w, ELS_R_RULES_ALTERED, "restore failed (exit %d): %.60s", rc, out);
		els_alert(ELS_R_RULES_ALTERED, "restore=failed exit=%d reason=\"%.300s\"", rc,
			  clean);
	}
}

static void check(struct els_rulewatch *w, uint64_t detected_ns, const char *why)
{
	char out[OUT_MAX], clean[OUT_MAX];
	int rc = run_rules(w, "verify", NULL, out, sizeof(out));

	if (rc == 0) {
		els_metrics_set_ruleset_intact(true); /* the els_ruleset_intact gauge (metrics.h) */
		if (!w->armed || w->last_finding[0])
			els_log(ELS_LL_INFO, "rules: %s", out);
		w->armed = true;
		w->admin_removed = false;
		w->last_finding[0] = '\0';
		w->last_failure[0] = '\0';
		return;
	}
	if (rc != 1 && rc != 3) { /* could not check */
		if (strcmp(out, w->last_finding) != 0)
			els_log(ELS_LL_ERROR,
				"rules: cannot check the steering rules (exit %d): %s", rc, out);
		snprintf(w->last_finding, sizeof(w->last_finding), "%s", out);
		return;
	}
	if (rc == 3 && !w->armed) {
		if (!w->told_unarmed)
			els_log(ELS_LL_WARNING,
				"rules: %s; elsd was started without them and does not install "
				"them itself ('els-rules install' does)",
				out);
		w->told_unarmed = true;
		return;
	}
	els_metrics_set_ruleset_intact(false);
	bool heal = atomic_load(&w->self_heal);
	if (strcmp(out, w->last_finding) != 0) {
		snprintf(w->last_finding, sizeof(w->last_finding), "%s", out);
		els_log(ELS_LL_ERROR, "rules: %s (seen: %s)%s", out, why,
			heal ? "; restoring" : "; self_heal is off: not restored");
		record(w, ELS_R_RULES_ALTERED, "%.95s", out);
		els_alert(ELS_R_RULES_ALTERED, "self_heal=%s found=\"%.400s\"", heal ? "on" : "off",
			  els_alert_clean(clean, sizeof(clean), out));
	}
	if (heal && !w->admin_removed)
		restore(w, detected_ns, out);
}

/* els-rules needs CAP_NET_ADMIN, which an exec keeps only from the ambient set. Capabilities
 * are per thread: raising it here, with the raw syscalls (libcap may apply a change to every
 * thread), gives it to the children of this thread alone, whatever the rest of elsd does
 * with its own ambient set (a sweep child, for one, must not inherit it). elsd started as
 * root (no privilege drop) needs none of this: root's exec gets its capabilities anyway. */
static void keep_net_admin_for_children(void)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &h, c) < 0 || !(c[0].permitted & (1u << CAP_NET_ADMIN)))
		return;
	c[0].inheritable |= 1u << CAP_NET_ADMIN;
	if (syscall(SYS_capset, &h, c) < 0 ||
	    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0L, 0L) < 0)
		els_log(ELS_LL_WARNING,
			"rules: cannot pass CAP_NET_ADMIN on to els-rules (%s): restores may fail",
			strerror(errno));
}

static void *watch_main(void *arg)
{
	struct els_rulewatch *w = arg;
	uint64_t next_period = els_now_mono(); /* the first check now */
	uint64_t burst_start = 0, last_change = 0;

	pthread_setname_np(pthread_self(), "elsd-rules");
	if (geteuid() != 0)
		keep_net_admin_for_children();
	for (;;) {
		uint64_t now = els_now_mono();
		if (w->recheck) { /* after a restore: as after a change */
			w->recheck = false;
			burst_start = last_change = now;
		}
		uint64_t due = next_period;
		if (burst_start) {
			uint64_t quiet = last_change + QUIET_NS, cap = burst_start + BURST_MAX_NS;
			due = quiet < cap ? quiet : cap;
		}
		int ms = due > now ? (int)((due - now + ELS_NS_PER_MS - 1) / ELS_NS_PER_MS) : 0;
		struct pollfd p[2] = {
		    {.fd = w->stop_fd, .events = POLLIN},
		    {.fd = w->nl ? mnl_socket_get_fd(w->nl) : -1, .events = POLLIN}};
		int n = poll(p, 2, ms);
		if (n > 0 && p[0].revents)
			break;
		now = els_now_mono();
		if (n > 0 && p[1].revents && drain_notifications(w)) {
			if (!burst_start)
				burst_start = now;
			last_change = now;
		}
		if (burst_start &&
		    (now >= last_change + QUIET_NS || now >= burst_start + BURST_MAX_NS)) {
			uint64_t seen = burst_start;
			burst_start = 0;
			check(w, seen, "nf_tables change notification");
			next_period = els_now_mono() + PERIOD_NS;
		} else if (!burst_start && now >= next_period) {
			check(w, now, "periodic check");
			next_period = els_now_mono() + PERIOD_NS;
		}
	}
	return NULL;
}

static char *env_str(const char *name, const char *value)
{
	char *s = NULL;
	if (asprintf(&s, "%s=%s", name, value) < 0)
		return NULL;
	return s;
}

static void free_watch(struct els_rulewatch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	for (unsigned i = 0; i < sizeof(w->env) / sizeof(w->env[0]); i++)
		free(w->env[i]);
	free(w->program);
	free(w->config);
	free(w->self_exe);
	free(w);
}

struct els_rulewatch *els_rulewatch_start(const struct els_rulewatch_opts *o)
{
	const char *prog = o->program ? o->program : getenv("ELS_RULES");
	struct els_rulewatch *w = calloc(1, sizeof(*w));
	char exe[4096];

	if (!w)
		return NULL;
	w->stop_fd = -1;
	if (!prog || !*prog)
		prog = "/usr/sbin/els-rules";
	if (access(prog, X_OK) < 0) {
		els_log(ELS_LL_WARNING,
			"rules: cannot run %s (%s): the steering rules are not watched (set "
			"ELS_RULES to els-rules' path)",
			prog, strerror(errno));
		goto fail;
	}
	ssize_t el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[el > 0 ? el : 0] = '\0';
	w->program = strdup(prog);
	w->config = strdup(o->config);
	w->ring = o->ring;
	set_heal(w, o);
	atomic_store(&w->generation, o->generation);
	/* A clean environment: nothing of elsd's own (BASH_ENV, LD_PRELOAD, NOTIFY_SOCKET) reaches
	 * the script; the same elsd binary reads the config for it. */
	unsigned ne = 0;
	w->env[ne++] = env_str("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
	if (el > 0)
		w->env[ne++] = env_str("ELSD", exe);
	static const char *const pass[] = {"ELS_RULES_BACKEND", "ELS_RULES_STATE",
					   "ELS_RULES_LOCK"};
	for (unsigned i = 0; i < sizeof(pass) / sizeof(pass[0]); i++)
		if (getenv(pass[i]))
			w->env[ne++] = env_str(pass[i], getenv(pass[i]));
	for (unsigned i = 0; i < ne; i++)
		if (!w->env[i] || !w->program || !w->config)
			goto fail;

	w->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int group = NFNLGRP_NFTABLES, rcvbuf = 1 << 20;
	if (!w->nl || mnl_socket_bind(w->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    mnl_socket_setsockopt(w->nl, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0) {
		els_log(ELS_LL_WARNING,
			"rules: cannot subscribe to nf_tables notifications (%s): the steering "
			"rules are checked every %llu s only",
			strerror(errno), (unsigned long long)(PERIOD_NS / ELS_NS_PER_S));
		if (w->nl)
			mnl_socket_close(w->nl);
		w->nl = NULL;
	}
	if (w->nl && setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
				sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(w->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->stop_fd < 0)
		goto fail;
	if (pthread_create(&w->thread, NULL, watch_main, w) != 0) {
		els_log(ELS_LL_ERROR, "rules: cannot start the watch thread");
		goto fail;
	}
	els_log(ELS_LL_INFO, "rules: watching the ruleset (%s), self_heal %s, checks by %s",
		w->nl ? "nf_tables notifications" : "periodic checks only",
		o->self_heal ? "on" : "off", w->program);
	return w;
fail:
	free_watch(w);
	return NULL;
}

void els_rulewatch_update(struct els_rulewatch *w, const struct els_rulewatch_opts *o)
{
	if (!w)
		return;
	set_heal(w, o);
	atomic_store(&w->generation, o->generation);
}

void els_rulewatch_stop(struct els_rulewatch *w)
{
	if (!w)
		return;
	uint64_t one = 1;
	if (write(w->stop_fd, &one, sizeof(one)) == sizeof(one))
		pthread_join(w->thread, NULL);
	free_watch(w);
}
