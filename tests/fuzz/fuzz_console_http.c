/* The pieces of els-console's HTTPS server that read client bytes themselves (libevent parses
 * the HTTP): the Cookie header scan behind the anti-CSRF check, and the route lookup on any
 * path. Input: byte 0 selects the method, then a Cookie header and a path separated by '\n'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "http.h"

static void h(struct console_http_ctx *ctx)
{
	(void)ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct console c;
	static const char *const methods[] = {"GET", "POST", "PUT", "DELETE"};
	if (!c.http) {
		console_http_route(&c, "GET", "/api/policies", h, ELS_ROLE_AUDITOR, false);
		console_http_route(&c, "POST", "/api/policies/", h, ELS_ROLE_ADMIN, true);
		console_http_route(&c, "GET", "/", h, ELS_ROLE_AUDITOR, false);
		console_http_route(&c, "GET", "/static/", h, ELS_ROLE_AUDITOR, false);
	}
	if (size < 1)
		return 0;
	char *s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = 0;
	char *nl = strchr(s, '\n');
	const char *path = nl ? nl + 1 : "/";
	if (nl)
		*nl = 0;
	char out[80];
	console_http_cookie_value(s, "els_csrf", out, sizeof(out));
	if (strlen(out) >= sizeof(out) || (out[0] && !strstr(s, out)))
		abort();
	const char *rest = NULL;
	int role = 0;
	bool sc = false, known = false;
	console_http_handler fn =
	    console_http_lookup(&c, methods[data[0] % 4], path, &rest, &role, &sc, &known);
	if (fn && (!known || !rest || rest < path || rest > path + strlen(path) ||
		   (role != ELS_ROLE_AUDITOR && role != ELS_ROLE_ADMIN)))
		abort();
	free(s);
	return 0;
}
