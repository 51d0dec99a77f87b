/* The main process's side of the management channel: receives the requests the endpoint
 * process (agent/mgmt.c) has authenticated and checked, executes them against the running
 * daemon, answers, and records each one in the monitor. Runs on the main thread only, from
 * the supervise() poll loop; nothing here blocks on the endpoint (sends are queued).
 * Commands are in docs/management-protocol.md; policy and list edits in control_edit.c. */
#ifndef ELS_CONTROL_H
#define ELS_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "check_result.h"
#include "els/monitor.h"
#include "els/policy.h"
#include "worker.h"

struct els_control_env {
	const char *config_path;
	const char *services_path; /* NULL: /etc/services */
	const char *monitor_path;  /* the file the monitor writes (log queries); copied */
	struct els_worker *workers;
	unsigned nq;
	struct els_monitor *mon; /* may be NULL (tests) */
	struct els_ring *ctl;	 /* the main thread's ring: audit events; may be NULL */
	uint64_t start_mono_ns;
	/* The running generation. */
	const struct els_policy *(*running)(void *arg);
	/* Publishes np (ownership passes) exactly as a SIGHUP reload does; returns its
	 * generation. */
	uint32_t (*commit)(void *arg, struct els_policy *np);
	/* The last SIGHUP or `elsd --reload` outcome (agent/ctlsock.h), for status; may be NULL */
	const struct els_reload_result *last_reload;
	/* The endpoint's word on the console connection ("up CN" / "down REASON"); may be
	 * NULL. */
	void (*dial_status)(void *arg, bool up, const char *text);
	void *arg;
};

struct els_control;
struct els_reload_result;

/* Takes over fd (the socketpair end, non-blocking) and the endpoint's pid (0: none, tests).
 * NULL on ENOMEM.
 * Frees with els_control_free, which closes the channel and reaps the endpoint. */
/* The forensic sweep started by a `sweep` request (agent/control_sweep.c). */
struct els_sweep_job {
	pid_t pid; /* 0: none running */
	uint64_t started_ns;
	char by[64]; /* identity of the console that asked */
};
/* Starts argv (searched in PATH) unless a sweep is running: 0, -EBUSY, or -errno. */
int els_sweep_start(struct els_sweep_job *j, char *const argv[], const char *by);
/* True when the running sweep has ended; why then describes how. Never blocks. */
bool els_sweep_reap(struct els_sweep_job *j, char *why, size_t n);

/* trust (the CA and CRL requests' certificates are verified against; may be NULL in tests:
 * then every request is refused) passes to the control. */
struct els_mgmt_trust;
struct els_control *els_control_new(const struct els_control_env *env, int fd, pid_t pid,
				    struct els_mgmt_trust *trust);
void els_control_free(struct els_control *c);

/* The console connection (agent/mgmt/dialout_main.c): the trust its requests' certificates
 * are verified against (taken) and the host dialled, which the certificate must name. */
void els_control_set_console(struct els_control *c, struct els_mgmt_trust *trust,
			     const char *host);
/* Passes a connected socket to the endpoint (a copy; the caller closes fd), with the agent's
 * state sent just before it, so that hello carries it. 0 or -errno. */
int els_control_send_dial(struct els_control *c, int fd, const char *addr);
/* The state for hello/heartbeat (JSON text). */
void els_control_send_state(struct els_control *c, const char *json);

/* True once the endpoint is gone: it exited, or broke the protocol and was stopped. */
bool els_control_down(const struct els_control *c);
/* Takes over a restarted endpoint's channel (fd) and pid, once els_control_down(). */
void els_control_attach(struct els_control *c, int fd, pid_t pid);

/* The descriptor to poll, -1 once the endpoint is gone, and the events to ask for. */
int els_control_fd(const struct els_control *c);
short els_control_events(const struct els_control *c);
/* Handles poll results on els_control_fd(): reads and executes requests, sends answers. */
void els_control_io(struct els_control *c, short revents);
/* SIGHUP: re-reads the CRL file, from then on checks requests against it, and sends it to
 * the endpoint (which cannot read it any more), which closes the sessions it revokes. */
void els_control_reload_crl(struct els_control *c);
/* The same when the CRL file changed since it was last read (called every second or so):
 * a new CRL dropped in place counts without a SIGHUP. */
void els_control_watch_crl(struct els_control *c);
/* SIGCHLD: reaps the endpoint if it exited, logs why and closes the channel. */
void els_control_reap(struct els_control *c);
/* The policy checker child of a pending policy.validate/apply/rollback: the pipe to poll for
 * POLLIN (-1: none) and how long the loop may sleep (-1: no limit). els_control_check_io()
 * is called on every turn of the loop: it reads the child, enforces its deadline, and
 * answers the request once it ended. */
int els_control_check_fd(const struct els_control *c);
int els_control_check_timeout_ms(const struct els_control *c);
void els_control_check_io(struct els_control *c);

/* Executes one request JSON for a client (what an ELS_IPC_REQUEST carries) and returns the
 * response JSON (malloc'd, caller frees); *outcome gets "ok" or the error code for the audit
 * record. Returns NULL with *outcome "pending" when the request went to the policy checker:
 * its answer is sent to connection conn when the checker ends. */
char *els_control_execute(struct els_control *c, const char *identity, int role, const char *peer,
			  uint32_t conn, const char *json, size_t len, const char **outcome);

/* ---- between control.c and control_edit.c ---- */

/* An error answer under construction: code, message, details (owned json array or NULL). */
struct els_cmd_err {
	const char *code;
	char msg[512];
	json_t *details;
};

void els_cmd_fail(struct els_cmd_err *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* SHA-256 of buf, hex. */
void els_sha256_hex(const void *buf, size_t len, char hex[65]);
/* A JSON string from bytes that may not be UTF-8 (invalid bytes become U+FFFD). */
json_t *els_json_text(const char *buf, size_t len);

const struct els_control_env *els_control_env_of(const struct els_control *c);

json_t *els_cmd_policy_get(struct els_control *c, json_t *args, struct els_cmd_err *e);
/* policy.validate / apply / rollback run in two steps, around the checker child: the
 * document the request carries (its text, or the previous policy for a rollback; malloc'd,
 * and refused here, with e set, when it is over the size cap), then the answer once the
 * checker ended (r), which for apply and rollback builds and publishes the policy. */
int els_cmd_policy_document(struct els_control *c, const char *cmd, json_t *args, char **text,
			    size_t *len, struct els_cmd_err *e);
json_t *els_cmd_policy_checked(struct els_control *c, const char *cmd, json_t *args,
			       const char *text, size_t len, const struct els_check_result *r,
			       struct els_cmd_err *e);
json_t *els_cmd_list_get(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_list_add(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_list_del(struct els_control *c, json_t *args, struct els_cmd_err *e);

/* Shared by control_edit.c and control_list.c. */
const char *els_edit_policy_dir(struct els_control *c);
/* The policy in effect as a document (the managed file, else the policy part of the config
 * file); *path says where it lives. Both malloc'd. 0 or -errno. */
int els_edit_current_text(struct els_control *c, char **text, size_t *len, char **path);
int els_edit_write_atomic(const char *path, const char *mode_of, const char *text, size_t len);
json_t *els_edit_diag_details(char *const *msgs, unsigned count, const char *tmp,
			      const char *shown);
/* Removes temporary files an interrupted change left in the policy directory. */
void els_policy_dir_clean(const char *dir);

#endif
