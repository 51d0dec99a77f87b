/* Port lists, IANA port classes, services(5) names and ICMP type names (see portspec.h). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "portspec.h"

void els_portset_free(struct els_port_set *s)
{
	free(s->r);
	memset(s, 0, sizeof(*s));
}

int els_portset_add(struct els_port_set *s, uint16_t lo, uint16_t hi)
{
	if (s->n == s->cap) {
		uint32_t cap = s->cap ? s->cap * 2 : 4;
		struct els_port_range *r = realloc(s->r, cap * sizeof(*r));
		if (!r)
			return -ENOMEM;
		s->r = r;
		s->cap = cap;
	}
	s->r[s->n++] = (struct els_port_range){lo, hi};
	return 0;
}

static int range_cmp(const void *a, const void *b)
{
	const struct els_port_range *x = a, *y = b;
	return x->lo != y->lo ? (x->lo < y->lo ? -1 : 1) : (x->hi > y->hi) - (x->hi < y->hi);
}

void els_portset_normalize(struct els_port_set *s)
{
	if (s->n < 2)
		return;
	qsort(s->r, s->n, sizeof(*s->r), range_cmp);
	uint32_t out = 0;
	for (uint32_t i = 1; i < s->n; i++) {
		struct els_port_range *last = &s->r[out];
		/* adjacent ranges merge too: 80-89 and 90-99 are one range */
		if ((uint32_t)s->r[i].lo <= (uint32_t)last->hi + 1) {
			if (s->r[i].hi > last->hi)
				last->hi = s->r[i].hi;
		} else {
			s->r[++out] = s->r[i];
		}
	}
	s->n = out + 1;
}

bool els_ranges_has(const struct els_port_range *r, uint32_t n, uint16_t v)
{
	uint32_t lo = 0, hi = n;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (v < r[mid].lo)
			hi = mid;
		else if (v > r[mid].hi)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

/* A decimal number 0..max spanning exactly [s, e); -1 if it is not one. */
static long parse_num(const char *s, const char *e, long max)
{
	long v = 0;
	if (s == e)
		return -1;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		if (v <= max) /* stays below max * 10 + 9: no overflow on long digit runs */
			v = v * 10 + (*s - '0');
	}
	return v <= max ? v : -2;
}

static const struct {
	const char *name;
	uint16_t lo, hi;
} port_classes[] = {
    {"well-known", 1, 1023},
    {"registered", 1024, 49151},
    {"dynamic", 49152, 65535},
};

int els_port_parse(const char *text, uint16_t *lo, uint16_t *hi, const char **why)
{
	static const char *ignored;
	const char *end = text + strlen(text);
	const char *dash;

	if (!why)
		why = &ignored;
	*why = NULL;
	for (size_t i = 0; i < sizeof(port_classes) / sizeof(port_classes[0]); i++) {
		if (strcmp(text, port_classes[i].name) == 0) {
			*lo = port_classes[i].lo;
			*hi = port_classes[i].hi;
			return 0;
		}
	}
	if (!isdigit((unsigned char)text[0]))
		return -ENOENT;
	dash = strchr(text, '-');
	long a = parse_num(text, dash ? dash : end, 65535);
	long b = dash ? parse_num(dash + 1, end, 65535) : a;
	if (a == -2 || b == -2) {
		*why = "port number above 65535";
		return -EINVAL;
	}
	if (a < 0 || b < 0) {
		*why = "not a port number or range lo-hi";
		return -EINVAL;
	}
	if (a > b) {
		*why = "range lo-hi with lo above hi";
		return -EINVAL;
	}
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

static const struct {
	const char *name;
	int v4, v6; /* -1: no such type in that protocol */
} icmp_names[] = {
    {"echo-reply", 0, 129},
    {"destination-unreachable", 3, 1},
    {"source-quench", 4, -1},
    {"redirect", 5, 137},
    {"echo-request", 8, 128},
    {"router-advertisement", 9, 134},
    {"router-solicitation", 10, 133},
    {"time-exceeded", 11, 3},
    {"parameter-problem", 12, 4},
    {"timestamp-request", 13, -1},
    {"timestamp-reply", 14, -1},
    {"packet-too-big", -1, 2},
    {"mld-query", -1, 130},
    {"mld-report", -1, 131},
    {"mld-done", -1, 132},
    {"neighbor-solicitation", -1, 135},
    {"neighbor-advertisement", -1, 136},
    {"mldv2-report", -1, 143},
};

int els_icmp_type_parse(const char *text, bool v6, const char **why)
{
	static const char *ignored;

	if (!why)
		why = &ignored;
	*why = NULL;
	if (isdigit((unsigned char)text[0])) {
		long v = parse_num(text, text + strlen(text), 255);
		if (v < 0) {
			*why = "ICMP type must be a number 0..255 or a type name";
			return -EINVAL;
		}
		return (int)v;
	}
	for (size_t i = 0; i < sizeof(icmp_names) / sizeof(icmp_names[0]); i++) {
		if (strcmp(text, icmp_names[i].name) != 0)
			continue;
		int t = v6 ? icmp_names[i].v6 : icmp_names[i].v4;
		if (t < 0) {
			*why = v6 ? "type exists only in ICMP (v4)" : "type exists only in ICMPv6";
			return -EINVAL;
		}
		return t;
	}
	*why = "unknown ICMP type name";
	return -EINVAL;
}

struct svc_entry {
	const char *name; /* into els_services.text */
	uint32_t order;	  /* position in the file: the first line wins, as in getservbyname */
	uint16_t port;
	uint8_t udp; /* 0 tcp, 1 udp */
};

struct els_services {
	char *text; /* a private copy, NUL-split into the names */
	struct svc_entry *e;
	size_t n;
};

static int svc_cmp(const void *a, const void *b)
{
	const struct svc_entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	if (x->udp != y->udp)
		return x->udp - y->udp;
	return (x->order > y->order) - (x->order < y->order);
}

static char *next_token(char **p)
{
	char *s = *p;
	while (*s == ' ' || *s == '\t' || *s == '\r')
		s++;
	if (!*s)
		return NULL;
	char *t = s;
	while (*s && *s != ' ' && *s != '\t' && *s != '\r')
		s++;
	if (*s)
		*s++ = '\0';
	*p = s;
	return t;
}

struct els_services *els_services_parse(const char *text, size_t len)
{
	struct els_services *s = calloc(1, sizeof(*s));
	size_t cap = 0;

	if (!s)
		return NULL;
	s->text = malloc(len + 1);
	if (!s->text)
		goto fail;
	memcpy(s->text, text, len);
	s->text[len] = '\0';
	char *end = s->text + len;
	for (char *line = s->text, *next; line < end; line = next) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		next = nl ? nl + 1 : end;
		if (nl)
			*nl = '\0';
		/* an embedded NUL ends its line early; the next line still counts */
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *p = line;
		char *name = next_token(&p), *pp = name ? next_token(&p) : NULL;
		char *slash = pp ? strchr(pp, '/') : NULL;
		if (!slash)
			continue;
		long port = parse_num(pp, slash, 65535);
		int udp = strcmp(slash + 1, "udp") == 0;
		if (port < 0 || (!udp && strcmp(slash + 1, "tcp") != 0))
			continue;
		for (char *n = name; n; n = next_token(&p)) {
			if (s->n == cap) {
				size_t ncap = cap ? cap * 2 : 256;
				struct svc_entry *e = realloc(s->e, ncap * sizeof(*e));
				if (!e)
					goto fail;
				s->e = e;
				cap = ncap;
			}
			s->e[s->n] =
			    (struct svc_entry){n, (uint32_t)s->n, (uint16_t)port, (uint8_t)udp};
			s->n++;
		}
	}
	if (s->n)
		qsort(s->e, s->n, sizeof(*s->e), svc_cmp);
	return s;
fail:
	els_services_free(s);
	return NULL;
}

int els_services_load(const char *path, struct els_services **out)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;

	if (!f)
		return -errno;
	for (;;) {
		if (cap - len < 4096) {
			char *b = realloc(buf, cap + 65536);
			if (!b) {
				rc = -ENOMEM;
				goto out;
			}
			buf = b;
			cap += 65536;
		}
		size_t got = fread(buf + len, 1, cap - len, f);
		len += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = -EIO;
		goto out;
	}
	*out = els_services_parse(buf ? buf : "", len);
	if (!*out)
		rc = -ENOMEM;
out:
	free(buf);
	fclose(f);
	return rc;
}

void els_services_free(struct els_services *s)
{
	if (!s)
		return;
	free(s->e);
	free(s->text);
	free(s);
}

int els_services_port(const struct els_services *s, const char *name, const char *proto)
{
	int udp = strcmp(proto, "udp") == 0;
	size_t lo = 0, hi = s->n;

	if (!udp && strcmp(proto, "tcp") != 0)
		return -ENOENT;
	/* lower bound of (name, udp, order 0): the first line of the file that names it */
	struct svc_entry key = {name, 0, 0, (uint8_t)udp};
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (svc_cmp(&s->e[mid], &key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s->n && strcmp(s->e[lo].name, name) == 0 && s->e[lo].udp == udp)
		return s->e[lo].port;
	return -ENOENT;
}

const char *els_services_name(const struct els_services *s, unsigned port, const char *proto)
{
	int udp = strcmp(proto, "udp") == 0;
	const struct svc_entry *best = NULL;

	if (!s || (!udp && strcmp(proto, "tcp") != 0))
		return NULL;
	/* Off the packet path (reports): a linear pass is fine. The lowest order is the first
	 * line naming the port, and on that line the service's own name before its aliases. */
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].port == port && s->e[i].udp == udp &&
		    (!best || s->e[i].order < best->order))
			best = &s->e[i];
	return best ? best->name : NULL;
}
