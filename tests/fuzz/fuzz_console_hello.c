/* els-console's agent-port input path on arbitrary bytes: the frame reader fed in uneven
 * chunks (with the 1 MiB cap before hello), each complete body classified and checked as a
 * hello, heartbeat or response (console_frame_parse), and every row it accepts holding only
 * the fields and types console_agents' batched upsert expects. Also the certificate-free
 * helpers it relies on (console_parse_utc). Input: byte 0 = chunk size, byte 1 = whether
 * the CN matches "agent-1", the rest = the stream. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agents_int.h"
#include "hello.h"

static void check_row(json_t *row)
{
	const char *k;
	json_t *v;
	json_object_foreach(row, k, v)
	{
		if (!strcmp(k, "agent_id") || !strcmp(k, "host") || !strcmp(k, "grp") ||
		    !strcmp(k, "version") || !strcmp(k, "policy_sha256")) {
			if (!json_is_string(v))
				abort();
		} else if (!strcmp(k, "managed") || !strcmp(k, "rules_ok") ||
			   !strcmp(k, "monitor_ok")) {
			if (!json_is_boolean(v))
				abort();
		} else if (!strcmp(k, "listeners") || !strcmp(k, "permits")) {
			if (!json_is_array(v) || json_array_size(v) > CONSOLE_HELLO_MAX_LIST)
				abort();
		} else if (!strcmp(k, "counters")) {
			if (!json_is_object(v))
				abort();
		} else if (!strcmp(k, "policy_generation")) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				abort();
		} else if (!strcmp(k, "agent_time_epoch")) {
			if (!json_is_real(v))
				abort();
		} else {
			abort(); /* a column the upsert does not know */
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t chunk = (size_t)data[0] + 1;
	const char *cn = data[1] & 1 ? "agent-1" : "other";
	const uint8_t *p = data + 2;
	size_t n = size - 2;
	struct els_mgmt_frame f;
	bool hello = false;

	els_mgmt_frame_init(&f);
	for (size_t off = 0; off < n;) {
		size_t take = n - off < chunk ? n - off : chunk, used;
		int rc = els_mgmt_frame_feed(&f, p + off, take, &used);
		if (used > take)
			abort();
		off += used;
		if (rc == ELS_FRAME_MORE && f.hdr_got == 4 && !hello &&
		    f.len > CONSOLE_HELLO_MAX_FRAME)
			break;
		if (rc == ELS_FRAME_TOO_LARGE || rc < 0)
			break;
		if (rc == ELS_FRAME_DONE) {
			json_t *row = NULL;
			char why[256];
			int kind = console_frame_parse((const char *)f.body, f.len, cn, &row, why,
						       sizeof(why));
			switch (kind) {
			case CONSOLE_FRAME_HELLO:
			case CONSOLE_FRAME_HEARTBEAT:
				if (!row || strcmp(json_string_value(json_object_get(row, "agent_id")),
						   cn) != 0)
					abort();
				check_row(row);
				hello = true;
				break;
			case CONSOLE_FRAME_RESPONSE:
				if (!json_is_boolean(json_object_get(row, "ok")))
					abort();
				break;
			default:
				if (row || !why[0])
					abort();
			}
			json_decref(row);
			els_mgmt_frame_reset(&f);
		}
	}
	els_mgmt_frame_free(&f);

	/* The time parser on the same bytes as a string. */
	char s[64];
	size_t l = n < sizeof(s) - 1 ? n : sizeof(s) - 1;
	memcpy(s, p, l);
	s[l] = 0;
	double t;
	if (console_parse_utc(s, &t) == 0 && !(t >= 0))
		abort();
	return 0;
}
