/* els-console's configuration (libconfig; packaging/els-console/els-console.conf is the
 * commented example, docs/console-admin.md the reference). Read once at start: a change needs
 * a restart. Relative paths are taken from the config file's directory. */
#ifndef ELS_CONSOLE_CONF_H
#define ELS_CONSOLE_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "els/diag.h"

/* A TLS listener: `listen` as written ("127.0.0.1:8443", "[::1]:8443", "0.0.0.0:7444"), its
 * numeric host and port, and the files. */
struct console_tls_conf {
	char *listen;
	char host[64];
	uint16_t port;
	char *ca, *cert, *key, *crl;
};

struct console_conf {
	char *path; /* the file read */
	char *name; /* console.name: this instance, unique among the consoles of one database */

	struct console_tls_conf agents; /* agents { ... }: where agents dial in */
	unsigned heartbeat_timeout_s;	/* an agent silent this long is cut */
	unsigned agents_max;		/* connections, any state */
	unsigned agents_max_preauth;	/* of those, not yet through TLS and hello */
	unsigned handshake_timeout_s;	/* TLS handshake + hello must finish within */
	unsigned request_timeout_s;	/* default deadline for a request to an agent */

	struct console_tls_conf api; /* api { ... }: operators (browser, elsctl) */
	unsigned api_max;	     /* connections */
	unsigned api_body_max_kb;    /* largest request body */

	char *conninfo; /* database.conninfo (libpq) */
	char *sql_dir;	/* database.sql_dir: the schema files; default ELS_CONSOLE_SQL_DIR */

	bool two_person;		    /* change_control.two_person */
	unsigned drift_silent_after_s;	    /* drift.silent_after_s */
	unsigned deploy_health_wait_s;	    /* deploy.health_wait_s */
	double deploy_max_drop_rate_ratio;  /* deploy.max_drop_rate_ratio */
	unsigned deploy_interval_ms;	    /* deploy.interval_ms: deployer's poll period */

	char *web_root;	   /* web.root: the browser pages' files; default ELS_CONSOLE_WWW_DIR */
	char *web_chartjs; /* web.chartjs: Debian's libjs-chart.js directory */

	config_t cfg; /* kept: modules may read keys of their own with console_conf_setting() */
};

/* Reads and checks path. On success 0 with *out (free with console_conf_free). Otherwise
 * -EINVAL (or -ENOMEM) with every problem added to d as "file:line: message". Unknown keys are
 * errors, so a misspelt setting never silently keeps its default. */
int console_conf_load(const char *path, struct console_conf **out, struct els_diag *d);
void console_conf_free(struct console_conf *c);

/* The setting at a dotted path ("deploy.health_wait_s"), or NULL. */
const config_setting_t *console_conf_setting(const struct console_conf *c, const char *path);

/* "host:port" or "[v6]:port" with a numeric host -> host, port. 0 or -EINVAL. */
int console_parse_listen(const char *s, char *host, size_t hostn, uint16_t *port);

#endif
