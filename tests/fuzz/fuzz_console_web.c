/* els-console's browser endpoints' own parsers of outside input: a query-string time
 * (web_parse_time, whose result is formatted back and must parse to the same second) and a
 * traffic table turned into CSV (web_table_csv on any JSON). Input: byte 0 picks the target. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 65536)
		return 0;
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	if (data[0] & 1) {
		time_t t, again;
		char buf[32];
		if (web_parse_time(s, &t) == 0) {
			web_format_time(t, buf, sizeof(buf));
			if (web_parse_time(buf, &again) != 0 || again != t)
				abort();
		}
	} else {
		json_t *j = json_loadb(s, size - 1, JSON_DECODE_ANY, NULL);
		size_t len = 0;
		char *csv = web_table_csv(j, &len);
		if (csv && strlen(csv) != len)
			abort();
		free(csv);
		json_decref(j);
	}
	free(s);
	return 0;
}
