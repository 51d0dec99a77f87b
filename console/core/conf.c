/* els-console's configuration file: every section and key is in the table below, so that
 * `els-console -n` names each unknown key, wrong type or out-of-range value with its file and
 * line, all in one run. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "els/path.h"

enum key_type { K_STR, K_PATH, K_LISTEN, K_UINT, K_BOOL, K_DOUBLE };

struct key_spec {
	const char *section, *key;
	enum key_type type;
	bool required;
	size_t off;	       /* into struct console_conf */
	const char *def_str;   /* K_STR, K_PATH, K_LISTEN default (NULL: none) */
	long long lo, hi, def; /* K_UINT range and default; K_BOOL default in def */
	double dlo, dhi, ddef; /* K_DOUBLE */
};

#define OFF(f) offsetof(struct console_conf, f)

/* Other engineers' modules add their keys here (and to the example config and the docs). */
static const struct key_spec keys[] = {
	{"console", "name", K_STR, true, OFF(name)},

	{"agents", "listen", K_LISTEN, false, OFF(agents), "0.0.0.0:7444"},
	{"agents", "ca", K_PATH, true, OFF(agents.ca)},
	{"agents", "cert", K_PATH, true, OFF(agents.cert)},
	{"agents", "key", K_PATH, true, OFF(agents.key)},
	{"agents", "crl", K_PATH, true, OFF(agents.crl)},
	{"agents", "heartbeat_timeout_s", K_UINT, false, OFF(heartbeat_timeout_s), NULL, 3, 86400,
	 35},
	{"agents", "max_connections", K_UINT, false, OFF(agents_max), NULL, 1, 1000000, 20000},
	{"agents", "max_handshakes", K_UINT, false, OFF(agents_max_preauth), NULL, 1, 100000, 1024},
	{"agents", "handshake_timeout_s", K_UINT, false, OFF(handshake_timeout_s), NULL, 1, 300, 10},
	{"agents", "request_timeout_s", K_UINT, false, OFF(request_timeout_s), NULL, 1, 3600, 60},

	{"api", "listen", K_LISTEN, false, OFF(api), "127.0.0.1:8443"},
	{"api", "ca", K_PATH, true, OFF(api.ca)},
	{"api", "cert", K_PATH, true, OFF(api.cert)},
	{"api", "key", K_PATH, true, OFF(api.key)},
	{"api", "crl", K_PATH, true, OFF(api.crl)},
	{"api", "max_connections", K_UINT, false, OFF(api_max), NULL, 1, 100000, 256},
	{"api", "body_max_kb", K_UINT, false, OFF(api_body_max_kb), NULL, 1, 65536, 1024},

	{"database", "conninfo", K_STR, true, OFF(conninfo)},
	{"database", "sql_dir", K_PATH, false, OFF(sql_dir), ELS_CONSOLE_SQL_DIR},

	{"change_control", "two_person", K_BOOL, false, OFF(two_person), NULL, 0, 1, 1},
	{"drift", "silent_after_s", K_UINT, false, OFF(drift_silent_after_s), NULL, 1, 31536000,
	 60},
	{"deploy", "health_wait_s", K_UINT, false, OFF(deploy_health_wait_s), NULL, 0, 86400, 30},
	{"deploy", "max_drop_rate_ratio", K_DOUBLE, false, OFF(deploy_max_drop_rate_ratio), NULL, 0,
	 0, 0, 1.0, 1e6, 5.0},
	{"deploy", "interval_ms", K_UINT, false, OFF(deploy_interval_ms), NULL, 50, 600000, 2000},

	{"web", "root", K_PATH, false, OFF(web_root), ELS_CONSOLE_WWW_DIR},
	{"web", "chartjs", K_PATH, false, OFF(web_chartjs), "/usr/share/javascript/chart.js"},
};

static const char *const sections[] = {"console", "agents", "api", "database", "change_control",
				       "drift", "deploy", "web"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

int console_parse_listen(const char *s, char *host, size_t hostn, uint16_t *port)
{
	const char *colon, *h = s;
	size_t hl;

	if (!s || !*s)
		return -EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon || memchr(s, ':', (size_t)(colon - s)))
			return -EINVAL; /* a v6 address needs its brackets */
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostn)
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] < '0' || colon[1] > '9' || p == 0 || p > 65535)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	/* Numeric only: a name would need a resolver at start and could change meaning. */
	for (size_t i = 0; i < hl; i++)
		if (!strchr("0123456789abcdefABCDEF.:", host[i]))
			return -EINVAL;
	*port = (uint16_t)p;
	return 0;
}

static int set_string(char **dst, const char *v, bool path, const char *conf_path)
{
	char *s = path ? els_path_beside(v, conf_path) : strdup(v);
	if (!s)
		return -ENOMEM;
	free(*dst);
	*dst = s;
	return 0;
}

static int apply_key(struct console_conf *c, const struct key_spec *k,
		     const config_setting_t *s, struct els_diag *d)
{
	void *field = (char *)c + k->off;
	const char *where = k->key;

	switch (k->type) {
	case K_STR:
	case K_PATH:
	case K_LISTEN: {
		const char *v = s ? config_setting_get_string(s) : k->def_str;
		if (s && !v) {
			els_diag_at(d, s, "%s.%s must be a string", k->section, where);
			return -EINVAL;
		}
		if (!v)
			return 0;
		if (!*v) {
			els_diag_at(d, s, "%s.%s must not be empty", k->section, where);
			return -EINVAL;
		}
		if (k->type == K_LISTEN) {
			struct console_tls_conf *t = field;
			if (console_parse_listen(v, t->host, sizeof(t->host), &t->port) < 0) {
				els_diag_at(d, s,
					    "%s.listen \"%s\" is not a numeric ADDRESS:PORT "
					    "(e.g. \"0.0.0.0:7444\" or \"[::]:7444\")",
					    k->section, v);
				return -EINVAL;
			}
			return set_string(&t->listen, v, false, NULL);
		}
		return set_string(field, v, k->type == K_PATH, c->path);
	}
	case K_UINT: {
		long long v = k->def;
		if (s) {
			int t = config_setting_type(s);
			if (t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
				els_diag_at(d, s, "%s.%s must be an integer", k->section, where);
				return -EINVAL;
			}
			v = config_setting_get_int64(s);
			if (v < k->lo || v > k->hi) {
				els_diag_at(d, s, "%s.%s = %lld is out of range %lld..%lld",
					    k->section, where, v, k->lo, k->hi);
				return -EINVAL;
			}
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	}
	case K_BOOL:
		if (s && config_setting_type(s) != CONFIG_TYPE_BOOL) {
			els_diag_at(d, s, "%s.%s must be true or false", k->section, where);
			return -EINVAL;
		}
		*(bool *)field = s ? config_setting_get_bool(s) : k->def != 0;
		return 0;
	case K_DOUBLE: {
		double v = k->ddef;
		if (s) {
			int t = config_setting_type(s);
			if (t != CONFIG_TYPE_FLOAT && t != CONFIG_TYPE_INT && t != CONFIG_TYPE_INT64) {
				els_diag_at(d, s, "%s.%s must be a number", k->section, where);
				return -EINVAL;
			}
			v = t == CONFIG_TYPE_FLOAT ? config_setting_get_float(s)
						   : (double)config_setting_get_int64(s);
			if (!(v >= k->dlo && v <= k->dhi)) {
				els_diag_at(d, s, "%s.%s = %g is out of range %g..%g", k->section,
					    where, v, k->dlo, k->dhi);
				return -EINVAL;
			}
		}
		*(double *)field = v;
		return 0;
	}
	}
	return -EINVAL;
}

static bool known_section(const char *name)
{
	for (size_t i = 0; i < N(sections); i++)
		if (strcmp(sections[i], name) == 0)
			return true;
	return false;
}

static bool known_key(const char *section, const char *key)
{
	for (size_t i = 0; i < N(keys); i++)
		if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].key, key) == 0)
			return true;
	return false;
}

/* Unknown sections and keys: named with their line, since a typo would keep a default. */
static int check_unknown(const config_setting_t *root, struct els_diag *d)
{
	int rc = 0;
	for (int i = 0; i < config_setting_length(root); i++) {
		const config_setting_t *sec = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(sec);
		if (!known_section(name)) {
			els_diag_at(d, sec, "unknown section \"%s\"", name);
			rc = -EINVAL;
			continue;
		}
		if (!config_setting_is_group(sec)) {
			els_diag_at(d, sec, "%s must be a group: %s = { ... };", name, name);
			rc = -EINVAL;
			continue;
		}
		for (int j = 0; j < config_setting_length(sec); j++) {
			const config_setting_t *k = config_setting_get_elem(sec, (unsigned)j);
			if (!known_key(name, config_setting_name(k))) {
				els_diag_at(d, k, "unknown key %s.%s", name, config_setting_name(k));
				rc = -EINVAL;
			}
		}
	}
	return rc;
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' || s[i] == '.'))
			return false;
	return true;
}

int console_conf_load(const char *path, struct console_conf **out, struct els_diag *d)
{
	struct console_conf *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (!c || !(c->path = strdup(path))) {
		free(c);
		return -ENOMEM;
	}
	config_init(&c->cfg);
	if (config_read_file(&c->cfg, path) != CONFIG_TRUE) {
		if (config_error_type(&c->cfg) == CONFIG_ERR_FILE_IO)
			els_diag_file(d, path, 0, "cannot read the file");
		else
			els_diag_file(d, config_error_file(&c->cfg) ? config_error_file(&c->cfg)
								   : path,
				      (unsigned)config_error_line(&c->cfg), "%s",
				      config_error_text(&c->cfg));
		rc = -EINVAL;
		goto out;
	}
	const config_setting_t *root = config_root_setting(&c->cfg);
	rc = check_unknown(root, d);
	for (size_t i = 0; i < N(keys); i++) {
		char dotted[96];
		snprintf(dotted, sizeof(dotted), "%s.%s", keys[i].section, keys[i].key);
		const config_setting_t *s = config_lookup(&c->cfg, dotted);
		if (!s && keys[i].required) {
			els_diag_at(d, config_setting_get_member(root, keys[i].section),
				    "%s is required", dotted);
			rc = -EINVAL;
			continue;
		}
		int r = apply_key(c, &keys[i], s, d);
		if (r == -ENOMEM)
			goto out_rc;
		if (r < 0)
			rc = r;
	}
	if (c->name && !valid_name(c->name)) {
		els_diag_at(d, config_lookup(&c->cfg, "console.name"),
			    "console.name \"%s\": 1-63 of A-Z a-z 0-9 . _ -", c->name);
		rc = -EINVAL;
	}
	if (rc == 0 && c->agents.port == c->api.port && strcmp(c->agents.host, c->api.host) == 0) {
		els_diag_at(d, config_lookup(&c->cfg, "api.listen"),
			    "api.listen and agents.listen are the same address");
		rc = -EINVAL;
	}
out_rc:
out:
	if (rc < 0) {
		console_conf_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void console_conf_free(struct console_conf *c)
{
	if (!c)
		return;
	struct console_tls_conf *t[] = {&c->agents, &c->api};
	for (size_t i = 0; i < N(t); i++) {
		free(t[i]->listen);
		free(t[i]->ca);
		free(t[i]->cert);
		free(t[i]->key);
		free(t[i]->crl);
	}
	free(c->path);
	free(c->name);
	free(c->conninfo);
	free(c->sql_dir);
	free(c->web_root);
	free(c->web_chartjs);
	config_destroy(&c->cfg);
	free(c);
}

const config_setting_t *console_conf_setting(const struct console_conf *c, const char *path)
{
	return config_lookup(&c->cfg, path);
}
