/* The event stream's two parsers of bytes it did not write this run: the spool reader's line
 * parser (the spool is read back after a restart, a crash or an edit), and the EVE formatter
 * on text fields of any bytes (permit ids come from the config, details from the network).
 * The formatter's output must always be valid JSON (jansson also rejects invalid UTF-8). */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"
#include "events_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, m, u;

	while (off < size) {
		int r = ev_spool_next((const char *)data + off, size - off, &m, &u);
		if (r == 0)
			break;
		if (u == 0 || u > size - off || (r == 1 && m >= u))
			abort();
		off += u;
	}

	struct els_record rec;
	char host[80], buf[ELS_EVE_MAX];
	size_t k = size < sizeof(rec) ? size : sizeof(rec);

	memset(&rec, 0, sizeof(rec));
	memcpy(&rec, data, k);
	rec.handler = size & 1 ? "header_filter" : NULL;
	k = size - k < sizeof(host) - 1 ? size - k : sizeof(host) - 1;
	memcpy(host, data + (size - k), k);
	host[k] = '\0';
	for (size_t len = 64; len <= sizeof(buf); len += len < 512 ? 37 : 509) {
		size_t n = els_eve_format(&rec, (enum els_eve_source)(size & 1), host, buf, len);
		json_error_t e;
		json_t *j = json_loadb(buf, n, JSON_DECODE_INT_AS_REAL, &e);
		if (!j || n >= len)
			abort();
		json_decref(j);
	}
	return 0;
}
