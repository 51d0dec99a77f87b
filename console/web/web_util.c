/* The browser pages' helpers that need no server: query-string times and CSV (web.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), without timegm's time zone state. */
static long long days_from_civil(int y, int m, int d)
{
	static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
	long long days = 0;
	for (int i = 1970; i < y; i++)
		days += leap(i) ? 366 : 365;
	days += before[m - 1] + (m > 2 && leap(y)) + d - 1;
	return days;
}

int web_parse_time(const char *s, time_t *out)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y, mo, d, h = 0, mi = 0, sec = 0, oh = 0, om = 0, sign = 0;
	size_t n = s ? strlen(s) : 0;

	if (n < 10 || n > 40 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d))
		return -EINVAL;
	const char *p = s + 10;
	if (*p == 'T' || *p == ' ') {
		if (!digits(p + 1, 2, &h) || p[3] != ':' || !digits(p + 4, 2, &mi))
			return -EINVAL;
		p += 6;
		if (*p == ':') {
			if (!digits(p + 1, 2, &sec))
				return -EINVAL;
			p += 3;
			if (*p == '.') {
				p++;
				if (*p < '0' || *p > '9')
					return -EINVAL;
				while (*p >= '0' && *p <= '9')
					p++;
			}
		}
		if (*p == 'Z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			sign = *p == '+' ? 1 : -1;
			if (!digits(p + 1, 2, &oh))
				return -EINVAL;
			p += 3;
			if (*p == ':')
				p++;
			if (!digits(p, 2, &om))
				return -EINVAL;
			p += 2;
		}
	}
	if (*p != 0 || y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 || mi > 59 || sec > 60 || oh > 23 ||
	    om > 59)
		return -EINVAL;
	long long t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	if (t < 0)
		return -EINVAL;
	*out = (time_t)t;
	return 0;
}

void web_format_time(time_t t, char *buf, size_t n)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

bool web_plain_text(const char *s, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (n >= max || (unsigned char)s[n] < 0x20 || (unsigned char)s[n] == 0x7f)
			return false;
	return n > 0;
}

struct buf {
	char *p;
	size_t len, cap;
	bool failed;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void put_text(struct buf *b, const char *s, size_t n, bool guard)
{
	bool formula = guard && n > 0 && strchr("=+-@\t\r", s[0]);
	bool quote = formula || strpbrk(s, ",\"\r\n") != NULL || memchr(s, 0, n) != NULL;
	if (!quote) {
		put(b, s, n);
		return;
	}
	put(b, "\"", 1);
	if (formula)
		put(b, "'", 1);
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '"')
			put(b, "\"\"", 2);
		else if (s[i] != 0)
			put(b, s + i, 1);
	}
	put(b, "\"", 1);
}

static void put_cell(struct buf *b, const json_t *v)
{
	char num[64];
	switch (json_typeof(v)) {
	case JSON_STRING:
		put_text(b, json_string_value(v), json_string_length(v), true);
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		put(b, num, strlen(num));
		break;
	case JSON_REAL:
		snprintf(num, sizeof(num), "%.17g", json_real_value(v));
		put(b, num, strlen(num));
		break;
	case JSON_TRUE:
		put(b, "true", 4);
		break;
	case JSON_FALSE:
		put(b, "false", 5);
		break;
	case JSON_NULL:
		break;
	default: {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s) {
			b->failed = true;
			return;
		}
		put_text(b, s, strlen(s), true);
		free(s);
	}
	}
}

char *web_table_csv(const json_t *table, size_t *len)
{
	const json_t *cols = json_object_get(table, "columns");
	const json_t *rows = json_object_get(table, "rows");
	struct buf b = {0};
	size_t i, j;
	const json_t *c, *r;

	if (!json_is_array(cols) || !json_is_array(rows) || json_array_size(cols) == 0)
		return NULL;
	json_array_foreach(cols, i, c)
	{
		if (!json_is_string(c))
			goto fail;
		if (i)
			put(&b, ",", 1);
		put_text(&b, json_string_value(c), json_string_length(c), true);
	}
	put(&b, "\r\n", 2);
	json_array_foreach(rows, j, r)
	{
		if (!json_is_object(r))
			goto fail;
		json_array_foreach(cols, i, c)
		{
			if (i)
				put(&b, ",", 1);
			const json_t *v = json_object_get(r, json_string_value(c));
			if (v)
				put_cell(&b, v);
		}
		put(&b, "\r\n", 2);
	}
	if (b.failed)
		goto fail;
	*len = b.len;
	return b.p;
fail:
	free(b.p);
	return NULL;
}
