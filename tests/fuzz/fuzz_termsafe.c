/* lib/termsafe.c on any bytes: never reads out of bounds, and what comes out holds no control
 * character (but newline and tab when kept), no ESC and only valid UTF-8. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/termsafe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (int keep = 0; keep < 2; keep++) {
		char *out = els_termsafe((const char *)data, size, keep);

		if (!out)
			return 0;
		if (!els_termsafe_clean(out, strlen(out), keep))
			abort();
		free(out);
	}
	return 0;
}
