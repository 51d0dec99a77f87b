/* The `management` section of the config: where the endpoint listens, its TLS material and
 * the account it runs as. Checked completely at load time (so `elsd -n` catches a typo in a
 * path or user name) but applied only at start. */
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/mgmt.h"
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
	for (char **a = c->sweep_argv; a && *a; a++)
		free(*a);
	free(c->sweep_argv);
	free(c);
}

/* An unsigned management setting within lo..hi (els_settings_int). */
static void get_bounded(const config_setting_t *g, const char *name, unsigned lo, unsigned hi,
			unsigned *out, struct els_diag *d)
{
	long long v = *out;

	if (els_settings_int(g, "management", name, lo, hi, &v, d) == 0)
		*out = (unsigned)v;
}

/* sweep_command = [ "/usr/bin/els-sweep", "-c", "/etc/elsd/sweep.conf" ]: an argv, not a
 * shell line, so nothing in it is ever interpreted. Default: els-sweep from PATH with its own
 * default configuration. */
static void parse_sweep_command(const config_setting_t *g, struct els_mgmt_conf *c,
				struct els_diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, "sweep_command");
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

int els_mgmt_config_parse(const config_setting_t *root, const char *config_path,
			  struct els_mgmt_conf **out, struct els_diag *d)
{
	const config_setting_t *g = root ? config_setting_get_member(root, "management") : NULL;
	unsigned before = d->count;
	const char *why;
	bool loopback;

	*out = NULL;
	if (!g)
		return 0;
	if (els_settings_group(g, "management", "management = { listen = ...; }", mgmt_keys, d) <
	    0)
		return -EINVAL;
	struct els_mgmt_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		els_diag_at(d, g, "management: out of memory");
		return -ENOMEM;
	}
	c->max_clients = 32;
	c->timeout_s = 10;
	c->handshake_timeout_s = 5;
	c->per_source = 8;
	c->per_source_preauth = 4;
	c->buffer_mb = 64;

	const config_setting_t *ls = config_setting_get_member(g, "listen");
	const char *lv = ls ? config_setting_get_string(ls) : "127.0.0.1:7443";
	if (!lv)
		els_diag_at(d, ls, "management: 'listen' must be a string \"ADDRESS:PORT\"");
	else if ((why = els_settings_listen(lv, c->host, sizeof(c->host), &c->port, &loopback)))
		els_diag_at(d, ls ? ls : g, "management: listen \"%s\": %s", lv, why);
	else
		c->listen = strdup(lv);

	c->ca = els_settings_path(g, "management", "ca", "/etc/elsd/tls/ca.crt", config_path, d);
	c->cert = els_settings_path(g, "management", "cert", "/etc/elsd/tls/agent.crt", config_path, d);
	c->key = els_settings_path(g, "management", "key", "/etc/elsd/tls/agent.key", config_path, d);
	c->crl = els_settings_path(g, "management", "crl", "/etc/elsd/tls/crl.pem", config_path, d);

	const config_setting_t *us = config_setting_get_member(g, "user");
	/* Default: nobody when elsd starts as root; otherwise (systemd's User=elsd, where
	 * switching users is not allowed) elsd's own account, with the endpoint confined by
	 * Landlock instead (agent/sandbox.h). */
	const struct passwd *self = geteuid() != 0 ? getpwuid(geteuid()) : NULL;
	const char *uv = us ? config_setting_get_string(us) : self ? self->pw_name : "nobody";
	if (!uv || !uv[0]) {
		els_diag_at(d, us, "management: 'user' must be an account name");
	} else if (!getpwnam(uv)) {
		els_diag_at(d, us ? us : g,
			    "management: user \"%s\" does not exist: create it or name another "
			    "unprivileged account",
			    uv);
	} else if (getpwnam(uv)->pw_uid == 0) {
		els_diag_at(d, us ? us : g,
			    "management: user \"%s\" is root: the endpoint must run unprivileged",
			    uv);
	} else {
		c->user = strdup(uv);
	}
	get_bounded(g, "max_clients", 1, 1024, &c->max_clients, d);
	get_bounded(g, "timeout_s", 1, 3600, &c->timeout_s, d);
	get_bounded(g, "handshake_timeout_s", 1, 60, &c->handshake_timeout_s, d);
	get_bounded(g, "per_source", 1, 1024, &c->per_source, d);
	get_bounded(g, "per_source_preauth", 1, 1024, &c->per_source_preauth, d);
	get_bounded(g, "buffer_mb", ELS_MGMT_MAX_FRAME >> 20, 4096, &c->buffer_mb, d);
	/* Defaults that follow max_clients: a quarter of the slots kept for authenticated
	 * sessions (at least one), so a flood of handshakes never fills them all. */
	const config_setting_t *rs = config_setting_get_member(g, "reserved_slots");
	c->reserved_slots = c->max_clients / 4 ? c->max_clients / 4 : c->max_clients > 1;
	get_bounded(g, "reserved_slots", 0, 1023, &c->reserved_slots, d);
	if (c->reserved_slots >= c->max_clients && d->count == before)
		els_diag_at(d, rs ? rs : g,
			    "management: reserved_slots (%u) must be below max_clients (%u): the "
			    "rest is what unauthenticated connections may use",
			    c->reserved_slots, c->max_clients);
	if (c->per_source_preauth > c->per_source)
		c->per_source_preauth = c->per_source;
	parse_sweep_command(g, c, d);

	if (d->count != before || !c->listen || !c->ca || !c->cert || !c->key || !c->crl ||
	    !c->user) {
		if (d->count == before)
			els_diag_at(d, g, "management: out of memory");
		els_mgmt_config_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}
