/* Decoding one packet's IP and L4 headers into struct els_pkt (engine/decode.c). Packet path. */
#ifndef ELS_DECODE_H
#define ELS_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "els/pkt.h"

/* Decode caplen bytes starting at the IP header. wire_len is the packet's real length
 * (>= caplen when only the headers were copied). Never reads past buf[caplen-1].
 * Returns pkt->reason; on a decode failure the fields decoded so far stay valid (addresses,
 * family), so a drop can still be attributed. */
unsigned els_decode(const uint8_t *buf, size_t caplen, size_t wire_len, enum els_dir dir,
		    struct els_pkt *pkt);

#endif
