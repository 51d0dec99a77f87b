/* The `management` section of the config: where the endpoint listens, its TLS material and
 * the account it runs as. Checked completely at load time (so `elsd -n` catches a typo in a
 * path or user name) but applied only at start. */
#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/mgmt.h"
#include "els/path.h"
#include "settings.h"

static const char *const mgmt_keys[] = {
    "listen",	 "ca",		"cert",		"key",	    "crl",
    "user",	 "max_clients", "timeout_s",	"sweep_command",
    "handshake_timeout_s", "reserved_slots", "per_source", "per_source_preauth", "buffer_mb",
    NULL};

void els_mgmt_config_free(struct els_mgmt_conf *c)
{
	if (!c)
		return;
	free(c->listen);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->crl);
	free(c->user);
	free(c->console_address);
	free(c->console_ca);
	free(c->console_cert);
	free(c->console_key);
	free(c->console_crl);
	free(c->console_group);
	for (char **a = c->sweep_argv; a && *a; a++)
		free(*a);
	free(c->sweep_argv);
	free(c);
}

/* The integer member name of g (absent, or g NULL: *out as it was), within lo..hi. */
static void get_bounded(const config_setting_t *g, const char *section, const char *name,
			unsigned lo, unsigned hi, unsigned *out, struct els_diag *d)
{
	long long v = *out;
	if (g && els_settings_int(g, section, name, lo, hi, &v, d) == 0)
		*out = (unsigned)v;
}

/* A file path member of g (def when absent, or g NULL), beside the config file. */
static char *get_path(const config_setting_t *g, const char *section, const char *name,
		      const char *def, const char *config_path, struct els_diag *d)
{
	if (g)
		return els_settings_path(g, section, name, def, config_path, d);
	char *r = els_path_beside(def, config_path);
	if (!r)
		els_diag_at(d, NULL, "%s: out of memory", section);
	return r;
}

/* sweep_command = [ "/usr/bin/els-sweep", "-c", "/etc/elsd/sweep.conf" ]: an argv, not a
 * shell line, so nothing in it is ever interpreted. Default: els-sweep from PATH with its own
 * default configuration. */
static void parse_sweep_command(const config_setting_t *g, struct els_mgmt_conf *c,
				struct els_diag *d)
{
	const config_setting_t *s = g ? config_setting_get_member(g, "sweep_command") : NULL;
	unsigned n = s ? (unsigned)config_setting_length(s) : 1;

	if (s && (!config_setting_is_array(s) || n == 0)) {
		els_diag_at(d, s, "management: 'sweep_command' must be a non-empty list of "
				  "strings, e.g. [ \"/usr/bin/els-sweep\", \"-c\", \"/etc/elsd/sweep.conf\" ]");
		return;
	}
	c->sweep_argv = calloc(n + 1, sizeof(*c->sweep_argv));
	for (unsigned i = 0; c->sweep_argv && i < n; i++) {
		const char *v = s ? config_setting_get_string_elem(s, i) : "els-sweep";
		if (!v) {
			els_diag_at(d, s, "management: 'sweep_command' must list strings");
			return;
		}
		c->sweep_argv[i] = strdup(v);
	}
}

static const char *const console_keys[] = {"address", "ca",    "cert",	 "key",
					    "crl",     "group", "heartbeat_s", NULL};

/* A DNS name as RFC 1123 allows it (letters, digits, '-', dots between labels of 1..63). */
static bool dns_name(const char *h)
{
	size_t label = 0, n = strlen(h);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = h; *p; p++) {
		bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9');
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
		} else if (alnum || (*p == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && h[n - 1] != '-';
}

int els_mgmt_parse_console_address(const char *s, char host[256], uint16_t *port,
				   const char **why)
{
	const char *colon;
	unsigned char tmp[16];
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':') {
			*why = "an IPv6 address must be written [ADDR]:PORT";
			return -EINVAL;
		}
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= 64) {
			*why = "bad IPv6 address";
			return -EINVAL;
		}
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		if (inet_pton(AF_INET6, host, tmp) != 1) {
			*why = "not an IPv6 address";
			return -EINVAL;
		}
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			*why = "expected HOST:PORT, e.g. \"console.example.net:7444\"";
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= 254) {
			*why = "bad host";
			return -EINVAL;
		}
		memcpy(host, s, hl);
		host[hl] = 0;
		if (inet_pton(AF_INET, host, tmp) != 1 && !dns_name(host)) {
			*why = "the host must be an IPv4 address, [IPv6] or a DNS name";
			return -EINVAL;
		}
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p == 0 || p > 65535) {
		*why = "the port must be a number 1..65535";
		return -EINVAL;
	}
	*port = (uint16_t)p;
	return 0;
}

/* console = { address = "console.example.net:7444"; ca; cert; key; crl; group; heartbeat_s; }:
 * an agent setting (never from a console's document, engine/policy_doc.c). The TLS files
 * default to the management section's. */
static void parse_console(const config_setting_t *cg, const char *config_path,
			  struct els_mgmt_conf *c, struct els_diag *d)
{
	const char *why;

	const config_setting_t *as = config_setting_get_member(cg, "address");
	const char *av = as ? config_setting_get_string(as) : NULL;
	if (!as)
		els_diag_at(d, cg, "console: 'address' is required, e.g. address = "
				   "\"console.example.net:7444\"");
	else if (!av)
		els_diag_at(d, as, "console: 'address' must be a string \"HOST:PORT\"");
	else if (els_mgmt_parse_console_address(av, c->console_host, &c->console_port, &why) < 0)
		els_diag_at(d, as, "console: address \"%s\": %s", av, why);
	else
		c->console_address = strdup(av);
	c->console_ca = get_path(cg, "console", "ca", c->ca, config_path, d);
	c->console_cert = get_path(cg, "console", "cert", c->cert, config_path, d);
	c->console_key = get_path(cg, "console", "key", c->key, config_path, d);
	c->console_crl = get_path(cg, "console", "crl", c->crl, config_path, d);
	const config_setting_t *gs = config_setting_get_member(cg, "group");
	if (gs) {
		const char *gv = config_setting_get_string(gs);
		bool ok = gv && gv[0] && strlen(gv) <= 64;
		for (const char *p = gv; ok && *p; p++)
			ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-';
		if (!ok)
			els_diag_at(d, gs, "console: 'group' must be 1..64 letters, digits, '.', "
					   "'_' or '-'");
		else
			c->console_group = strdup(gv);
	}
	c->heartbeat_s = 10;
	get_bounded(cg, "console", "heartbeat_s", 1, 3600, &c->heartbeat_s, d);
}

int els_mgmt_config_parse(const config_setting_t *root, const char *config_path,
			  struct els_mgmt_conf **out, struct els_diag *d)
{
	const config_setting_t *g = root ? config_setting_get_member(root, "management") : NULL;
	const config_setting_t *cg = root ? config_setting_get_member(root, "console") : NULL;
	unsigned before = d->count;
	const char *why;
	bool loopback; /* not needed: the endpoint authenticates every client */

	*out = NULL;
	if (!g && !cg)
		return 0;
	if (g && els_settings_group(g, "management", "management = { listen = ...; }", mgmt_keys,
				    d) < 0)
		return -EINVAL;
	if (cg && els_settings_group(cg, "console", "console = { address = ...; }", console_keys,
				     d) < 0)
		return -EINVAL;
	const config_setting_t *at = g ? g : cg; /* where a missing setting is reported */
	struct els_mgmt_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		els_diag_at(d, at, "management: out of memory");
		return -ENOMEM;
	}
	c->max_clients = 32;
	c->timeout_s = 10;
	c->handshake_timeout_s = 5;
	c->per_source = 8;
	c->per_source_preauth = 4;
	c->buffer_mb = 64;

	/* No listen: no listening endpoint (the agent may still dial a console). There is no
	 * default address any more, so that no port opens unless the host's config asks. */
	const config_setting_t *ls = g ? config_setting_get_member(g, "listen") : NULL;
	const char *lv = ls ? config_setting_get_string(ls) : NULL;
	if (ls && !lv)
		els_diag_at(d, ls, "management: 'listen' must be a string \"ADDRESS:PORT\"");
	else if (lv && (why = els_settings_listen(lv, c->host, sizeof(c->host), &c->port,
						   &loopback)))
		els_diag_at(d, ls, "management: listen \"%s\": %s", lv, why);
	else if (lv)
		c->listen = strdup(lv);
	if (g && !ls && !cg)
		els_diag_at(d, g,
			    "management: neither 'listen' nor a 'console' section: nothing could "
			    "reach the agent (the endpoint no longer listens by default; add listen "
			    "= \"127.0.0.1:7443\" for the old default, or console = { address = ...; })");

	c->ca = get_path(g, "management", "ca", "/etc/elsd/tls/ca.crt", config_path, d);
	c->cert = get_path(g, "management", "cert", "/etc/elsd/tls/agent.crt", config_path, d);
	c->key = get_path(g, "management", "key", "/etc/elsd/tls/agent.key", config_path, d);
	c->crl = get_path(g, "management", "crl", "/etc/elsd/tls/crl.pem", config_path, d);

	const config_setting_t *us = g ? config_setting_get_member(g, "user") : NULL;
	/* Default: nobody when elsd starts as root; otherwise (systemd's User=elsd, where
	 * switching users is not allowed) elsd's own account, with the endpoint confined by
	 * Landlock instead (agent/sandbox.h). */
	const struct passwd *self = geteuid() != 0 ? getpwuid(geteuid()) : NULL;
	const char *uv = us ? config_setting_get_string(us) : self ? self->pw_name : "nobody";
	if (!uv || !uv[0]) {
		els_diag_at(d, us, "management: 'user' must be an account name");
	} else if (!getpwnam(uv)) {
		els_diag_at(d, us ? us : at,
			    "management: user \"%s\" does not exist: create it or name another "
			    "unprivileged account",
			    uv);
	} else if (getpwnam(uv)->pw_uid == 0) {
		els_diag_at(d, us ? us : at,
			    "management: user \"%s\" is root: the endpoint must run unprivileged",
			    uv);
	} else {
		c->user = strdup(uv);
	}
	get_bounded(g, "management", "max_clients", 1, 1024, &c->max_clients, d);
	get_bounded(g, "management", "timeout_s", 1, 3600, &c->timeout_s, d);
	get_bounded(g, "management", "handshake_timeout_s", 1, 60, &c->handshake_timeout_s, d);
	get_bounded(g, "management", "per_source", 1, 1024, &c->per_source, d);
	get_bounded(g, "management", "per_source_preauth", 1, 1024, &c->per_source_preauth, d);
	get_bounded(g, "management", "buffer_mb", ELS_MGMT_MAX_FRAME >> 20, 4096, &c->buffer_mb, d);
	/* Defaults that follow max_clients: a quarter of the slots kept for authenticated
	 * sessions (at least one), so a flood of handshakes never fills them all. */
	const config_setting_t *rs = g ? config_setting_get_member(g, "reserved_slots") : NULL;
	c->reserved_slots = c->max_clients / 4 ? c->max_clients / 4 : c->max_clients > 1;
	get_bounded(g, "management", "reserved_slots", 0, 1023, &c->reserved_slots, d);
	if (c->reserved_slots >= c->max_clients && d->count == before)
		els_diag_at(d, rs ? rs : at,
			    "management: reserved_slots (%u) must be below max_clients (%u): the "
			    "rest is what unauthenticated connections may use",
			    c->reserved_slots, c->max_clients);
	if (c->per_source_preauth > c->per_source)
		c->per_source_preauth = c->per_source;
	parse_sweep_command(g, c, d);
	if (cg && c->ca && c->cert && c->key && c->crl)
		parse_console(cg, config_path, c, d);

	if (d->count != before || !c->ca || !c->cert || !c->key || !c->crl || !c->user ||
	    (!c->listen && !c->console_address)) {
		if (d->count == before)
			els_diag_at(d, at, "management: out of memory");
		els_mgmt_config_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}
