/* `top` summaries of records: packets and records per port, source, reason or permit. See
 * include/els/query.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "els/query.h"
#include "els/termsafe.h"

struct top_entry {
	char *key; /* NULL: the field was null (no port, no permit, ...) */
	uint64_t packets, records;
};

struct els_top {
	enum els_top_by by;
	struct top_entry *e; /* open addressing on key, cap a power of two */
	size_t n, cap;
	struct top_entry none;
};

static const char *const by_names[] = {"port", "src", "reason", "permit"};

int els_top_by_parse(const char *s, enum els_top_by *by)
{
	for (unsigned i = 0; i < sizeof(by_names) / sizeof(by_names[0]); i++)
		if (!strcmp(s, by_names[i])) {
			*by = (enum els_top_by)i;
			return 0;
		}
	return -EINVAL;
}

struct els_top *els_top_new(enum els_top_by by)
{
	struct els_top *t = calloc(1, sizeof(*t));

	if (t)
		t->by = by;
	return t;
}

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static struct top_entry *slot(struct els_top *t, const char *key)
{
	size_t i = hash(key) & (t->cap - 1);

	while (t->e[i].key && strcmp(t->e[i].key, key))
		i = (i + 1) & (t->cap - 1);
	return &t->e[i];
}

static int grow(struct els_top *t)
{
	struct els_top old = *t;

	t->cap = t->cap ? 2 * t->cap : 256;
	t->e = calloc(t->cap, sizeof(*t->e));
	if (!t->e) {
		*t = old;
		return -ENOMEM;
	}
	for (size_t i = 0; i < old.cap; i++)
		if (old.e[i].key)
			*slot(t, old.e[i].key) = old.e[i];
	free(old.e);
	return 0;
}

/* The row's key for t->by in buf, or NULL when that field is null. */
static const char *key_of(const struct els_top *t, json_t *row, char *buf, size_t len)
{
	json_t *v;

	switch (t->by) {
	case ELS_TOP_PORT:
		v = json_object_get(row, "dport");
		if (!json_is_integer(v))
			return NULL;
		snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	case ELS_TOP_SRC:
		return json_string_value(json_object_get(row, "src"));
	case ELS_TOP_REASON:
		return json_string_value(json_object_get(row, "reason"));
	case ELS_TOP_PERMIT:
		v = json_object_get(row, "rule_name");
		if (json_is_string(v) && json_string_length(v))
			return json_string_value(v);
		v = json_object_get(row, "rule");
		if (!json_is_integer(v))
			return NULL;
		snprintf(buf, len, "#%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	return NULL;
}

int els_top_add(struct els_top *t, json_t *row)
{
	char buf[32];
	const char *key = key_of(t, row, buf, sizeof(buf));
	json_t *c = json_object_get(row, "count");
	uint64_t packets =
	    json_is_integer(c) && json_integer_value(c) > 0 ? (uint64_t)json_integer_value(c) : 1;
	struct top_entry *e;

	if (!key) {
		e = &t->none;
	} else {
		if ((t->n + 1) * 2 > t->cap && grow(t) < 0)
			return -ENOMEM;
		e = slot(t, key);
		if (!e->key) {
			e->key = strdup(key);
			if (!e->key)
				return -ENOMEM;
			t->n++;
		}
	}
	e->packets += packets;
	e->records++;
	return 0;
}

static int by_size(const void *a, const void *b)
{
	const struct top_entry *x = *(struct top_entry *const *)a,
			       *y = *(struct top_entry *const *)b;

	if (x->packets != y->packets)
		return x->packets < y->packets ? 1 : -1;
	if (x->records != y->records)
		return x->records < y->records ? 1 : -1;
	if (!x->key || !y->key)
		return !x->key - !y->key; /* null last */
	return strcmp(x->key, y->key);
}

void els_top_print(struct els_top *t, unsigned n, bool json, FILE *out)
{
	struct top_entry **v = calloc(t->n + 1, sizeof(*v));
	size_t m = 0, w = strlen(by_names[t->by]);

	if (!v) {
		fputs("out of memory\n", stderr);
		return;
	}
	for (size_t i = 0; i < t->cap; i++)
		if (t->e[i].key)
			v[m++] = &t->e[i];
	if (t->none.records)
		v[m++] = &t->none;
	qsort(v, m, sizeof(*v), by_size);
	if (n && m > n)
		m = n;
	for (size_t i = 0; i < m; i++)
		if (v[i]->key && strlen(v[i]->key) > w)
			w = strlen(v[i]->key);
	if (!json && m)
		fprintf(out, "%-*s  %12s  %8s\n", (int)w,
			t->by == ELS_TOP_SRC	  ? "SOURCE"
			: t->by == ELS_TOP_PORT	  ? "PORT"
			: t->by == ELS_TOP_REASON ? "REASON"
						  : "PERMIT",
			"PACKETS", "RECORDS");
	for (size_t i = 0; i < m; i++) {
		struct top_entry *e = v[i];

		if (json) {
			json_t *val = !e->key		      ? json_null()
				      : t->by == ELS_TOP_PORT ? json_integer(atoi(e->key))
							      : json_string(e->key);
			json_t *o = json_pack("{s:s,s:o,s:I,s:I}", "by", by_names[t->by], "value",
					      val, "packets", (json_int_t)e->packets, "records",
					      (json_int_t)e->records);

			if (o)
				els_query_print_ndjson(o, out);
			json_decref(o);
		} else {
			char *safe = e->key ? els_termsafe(e->key, strlen(e->key), false) : NULL;

			fprintf(out, "%-*s  %12llu  %8llu\n", (int)w, safe ? safe : "-",
				(unsigned long long)e->packets, (unsigned long long)e->records);
			free(safe);
		}
	}
	free(v);
}

void els_top_free(struct els_top *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->cap; i++)
		free(t->e[i].key);
	free(t->e);
	free(t);
}
