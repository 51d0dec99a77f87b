/* The `events` group of the config file (docs/events.md, man/elsd.conf.5.scd). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "els/path.h"
#include "els/events_conf.h"
#include "settings.h"

static const char *const event_keys[] = {"file", "queue", "syslog", NULL};
static const char *const syslog_keys[] = {"server", "name",	    "ca",  "cert", "key",
					  "spool",  "spool_max_mb", "tls", NULL};

#define EV_QUEUE_DEFAULT    2048
#define EV_SPOOL_MB_DEFAULT 64

void els_events_conf_free(struct els_events_conf *c)
{
	if (!c)
		return;
	free(c->file);
	free(c->host);
	free(c->port);
	free(c->name);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->spool);
	free(c);
}

static bool dup_str(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return !src || *dst;
}

struct els_events_conf *els_events_conf_dup(const struct els_events_conf *c)
{
	struct els_events_conf *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	*d = (struct els_events_conf){
	    .spool_max = c->spool_max, .queue = c->queue, .tls_min = c->tls_min};
	if (!dup_str(&d->file, c->file) || !dup_str(&d->host, c->host) ||
	    !dup_str(&d->port, c->port) || !dup_str(&d->name, c->name) || !dup_str(&d->ca, c->ca) ||
	    !dup_str(&d->cert, c->cert) || !dup_str(&d->key, c->key) ||
	    !dup_str(&d->spool, c->spool)) {
		els_events_conf_free(d);
		return NULL;
	}
	return d;
}

/* A string member; NULL when absent (or wrong, with an error in d). */
static const char *str(const config_setting_t *g, const char *name, const char *what,
		       struct els_diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);

	if (!s)
		return NULL;
	if (config_setting_type(s) != CONFIG_TYPE_STRING || !*config_setting_get_string(s)) {
		els_diag_at(d, s, "'%s.%s' must be a non-empty string", what, name);
		return NULL;
	}
	return config_setting_get_string(s);
}

/* "host:port" or "[v6]:port"; the host may be a name (resolved at each connect). */
static int parse_server(const char *v, char **host, char **port)
{
	const char *colon, *h = v;
	size_t hl;

	if (v[0] == '[') {
		const char *end = strchr(v, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		h = v + 1, hl = (size_t)(end - h), colon = end + 1;
	} else {
		colon = strrchr(v, ':');
		if (!colon || strchr(v, ':') != colon)
			return -EINVAL;
		hl = (size_t)(colon - v);
	}
	char *endp;
	long p = strtol(colon + 1, &endp, 10);
	if (hl == 0 || hl > 253 || *endp || p < 1 || p > 65535 || !colon[1])
		return -EINVAL;
	*host = strndup(h, hl);
	*port = strdup(colon + 1);
	return *host && *port ? 0 : -ENOMEM;
}

/* A credential file: resolved, and readable now, so that `elsd -n` catches a typo. */
static char *cred(const config_setting_t *g, const char *name, const char *config_path,
		  struct els_diag *d)
{
	const char *v = str(g, name, "events.syslog", d);
	char *p;

	if (!v) {
		if (!config_setting_get_member(g, name))
			els_diag_at(d, g,
				    "events.syslog needs '%s' (a PEM file): the collector is "
				    "reached over mutually authenticated TLS only",
				    name);
		return NULL;
	}
	p = els_path_beside(v, config_path);
	if (p && access(p, R_OK) != 0) {
		els_diag_at(d, config_setting_get_member(g, name), "events.syslog.%s = \"%s\": %s",
			    name, p, strerror(errno));
		free(p);
		return NULL;
	}
	return p;
}

static int parse_syslog(const config_setting_t *g, const char *config_path,
			struct els_events_conf *c, struct els_diag *d)
{
	unsigned errs = d->count;
	long long mb = EV_SPOOL_MB_DEFAULT;
	const char *v;

	if (els_settings_group(g, "events.syslog", "syslog = { server = \"host:6514\"; ... };",
			       syslog_keys, d) < 0)
		return -EINVAL;
	v = str(g, "server", "events.syslog", d);
	if (!v && !config_setting_get_member(g, "server"))
		els_diag_at(d, g, "events.syslog needs server = \"host:6514\";");
	else if (v && parse_server(v, &c->host, &c->port) < 0)
		els_diag_at(d, config_setting_get_member(g, "server"),
			    "events.syslog.server = \"%s\" is not host:port or [v6]:port "
			    "(e.g. \"collector.example:6514\")",
			    v);
	if ((v = str(g, "name", "events.syslog", d)))
		c->name = strdup(v);
	c->ca = cred(g, "ca", config_path, d);
	c->cert = cred(g, "cert", config_path, d);
	c->key = cred(g, "key", config_path, d);
	if ((v = str(g, "spool", "events.syslog", d)))
		c->spool = els_path_beside(v, config_path);
	els_settings_int(g, "events.syslog", "spool_max_mb", 1, 1 << 20, &mb, d);
	c->spool_max = (uint64_t)mb << 20;
	c->tls_min = 12;
	if ((v = str(g, "tls", "events.syslog", d))) {
		if (strcmp(v, "1.3") == 0)
			c->tls_min = 13;
		else if (strcmp(v, "1.2") != 0)
			els_diag_at(d, config_setting_get_member(g, "tls"),
				    "events.syslog.tls = \"%s\" is not \"1.2\" or \"1.3\" (the "
				    "lowest version accepted; 1.3 is preferred either way)",
				    v);
	}
	return d->count == errs ? 0 : -EINVAL;
}

int els_events_conf_parse(const config_setting_t *root, const char *config_path,
			  struct els_events_conf **out, struct els_diag *d)
{
	const config_setting_t *g = config_setting_get_member(root, "events");
	const config_setting_t *s;
	struct els_events_conf *c;
	unsigned errs = d->count;
	long long q = EV_QUEUE_DEFAULT;
	const char *v;

	*out = NULL;
	if (!g)
		return 0;
	if (els_settings_group(g, "events", "events = { ... };", event_keys, d) < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if ((v = str(g, "file", "events", d)))
		c->file = els_path_beside(v, config_path);
	els_settings_int(g, "events", "queue", 64, 1 << 20, &q, d);
	c->queue = (unsigned)q;
	if ((s = config_setting_get_member(g, "syslog")))
		parse_syslog(s, config_path, c, d);
	if (d->count != errs || (!c->file && !c->host)) {
		if (d->count == errs)
			els_diag_at(d, g,
				    "'events' names no output: set file = \"...\"; and/or "
				    "syslog = { server = ...; };");
		els_events_conf_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}
