/* The running daemon: queues and worker threads, the management endpoint, signals, the
 * watchdog, shutdown. main.c parses options and hands over here; a reload is reload.c. */
#include <errno.h>
#include <getopt.h>
#include <libconfig.h>
#include <libgen.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "alert.h"
#include "control.h"
#include "ctlsock.h"
#include "daemon.h"
#include "daemon_int.h"
#include "els/clock.h"
#include "els/monitor.h"
#include "els/policy.h"
#include "els/registry.h"
#include "generation.h"
#include "import.h"
#include "events.h"
#include "kdrops.h"
#include "els/log.h"
#include "metrics.h"
#include "dialout.h"
#include "mgmt.h"
#include "notify.h"
#include "privdrop.h"
#include "queue.h"
#include "replay.h"
#include "rulewatch.h"
#include "sessions.h"
#include "worker.h"

void els_push_event(struct els_ring *ring, uint32_t gen, const char *fmt, ...)
{
	struct els_record r = {.kind = ELS_REC_EVENT,
			       .ts_ns = els_now_real(),
			       .count = 1,
			       .reason = ELS_R_EVENT,
			       .generation = gen,
			       .handler = "elsd"};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r.detail, sizeof(r.detail), fmt, ap);
	va_end(ap);
	els_ring_push(ring, &r);
}

struct els_monitor *els_open_monitor(const struct els_run_opts *o, const struct els_policy *p,
				     unsigned producers)
{
	struct els_diag d;
	els_diag_init(&d, o->config);
	struct els_monitor_opts mo = {
	    .path = o->monitor ? o->monitor : p->set.monitor_path,
	    .producers = producers,
	    .ring_size = p->set.monitor_ring,
	    .batch_max = 4096,
	    .flush_ms = 200,
	    .key_file = p->set.monitor_key,
	    .agent_id = p->set.agent_id,
	    .retention_days = p->set.monitor_retention_days,
	    .max_size = p->set.monitor_max_mb == ELS_MONITOR_MAX_MB_AUTO
			    ? ELS_MONITOR_SIZE_AUTO
			    : (uint64_t)p->set.monitor_max_mb << 20,
	};
	struct els_monitor *m = els_monitor_open(&mo, &d);
	if (!m || els_monitor_start(m) < 0) {
		els_diag_print(&d, stderr);
		if (m)
			els_monitor_close(m);
		m = NULL;
	}
	if (m) {
		struct els_monitor_stats ms;

		els_monitor_get_stats(m, &ms);
		if (ms.max_size)
			els_log(ELS_LL_INFO, "monitor %s: size cap %llu MiB%s", mo.path,
				(unsigned long long)(ms.max_size >> 20),
				mo.max_size == ELS_MONITOR_SIZE_AUTO
				    ? " (monitor.max_size_mb unset: 10% of its file system, at "
				      "most 1024)"
				    : "");
		else
			els_log(ELS_LL_WARNING,
				"monitor %s: no size cap (monitor.max_size_mb = 0): a flood of "
				"distinct drops can fill its file system",
				mo.path);
	}
	els_diag_free(&d);
	return m;
}

void els_drain_monitor(void *arg)
{
	els_monitor_sync(arg, 10000);
}

#define MGMT_BACKOFF_MAX_S 60u
/* How often the CRL file is checked for a change made without a SIGHUP (a stat). */
#define CRL_WATCH_NS (2 * ELS_NS_PER_S)

struct worker_arg {
	struct daemon *d;
	unsigned i;
};

static void *worker_main(void *arg)
{
	struct worker_arg *a = arg;
	char name[16];
	snprintf(name, sizeof(name), "elsd-q%u", a->d->workers[a->i].queue);
	pthread_setname_np(pthread_self(), name);
	if (els_queue_run(a->d->queues[a->i], &a->d->stop) < 0) {
		atomic_store(&a->d->failed, true);
		atomic_store(&a->d->stop, true);
		kill(getpid(), SIGTERM); /* wake the main thread */
	}
	return NULL;
}

/* The endpoint's word on the console connection: logged by the dialout, recorded on a change. */
static void dial_status(void *arg, bool up, const char *text)
{
	struct daemon *d = arg;
	if (!els_dialout_report(d->dial, up, text))
		return;
	els_push_event(d->ctl, d->running->generation, "mgmt console %.40s %s: %.60s",
		       els_dialout_address(d->dial), up ? "connected" : "down", text);
}

/* Every turn of the loop: connects when due, hands the socket (after the state, so that hello
 * carries it) to the endpoint, and sends the state every heartbeat_s. */
static void dial_step(struct daemon *d, short revents)
{
	if (!d->dial)
		return;
	if (els_control_down(d->control) && els_dialout_connected(d->dial))
		dial_status(d, false, "the management endpoint stopped");
	int fd = els_dialout_step(d->dial, revents);
	bool due = els_dialout_state_due(d->dial);
	if (fd < 0 && !due)
		return;
	struct els_monitor_stats ms = {0};
	if (d->mon)
		els_monitor_get_stats(d->mon, &ms);
	struct els_dialout_state_in in = {.group = els_dialout_group(d->dial),
					  .p = d->running,
					  .workers = d->workers,
					  .nq = d->nq,
					  .rules_ok = els_metrics_ruleset_intact(),
					  .monitor_ok = ms.write_errors == 0};
	char *state = els_dialout_state_json(&in);
	if (state)
		els_control_send_state(d->control, state);
	free(state);
	if (fd >= 0) {
		int rc = els_control_send_dial(d->control, fd, els_dialout_address(d->dial));
		close(fd);
		els_dialout_handed(d->dial, rc == 0);
	}
}

/* Sets up the main-process side of the management endpoint forked at start (pid, fd). */
static int start_management(struct daemon *d, const struct els_policy *p, pid_t pid, int fd)
{
	const struct els_mgmt_conf *mc = p->set.mgmt;

	if (!mc)
		return 0;
	struct els_control_env env = {
	    .config_path = d->opt->config,
	    .services_path = d->opt->services,
	    .monitor_path = d->opt->monitor ? d->opt->monitor : p->set.monitor_path,
	    .workers = d->workers,
	    .nq = d->nq,
	    .mon = d->mon,
	    .ctl = d->ctl,
	    .start_mono_ns = d->start_ns,
	    .running = els_daemon_running,
	    .commit = els_daemon_commit_cb,
	    .last_reload = &d->last_reload,
	    .dial_status = dial_status,
	    .arg = d,
	};
	char err[256];
	/* Without a listener nobody presents a certificate of the management CA: no trust (its
	 * files need not exist), and any request that came that way would be refused. */
	struct els_mgmt_trust *trust = NULL, *ctrust = NULL;
	if (mc->listen && !(trust = els_mgmt_trust_new(mc->ca, mc->crl, err, sizeof(err)))) {
		els_log(ELS_LL_ERROR, "management: %s", err);
		return -1;
	}
	if (mc->console_address &&
	    (!(ctrust = els_mgmt_trust_new(mc->console_ca, mc->console_crl, err, sizeof(err))) ||
	     !(d->dial = els_dialout_new(mc)))) {
		els_log(ELS_LL_ERROR, "console: %s", ctrust ? "out of memory" : err);
		els_mgmt_trust_free(trust);
		els_mgmt_trust_free(ctrust);
		return -1;
	}
	d->mgmt_started_ns = els_now_mono();
	d->mgmt_backoff_s = 1;
	d->control = els_control_new(&env, fd, pid, trust);
	if (!d->control) {
		els_mgmt_trust_free(trust);
		els_mgmt_trust_free(ctrust);
		return -1; /* on failure the caller still owns pid and fd */
	}
	if (ctrust)
		els_control_set_console(d->control, ctrust, mc->console_host);
	return 0;
}

/* A dead endpoint (a crash, a kill) is started again, so that consoles reach the agent without
 * a restart of the filter: after 1 s, doubling up to a minute while restarts keep failing or
 * the new endpoint keeps dying, back to 1 s once one has stayed up a minute. Each start waits
 * for the endpoint to listen (agent/mgmt.h, up to 10 s) on this thread; the packet path never
 * waits for it. A start can fail for good where the main process has dropped privileges the
 * endpoint's start needs (a management.user other than elsd's own, a key only root reads);
 * each attempt logs why. */
static void restart_management(struct daemon *d)
{
	const struct els_mgmt_conf *mc = d->running->set.mgmt;
	uint64_t now = els_now_mono();

	if (!mc || !els_control_down(d->control))
		return;
	if (!d->mgmt_retry_ns) {
		if (now - d->mgmt_started_ns >= (uint64_t)MGMT_BACKOFF_MAX_S * ELS_NS_PER_S)
			d->mgmt_backoff_s = 1;
		d->mgmt_retry_ns = now + d->mgmt_backoff_s * ELS_NS_PER_S;
		els_log(ELS_LL_INFO, "management: starting the endpoint again in %u s",
			d->mgmt_backoff_s);
		return;
	}
	if (now < d->mgmt_retry_ns)
		return;
	pid_t pid;
	int fd;
	unsigned waited = d->mgmt_backoff_s;
	d->mgmt_backoff_s = d->mgmt_backoff_s * 2 > MGMT_BACKOFF_MAX_S ? MGMT_BACKOFF_MAX_S
									: d->mgmt_backoff_s * 2;
	if (els_mgmt_spawn(mc, &pid, &fd) < 0) {
		d->mgmt_retry_ns = els_now_mono() + d->mgmt_backoff_s * ELS_NS_PER_S;
		els_log(ELS_LL_WARNING, "management: the endpoint did not start again; next try in "
					"%u s",
			d->mgmt_backoff_s);
		return;
	}
	els_control_attach(d->control, fd, pid);
	d->mgmt_retry_ns = 0;
	d->mgmt_started_ns = els_now_mono();
	els_log(ELS_LL_INFO, "management: endpoint started again (pid %d) after %u s", (int)pid,
		waited);
	els_push_event(d->ctl, d->running->generation, "management endpoint started again");
}

/* True when every worker has turned its loop since the last call: they wake at least every
 * 100 ms even when idle, so a worker that has not is stuck, and systemd should know. */
static bool workers_alive(struct daemon *d, uint64_t *last)
{
	bool alive = true;
	for (unsigned i = 0; i < d->nq; i++) {
		uint64_t hb = atomic_load_explicit(&d->workers[i].heartbeat, memory_order_relaxed);
		alive &= hb != last[i];
		last[i] = hb;
	}
	return alive;
}

static void kernel_dropped(unsigned queue, uint64_t queue_full, uint64_t sockbuf, void *arg)
{
	struct daemon *d = arg;
	struct els_record r = {.kind = ELS_REC_GAP,
			       .ts_ns = els_now_real(),
			       .count = queue_full + sockbuf,
			       .reason = ELS_R_QUEUE_OVERFLOW,
			       .generation = d->running->generation,
			       .handler = "queue"};
	snprintf(r.detail, sizeof(r.detail),
		 "queue %u: kernel dropped %llu packets unjudged (queue full %llu, socket %llu)",
		 queue, (unsigned long long)(queue_full + sockbuf), (unsigned long long)queue_full,
		 (unsigned long long)sockbuf);
	els_log(ELS_LL_WARNING, "%s", r.detail);
	els_alert_limited(ELS_R_QUEUE_OVERFLOW, "queue=%u dropped=%llu queue_full=%llu socket=%llu",
			  queue, (unsigned long long)r.count, (unsigned long long)queue_full,
			  (unsigned long long)sockbuf);
	els_ring_push(d->ctl, &r);
}

/* The main thread's loop: signals, and the watchdog at half the interval systemd asked for. */
static void supervise(struct daemon *d, const sigset_t *sigs)
{
	uint64_t wd_usec = els_notify_watchdog_usec();
	uint64_t period_ns = wd_usec ? wd_usec * 1000 / 2 : ELS_NS_PER_S;
	uint64_t *last = calloc(d->nq, sizeof(*last));
	uint64_t next = els_now_mono() + period_ns;
	uint64_t crl_next = els_now_mono() + CRL_WATCH_NS;
	/* signalfd rather than sigtimedwait, so that one poll also serves the management
	 * channel: the main thread never blocks on the endpoint, only on this poll. */
	int sfd = signalfd(-1, sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		els_log(ELS_LL_ERROR, "signalfd: %s; signals are checked once a second",
			strerror(errno));

	while (!atomic_load(&d->stop)) {
		uint64_t now = els_now_mono();
		uint64_t wake = next < crl_next ? next : crl_next;
		uint64_t wait = wake > now ? wake - now : 0;
		struct pollfd pfd[5] = {{.fd = sfd, .events = POLLIN},
					{.fd = els_control_fd(d->control), .events = 0},
					{.fd = els_control_check_fd(d->control), .events = POLLIN},
					{.fd = els_ctlsock_fd(d->ctlsock), .events = POLLIN},
					{.fd = els_dialout_fd(d->dial), .events = POLLOUT}};
		if (pfd[1].fd >= 0)
			pfd[1].events = els_control_events(d->control);
		int ms = (int)((wait + 999999) / 1000000);
		if (sfd < 0 && ms > 1000)
			ms = 1000;
		/* A policy checker child's deadline wakes the loop too (policy_check.h). */
		int check_ms = els_control_check_timeout_ms(d->control);
		if (check_ms >= 0 && check_ms < ms)
			ms = check_ms;
		int dial_ms = els_dialout_timeout_ms(d->dial);
		if (dial_ms >= 0 && dial_ms < ms)
			ms = dial_ms;
		int n = poll(pfd, 5, ms);
		int sig = 0;
		struct signalfd_siginfo si;
		if (sfd < 0)
			sig = sigtimedwait(sigs, NULL, &(struct timespec){0});
		else if (n > 0 && pfd[0].revents & POLLIN &&
			 read(sfd, &si, sizeof(si)) == sizeof(si))
			sig = (int)si.ssi_signo;
		if (sig == SIGHUP) {
			els_daemon_reload(d, NULL, 0);
		} else if (sig == SIGUSR1) {
			els_events_reopen(); /* logrotate moved events.file */
		} else if (sig == SIGTERM || sig == SIGINT) {
			atomic_store(&d->stop, true);
		} else if (sig == SIGCHLD) {
			els_control_reap(d->control);
		}
		if (n > 0 && pfd[1].fd >= 0 && pfd[1].revents)
			els_control_io(d->control, pfd[1].revents);
		els_control_check_io(d->control);
		if (n > 0 && pfd[3].fd >= 0 && pfd[3].revents & POLLIN)
			els_ctlsock_serve(d->ctlsock, els_daemon_ctlsock_request, d);
		restart_management(d);
		dial_step(d, n > 0 && pfd[4].fd >= 0 ? pfd[4].revents : 0);
		if (els_now_mono() >= next) {
			next = els_now_mono() + period_ns;
			if (wd_usec && last && workers_alive(d, last))
				els_notify("WATCHDOG=1");
			els_kdrops_poll(&d->kdrops, kernel_dropped, d);
		}
		if (els_now_mono() >= crl_next) {
			crl_next = els_now_mono() + CRL_WATCH_NS;
			els_control_watch_crl(d->control);
		}
	}
	free(last);
	if (sfd >= 0)
		close(sfd);
}

int els_daemon_run(const struct els_run_opts *o, struct els_policy *p)
{
	struct daemon d = {.opt = o, .running = p, .start_ns = els_now_mono()};
	sigset_t sigs;
	int rc = 3;
	unsigned started = 0;

	els_log_set_level(p->set.log_level);
	els_sessions_warn(p, "the policy");
	/* Signals go to the main thread only: block them before any thread exists. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGCHLD); /* the management endpoint's exit */
	sigaddset(&sigs, SIGUSR1); /* reopen the event stream's file */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The endpoint is started first, before the monitor key is read or any thread exists. It
	 * is a fresh exec (agent/mgmt_exec.c), so it inherits no memory of this process either
	 * way; starting it first keeps a bad key or a busy port from half-starting elsd. */
	pid_t mgmt_pid = -1;
	int mgmt_fd = -1;
	if (p->set.mgmt && els_mgmt_spawn(p->set.mgmt, &mgmt_pid, &mgmt_fd) < 0)
		goto out;

	d.nq = p->set.queue_last - p->set.queue_first + 1;
	d.workers = calloc(d.nq, sizeof(*d.workers));
	d.wp = calloc(d.nq, sizeof(*d.wp));
	d.queues = calloc(d.nq, sizeof(*d.queues));
	d.threads = calloc(d.nq, sizeof(*d.threads));
	if (!d.workers || !d.wp || !d.queues || !d.threads)
		goto out;
	/* Before the monitor's writer starts, so its first records are streamed too; after the
	 * endpoint's fork (single-threaded fork, above). */
	if (els_events_start(p->set.events, o->monitor ? o->monitor : p->set.monitor_path,
			     p->set.agent_id) < 0)
		goto out;
	d.mon = els_open_monitor(o, p, d.nq + 2); /* workers, main thread, rule watch */
	if (!d.mon)
		goto out;
	d.ctl = els_monitor_ring(d.mon, d.nq);
	for (unsigned i = 0; i < d.nq; i++) {
		d.wp[i] = &d.workers[i];
		if (els_worker_init(&d.workers[i], i, p->set.flow_capacity,
				    els_monitor_ring(d.mon, i)) < 0) {
			els_log(ELS_LL_ERROR, "out of memory for %u flows per queue",
				p->set.flow_capacity);
			goto out;
		}
		d.workers[i].queue = p->set.queue_first + i;
		struct els_queue_opts qo = {
		    .num = p->set.queue_first + i,
		    .copy_bytes = p->set.copy_bytes,
		    .maxlen = p->set.queue_maxlen,
		    .fail_open = p->set.fail_open,
		};
		d.queues[i] = els_queue_open(&qo, &d.workers[i]);
		if (!d.queues[i])
			goto out;
	}
	/* Baseline of the kernel's drop counters, now that the queues exist. */
	els_kdrops_init(&d.kdrops, p->set.queue_first, p->set.queue_last);
	int kerr = els_kdrops_poll(&d.kdrops, kernel_dropped, &d);
	if (kerr < 0)
		els_log(ELS_LL_WARNING,
			"cannot read %s: %s: kernel queue drops will not be reported (a /proc "
			"mounted with subset=pid, e.g. systemd's ProcSubset=pid, hides it)",
			d.kdrops.path, strerror(-kerr));
	els_gen_publish(p);
	/* The queues are bound, so packets wait in them meanwhile; no worker runs yet. */
	uint64_t adopt_max = (uint64_t)d.nq * p->set.flow_capacity;
	d.adopt = els_import_flows(p, d.ctl, adopt_max < (1u << 24) ? (uint32_t)adopt_max : 1u << 24);
	els_adopt_publish(d.adopt);
	if (start_management(&d, p, mgmt_pid, mgmt_fd) < 0)
		goto out;
	mgmt_pid = -1, mgmt_fd = -1; /* the control owns them now, or never had them */
	/* Bound before the privilege drop, so that a root-owned /run/elsd works outside systemd. */
	if (o->control)
		d.ctlsock = els_ctlsock_open(o->control);
	/* The metrics listener binds and reads its key before the privilege drop; its thread
	 * starts after it (capabilities are per thread). */
	if (p->set.metrics) {
		struct els_metrics_src ms = {.workers = d.workers, .nq = d.nq, .mon = d.mon,
					     .queue_first = p->set.queue_first,
					     .queue_last = p->set.queue_last,
					     .flow_capacity = p->set.flow_capacity};
		d.metrics = els_metrics_open(p->set.metrics, &ms);
		if (!d.metrics)
			goto out;
		els_metrics_policy(d.metrics, p);
	}
	/* Privilege drop of the main process goes here: after the management fork above (if
	 * any), whose child drops privileges on its own. */
	if (els_privdrop(p->set.user, o->monitor ? o->monitor : p->set.monitor_path,
			 p->set.monitor_key) < 0)
		goto out;
	if (els_metrics_start(d.metrics) < 0)
		goto out;
	struct worker_arg *args = calloc(d.nq, sizeof(*args));
	if (!args)
		goto out;
	for (; started < d.nq; started++) {
		args[started] = (struct worker_arg){&d, started};
		if (pthread_create(&d.threads[started], NULL, worker_main, &args[started]) != 0) {
			els_log(ELS_LL_ERROR, "cannot start worker thread: %s", strerror(errno));
			atomic_store(&d.stop, true);
			break;
		}
	}
	if (started == d.nq) {
		rc = 0;
		els_log(ELS_LL_INFO,
			"started: queues %u-%u, %u handlers, generation %u, sha256 %.16s, %s",
			p->set.queue_first, p->set.queue_last, p->nlinks, p->generation, p->hash,
			p->set.fail_open ? "fail-open" : "fail-closed");
		els_push_event(d.ctl, p->generation, "start: queues %u-%u sha256 %.16s",
			       p->set.queue_first, p->set.queue_last, p->hash);
	}
	if (rc == 0) /* off the packet path, on its own thread and ring */
		d.rules = els_rulewatch_start(&(struct els_rulewatch_opts){
		    .config = o->config,
		    .ring = els_monitor_ring(d.mon, d.nq + 1),
		    .self_heal = p->set.rules_self_heal,
		    .heal_max = p->set.rules_heal_max,
		    .heal_window_s = p->set.rules_heal_window_s,
		    .generation = p->generation});
	if (rc == 0)
		els_notify("READY=1\nSTATUS=filtering queues %u-%u, generation %u\nMAINPID=%d",
			   p->set.queue_first, p->set.queue_last, p->generation, (int)getpid());
	supervise(&d, &sigs);
	els_rulewatch_stop(d.rules);
	d.rules = NULL;
	els_notify("STOPPING=1\nSTATUS=stopping");
	for (unsigned i = 0; i < started; i++)
		pthread_join(d.threads[i], NULL);
	free(args);
	uint64_t packets = 0;
	for (unsigned i = 0; i < d.nq; i++) {
		const struct els_worker_stats *st = &d.workers[i].st;
		packets += atomic_load(&st->packets);
		els_log(ELS_LL_INFO,
			"queue %u: %llu packets, %llu accepted, %llu dropped (%llu undecodable), "
			"%llu ENOBUFS, %llu verdict send errors",
			d.workers[i].queue, (unsigned long long)atomic_load(&st->packets),
			(unsigned long long)atomic_load(&st->accepted),
			(unsigned long long)atomic_load(&st->dropped),
			(unsigned long long)atomic_load(&st->decode_errors),
			(unsigned long long)atomic_load(&st->enobufs),
			(unsigned long long)atomic_load(&st->verdict_errors));
		els_worker_finish(&d.workers[i], els_now_real(), els_drain_monitor, d.mon);
	}
	if (rc == 0) {
		els_log(ELS_LL_INFO, "stopping after %llu packets", (unsigned long long)packets);
		els_push_event(d.ctl, d.running->generation, "stop after %llu packets",
			       (unsigned long long)packets);
	}
out:
	els_metrics_free(d.metrics); /* first: it reads the workers and the monitor */
	if (mgmt_pid > 0) { /* forked, but the start failed before the control took it */
		close(mgmt_fd);
		kill(mgmt_pid, SIGKILL);
		waitpid(mgmt_pid, NULL, 0);
	}
	els_control_free(d.control); /* workers are joined: their snapshot buffers can go */
	els_dialout_free(d.dial);
	els_adopt_publish(NULL);
	els_adopt_free(d.adopt);
	els_ctlsock_close(d.ctlsock);
	for (unsigned i = 0; d.queues && i < d.nq; i++)
		els_queue_close(d.queues[i]);
	if (d.mon)
		els_monitor_close(d.mon);
	els_kdrops_fini(&d.kdrops);
	els_events_stop(); /* after the monitor's last records */
	for (unsigned i = 0; d.workers && i < d.nq; i++)
		els_worker_fini(&d.workers[i]);
	free(d.workers);
	free(d.wp);
	free(d.queues);
	free(d.threads);
	els_policy_free(d.running);
	return atomic_load(&d.failed) ? 3 : rc;
}
