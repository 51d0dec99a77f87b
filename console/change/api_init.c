/* The change-control API's entry point (routes.h: console_api_init, found through a weak
 * reference by c-core's route registration): its routes, and one timer that runs the health
 * gate every second and the drift rules every drift pass. */
#include <event2/event.h>

#include "api.h"
#include "console.h"
#include "routes.h"

#define API_TICK_S     1 /* health gate and deployment completion */
#define API_DRIFT_EACH 2 /* drift every this many ticks */

static struct event *tick_ev;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	static unsigned n;
	struct console *c = arg;

	(void)fd;
	(void)what;
	api_deploy_tick(c);
	if (n++ % API_DRIFT_EACH == 0)
		api_drift_tick(c);
}

int console_api_init(struct console *c)
{
	int rc = api_registry_routes(c);

	if (rc == 0)
		rc = api_policy_routes(c);
	if (rc == 0)
		rc = api_deploy_routes(c);
	if (rc == 0)
		rc = api_drift_routes(c);
	if (rc == 0)
		rc = api_audit_routes(c);
	if (rc)
		return rc;
	tick_ev = event_new(c->base, -1, EV_PERSIST, on_tick, c);
	struct timeval tv = {API_TICK_S, 0};
	if (!tick_ev || event_add(tick_ev, &tv) < 0)
		return -1;
	/* Lives as long as the process: main frees the base at exit, after which an
	 * event_free would touch freed memory (main.c has no per-module free hook). */
	return 0;
}
