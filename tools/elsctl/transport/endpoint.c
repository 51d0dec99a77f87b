/* Agent addresses: "HOST:PORT" on the command line and in fleet files. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../elsctl.h"

#define FLEET_FILE_MAX (4u << 20)

static bool valid_port(const char *p)
{
	char *end;
	long v;

	if (!*p || strspn(p, "0123456789") != strlen(p) || strlen(p) > 5)
		return false;
	v = strtol(p, &end, 10);
	return v >= 1 && v <= 65535;
}

/* RFC 1123 host names; the certificate check needs the name exactly as the agent's SAN. */
static bool valid_hostname(const char *h)
{
	size_t label = 0, n = strlen(h);

	if (n == 0 || n > 253 || h[0] == '.' || h[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = h[i];

		if (ch == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return false;
		if (ch == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return h[n - 1] != '-';
}

int ctl_endpoint_parse(const char *s, const char *default_port, struct ctl_endpoint *ep,
		       const char **why)
{
	const char *host = s, *port = NULL, *colon;
	size_t hlen;
	unsigned char bin[16];

	memset(ep, 0, sizeof(*ep));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close) {
			*why = "missing ']' after an IPv6 address";
			return -EINVAL;
		}
		host = s + 1;
		hlen = (size_t)(close - host);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1]) {
			*why = "expected ':PORT' after ']'";
			return -EINVAL;
		}
	} else {
		colon = strrchr(s, ':');
		if (colon && strchr(s, ':') != colon) {
			/* Two or more colons and no brackets: a bare IPv6 address, no port. */
			hlen = strlen(s);
		} else {
			hlen = colon ? (size_t)(colon - s) : strlen(s);
			port = colon ? colon + 1 : NULL;
		}
	}
	if (hlen == 0 || hlen >= sizeof(ep->host)) {
		*why = hlen ? "host name too long" : "empty host";
		return -EINVAL;
	}
	memcpy(ep->host, host, hlen);
	ep->host[hlen] = '\0';
	if (!port)
		port = default_port;
	if (!port || !valid_port(port)) {
		*why = port && *port ? "port must be a number 1-65535" : "missing :PORT";
		return -EINVAL;
	}
	snprintf(ep->port, sizeof(ep->port), "%s", port);
	if (inet_pton(AF_INET, ep->host, bin) == 1 || inet_pton(AF_INET6, ep->host, bin) == 1)
		ep->is_ip = true;
	else if (s[0] == '[') {
		*why = "not an IPv6 address inside [ ]";
		return -EINVAL;
	} else if (!valid_hostname(ep->host)) {
		*why = "not a valid host name or IP address";
		return -EINVAL;
	}
	if (strchr(ep->host, ':'))
		snprintf(ep->label, sizeof(ep->label), "[%s]:%s", ep->host, ep->port);
	else
		snprintf(ep->label, sizeof(ep->label), "%s:%s", ep->host, ep->port);
	return 0;
}

int ctl_fleet_parse(const char *name, const char *text, const char *default_port,
		    struct ctl_endpoint **out, size_t *n, char *err, size_t errlen)
{
	struct ctl_endpoint *v = NULL, *nv;
	size_t count = 0, cap = 0;
	unsigned lineno = 0;
	const char *p = text;
	int rc = 0;

	while (*p) {
		const char *eol = strchr(p, '\n'), *why;
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char line[512];
		char *s, *e, *hash;

		lineno++;
		if (len >= sizeof(line)) {
			snprintf(err, errlen, "%s:%u: line too long", name, lineno);
			rc = -EINVAL;
			goto out;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		p = eol ? eol + 1 : p + len;
		hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		s = line + strspn(line, " \t\r");
		e = s + strlen(s);
		while (e > s && strchr(" \t\r", e[-1]))
			*--e = '\0';
		if (!*s)
			continue;
		if (strpbrk(s, " \t")) {
			snprintf(err, errlen, "%s:%u: one HOST:PORT per line, got '%s'", name,
				 lineno, s);
			rc = -EINVAL;
			goto out;
		}
		if (count == cap) {
			cap = cap ? cap * 2 : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				rc = -ENOMEM;
				snprintf(err, errlen, "%s: out of memory", name);
				goto out;
			}
			v = nv;
		}
		if (ctl_endpoint_parse(s, default_port, &v[count], &why) < 0) {
			snprintf(err, errlen, "%s:%u: '%s': %s", name, lineno, s, why);
			rc = -EINVAL;
			goto out;
		}
		for (size_t i = 0; i < count; i++) {
			if (!strcmp(v[i].label, v[count].label)) {
				snprintf(err, errlen, "%s:%u: %s is listed twice", name, lineno,
					 v[count].label);
				rc = -EINVAL;
				goto out;
			}
		}
		count++;
	}
	if (count == 0) {
		snprintf(err, errlen, "%s: no agents listed", name);
		rc = -EINVAL;
	}
out:
	if (rc < 0) {
		free(v);
		return rc;
	}
	*out = v;
	*n = count;
	return 0;
}

int ctl_fleet_file_read(const char *path, const char *default_port, struct ctl_endpoint **out,
			size_t *n, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *text = NULL;
	size_t len;
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rc;
	}
	text = malloc(FLEET_FILE_MAX + 1);
	if (!text) {
		fclose(f);
		snprintf(err, errlen, "%s: out of memory", path);
		return -ENOMEM;
	}
	len = fread(text, 1, FLEET_FILE_MAX + 1, f);
	if (ferror(f) || len > FLEET_FILE_MAX) {
		snprintf(err, errlen, "%s: %s", path,
			 ferror(f) ? "read error" : "larger than 4 MiB, not a fleet file");
		rc = -EINVAL;
		goto out;
	}
	text[len] = '\0';
	if (strlen(text) != len) {
		snprintf(err, errlen, "%s: contains a NUL byte, not a fleet file", path);
		rc = -EINVAL;
		goto out;
	}
	rc = ctl_fleet_parse(path, text, default_port, out, n, err, errlen);
out:
	free(text);
	fclose(f);
	return rc;
}
