/* The shape the config's optional sections share (`metrics`, `events`, `management`, parsed by
 * metrics_config.c, events_conf.c and mgmt_config.c): a group of known keys, integers in a
 * range, file names relative to the config file, a numeric listen address. Each problem goes
 * to d at the setting's line, so that `elsd -n` lists every one. Private to engine/. */
#ifndef ELS_SETTINGS_H
#define ELS_SETTINGS_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "els/diag.h"

/* g must be a group ("'SECTION' must be a group: EXAMPLE" otherwise, and -EINVAL); each member
 * not in keys (NULL-terminated) is reported with the known ones, and parsing goes on (0). */
int els_settings_group(const config_setting_t *g, const char *section, const char *example,
		       const char *const *keys, struct els_diag *d);

/* The integer member name of g, if present, within lo..hi into *out. 0 (absent: *out as it
 * was), or -EINVAL with the error reported. */
int els_settings_int(const config_setting_t *g, const char *section, const char *name, long long lo,
		     long long hi, long long *out, struct els_diag *d);

/* The file name member name of g (def when absent; def NULL: required), resolved beside
 * config_path (els_path_beside). malloc'd, or NULL with the error reported. */
char *els_settings_path(const config_setting_t *g, const char *section, const char *name,
			const char *def, const char *config_path, struct els_diag *d);

/* "A.B.C.D:PORT" or "[V6]:PORT", numeric only (a listening address must not depend on DNS):
 * host (hostlen bytes) and port; *loopback says whether only this host can reach it. NULL,
 * or why not. */
const char *els_settings_listen(const char *s, char *host, size_t hostlen, uint16_t *port,
				bool *loopback);

#endif
