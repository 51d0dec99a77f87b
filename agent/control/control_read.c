/* Management requests that only read (status, stats, flows, log) and the sweep, in the main
 * process. See control.h. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control_int.h"
#include "ctlsock.h"
#include "els/clock.h"
#include "els/log.h"
#include "els/mgmt.h"
#include "els/query.h"
#include "mgmt.h"

#define SNAP_MAX     10000 /* flows per worker buffer: the protocol's limit */
#define SNAP_WAIT_MS 1000  /* workers turn their loop at least every 100 ms */
#define LOG_QUERY_MS 2000  /* a log query longer than this is cut */

json_t *els_cmd_status(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_policy *p = c->env.running(c->env.arg);
	char host[256] = "";
	(void)args;
	(void)e;

	gethostname(host, sizeof(host) - 1);
	json_t *queues = json_array();
	for (unsigned i = 0; i < c->env.nq; i++) {
		const struct els_worker_stats *st = &c->env.workers[i].st;
		json_array_append_new(
		    queues, json_pack("{s:i,s:I,s:I,s:I,s:I,s:I,s:I}", "queue",
				      (json_int_t)c->env.workers[i].queue, "packets",
				      (json_int_t)atomic_load(&st->packets), "accepted",
				      (json_int_t)atomic_load(&st->accepted), "dropped",
				      (json_int_t)atomic_load(&st->dropped), "decode_errors",
				      (json_int_t)atomic_load(&st->decode_errors), "enobufs",
				      (json_int_t)atomic_load(&st->enobufs), "verdict_errors",
				      (json_int_t)atomic_load(&st->verdict_errors)));
	}
	struct els_monitor_stats ms = {0};
	if (c->env.mon)
		els_monitor_get_stats(c->env.mon, &ms);
	const struct els_reload_result *lr = c->env.last_reload;
	json_t *reload = lr && lr->done
			     ? json_pack("{s:I,s:s,s:s}", "time", (json_int_t)lr->time_s, "result",
					 lr->ok ? "ok" : "failed", "reason", lr->reason)
			     : json_null();
	return json_pack(
	    "{s:s,s:s,s:I,s:I,s:I,s:s,s:s,s:b,s:o,s:{s:I,s:I,s:I,s:I},s:{s:s,s:s},s:o}", "version",
	    ELS_VERSION, "hostname", host, "pid", (json_int_t)getpid(), "uptime_s",
	    (json_int_t)((els_now_mono() - c->env.start_mono_ns) / ELS_NS_PER_S), "generation",
	    (json_int_t)p->generation, "policy_path", c->env.config_path, "policy_sha256", p->hash,
	    "fail_open", p->set.fail_open, "queues", queues, "monitor", "written",
	    (json_int_t)ms.written, "lost", (json_int_t)ms.lost, "write_errors",
	    (json_int_t)ms.write_errors, "write_lost", (json_int_t)ms.write_lost, "client",
	    "identity", c->identity ? c->identity : "", "role", els_mgmt_role_name(c->role),
	    "last_reload", reload);
}

json_t *els_cmd_stats(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	const struct els_policy *p = c->env.running(c->env.arg);
	const struct els_handler *const *all = els_handler_all();
	json_t *chain = json_array(), *hs = json_array();
	unsigned nreg = 0;
	(void)args;
	(void)e;

	while (all[nreg] && nreg < ELS_STATS_HANDLERS)
		nreg++;

	for (unsigned i = 0; i < p->nlinks; i++)
		json_array_append_new(chain, json_string(p->links[i].h->name));
	for (unsigned slot = 0; slot < ELS_STATS_HANDLERS + 2; slot++) {
		const char *name;
		bool in_chain = false;
		if (slot == ELS_STATS_DECODE) {
			name = "decode";
		} else if (slot == ELS_STATS_CHAIN) {
			name = "chain";
		} else {
			if (slot >= nreg)
				continue;
			name = all[slot]->name;
			for (unsigned i = 0; i < p->nlinks; i++)
				in_chain |= p->links[i].h == all[slot];
		}
		uint64_t acc = 0, drop = 0;
		for (unsigned w = 0; w < c->env.nq; w++) {
			acc += atomic_load_explicit(&c->env.workers[w].st.decided[slot][0],
						    memory_order_relaxed);
			drop += atomic_load_explicit(&c->env.workers[w].st.decided[slot][1],
						     memory_order_relaxed);
		}
		json_array_append_new(hs, json_pack("{s:s,s:b,s:I,s:I}", "name", name, "in_chain",
						    in_chain, "accepted", (json_int_t)acc,
						    "dropped", (json_int_t)drop));
	}
	return json_pack("{s:I,s:o,s:o}", "generation", (json_int_t)p->generation, "chain", chain,
			 "handlers", hs);
}

json_t *els_cmd_flows(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	json_t *jl = json_object_get(args, "limit");
	uint32_t limit = jl ? (uint32_t)json_integer_value(jl) : 100;
	const struct els_policy *p = c->env.running(c->env.arg);
	bool asked[c->env.nq ? c->env.nq : 1];

	if (!c->snap_bufs)
		c->snap_bufs = calloc(c->env.nq, sizeof(*c->snap_bufs));
	if (!c->snap_bufs) {
		els_cmd_fail(e, "internal", "out of memory");
		return NULL;
	}
	for (unsigned i = 0; i < c->env.nq; i++) {
		struct els_worker *w = &c->env.workers[i];
		uint32_t done = atomic_load_explicit(&w->snap.done, memory_order_acquire);
		asked[i] = false;
		/* A worker that has not answered an earlier request may still write into its
		 * buffer: leave it alone. */
		if (atomic_load_explicit(&w->snap.req, memory_order_relaxed) != done)
			continue;
		if (!c->snap_bufs[i])
			c->snap_bufs[i] = malloc(SNAP_MAX * sizeof(struct els_flow_seen));
		if (!c->snap_bufs[i])
			continue;
		w->snap.buf = c->snap_bufs[i];
		w->snap.max = limit;
		atomic_store_explicit(&w->snap.req, done + 1, memory_order_release);
		asked[i] = true;
	}
	for (unsigned waited = 0; waited < SNAP_WAIT_MS; waited++) {
		bool all = true;
		for (unsigned i = 0; i < c->env.nq; i++)
			if (asked[i] && atomic_load_explicit(&c->env.workers[i].snap.done,
							     memory_order_acquire) !=
					    atomic_load_explicit(&c->env.workers[i].snap.req,
								 memory_order_relaxed))
				all = false;
		if (all)
			break;
		nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
	}
	uint64_t now = els_now_mono(), total = 0;
	uint32_t n = 0;
	bool missing = false;
	json_t *flows = json_array();
	for (unsigned i = 0; i < c->env.nq; i++) {
		struct els_worker *w = &c->env.workers[i];
		if (!asked[i] || atomic_load_explicit(&w->snap.done, memory_order_acquire) !=
				     atomic_load_explicit(&w->snap.req, memory_order_relaxed)) {
			missing = true;
			continue;
		}
		total += w->snap.total;
		for (uint32_t k = 0; k < w->snap.count && n < limit; k++, n++) {
			const struct els_flow *f = &w->snap.buf[k].flow;
			const char *permit = w->snap.buf[k].permit;
			unsigned is = f->init_side & 1, rs = is ^ 1;
			char a[ELS_ADDR_STRLEN], b[ELS_ADDR_STRLEN], pb[8];
			json_array_append_new(
			    flows,
			    json_pack(
				"{s:i,s:i,s:s,s:s,s:i,s:s,s:i,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,"
				"s:I,s:I,s:s?}",
				"queue", (int)w->queue, "family", (int)f->key.family, "proto",
				els_proto_name(f->key.proto, pb), "src",
				els_addr_str(&f->key.addr[is], f->key.family, a), "sport",
				(int)f->key.port[is], "dst",
				els_addr_str(&f->key.addr[rs], f->key.family, b), "dport",
				(int)f->key.port[rs], "dir",
				f->init_dir == ELS_DIR_OUT ? "out" : "in", "state",
				els_flow_state_name(f->state), "age_ms",
				(json_int_t)(now > f->first_ns ? (now - f->first_ns) / 1000000 : 0),
				"idle_ms",
				(json_int_t)(now > f->last_ns ? (now - f->last_ns) / 1000000 : 0),
				"pkts_init", (json_int_t)f->pkts[0], "pkts_resp",
				(json_int_t)f->pkts[1], "bytes_init", (json_int_t)f->bytes[0],
				"bytes_resp", (json_int_t)f->bytes[1], "rule", (json_int_t)f->rule,
				"generation", (json_int_t)f->generation, "permit",
				permit[0] ? permit : NULL));
		}
	}
	if (missing && c->env.nq)
		els_log(ELS_LL_WARNING,
			"management: a worker did not answer the flows request "
			"in %d ms; its flows are missing from the answer",
			SNAP_WAIT_MS);
	return json_pack("{s:I,s:I,s:b,s:o}", "generation", (json_int_t)p->generation, "total",
			 (json_int_t)total, "truncated", total > n || missing, "flows", flows);
}

/* The query is lib/query/query.c's, the one els-log and elsctl use (include/els/query.h). */
json_t *els_cmd_log(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	return els_query_wire(c->env.monitor_path, args, els_handler_all(), LOG_QUERY_MS, &e->code,
			      e->msg, sizeof(e->msg));
}

json_t *els_cmd_sweep(struct els_control *c, json_t *args, struct els_cmd_err *e)
{
	static char *const fallback[] = {"els-sweep", NULL};
	const struct els_policy *p = c->env.running(c->env.arg);
	char *const *argv =
	    p->set.mgmt && p->set.mgmt->sweep_argv ? p->set.mgmt->sweep_argv : fallback;
	(void)args;
	int rc = els_sweep_start(&c->sweep, argv, c->identity);
	if (rc == -EBUSY) {
		els_cmd_fail(e, "busy", "a sweep started by %s is still running (pid %d)",
			     c->sweep.by, (int)c->sweep.pid);
		return NULL;
	}
	if (rc < 0) {
		els_cmd_fail(e, "internal", "cannot start %s: %s", argv[0], strerror(-rc));
		return NULL;
	}
	els_log(ELS_LL_INFO, "sweep started by %s: %s (pid %d)", c->identity, argv[0],
		(int)c->sweep.pid);
	return json_pack("{s:b,s:i,s:s}", "started", 1, "pid", (int)c->sweep.pid, "command",
			 argv[0]);
}
