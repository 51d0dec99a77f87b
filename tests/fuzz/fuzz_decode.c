/* libFuzzer target for els_decode. The input is one IP packet (the corpus holds real-looking
 * ones). It is decoded from an exact-size heap copy, so ASan traps any read past caplen, once
 * as a whole capture and once as a headers-only capture of a longer packet; the invariants
 * handlers rely on are checked after each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/decode.h"
#include "els/pkt.h"
#include "els/reason.h"

static void check(const struct els_pkt *p, unsigned r, enum els_dir dir, size_t wire)
{
	if (r != p->reason || r >= ELS_R__COUNT || p->dir != dir || p->wire_len != wire)
		abort();
	/* a later fragment carries no L4 header: ports would be payload bytes */
	if ((p->flags & ELS_PKT_LATER_FRAG) &&
	    (p->flags & (ELS_PKT_HAS_PORTS | ELS_PKT_HAS_ICMP) || p->sport || p->dport))
		abort();
	if ((p->flags & ELS_PKT_LATER_FRAG) && !(p->flags & ELS_PKT_FRAGMENT))
		abort();
	if ((p->flags & ELS_PKT_HAS_PORTS) && p->proto != 6 && p->proto != 17)
		abort();
	if ((p->flags & ELS_PKT_HAS_ICMP) && p->proto != 1 && p->proto != 58)
		abort();
	if ((p->flags & ELS_PKT_ICMP_ECHO) && !(p->flags & ELS_PKT_HAS_ICMP))
		abort();
	if ((p->family == ELS_AF_INET && p->ext_count) || p->ext_count > 16)
		abort();
	if (r == ELS_R_NONE && p->family == ELS_AF_NONE)
		abort();
	if (!(p->flags & ELS_PKT_FRAGMENT) && p->frag_id)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = malloc(size ? size : 1);
	struct els_pkt p, q;
	unsigned r, rq;

	if (!buf)
		return 0;
	memcpy(buf, data, size);

	r = els_decode(buf, size, size, ELS_DIR_IN, &p);
	check(&p, r, ELS_DIR_IN, size);

	/* The same bytes as the head of a longer packet: more may be accepted, never less. */
	rq = els_decode(buf, size, size + 65536, ELS_DIR_OUT, &q);
	check(&q, rq, ELS_DIR_OUT, size + 65536);
	if (r == ELS_R_NONE && rq != ELS_R_NONE)
		abort();

	free(buf);
	return 0;
}
