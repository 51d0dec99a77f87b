/* Frames for the management protocol (docs/management-protocol.md, "Framing"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "elsctl.h"
#include "wire.h"

/* *buf is malloc'd; the caller frees it. */
int ctl_frame_encode(json_t *msg, unsigned char **buf, size_t *len, char *err, size_t errlen)
{
	char *body = json_dumps(msg, JSON_COMPACT);
	size_t n;

	if (!body) {
		snprintf(err, errlen, "cannot encode the request (out of memory?)");
		return -ENOMEM;
	}
	n = strlen(body);
	if (n == 0 || n > CTL_FRAME_MAX) {
		snprintf(err, errlen, "request is %zu bytes; the agent takes at most %u", n,
			 CTL_FRAME_MAX);
		free(body);
		return -EMSGSIZE;
	}
	*buf = malloc(CTL_FRAME_HDR + n);
	if (!*buf) {
		free(body);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	(*buf)[0] = (unsigned char)(n >> 24);
	(*buf)[1] = (unsigned char)(n >> 16);
	(*buf)[2] = (unsigned char)(n >> 8);
	(*buf)[3] = (unsigned char)n;
	memcpy(*buf + CTL_FRAME_HDR, body, n);
	*len = CTL_FRAME_HDR + n;
	free(body);
	return 0;
}

long ctl_frame_body_len(const unsigned char *hdr)
{
	unsigned long n = (unsigned long)hdr[0] << 24 | (unsigned long)hdr[1] << 16 |
			  (unsigned long)hdr[2] << 8 | hdr[3];

	if (n == 0 || n > CTL_FRAME_MAX)
		return -EMSGSIZE;
	return (long)n;
}
