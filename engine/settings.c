/* Helpers for the config's optional sections (settings.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "els/path.h"
#include "settings.h"

int els_settings_group(const config_setting_t *g, const char *section, const char *example,
		       const char *const *keys, struct els_diag *d)
{
	char known[400];
	size_t o = 0;

	if (!config_setting_is_group(g)) {
		els_diag_at(d, g, "'%s' must be a group: %s", section, example);
		return -EINVAL;
	}
	known[0] = '\0';
	for (const char *const *k = keys; *k && o < sizeof(known); k++)
		o += (size_t)snprintf(known + o, sizeof(known) - o, "%s%s", o ? ", " : "", *k);
	for (int i = 0; i < config_setting_length(g); i++) {
		const config_setting_t *s = config_setting_get_elem(g, (unsigned)i);
		const char *name = config_setting_name(s);
		bool found = false;

		for (const char *const *k = keys; *k && !found; k++)
			found = strcmp(*k, name) == 0;
		if (!found)
			els_diag_at(d, s, "unknown setting '%s' in %s (known: %s)", name, section,
				    known);
	}
	return 0;
}

int els_settings_int(const config_setting_t *g, const char *section, const char *name, long long lo,
		     long long hi, long long *out, struct els_diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	long long v;

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_INT &&
	    config_setting_type(s) != CONFIG_TYPE_INT64) {
		els_diag_at(d, s, "'%s.%s' must be an integer", section, name);
		return -EINVAL;
	}
	v = config_setting_get_int64(s);
	if (v < lo || v > hi) {
		els_diag_at(d, s, "'%s.%s' = %lld is out of range %lld..%lld", section, name, v, lo,
			    hi);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

char *els_settings_path(const config_setting_t *g, const char *section, const char *name,
			const char *def, const char *config_path, struct els_diag *d)
{
	const config_setting_t *s = config_setting_get_member(g, name);
	const char *v = def;
	char *r;

	if (s) {
		v = config_setting_type(s) == CONFIG_TYPE_STRING ? config_setting_get_string(s)
								 : NULL;
		if (!v || !v[0]) {
			els_diag_at(d, s, "'%s.%s' must be a non-empty string (a file path)",
				    section, name);
			return NULL;
		}
	}
	if (!v) {
		els_diag_at(d, g, "%s: '%s' is required (a file path)", section, name);
		return NULL;
	}
	r = els_path_beside(v, config_path);
	if (!r)
		els_diag_at(d, s ? s : g, "%s: out of memory", section);
	return r;
}

const char *els_settings_listen(const char *s, char *host, size_t hostlen, uint16_t *port,
				bool *loopback)
{
	unsigned char a[16];
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *end = strchr(s, ']');

		if (!end || end[1] != ':')
			return "an IPv6 address must be written [ADDR]:PORT";
		hl = (size_t)(end - s - 1);
		if (hl == 0 || hl >= hostlen)
			return "bad IPv6 address";
		memcpy(host, s + 1, hl);
		host[hl] = 0;
		colon = end + 1;
		if (inet_pton(AF_INET6, host, a) != 1)
			return "not an IPv6 address";
		*loopback = memcmp(a, "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\1", 16) == 0;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return "expected \"ADDRESS:PORT\", e.g. \"127.0.0.1:7443\"";
		hl = (size_t)(colon - s);
		if (hl == 0 || hl >= hostlen)
			return "bad address";
		memcpy(host, s, hl);
		host[hl] = 0;
		if (inet_pton(AF_INET, host, a) != 1)
			return "the address must be a numeric IPv4 address, or [IPv6]";
		*loopback = a[0] == 127;
	}
	char *end;
	errno = 0;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || p == 0 || p > 65535)
		return "the port must be a number 1..65535";
	*port = (uint16_t)p;
	return NULL;
}
