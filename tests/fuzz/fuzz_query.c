/* lib/query/query.c on any bytes, as elsd receives them in a management `log` request and the
 * tools on their command line: every filter's value checker, the time grammar, and the
 * predicate on a row. Nothing may crash, and a value accepted once is accepted again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/handler.h"
#include "els/query.h"

static const char *const names[] = {"kind",   "verdict",    "addr",	"port",
				    "reason", "handler",    "since",	"until",
				    "limit",  "before-seq", "after-seq"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct els_query q, again;
	char *v, err[700];
	const int64_t now = 1700000000LL * 1000000000LL;
	int rc;

	if (size < 1)
		return 0;
	v = malloc(size);
	if (!v)
		return 0;
	memcpy(v, data + 1, size - 1);
	v[size - 1] = '\0'; /* a C string, as getopt and jansson hand it over */
	const char *name = names[data[0] % (sizeof(names) / sizeof(names[0]))];
	els_query_init(&q, els_handler_all());
	rc = els_query_set(&q, name, v, now, err, sizeof(err));
	els_query_init(&again, els_handler_all());
	if (els_query_set(&again, name, v, now, err, sizeof(err)) != rc)
		abort();
	json_t *row = json_pack("{s:I, s:I, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s}", "seq",
				(json_int_t)7, "ts_ns", (json_int_t)now, "kind", "drop", "verdict",
				"drop", "src", v, "dst", "2001:db8::1", "sport", 1, "dport", 22,
				"reason", "no_permit", "handler", "header_filter");
	if (row)
		(void)els_query_match_json(&q, row);
	json_decref(row);
	free(v);
	return 0;
}
