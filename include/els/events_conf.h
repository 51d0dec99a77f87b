/* The `events` setting, parsed by policy loading (engine/events_conf.c), run by elsd's event
 * stream (agent/monitor/events.h). */
#ifndef ELS_EVENTS_CONF_H
#define ELS_EVENTS_CONF_H

#include <libconfig.h>
#include <stdbool.h>
#include <stdint.h>

#include "els/diag.h"

/* The `events` group of the config file. Needs a restart to change. */
struct els_events_conf {
	char *file;	   /* events.file: NDJSON path, or NULL */
	char *host, *port; /* events.syslog.server "host:port", or NULL */
	char *name;	   /* events.syslog.name: the collector's certificate name; NULL: host */
	char *ca, *cert, *key; /* events.syslog.{ca,cert,key}: absolute paths */
	char *spool;	       /* events.syslog.spool; NULL: events.spool beside the monitor */
	uint64_t spool_max;    /* events.syslog.spool_max_mb in bytes */
	unsigned queue;	       /* events.queue: lines held in memory per output */
	int tls_min;	       /* events.syslog.tls: 12 or 13 (minimum version) */
};

/* Reads root's `events` group (absent: *out = NULL, no stream). Relative paths are taken
 * relative to config_path's directory. Errors go to d; 0 or -EINVAL. Frees with
 * els_events_conf_free. */
int els_events_conf_parse(const config_setting_t *root, const char *config_path,
			  struct els_events_conf **out, struct els_diag *d);
void els_events_conf_free(struct els_events_conf *c);
/* A deep copy (the running stream keeps its own: a reload frees the policy's). NULL: ENOMEM. */
struct els_events_conf *els_events_conf_dup(const struct els_events_conf *c);

#endif
