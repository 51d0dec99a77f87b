/* A worker's state as the handlers see it, for unit tests and fuzzers that call handlers
 * directly: the session index, the monitor and alert rings, and every handler's own state
 * (worker_init), with the clocks the worker would put in the context. */
#ifndef ELS_TEST_WORKER_STATE_H
#define ELS_TEST_WORKER_STATE_H

#include <stdlib.h>

#include "els/handler.h"
#include "els/sessions.h"
#include "els/worker_out.h"

struct test_ws {
	struct els_sessions *sessions;
	struct els_worker_out *out;
	void **hstates;
	uint64_t now_ns, real_ns;
};

static inline void test_ws_free(struct test_ws *ws)
{
	if (!ws)
		return;
	els_handler_states_free(ws->hstates);
	els_worker_out_free(ws->out);
	els_sessions_free(ws->sessions);
	free(ws);
}

static inline struct test_ws *test_ws_new(uint32_t flow_capacity)
{
	struct test_ws *ws = calloc(1, sizeof(*ws));
	if (!ws)
		return NULL;
	ws->sessions = els_sessions_new(flow_capacity);
	ws->out = els_worker_out_new(NULL, false);
	ws->hstates =
	    els_handler_states_new(&(struct els_worker_env){.flow_capacity = flow_capacity});
	if (!ws->sessions || !ws->out || !ws->hstates) {
		test_ws_free(ws);
		return NULL;
	}
	return ws;
}

/* h's state in ws, as the chain would hand it to h. */
static inline void *test_ws_state(const struct test_ws *ws, const struct els_handler *h)
{
	for (unsigned k = 0; els_handler_all()[k]; k++)
		if (els_handler_all()[k] == h)
			return ws->hstates[k];
	return NULL;
}

/* A context for calling h directly, with ws's state and clocks (pkt, generation unset). */
static inline struct els_ctx test_ws_ctx(const struct test_ws *ws, const struct els_handler *h)
{
	return (struct els_ctx){.sessions = ws->sessions,
				.out = ws->out,
				.hstates = ws->hstates,
				.hstate = test_ws_state(ws, h),
				.now_ns = ws->now_ns,
				.real_ns = ws->real_ns};
}

#endif
