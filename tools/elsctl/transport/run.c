/* Sends one request to one agent, or to a fleet concurrently, and reports the outcome. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "els/mgmt.h"
#include "../elsctl.h"

struct outcome {
	int exit;     /* CTL_EXIT_OK, _FAILED (the agent said no) or _CONN */
	json_t *resp; /* owned: the whole response, when one arrived */
	char err[CTL_ERR_LEN];
};

/* Checks the response envelope; a broken one counts as a connection failure. */
static int check_envelope(json_t *resp, json_int_t id, const char *who, char *err, size_t errlen)
{
	json_t *ok = json_object_get(resp, "ok");
	json_t *rid = json_object_get(resp, "id");
	json_t *v = json_object_get(resp, "v");

	if (!json_is_boolean(ok)) {
		snprintf(err, errlen,
			 "%s: answer has no \"ok\" field: not an elsd management agent?", who);
		return -EBADMSG;
	}
	if (json_is_true(ok) && !json_is_object(json_object_get(resp, "result"))) {
		snprintf(err, errlen, "%s: answer has \"ok\": true but no result object", who);
		return -EBADMSG;
	}
	if (json_is_false(ok) && !json_is_object(json_object_get(resp, "error"))) {
		snprintf(err, errlen, "%s: answer has \"ok\": false but no error object", who);
		return -EBADMSG;
	}
	/* An error about framing carries id null; anything else must echo ours. */
	if (json_is_true(ok) && (!json_is_integer(rid) || json_integer_value(rid) != id)) {
		snprintf(err, errlen, "%s: answer is for another request (id mismatch)", who);
		return -EBADMSG;
	}
	if (json_is_true(ok) &&
	    (!json_is_integer(v) || json_integer_value(v) != ELS_MGMT_VERSION)) {
		snprintf(err, errlen, "%s: answer speaks protocol version %s, elsctl speaks %d",
			 who, json_is_integer(v) ? "another" : "no", ELS_MGMT_VERSION);
		return -EBADMSG;
	}
	return 0;
}

int ctl_request(struct ctl_conn *conn, const char *label, const char *cmd, json_t *args,
		json_t **resp, char *err, size_t errlen)
{
	static json_int_t next_id = 1; /* any id will do; distinct ones catch a mixed-up answer */
	json_int_t id = __atomic_fetch_add(&next_id, 1, __ATOMIC_RELAXED);
	json_t *req;
	int rc;

	*resp = NULL;
	/* "o" steals, so hand it a reference of its own (the args are shared by all agents). */
	req = json_pack("{s:i, s:I, s:s, s:o}", "v", ELS_MGMT_VERSION, "id", id, "cmd", cmd, "args",
			args ? json_incref(args) : json_object());
	if (!req) {
		snprintf(err, errlen, "cannot build the request (out of memory?)");
		return -ENOMEM;
	}
	rc = ctl_conn_call(conn, req, resp, err, errlen);
	json_decref(req);
	if (rc < 0)
		return rc;
	rc = check_envelope(*resp, id, label, err, errlen);
	if (rc < 0) {
		json_decref(*resp);
		*resp = NULL;
	}
	return rc;
}

static void call_one(SSL_CTX *ctx, const struct ctl_endpoint *ep, unsigned timeout_s,
		     const struct ctl_req *r, struct outcome *o)
{
	struct ctl_conn *conn = NULL;
	int rc;

	o->exit = CTL_EXIT_CONN;
	o->resp = NULL;
	if (ctl_conn_open(ctx, ep, timeout_s, &conn, o->err, sizeof(o->err)) < 0)
		return;
	if (r->call)
		rc = r->call(conn, r, ep->label, &o->resp, o->err, sizeof(o->err));
	else
		rc =
		    ctl_request(conn, ep->label, r->cmd, r->args, &o->resp, o->err, sizeof(o->err));
	if (rc == 0)
		o->exit =
		    json_is_true(json_object_get(o->resp, "ok")) ? CTL_EXIT_OK : CTL_EXIT_FAILED;
	ctl_conn_close(conn);
}

static int run_single(struct ctl *c, struct ctl_req *r, SSL_CTX *ctx, const struct ctl_endpoint *ep)
{
	struct outcome o;

	call_one(ctx, ep, c->tls.timeout_s, r, &o);
	if (o.exit == CTL_EXIT_CONN) {
		/* names from the agent's certificate are in it */
		fputs("elsctl: ", stderr);
		ctl_fputs_safe(o.err, stderr);
		fputc('\n', stderr);
	} else if (o.exit == CTL_EXIT_OK) {
		json_t *result = json_object_get(o.resp, "result");

		if (r->show && (!c->json || r->show_json)) {
			if (!c->json)
				ctl_json_termsafe(result);
			o.exit = r->show(result, stdout);
		} else {
			ctl_print_json(result, stdout);
		}
	} else {
		json_t *error = json_object_get(o.resp, "error");

		if (c->json)
			ctl_print_json(o.resp, stdout);
		ctl_json_termsafe(error);
		ctl_print_error(NULL, error, r->text_name, stderr);
	}
	json_decref(o.resp);
	return o.exit;
}

struct fleet {
	SSL_CTX *ctx;
	const struct ctl *c;
	const struct ctl_req *r;
	struct ctl_endpoint *eps;
	struct outcome *outs;
	bool *done;
	size_t n, next_job, next_print;
	int width;
	pthread_mutex_t lock; /* guards next_job, done, next_print and stdout */
};

static void print_line(struct fleet *f, size_t i)
{
	struct outcome *o = &f->outs[i];
	const char *label = f->eps[i].label;
	char line[CTL_ERR_LEN + 64];

	if (f->c->json) {
		json_t *j = json_pack("{s:s, s:b}", "agent", label, "ok", o->exit == CTL_EXIT_OK);

		if (o->exit == CTL_EXIT_OK)
			json_object_set(j, "result", json_object_get(o->resp, "result"));
		else if (o->exit == CTL_EXIT_FAILED)
			json_object_set(j, "error", json_object_get(o->resp, "error"));
		else
			json_object_set_new(j, "error",
					    json_pack("{s:s, s:s, s:[]}", "code", "connection",
						      "message", o->err, "details"));
		json_dumpf(j, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
		fputc('\n', stdout);
		json_decref(j);
	} else if (o->exit == CTL_EXIT_OK) {
		ctl_json_termsafe(o->resp);
		line[0] = '\0';
		if (f->r->summary)
			f->r->summary(json_object_get(o->resp, "result"), line, sizeof(line));
		printf("%-*s ok%s%s\n", f->width, label, *line ? " " : "", line);
	} else if (o->exit == CTL_EXIT_FAILED) {
		ctl_json_termsafe(o->resp);
		ctl_error_line(json_object_get(o->resp, "error"), f->r->text_name, line,
			       sizeof(line));
		printf("%-*s FAILED: %s\n", f->width, label, line);
	} else {
		/* The error already names the agent at its start; do not say it twice. */
		const char *e = o->err;
		size_t ll = strlen(label);

		if (!strncmp(e, label, ll) && e[ll] == ':' && e[ll + 1] == ' ')
			e += ll + 2;
		printf("%-*s FAILED: ", f->width, label);
		ctl_fputs_safe(e, stdout); /* names from the agent's certificate are in it */
		putchar('\n');
	}
	fflush(stdout);
}

static void *fleet_worker(void *arg)
{
	struct fleet *f = arg;

	for (;;) {
		size_t i;

		pthread_mutex_lock(&f->lock);
		i = f->next_job++;
		pthread_mutex_unlock(&f->lock);
		if (i >= f->n)
			return NULL;
		call_one(f->ctx, &f->eps[i], f->c->tls.timeout_s, f->r, &f->outs[i]);
		/* Lines come out in file order, each as soon as all before it are done. */
		pthread_mutex_lock(&f->lock);
		f->done[i] = true;
		while (f->next_print < f->n && f->done[f->next_print])
			print_line(f, f->next_print++);
		pthread_mutex_unlock(&f->lock);
	}
}

static int run_fleet(struct ctl *c, struct ctl_req *r, SSL_CTX *ctx, struct ctl_endpoint *eps,
		     size_t n)
{
	struct fleet f = {.ctx = ctx, .c = c, .r = r, .eps = eps, .n = n};
	pthread_t tids[CTL_MAX_PARALLEL];
	size_t nthreads, started = 0, nok = 0, nfailed = 0;
	int rc = CTL_EXIT_CONN;

	f.outs = calloc(f.n, sizeof(*f.outs));
	f.done = calloc(f.n, sizeof(*f.done));
	if (!f.outs || !f.done) {
		fprintf(stderr, "elsctl: out of memory\n");
		goto out;
	}
	for (size_t i = 0; i < f.n; i++)
		if ((int)strlen(f.eps[i].label) > f.width)
			f.width = (int)strlen(f.eps[i].label);
	pthread_mutex_init(&f.lock, NULL);
	nthreads = f.n < c->parallel ? f.n : c->parallel;
	for (; started < nthreads; started++)
		if (pthread_create(&tids[started], NULL, fleet_worker, &f))
			break;
	if (started == 0)
		fleet_worker(&f); /* no threads to be had: do the work here, one by one */
	for (size_t i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&f.lock);
	for (size_t i = 0; i < f.n; i++) {
		if (f.outs[i].exit == CTL_EXIT_OK)
			nok++;
		else if (f.outs[i].exit == CTL_EXIT_FAILED)
			nfailed++;
		json_decref(f.outs[i].resp);
	}
	if (!c->json && nok < f.n)
		fprintf(stderr, "elsctl: %zu of %zu agents failed\n", f.n - nok, f.n);
	if (nok == f.n)
		rc = CTL_EXIT_OK;
	else if (nok > 0)
		rc = CTL_EXIT_PARTIAL;
	else
		rc = nfailed > 0 ? CTL_EXIT_FAILED : CTL_EXIT_CONN;
out:
	free(f.outs);
	free(f.done);
	return rc;
}

int ctl_run(struct ctl *c, struct ctl_req *r)
{
	char err[CTL_ERR_LEN];
	struct ctl_endpoint *eps = NULL, one;
	size_t n = 0;
	SSL_CTX *ctx;
	const char *why;
	int rc;

	/* Local input first: a typo in the fleet file is a usage error, whatever the certs. */
	if (c->agents_file) {
		if (ctl_fleet_file_read(c->agents_file, c->default_port, &eps, &n, err,
					sizeof(err)) < 0) {
			fprintf(stderr, "elsctl: --agents %s\n", err);
			return CTL_EXIT_USAGE;
		}
	} else if (ctl_endpoint_parse(c->agent, c->default_port, &one, &why) < 0) {
		fprintf(stderr, "elsctl: --agent %s: %s\nTry 'elsctl --help'.\n", c->agent, why);
		return CTL_EXIT_USAGE;
	}
	ctx = ctl_tls_ctx_new(&c->tls, err, sizeof(err));
	if (!ctx) {
		fprintf(stderr, "elsctl: %s\n", err);
		free(eps);
		return CTL_EXIT_CONN;
	}
	rc = eps ? run_fleet(c, r, ctx, eps, n) : run_single(c, r, ctx, &one);
	SSL_CTX_free(ctx);
	free(eps);
	return rc;
}
