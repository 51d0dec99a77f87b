/* The daemon's life, as main.c starts it, and the monitor helpers replay shares. */
#ifndef ELS_DAEMON_H
#define ELS_DAEMON_H

#include "els/monitor.h"
#include "els/policy.h"

/* What the daemon needs of the command line. */
struct els_run_opts {
	const char *config;   /* the config file (reloads read it again) */
	const char *services; /* services database; NULL: /etc/services */
	const char *monitor;  /* --monitor: overrides monitor.path; NULL otherwise */
	const char *control;  /* the local control socket (agent/ctlsock.h); NULL: none */
};

/* Binds the queues, starts the workers and the management endpoint, and serves until
 * SIGTERM. Takes ownership of p. Returns the process exit status (docs: elsd --help). */
int els_daemon_run(const struct els_run_opts *o, struct els_policy *p);

/* Opens and starts the monitor with producers rings; NULL after printing why. */
struct els_monitor *els_open_monitor(const struct els_run_opts *o, const struct els_policy *p,
				     unsigned producers);
/* Waits (up to 10 s) until the monitor has written what was pushed: for callers off the
 * packet path that would rather wait than lose records. arg is the monitor. */
void els_drain_monitor(void *arg);
/* Pushes an EVENT record with a formatted detail onto ring. */
void els_push_event(struct els_ring *ring, uint32_t gen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
