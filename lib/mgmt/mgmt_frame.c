/* The management protocol's framing (docs/management-protocol.md, "Framing"): a 4-byte
 * big-endian body length, then the body. Shared by the endpoint, which reads frames from
 * untrusted peers, and elsctl, which writes requests and reads answers (include/els/mgmt.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"

void els_mgmt_frame_put_len(uint8_t hdr[ELS_MGMT_FRAME_HDR], uint32_t len)
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

long els_mgmt_frame_get_len(const uint8_t hdr[ELS_MGMT_FRAME_HDR])
{
	uint32_t n =
	    (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > ELS_MGMT_MAX_FRAME)
		return -EMSGSIZE;
	return (long)n;
}

void els_mgmt_frame_init(struct els_mgmt_frame *f)
{
	memset(f, 0, sizeof(*f));
}

void els_mgmt_frame_free(struct els_mgmt_frame *f)
{
	free(f->body);
	memset(f, 0, sizeof(*f));
}

void els_mgmt_frame_reset(struct els_mgmt_frame *f)
{
	/* Keep a small buffer for the next request; give back a big one. */
	if (f->cap > 65536) {
		free(f->body);
		f->body = NULL;
		f->cap = 0;
	}
	f->hdr_got = 0;
	f->len = 0;
	f->got = 0;
}

int els_mgmt_frame_feed(struct els_mgmt_frame *f, const uint8_t *buf, size_t len, size_t *used)
{
	size_t off = 0;

	*used = 0;
	while (f->hdr_got < ELS_MGMT_FRAME_HDR && off < len)
		f->hdr[f->hdr_got++] = buf[off++];
	if (f->hdr_got < ELS_MGMT_FRAME_HDR) {
		*used = off;
		return ELS_FRAME_MORE;
	}
	if (f->got == 0 && f->len == 0) {
		long n = els_mgmt_frame_get_len(f->hdr);

		if (n < 0) {
			*used = off;
			return ELS_FRAME_TOO_LARGE;
		}
		f->len = (uint32_t)n;
	}
	size_t want = f->len - f->got;
	size_t take = len - off < want ? len - off : want;
	if (f->got + take + 1 > f->cap) {
		size_t cap = f->cap ? f->cap : 4096;
		while (cap < f->got + take + 1)
			cap *= 2;
		if (cap > (size_t)f->len + 1)
			cap = (size_t)f->len + 1;
		uint8_t *nb = realloc(f->body, cap);
		if (!nb)
			return -ENOMEM;
		f->body = nb;
		f->cap = cap;
	}
	if (take)
		memcpy(f->body + f->got, buf + off, take);
	f->got += take;
	off += take;
	*used = off;
	if (f->got < f->len)
		return ELS_FRAME_MORE;
	f->body[f->got] = 0;
	return ELS_FRAME_DONE;
}
