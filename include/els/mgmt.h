/* The management endpoint: configuration, protocol constants, and the pieces of the protocol
 * that both the unprivileged endpoint process and the main process use (request envelope and
 * argument checks, roles). The wire format is docs/management-protocol.md. */
#ifndef ELS_MGMT_H
#define ELS_MGMT_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/diag.h"

#define ELS_MGMT_VERSION   1
#define ELS_MGMT_FRAME_HDR 4	       /* the body length, 4 bytes big-endian */
#define ELS_MGMT_MAX_FRAME (16u << 20) /* body bytes, both directions */

/* `management = { ... }` in the config. Not reloadable: the endpoint is set up once, at start
 * (only the CRL is re-read on SIGHUP). Paths are resolved from the config file's directory. */
struct els_mgmt_conf {
	char *listen;  /* as written, "127.0.0.1:7443" or "[::1]:7443"; NULL: no listener */
	char host[64]; /* numeric address part of listen */
	uint16_t port;
	char *ca, *cert, *key, *crl;
	char *user;	      /* account the endpoint runs as */
	unsigned max_clients; /* concurrent connections */
	unsigned timeout_s;   /* per-request read and write deadline */
	/* Before authentication (docs/management.md, "Limits before authentication"). */
	unsigned handshake_timeout_s; /* a TLS handshake not finished by then is cut */
	unsigned reserved_slots;      /* of max_clients, only for authenticated sessions */
	unsigned per_source;	      /* connections from one address, in any state */
	unsigned per_source_preauth;  /* of those, not yet authenticated */
	unsigned buffer_mb;	      /* request bytes buffered across all clients */
	char **sweep_argv;    /* `sweep` request runs this (NULL-terminated); default els-sweep */
	/* `console = { ... }`: elsd dials an els-console and serves its requests over that
	 * connection (docs/console-protocol.md). console_address NULL: it dials nothing. */
	char *console_address;	/* as written, "host:port" or "[v6]:port" */
	char console_host[256]; /* numeric address or DNS name; the console's certificate must
				 * name it (SAN DNS or IP) */
	uint16_t console_port;
	char *console_ca, *console_cert, *console_key, *console_crl;
	char *console_group;  /* console.group, sent in hello; NULL: none */
	unsigned heartbeat_s; /* 1..3600, default 10 */
};

/* "host:port" or "[v6]:port" of console.address: host a numeric address or a DNS name (RFC
 * 1123 labels). 0, or -EINVAL with *why. */
int els_mgmt_parse_console_address(const char *s, char host[256], uint16_t *port,
				   const char **why);

/* Parses the optional `management` and `console` groups of root (either makes an endpoint:
 * `console` alone gets the management defaults). *out is NULL when both are absent; on
 * errors every message is added to d (file:line) and -EINVAL returned. config_path resolves
 * relative paths. Frees with els_mgmt_config_free. */
int els_mgmt_config_parse(const config_setting_t *root, const char *config_path,
			  struct els_mgmt_conf **out, struct els_diag *d);
void els_mgmt_config_free(struct els_mgmt_conf *c);

/* ---- framing (lib/mgmt/mgmt_frame.c): the endpoint and elsctl share it ---- */

/* Writes len as a frame header. */
void els_mgmt_frame_put_len(uint8_t hdr[ELS_MGMT_FRAME_HDR], uint32_t len);
/* The body length a frame header announces, or -EMSGSIZE for 0 or above ELS_MGMT_MAX_FRAME. */
long els_mgmt_frame_get_len(const uint8_t hdr[ELS_MGMT_FRAME_HDR]);

/* Incremental frame reader: 4-byte big-endian length then the body. The body buffer grows as
 * bytes arrive, so a client that announces 16 MiB and sends nothing costs nothing. */
struct els_mgmt_frame {
	uint8_t hdr[ELS_MGMT_FRAME_HDR];
	unsigned hdr_got;
	uint32_t len;  /* body length, once hdr_got == 4 */
	uint8_t *body; /* owned; NUL-terminated when complete */
	size_t got, cap;
};

enum { ELS_FRAME_MORE = 0, ELS_FRAME_DONE = 1, ELS_FRAME_TOO_LARGE = -1 };

void els_mgmt_frame_init(struct els_mgmt_frame *f);
void els_mgmt_frame_free(struct els_mgmt_frame *f);
/* Consumes bytes from buf[0..len) up to the end of the current frame; *used gets how many.
 * Returns ELS_FRAME_DONE when a body is complete (f->body, f->len), ELS_FRAME_MORE when more
 * bytes are needed, ELS_FRAME_TOO_LARGE for a length of 0 or above ELS_MGMT_MAX_FRAME, or
 * -ENOMEM. After DONE, els_mgmt_frame_reset() starts the next frame. */
int els_mgmt_frame_feed(struct els_mgmt_frame *f, const uint8_t *buf, size_t len, size_t *used);
void els_mgmt_frame_reset(struct els_mgmt_frame *f);

/* ---- requests, roles, commands (agent/mgmt/mgmt_proto.c) ---- */

enum els_mgmt_role { ELS_ROLE_NONE = 0, ELS_ROLE_AUDITOR = 1, ELS_ROLE_ADMIN = 2 };
const char *els_mgmt_role_name(int role);
/* "admin"/"auditor" -> role, anything else ELS_ROLE_NONE. */
int els_mgmt_role_parse(const char *s);

/* A checked request envelope. */
struct els_mgmt_req {
	int64_t id;
	bool has_id;
	const char *cmd; /* points into the parsed JSON (valid while json lives) */
	int role_needed;
	void *json;	   /* json_t * of the whole request; owned, json_decref */
	void *args;	   /* json_t * object (borrowed from json; an empty one when absent) */
	char cmd_name[40]; /* the request's cmd, printable, also on failure ("?" if none) */
};

/* Checks one request body (any bytes) for a client with role: JSON object, v, id, cmd, args
 * against the command's argument table, and the role. Returns 0 with *req filled (the caller
 * json_decrefs req->json), or a negative errno with *err_response set to a complete error
 * response (malloc'd JSON text; caller frees) and *code to its static error code. */
int els_mgmt_request_check(const char *body, size_t len, int role, struct els_mgmt_req *req,
			   char **err_response, const char **code);

/* Builds an error response (malloc'd JSON text). id < 0 means null. message is printf-like.
 * details (json_t *, may be NULL) is stolen. */
char *els_mgmt_error(int64_t id, const char *code, void *details, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The audit text of one request, "mgmt IDENTITY/ROLE@PEER CMD: OUTCOME" followed by tail,
 * shortened to fit n bytes (a monitor record's detail) by cutting the identity first (marked
 * with '~'), then the peer: the outcome is always whole, whatever a certificate's CN holds. */
void els_mgmt_audit_text(char *out, size_t n, const char *identity, const char *role,
			 const char *peer, const char *cmd, const char *outcome, const char *tail);

/* The identity a console's request is recorded under: "WHO via CONSOLE", WHO the
 * on_behalf_of identity the console states (letters, digits, '.', '_', '-', '@' kept, others
 * '?', at most 32; "?" when absent) and CONSOLE the CN of its certificate. */
void els_mgmt_console_identity(char *out, size_t n, const char *who, const char *console_cn);
/* A console's request (any bytes): the role its on_behalf_of states (none: auditor; unknown
 * or missing role: ELS_ROLE_NONE) and the identity it is recorded under, as above. */
int els_mgmt_on_behalf(const char *json, size_t len, const char *console_cn, char *identity,
		       size_t n);

/* The one table of management commands (lib/mgmt/mgmt_proto.c): the role each needs and what it
 * does. The endpoint checks roles and arguments with it, the main process dispatches, audits
 * and alerts by it (agent/control/control.c). */
enum {
	ELS_MGMT_CMD_READ = 1,		 /* reads only: audited once per identity per window */
	ELS_MGMT_CMD_CHECKS_POLICY = 2,	 /* its document goes through the policy checker child */
	ELS_MGMT_CMD_CHANGES_POLICY = 4, /* makes a new generation when it succeeds (alerted) */
};
struct els_mgmt_cmd_info {
	const char *name;
	int role;
	unsigned flags; /* ELS_MGMT_CMD_* */
};
/* Every command, NULL-terminated by name. */
const struct els_mgmt_cmd_info *els_mgmt_commands(void);
/* The command called name, or NULL. */
const struct els_mgmt_cmd_info *els_mgmt_command(const char *name);
/* Is name a known command with flag (ELS_MGMT_CMD_*) set? */
bool els_mgmt_command_is(const char *name, unsigned flag);

#endif
