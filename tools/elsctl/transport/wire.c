/* A request as a frame of the management protocol (lib/mgmt/mgmt_frame.c,
 * docs/management-protocol.md "Framing"). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"
#include "../elsctl.h"

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
	if (n == 0 || n > ELS_MGMT_MAX_FRAME) {
		snprintf(err, errlen, "request is %zu bytes; the agent takes at most %u", n,
			 ELS_MGMT_MAX_FRAME);
		free(body);
		return -EMSGSIZE;
	}
	*buf = malloc(ELS_MGMT_FRAME_HDR + n);
	if (!*buf) {
		free(body);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	els_mgmt_frame_put_len(*buf, (uint32_t)n);
	memcpy(*buf + ELS_MGMT_FRAME_HDR, body, n);
	*len = ELS_MGMT_FRAME_HDR + n;
	free(body);
	return 0;
}
