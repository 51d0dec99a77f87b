/* elsctl internals: the console's modules. Nothing here is shared with elsd. By folder:
 *   ./          main.c (options), cmds.c (the subcommand table), output.c (tables, errors)
 *   transport/  reaching agents: endpoint and fleet-file parsing, TLS client, wire framing,
 *               the request runner (one agent or a fleet)
 *   policy/     writing and checking policies: policy get/check/apply/rollback, and the local
 *               tools suggest, audit and registry
 *   state/      an agent's running state: status, stats, flows, log, deny/allow lists, sweep
 *   console/    --console mode: els-console's HTTPS API */
#ifndef ELSCTL_H
#define ELSCTL_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes; --help documents them. */
enum ctl_exit {
	CTL_EXIT_OK = 0,
	CTL_EXIT_FAILED = 1, /* the agent answered with an error (invalid policy, forbidden, ...) */
	CTL_EXIT_USAGE = 2,  /* bad command line, unreadable local file, invalid local policy */
	CTL_EXIT_CONN = 3,   /* no answer: connection, TLS or certificate failure, bad framing */
	CTL_EXIT_PARTIAL = 4, /* fleet: some agents failed, others did not */
};

#define CTL_ERR_LEN	     512
#define CTL_DEFAULT_PORT     "7443" /* the agent's default management port */
#define CTL_DEFAULT_TIMEOUT  10
#define CTL_DEFAULT_PARALLEL 16
#define CTL_MAX_PARALLEL     256

struct ctl_endpoint {
	char host[256]; /* as written, without IPv6 brackets */
	char port[8];
	char label[272]; /* "host:port" as the user wrote it, for messages */
	bool is_ip;	 /* host is an IPv4/IPv6 literal: verify the certificate's IP SAN */
};

/* Parses "HOST:PORT", "[V6ADDR]:PORT", or HOST alone (default_port). 0 or -EINVAL with why. */
int ctl_endpoint_parse(const char *s, const char *default_port, struct ctl_endpoint *ep,
		       const char **why);

/* Reads a fleet file: one HOST:PORT per line, '#' starts a comment, blank lines ignored.
 * On success *out is a malloc'd array of *n endpoints (caller frees). On error err holds
 * "FILE:LINE: why" and -errno is returned. */
int ctl_fleet_file_read(const char *path, const char *default_port, struct ctl_endpoint **out,
			size_t *n, char *err, size_t errlen);
/* The same from a buffer, for tests; name is used in messages. */
int ctl_fleet_parse(const char *name, const char *text, const char *default_port,
		    struct ctl_endpoint **out, size_t *n, char *err, size_t errlen);

struct ctl_tls_opts {
	const char *cert, *key, *ca;
	const char *crl; /* NULL: no revocation check (no CRL was given or found) */
	unsigned timeout_s;
};

/* Builds the client context: TLS 1.3 only, verifies the peer against ca (and, with crl, that
 * the agent's certificate is not revoked), presents cert/key. Refuses a key file that group or
 * others can read, and a CRL that is unreadable or past its next update. NULL with err set on
 * failure. */
SSL_CTX *ctl_tls_ctx_new(const struct ctl_tls_opts *o, char *err, size_t errlen);

struct ctl_conn;

/* Connects, handshakes and checks the agent certificate against ep's host name or address.
 * 0 or -errno with err set (which certificate failed and why). The context must outlive the
 * connection. */
int ctl_conn_open(SSL_CTX *ctx, const struct ctl_endpoint *ep, unsigned timeout_s,
		  struct ctl_conn **out, char *err, size_t errlen);
/* Sends one request and reads its response. *resp is owned by the caller. A TLS alert that
 * arrives here (TLS 1.3 servers judge the client certificate after our handshake has
 * finished) is reported in words. 0 or -errno with err set. */
int ctl_conn_call(struct ctl_conn *c, json_t *req, json_t **resp, char *err, size_t errlen);
void ctl_conn_close(struct ctl_conn *c);

/* msg as one frame (els/mgmt.h framing) in *buf, malloc'd; the caller frees it. */
int ctl_frame_encode(json_t *msg, unsigned char **buf, size_t *len, char *err, size_t errlen);

/* Describes a TLS alert code (RFC 8446 numbering) in words. */
const char *ctl_alert_words(int desc);

/* One request to one or many agents. */
struct ctl_req {
	const char *cmd;       /* protocol command, e.g. "policy.apply" */
	json_t *args;	       /* owned; may be NULL */
	const char *text_name; /* the local file sent as "text", for error messages */
	/* Human output of a successful result; returns the exit code (a list edit with invalid
	 * entries succeeds at the agent but is CTL_EXIT_FAILED for the console). */
	int (*show)(json_t *result, FILE *out);
	/* Fleet mode: the text after "ok " on the agent's line. */
	void (*summary)(json_t *result, char *buf, size_t len);
	/* Optional: does the exchange itself on the open connection (several requests, e.g. to
	 * page through a log) and hands back a whole response envelope as the agent would, in
	 * *resp. 0, or -errno with err set (a connection failure). */
	int (*call)(struct ctl_conn *conn, const struct ctl_req *r, const char *label,
		    json_t **resp, char *err, size_t errlen);
	void *data;	/* for call and show */
	bool show_json; /* show also prints the --json form (single agent) */
};

struct ctl {
	const char *console;	 /* --console URL: speak els-console's API (console/console_client.h) */
	const char *agent;	 /* --agent */
	const char *agents_file; /* --agents */
	const char *default_port;
	struct ctl_tls_opts tls;
	char cert_buf[4096], key_buf[4096], ca_buf[4096], crl_buf[4096];
	bool json;
	unsigned parallel;
};

/* Runs r against --agent or every agent of --agents; prints output; returns the exit code. */
int ctl_run(struct ctl *c, struct ctl_req *r);
/* One request on an open connection with the envelope checked: 0 with *resp (the whole
 * response; ok true or false), or -errno with err set. */
int ctl_request(struct ctl_conn *conn, const char *label, const char *cmd, json_t *args,
		json_t **resp, char *err, size_t errlen);

/* Subcommands (cmds.c): wireguard-style { name, fn, help } with a usage text for
 * `elsctl help NAME` and `elsctl NAME --help`. argv[0] is the subcommand name. */
struct ctl_cmd {
	const char *name;
	int (*fn)(struct ctl *c, int argc, char *argv[]);
	const char *help;  /* one line, for the command list */
	const char *usage; /* full help text */
};
extern const struct ctl_cmd ctl_cmds[];
const struct ctl_cmd *ctl_cmd_find(const char *name);
int cmd_status(struct ctl *c, int argc, char *argv[]);
int cmd_stats(struct ctl *c, int argc, char *argv[]);
int cmd_policy(struct ctl *c, int argc, char *argv[]);
int cmd_rollback(struct ctl *c, int argc, char *argv[]);
int cmd_sweep(struct ctl *c, int argc, char *argv[]);
int cmd_list(struct ctl *c, int argc, char *argv[]);
int cmd_flows(struct ctl *c, int argc, char *argv[]);
int cmd_log(struct ctl *c, int argc, char *argv[]);
/* Local subcommands of the ELS policy tools (policy/cmd_suggest.c, cmd_audit.c,
 * cmd_registry.c). */
int cmd_suggest(struct ctl *c, int argc, char *argv[]);
int cmd_audit(struct ctl *c, int argc, char *argv[]);
int cmd_registry(struct ctl *c, int argc, char *argv[]);

/* Shared by the subcommands (cmds.c). */
json_int_t ctl_jint(json_t *o, const char *k);	/* -1 when missing or not an integer */
const char *ctl_jstr(json_t *o, const char *k); /* "-" when missing or not a string */
/* The first 12 hex digits of a hash, in buf[13]: enough to tell policies apart on a line. */
const char *ctl_short_hash(const char *h, char *buf);
/* Prints "elsctl: MESSAGE" and a pointer to the subcommand's help; returns CTL_EXIT_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* After getopt has complained about an option: the hint, and CTL_EXIT_USAGE. */
int ctl_bad_option(const char *cmd);
/* Option parsing for subcommands without options (only --help) and at most max_args
 * arguments. Returns an exit code to return, or -1 to go on (optind at the first argument). */
int ctl_no_options(const struct ctl_cmd *cmd, int argc, char *argv[], int max_args);
/* Runs the entry of table named argv[1]; group names the help text to show. */
int ctl_dispatch(const struct ctl_cmd *table, const char *group, struct ctl *c, int argc,
		 char *argv[]);
int ctl_parse_uint(const char *s, long long min, long long max, long long *out);

/* The top-level help (main.c). */
void ctl_usage(FILE *out);

/* Output helpers (output.c). Everything an agent sends is untrusted text: the human output
 * goes through ctl_json_termsafe or ctl_fputs_safe (include/els/termsafe.h), JSON output is
 * ASCII with \u escapes. */
void ctl_print_json(json_t *v, FILE *out);
/* Replaces, in place, every string in v by its terminal-safe form (newlines and tabs kept). */
void ctl_json_termsafe(json_t *v);
/* fputs of the terminal-safe form of s (newlines and tabs kept). */
void ctl_fputs_safe(const char *s, FILE *out);
/* Prints an error response ({"code", "message", "details"}) as lines on out. text_name, if
 * not NULL, replaces the file name "<policy>" (the submitted text) in details. */
void ctl_print_error(const char *who, json_t *error, const char *text_name, FILE *out);
/* One-line form of an error response, for fleet lines. */
void ctl_error_line(json_t *error, const char *text_name, char *buf, size_t len);

/* A small aligned-table printer: columns are sized to the widest cell. */
struct ctl_table;
struct ctl_table *ctl_table_new(unsigned ncols, const char *const *headers);
void ctl_table_add(struct ctl_table *t, const char *const *cells);
void ctl_table_print(const struct ctl_table *t, FILE *out);
void ctl_table_free(struct ctl_table *t);

/* Human-readable durations and counts. */
void ctl_fmt_duration(double seconds, char *buf, size_t len);
/* Formats a JSON scalar as text ("-" for null/missing). */
const char *ctl_json_text(json_t *v, char *buf, size_t len);

#endif
