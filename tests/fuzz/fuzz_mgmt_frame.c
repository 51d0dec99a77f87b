/* The management endpoint's input path on arbitrary bytes: the frame reader fed in uneven
 * chunks, each complete body through the request check (JSON, envelope, arguments, role) and
 * the console connection's on_behalf_of,
 * and the same bytes as IPC datagrams through the main process's receive checks.
 * Input: byte 0 = role (mod 3) and chunk size, the rest = the stream. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"
#include "ipc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int role = data[0] % 3;
	size_t chunk = (size_t)(data[0] >> 2) + 1;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	struct els_mgmt_frame f;

	els_mgmt_frame_init(&f);
	for (size_t off = 0; off < n;) {
		size_t take = n - off < chunk ? n - off : chunk, used;
		int rc = els_mgmt_frame_feed(&f, p + off, take, &used);
		if (used > take)
			abort();
		off += used;
		if (rc == ELS_FRAME_TOO_LARGE || rc < 0)
			break;
		if (rc == ELS_FRAME_DONE) {
			struct els_mgmt_req req;
			char *err;
			const char *code;
			if (f.body[f.len] != 0)
				abort();
			/* As a request from the console connection: on_behalf_of. */
			char who[65];
			int ob = els_mgmt_on_behalf((const char *)f.body, f.len, "console-1", who,
						    sizeof(who));
			if (ob < ELS_ROLE_NONE || ob > ELS_ROLE_ADMIN || !strstr(who, " via console-1"))
				abort();
			for (const char *q = who; *q; q++)
				if (*q < 0x20 || *q > 0x7e)
					abort(); /* it goes into the monitor and alerts as is */
			if (els_mgmt_request_check((const char *)f.body, f.len, role, &req, &err,
						   &code) == 0) {
				if (!req.cmd || role < req.role_needed ||
				    !json_is_object((json_t *)req.args))
					abort();
				json_decref(req.json);
			} else {
				json_t *j = err ? json_loads(err, 0, NULL) : NULL;
				if (err && !j)
					abort(); /* every error response must be valid JSON */
				json_decref(j);
				free(err);
			}
			els_mgmt_frame_reset(&f);
		} else if (used == 0) {
			abort(); /* no progress on a non-empty chunk */
		}
	}
	els_mgmt_frame_free(&f);

	/* The same bytes as a sequence of datagrams of `chunk` bytes each. */
	struct els_ipc c;
	struct els_ipc_msg m;
	els_ipc_init(&c, -1);
	for (size_t off = 0; off < n; off += chunk) {
		size_t take = n - off < chunk ? n - off : chunk;
		int rc = els_ipc_accept(&c, p + off, take, &m);
		if (rc == 1) {
			if (m.len > els_ipc_max_body(m.type) || m.body[m.len] != 0)
				abort();
			free(m.body);
		} else if (rc < 0) {
			free(c.buf);
			c.buf = NULL;
			c.got = 0;
			memset(&c.cur, 0, sizeof(c.cur));
		}
	}
	els_ipc_close(&c);
	return 0;
}
