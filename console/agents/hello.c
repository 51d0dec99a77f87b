/* Checks agents' hello/heartbeat frames field by field (hello.h): what passes goes into one
 * batched INSERT with every other agent's, so one bad value must never reach PostgreSQL. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hello.h"

static bool printable(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static bool is_hex64(const char *s)
{
	if (strlen(s) != 64)
		return false;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

int console_parse_utc(const char *s, double *out)
{
	int y, mo, d, h, mi, sec, used = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
	    used != 19)
		return -EINVAL;
	const char *p = s + used;
	double frac = 0, scale = 0.1;
	if (*p == '.') {
		p++;
		int digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 9) {
			frac += (*p - '0') * scale;
			scale /= 10;
			p++;
			digits++;
		}
		if (digits == 0)
			return -EINVAL;
	}
	if (strcmp(p, "Z") != 0)
		return -EINVAL;
	if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
	    sec > 59 || h < 0 || mi < 0 || sec < 0)
		return -EINVAL;
	struct tm tm = {.tm_year = y - 1900,
			.tm_mon = mo - 1,
			.tm_mday = d,
			.tm_hour = h,
			.tm_min = mi,
			.tm_sec = sec};
	time_t t = timegm(&tm);
	struct tm back;
	/* 2026-02-30 normalises to March: not a date. */
	if (!gmtime_r(&t, &back) || back.tm_mday != d || back.tm_mon != mo - 1)
		return -EINVAL;
	*out = (double)t + frac;
	return 0;
}

/* One optional field: absent or null is fine; otherwise the type must match. */
static int copy_string(json_t *in, json_t *row, const char *key, const char *col, size_t max,
		       char *why, size_t whyn)
{
	json_t *v = json_object_get(in, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v) || !printable(json_string_value(v), max)) {
		snprintf(why, whyn, "%s must be a string of at most %zu printable characters", key,
			 max);
		return -EINVAL;
	}
	json_object_set(row, col, v);
	return 0;
}

static int copy_bool(json_t *in, json_t *row, const char *key, char *why, size_t whyn)
{
	json_t *v = json_object_get(in, key);
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v)) {
		snprintf(why, whyn, "%s must be true or false", key);
		return -EINVAL;
	}
	json_object_set(row, key, v);
	return 0;
}

static int copy_list(json_t *in, json_t *row, const char *key, char *why, size_t whyn)
{
	json_t *v = json_object_get(in, key), *e;
	size_t i;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_array(v) || json_array_size(v) > CONSOLE_HELLO_MAX_LIST) {
		snprintf(why, whyn, "%s must be an array of at most %d objects", key,
			 CONSOLE_HELLO_MAX_LIST);
		return -EINVAL;
	}
	json_array_foreach(v, i, e) if (!json_is_object(e))
	{
		snprintf(why, whyn, "%s[%zu] must be an object", key, i);
		return -EINVAL;
	}
	json_object_set(row, key, v);
	return 0;
}

static int check_state(json_t *in, json_t *row, char *why, size_t whyn)
{
	json_t *v;
	if (copy_string(in, row, "host", "host", 255, why, whyn) < 0 ||
	    copy_string(in, row, "version", "version", 64, why, whyn) < 0 ||
	    copy_string(in, row, "group", "grp", 64, why, whyn) < 0 ||
	    copy_bool(in, row, "managed", why, whyn) < 0 ||
	    copy_bool(in, row, "rules_ok", why, whyn) < 0 ||
	    copy_bool(in, row, "monitor_ok", why, whyn) < 0 ||
	    copy_list(in, row, "listeners", why, whyn) < 0 ||
	    copy_list(in, row, "permits", why, whyn) < 0)
		return -EINVAL;
	v = json_object_get(in, "policy_sha256");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v) || !is_hex64(json_string_value(v))) {
			snprintf(why, whyn, "policy_sha256 must be 64 lowercase hex characters");
			return -EINVAL;
		}
		json_object_set(row, "policy_sha256", v);
	}
	v = json_object_get(in, "policy_generation");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			snprintf(why, whyn, "policy_generation must be an integer >= 0");
			return -EINVAL;
		}
		json_object_set(row, "policy_generation", v);
	}
	v = json_object_get(in, "counters");
	if (v && !json_is_null(v)) {
		const char *k;
		json_t *n;
		if (!json_is_object(v) || json_object_size(v) > 256) {
			snprintf(why, whyn, "counters must be an object of at most 256 numbers");
			return -EINVAL;
		}
		json_object_foreach(v, k, n) if (!json_is_integer(n) || json_integer_value(n) < 0)
		{
			snprintf(why, whyn, "counters.%.40s must be an integer >= 0", k);
			return -EINVAL;
		}
		json_object_set(row, "counters", v);
	}
	v = json_object_get(in, "time");
	if (v && !json_is_null(v)) {
		double t;
		if (!json_is_string(v) || console_parse_utc(json_string_value(v), &t) < 0) {
			snprintf(why, whyn, "time must be a UTC time like 2026-12-05T01:00:00Z");
			return -EINVAL;
		}
		json_object_set_new(row, "agent_time_epoch", json_real(t));
	}
	return 0;
}

int console_frame_parse(const char *body, size_t len, const char *cn, json_t **row, char *why,
			size_t whyn)
{
	json_error_t e;
	json_t *in = json_loadb(body, len, JSON_REJECT_DUPLICATES, &e), *out = NULL;
	int kind = CONSOLE_FRAME_BAD;

	*row = NULL;
	if (!in) {
		snprintf(why, whyn, "not JSON: line %d column %d: %s", e.line, e.column, e.text);
		return CONSOLE_FRAME_BAD;
	}
	if (!json_is_object(in)) {
		snprintf(why, whyn, "a frame must be a JSON object");
		goto out;
	}
	json_t *type = json_object_get(in, "type");
	if (!type) {
		/* A response: {"v":1,"id":N or null,"ok":bool,...}. */
		json_t *id = json_object_get(in, "id"), *ok = json_object_get(in, "ok");
		if (!ok || !json_is_boolean(ok) || !id ||
		    (!json_is_integer(id) && !json_is_null(id))) {
			snprintf(why, whyn, "a frame without \"type\" must be a response (id, ok)");
			goto out;
		}
		*row = in;
		return CONSOLE_FRAME_RESPONSE;
	}
	json_t *v = json_object_get(in, "v");
	if (!json_is_integer(v) || json_integer_value(v) != 1) {
		snprintf(why, whyn, "protocol version must be 1");
		goto out;
	}
	const char *t = json_string_value(type);
	if (t && strcmp(t, "hello") == 0)
		kind = CONSOLE_FRAME_HELLO;
	else if (t && strcmp(t, "heartbeat") == 0)
		kind = CONSOLE_FRAME_HEARTBEAT;
	else {
		snprintf(why, whyn, "unknown frame type");
		goto out;
	}
	const char *id = json_string_value(json_object_get(in, "agent_id"));
	if (!id || strcmp(id, cn) != 0) {
		snprintf(why, whyn, "agent_id does not match the certificate's CN");
		kind = CONSOLE_FRAME_WRONG_ID;
		goto out;
	}
	out = json_object();
	if (!out || json_object_set_new(out, "agent_id", json_string(id)) < 0 ||
	    check_state(in, out, why, whyn) < 0) {
		json_decref(out);
		out = NULL;
		kind = CONSOLE_FRAME_BAD;
		goto out;
	}
	*row = out;
out:
	json_decref(in);
	return kind;
}
