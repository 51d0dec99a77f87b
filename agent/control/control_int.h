/* Inside the main process's side of the management channel: the state control.c (channel,
 * dispatch, policy checks) and control_read.c (the read commands and the sweep) share. */
#ifndef ELS_CONTROL_INT_H
#define ELS_CONTROL_INT_H

#include "control.h"
#include "control_audit.h"
#include "ipc.h"
#include "policy_check.h"

struct els_control {
	struct els_control_env env;
	struct els_ipc ipc;
	bool open;
	pid_t pid;
	struct els_mgmt_trust *trust; /* CA and CRL, read here: requests' certificates */
	char *monitor_path;   /* own copy: the policy that named it is freed at the next reload */
	const char *identity; /* of the request being executed */
	int role;
	struct els_flow_seen **snap_bufs; /* per worker, allocated on first use, kept: worker.h */
	struct els_sweep_job sweep;
	/* The one request waiting for the policy checker (policy.validate/apply/rollback). */
	struct els_check_job check;
	struct els_audit_reads reads; /* successful reads recorded once per window */
	/* The console connection (control_console.c): its CA and CRL, the host dialled. */
	struct els_mgmt_trust *console_trust;
	char *console_host;
	struct {
		bool active, orphan;
		uint32_t conn;
		int64_t id;
		int role;
		char identity[256], peer[256], cmd[40];
		json_t *args; /* owned */
		char *text;   /* the document being checked, owned */
		size_t len;
	} pend;
};

/* control_console.c */
void els_control_console_request(struct els_control *c, struct els_ipc_msg *m);
void els_control_dial_status(struct els_control *c, const char *text);
void els_control_console_crl(struct els_control *c, bool force);

/* control_read.c */
json_t *els_cmd_status(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_stats(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_flows(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_log(struct els_control *c, json_t *args, struct els_cmd_err *e);
json_t *els_cmd_sweep(struct els_control *c, json_t *args, struct els_cmd_err *e);

/* ---- between control.c (requests) and control_channel.c (the endpoint's channel) ---- */

/* Where an endpoint request came from (the listener's clients, control_channel.c; the
 * console connection, control_console.c) and how its certificates are verified. */
struct els_control_source {
	const char *what;      /* in the log: "malformed WHAT from the endpoint" */
	const char *role_name; /* in a refusal's audit line */
	const char *whose;     /* "this WHOSE certificate" in a refusal's error */
	const char *via;       /* appended to a refusal's alert fields */
	const char *no_trust;  /* the reason when verify gave none */
	/* Verifies der (the peer's certificates) against this source's trust: true with the
	 * role and identity the request runs as; false (why set, identity the one refused). */
	bool (*verify)(struct els_control *c, const uint8_t *der, size_t derlen,
		       const char *json, size_t jlen, char identity[65], int *role, char *why,
		       size_t whylen);
};
/* One request from the endpoint (ipc.h: certificates, peer, JSON): split, verified by src,
 * executed or refused (audited, alerted), and answered. */
void els_control_request(struct els_control *c, struct els_ipc_msg *m,
			 const struct els_control_source *src);

/* One line of the management audit: a monitor event record of handler "mgmt". */
void els_control_audit(struct els_control *c, const char *text);
/* Sends resp (taken) to the endpoint as the answer for connection conn. */
void els_control_send(struct els_control *c, uint32_t conn, char *resp);
/* Forgets the pending policy check's request (its answer, if any, was sent or dropped). */
void els_control_pend_clear(struct els_control *c);

#endif
