/* The `metrics` section of the config: where the endpoint listens and, for a remote scraper,
 * its TLS material. Checked completely at load time (so `elsd -n` catches a typo) and applied
 * at start; a reload that changes it says so and keeps the running endpoint. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "els/path.h"
#include "els/metrics_conf.h"

void els_metrics_config_free(struct els_metrics_conf *c)
{
	if (!c)
		return;
	free(c->listen);
	free(c->unix_path);
	free(c->ca);
	free(c->cert);
	free(c->key);
	free(c->crl);
	free(c);
}

/* "A.B.C.D:PORT", "[V6]:PORT" (numeric: the address must not depend on DNS) or "/path" (a
 * UNIX socket). *loopback tells whether only this host can reach it. */
static const char *parse_listen(const char *s, struct els_metrics_conf *c, bool *loopback)
{
	unsigned char a[16];
	const char *colon;
	size_t hl;

	if (s[0] == '/') {
		if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return "a UNIX socket path must be shorter than 108 bytes";
		c->unix_path = strdup(s);
		*loopback = true;
		return c->unix_path ? NULL : "out of memory";
	}
	if (s[0] == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return "an IPv6 address must be written [ADDR]:PORT";
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= sizeof(c->host))
			return "bad IPv6 address";
		memcpy(c->host, s + 1, hl);
		c->host[hl] = 0;
		colon = end + 1;
		if (inet_pton(AF_INET6, c->host, a) != 1)
			return "not an IPv6 address";
		*loopback = memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return "expected \"ADDRESS:PORT\" (e.g. \"127.0.0.1:9764\") or a socket "
			       "path";
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= sizeof(c->host))
			return "bad address";
		memcpy(c->host, s, hl);
		c->host[hl] = 0;
		if (inet_pton(AF_INET, c->host, a) != 1)
			return "the address must be a numeric IPv4 address, [IPv6], or a socket "
			       "path";
		*loopback = a[0] == 127;
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p == 0 || p > 65535)
		return "the port must be a number 1..65535";
	c->port = (uint16_t)p;
	return NULL;
}

static bool only_keys(const config_setting_t *g, const char *const *keys, const char *where,
		      const char *known, struct els_diag *d)
{
	bool ok = true;
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		bool found = false;
		for (const char *const *k = keys; *k; k++)
			found |= strcmp(*k, config_setting_name(s)) == 0;
		if (!found) {
			els_diag_at(d, s, "unknown setting '%s' in %s (known: %s)",
				    config_setting_name(s), where, known);
			ok = false;
		}
	}
	return ok;
}

static char *tls_path(const config_setting_t *t, const char *name, const char *config_path,
		      struct els_diag *d)
{
	const config_setting_t *s = config_setting_get_member(t, name);
	const char *v = s ? config_setting_get_string(s) : NULL;
	if (!s) {
		els_diag_at(d, t, "metrics.tls: '%s' is required (a file path)", name);
		return NULL;
	}
	if (!v || !v[0]) {
		els_diag_at(d, s, "metrics.tls: '%s' must be a non-empty string (a file path)",
			    name);
		return NULL;
	}
	char *r = els_path_beside(v, config_path);
	if (!r)
		els_diag_at(d, s, "metrics.tls: out of memory");
	return r;
}

int els_metrics_config_parse(const config_setting_t *root, const char *config_path,
			     struct els_metrics_conf **out, struct els_diag *d)
{
	static const char *const keys[] = {"listen", "tls", NULL};
	static const char *const tls_keys[] = {"cert", "key", "ca", "crl", NULL};
	const config_setting_t *g = root ? config_setting_get_member(root, "metrics") : NULL;
	unsigned before = d->count;
	bool loopback = false;

	*out = NULL;
	if (!g)
		return 0;
	if (!config_setting_is_group(g)) {
		els_diag_at(
		    d, g, "'metrics' must be a group: metrics = { listen = \"127.0.0.1:9764\"; }");
		return -EINVAL;
	}
	only_keys(g, keys, "metrics", "listen, tls", d);
	struct els_metrics_conf *c = calloc(1, sizeof(*c));
	if (!c) {
		els_diag_at(d, g, "metrics: out of memory");
		return -EINVAL;
	}
	const config_setting_t *ls = config_setting_get_member(g, "listen");
	const char *lv = ls ? config_setting_get_string(ls) : NULL;
	const char *why;
	if (!ls)
		els_diag_at(d, g,
			    "metrics: 'listen' is required, e.g. listen = \"127.0.0.1:9764\"");
	else if (!lv)
		els_diag_at(d, ls, "metrics: 'listen' must be a string \"ADDRESS:PORT\" or a path");
	else if ((why = parse_listen(lv, c, &loopback)) != NULL)
		els_diag_at(d, ls, "metrics: listen \"%s\": %s", lv, why);
	else if (!(c->listen = strdup(lv)))
		els_diag_at(d, ls, "metrics: out of memory");

	const config_setting_t *t = config_setting_get_member(g, "tls");
	if (t && !config_setting_is_group(t)) {
		els_diag_at(d, t, "metrics: 'tls' must be a group: tls = { cert; key; ca; crl; }");
	} else if (t) {
		only_keys(t, tls_keys, "metrics.tls", "cert, key, ca, crl", d);
		if (c->unix_path)
			els_diag_at(d, t,
				    "metrics: 'tls' is for a TCP listener, not a UNIX socket");
		c->cert = tls_path(t, "cert", config_path, d);
		c->key = tls_path(t, "key", config_path, d);
		c->ca = tls_path(t, "ca", config_path, d);
		c->crl = tls_path(t, "crl", config_path, d);
	} else if (c->listen && !loopback) {
		/* Counters tell an attacker which ports are open and what is being dropped: off
		 * this host they travel only to a scraper that proves who it is. */
		els_diag_at(d, ls,
			    "metrics: listen \"%s\" is reachable from other hosts: use a loopback "
			    "address (127.0.0.1, [::1]) or a socket path, or add metrics.tls",
			    c->listen);
	}
	if (d->count != before) {
		els_metrics_config_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}
