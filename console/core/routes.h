/* Where every module's HTTP routes are registered, before the server starts. The API (c-api)
 * and web (c-web) modules define console_api_init / console_web_init in their own files;
 * they are weak references here so that each lands without editing this file. */
#ifndef ELS_CONSOLE_ROUTES_H
#define ELS_CONSOLE_ROUTES_H

struct console;

/* Defined by api_*.c and web_*.c: register routes with console_http_route(). 0 or -errno. */
int console_api_init(struct console *c) __attribute__((weak));
int console_web_init(struct console *c) __attribute__((weak));

/* c-core's own routes (GET /api/console/instances, POST /api/console/disconnect), then the
 * modules' init functions present in the build. 0 or the first error. */
int console_routes_register(struct console *c);

#endif
