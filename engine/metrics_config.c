/* The `metrics` section of the config: where the endpoint listens and, for a remote scraper,
 * its TLS material. Checked completely at load time (so `elsd -n` catches a typo) and applied
 * at start; a reload that changes it says so and keeps the running endpoint. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "els/metrics_conf.h"
#include "settings.h"

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
	if (s[0] == '/') {
		if (strlen(s) >= sizeof(((struct sockaddr_un *)0)->sun_path))
			return "a UNIX socket path must be shorter than 108 bytes";
		c->unix_path = strdup(s);
		*loopback = true;
		return c->unix_path ? NULL : "out of memory";
	}
	return els_settings_listen(s, c->host, sizeof(c->host), &c->port, loopback);
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
	if (els_settings_group(g, "metrics", "metrics = { listen = \"127.0.0.1:9764\"; }", keys,
			       d) < 0)
		return -EINVAL;
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
	if (t && els_settings_group(t, "metrics.tls", "tls = { cert; key; ca; crl; }", tls_keys,
				    d) < 0) {
		/* reported */
	} else if (t) {
		if (c->unix_path)
			els_diag_at(d, t,
				    "metrics: 'tls' is for a TCP listener, not a UNIX socket");
		c->cert = els_settings_path(t, "metrics.tls", "cert", NULL, config_path, d);
		c->key = els_settings_path(t, "metrics.tls", "key", NULL, config_path, d);
		c->ca = els_settings_path(t, "metrics.tls", "ca", NULL, config_path, d);
		c->crl = els_settings_path(t, "metrics.tls", "crl", NULL, config_path, d);
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
