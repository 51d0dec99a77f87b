/* lib/owner/owner_parse.c on any bytes: /proc/PID/cgroup and status texts, "socket:[N]" links and
 * sock_diag answers, each read from an exactly-sized heap copy so that any read past the end
 * is caught. The first byte picks the parser. What comes out is checked: a unit is a
 * NUL-terminated name with a unit suffix, never a path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/owner.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t which = data[0] % 4;
	size_t n = size - 1;
	char *buf = malloc(n ? n : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 1, n);

	switch (which) {
	case 0: {
		char unit[ELS_OWNER_UNIT_LEN];
		bool ok = els_owner_unit_parse(buf, n, unit, sizeof(unit));
		size_t l = strnlen(unit, sizeof(unit));
		if (l == sizeof(unit) || (ok && (l == 0 || strchr(unit, '/'))) || (!ok && l))
			abort();
		char tiny[1];
		if (els_owner_unit_parse(buf, n, tiny, sizeof(tiny)) || tiny[0])
			abort();
		break;
	}
	case 1: {
		uint32_t u = 0, g = 0;
		els_owner_status_parse(buf, n, &u, &g);
		break;
	}
	case 2: {
		uint64_t ino = 0;
		els_owner_socket_link(buf, n, &ino);
		break;
	}
	case 3: {
		uint64_t ino = 0;
		uint32_t uid = 0, seq = 7; /* the seeds' sequence number */
		int r = els_owner_diag_answer(buf, n, seq, &ino, &uid);
		if (r == 1 && ino == 0)
			abort();
		struct els_owner o = {.inode = ino, .uid = uid, .pid = seq};
		char d[96];
		memcpy(o.exe, buf, n < sizeof(o.exe) - 1 ? n : sizeof(o.exe) - 1);
		els_owner_describe(&o, d, sizeof(d));
		break;
	}
	}
	free(buf);
	return 0;
}
