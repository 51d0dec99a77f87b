/* elsctl --console: the client of els-console's HTTPS JSON API (docs/console-api.md).
 * console_http.c speaks HTTPS (libevent evhttp over OpenSSL); console_main.c holds the
 * subcommand table; console_cmds.c (policy versions), console_deploy.c (deployments) and
 * console_views.c (fleet, drift, registry, audit) turn subcommands into API calls and show
 * the answers. */
#ifndef ELSCTL_CONSOLE_CLIENT_H
#define ELSCTL_CONSOLE_CLIENT_H

#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>

#include "../elsctl.h"

struct ctl_console_url {
	char host[256];
	unsigned port; /* default 8443 */
	bool is_ip;
};
/* "https://HOST[:PORT]" (IPv6 as [ADDR]). 0, or -EINVAL with why. */
int ctl_console_url_parse(const char *url, struct ctl_console_url *u, const char **why);

struct ctl_http_resp {
	int status; /* HTTP status */
	char *body; /* owned */
	size_t len;
	json_t *json; /* owned; the parsed body */
};
/* One request to c->console: method "GET" or "POST", path with its query, body (may be NULL)
 * sent as JSON. 0 with *out filled (any HTTP status: the caller judges it), or -errno with err
 * set (no answer: connection, TLS, certificate, timeout, a body that is not JSON). */
int ctl_console_call(const struct ctl *c, SSL_CTX *ctx, const char *method, const char *path,
		     json_t *body, struct ctl_http_resp *out, char *err, size_t errlen);
void ctl_http_resp_free(struct ctl_http_resp *r);

/* The --console subcommands; argv[0] is the subcommand. Returns the exit status. */
int ctl_console_main(struct ctl *c, int argc, char *argv[]);
/* The entry of the --console subcommand table named name (for help texts), or NULL. */
const struct ctl_cmd *ctl_console_cmd_find(const char *name);

/* console_cmds.c, for the other console_*.c: one API call with the answer judged. 0 with *result
 * (the JSON body of a 2xx answer, owned by the caller), or the exit status after printing
 * why (a refusal: 1; no answer: 3). */
int ctl_console_api(struct ctl *c, const char *method, const char *path, json_t *body,
		    json_t **result);
/* Prints v as JSON (--json) and returns 0; for views that have nothing else to add. */
int ctl_console_print_json(json_t *v);
/* A query-string value, %-encoded; malloc'd. */
char *ctl_console_enc(const char *s);
/* Member k of o as terminal-safe text in buf (cut to len): a table cell. */
const char *ctl_console_text(json_t *o, const char *k, char *buf, size_t len);
/* A positive id argument of subcommand cmd: 0, or the usage exit status after saying why. */
int ctl_console_id_arg(const char *cmd, const char *s, long long *id);
/* Frees what ctl_console_api keeps between calls. */
void ctl_console_done(void);

/* console_cmds.c, console_deploy.c: the subcommands console_main.c's table names. */
int ctl_console_policy(struct ctl *c, int argc, char *argv[]);
int ctl_console_deploy(struct ctl *c, int argc, char *argv[]);
int ctl_console_deployment(struct ctl *c, int argc, char *argv[]);
int ctl_console_rollback(struct ctl *c, int argc, char *argv[]);

int console_fleet(struct ctl *c, int argc, char *argv[]);
int console_drift(struct ctl *c, int argc, char *argv[]);
int console_registry(struct ctl *c, int argc, char *argv[]);
int console_audit(struct ctl *c, int argc, char *argv[]);

#endif
