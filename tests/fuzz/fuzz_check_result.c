/* Feeds arbitrary bytes to the parser of the policy checker's answer (agent/check_result.h),
 * the one thing the main process reads from the confined child. Checks that what it accepts
 * is consistent (a valid policy carries no message and a hex hash; a refusal counts at least
 * the messages it carries) and survives a format/parse round trip unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check_result.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct els_check_result r, r2;
	static char buf[ELS_CHECK_MAX_OUT];

	if (els_check_result_parse((const char *)data, size, &r) < 0)
		return 0;
	if (r.ok) {
		if (r.nmsgs || strlen(r.sha256) != 64)
			abort();
		return 0;
	}
	if (r.errors < r.nmsgs || r.errors == 0 || r.nmsgs > ELS_CHECK_MAX_MSGS)
		abort();
	/* Round trip: the messages as a diag, formatted again, parse to the same. */
	struct els_diag d;
	els_diag_init(&d, NULL);
	for (unsigned i = 0; i < r.nmsgs; i++) {
		d.msgs = realloc(d.msgs, (i + 1) * sizeof(*d.msgs));
		d.msgs[i] = strdup(r.msgs[i]);
		d.count = d.cap = i + 1;
	}
	size_t n = els_check_result_format(buf, NULL, &d);
	if (els_check_result_parse(buf, n, &r2) < 0 || r2.ok || r2.nmsgs != r.nmsgs)
		abort();
	for (unsigned i = 0; i < r.nmsgs; i++)
		if (strcmp(r.msgs[i], r2.msgs[i]) != 0)
			abort();
	els_diag_free(&d);
	return 0;
}
