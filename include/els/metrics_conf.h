/* The `metrics` setting, parsed by policy loading (engine/metrics_config.c), served by elsd's
 * metrics endpoint (agent/metrics/metrics.h). */
#ifndef ELS_METRICS_CONF_H
#define ELS_METRICS_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "els/diag.h"

/* ---- the `metrics` setting (engine/metrics_config.c) ---- */

struct els_metrics_conf {
	char *listen;		     /* as written */
	char host[64];		     /* numeric address (TCP); empty for a UNIX socket */
	uint16_t port;		     /* TCP port; 0 for a UNIX socket */
	char *unix_path;	     /* listen = "/path": a UNIX socket; NULL otherwise */
	char *ca, *cert, *key, *crl; /* metrics.tls; all NULL without TLS */
};

/* Parses the optional `metrics` group of root into *out (NULL when absent: no endpoint). Every
 * error goes to d with its line; -EINVAL then and *out stays NULL. A listen address that is
 * not loopback needs `tls`. Frees with els_metrics_config_free. */
int els_metrics_config_parse(const config_setting_t *root, const char *config_path,
			     struct els_metrics_conf **out, struct els_diag *d);
void els_metrics_config_free(struct els_metrics_conf *c);

#endif
