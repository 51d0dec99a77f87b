/* The management protocol's framing and role names (include/els/mgmt.h), shared by elsd's
 * endpoint and els-console's agent port: both read the same frames from untrusted peers, so
 * there is one reader. No sockets here: callers feed it the bytes they read. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"

const char *els_mgmt_role_name(int role)
{
	switch (role) {
	case ELS_ROLE_ADMIN:
		return "admin";
	case ELS_ROLE_AUDITOR:
		return "auditor";
	default:
		return "none";
	}
}

int els_mgmt_role_parse(const char *s)
{
	if (s && strcmp(s, "admin") == 0)
		return ELS_ROLE_ADMIN;
	if (s && strcmp(s, "auditor") == 0)
		return ELS_ROLE_AUDITOR;
	return ELS_ROLE_NONE;
}

/* ---- framing ---- */

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
	while (f->hdr_got < 4 && off < len)
		f->hdr[f->hdr_got++] = buf[off++];
	if (f->hdr_got < 4) {
		*used = off;
		return ELS_FRAME_MORE;
	}
	if (f->got == 0 && f->len == 0) {
		f->len = (uint32_t)f->hdr[0] << 24 | (uint32_t)f->hdr[1] << 16 |
			 (uint32_t)f->hdr[2] << 8 | f->hdr[3];
		if (f->len == 0 || f->len > ELS_MGMT_MAX_FRAME) {
			*used = off;
			return ELS_FRAME_TOO_LARGE;
		}
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
