/* The browser pages' files: the HTML shells, scripts and stylesheet of web.root
 * (console/www/, installed to /usr/share/els-console/www) under /static/, the page routes
 * (/fleet, /agent, ...) answering with their shell, and Chart.js from Debian's libjs-chart.js
 * (web.chartjs, /usr/share/javascript/chart.js) under /static/chart.js/. Files are read once
 * at start into memory and looked up by exact name: no request path ever reaches the file
 * system. A missing default directory only costs the pages (a warning); the JSON API stays. */
#include "els/log.h"
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "http.h"
#include "web.h"

#define WEB_FILE_MAX (4u << 20)

struct web_file {
	char *name; /* "fleet.js", or "chart.js/chart.min.js" */
	const char *type;
	char *data;
	size_t len;
};

static struct {
	struct web_file *files;
	size_t n;
} web;

/* The pages, each served at /NAME from NAME.html. */
static const char *const web_pages[] = {"fleet",    "agent",   "drift", "policies",
					"registry", "traffic", "audit"};

static const char *type_of(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot)
		return NULL;
	if (strcmp(dot, ".html") == 0)
		return "text/html; charset=utf-8";
	if (strcmp(dot, ".js") == 0)
		return "text/javascript; charset=utf-8";
	if (strcmp(dot, ".css") == 0)
		return "text/css; charset=utf-8";
	if (strcmp(dot, ".svg") == 0)
		return "image/svg+xml";
	return NULL;
}

static int add_file(const char *dir, const char *file, const char *served_as)
{
	char path[4096];
	struct web_file f = {.type = type_of(file)};
	if (!f.type || snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path))
		return 0;
	int rc = console_read_file(path, WEB_FILE_MAX, &f.data, &f.len);
	if (rc == -EINVAL) /* not a regular file */
		return 0;
	if (rc < 0) {
		els_log(ELS_LL_ERROR, "web: %s: %s", path, strerror(-rc));
		return rc;
	}
	struct web_file *grown = realloc(web.files, (web.n + 1) * sizeof(*grown));
	if (!grown || !(f.name = strdup(served_as))) {
		if (grown)
			web.files = grown;
		free(f.data);
		return -ENOMEM;
	}
	web.files = grown;
	web.files[web.n++] = f;
	return 0;
}

/* Every .html/.js/.css/.svg directly in dir. -ENOENT when dir does not exist. */
static int load_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -errno;
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)))
		if (e->d_name[0] != '.')
			rc = add_file(dir, e->d_name, e->d_name);
	closedir(d);
	return rc;
}

static const struct web_file *find(const char *name)
{
	for (size_t i = 0; i < web.n; i++)
		if (strcmp(web.files[i].name, name) == 0)
			return &web.files[i];
	return NULL;
}

static void send_file(struct console_http_ctx *ctx, const char *name)
{
	const struct web_file *f = find(name);
	if (!f) {
		console_http_reply_error(ctx, 404, "not_found",
					 "no such file: %s (are the console's pages installed?)",
					 ctx->path);
		return;
	}
	console_http_reply_bytes(ctx, 200, f->type, f->data, f->len);
}

static void on_static(struct console_http_ctx *ctx)
{
	send_file(ctx, ctx->rest);
}

static void on_page(struct console_http_ctx *ctx)
{
	char name[64];
	const char *page = ctx->path + 1;
	if (*ctx->rest) { /* /fleet/anything */
		console_http_reply_error(ctx, 404, "not_found", "no such page: %s", ctx->path);
		return;
	}
	snprintf(name, sizeof(name), "%s.html", page);
	send_file(ctx, name);
}

static void on_root(struct console_http_ctx *ctx)
{
	if (strcmp(ctx->path, "/") != 0) {
		console_http_reply_error(ctx, 404, "not_found", "no such resource: %s", ctx->path);
		return;
	}
	evhttp_add_header(evhttp_request_get_output_headers(ctx->req), "Location", "/fleet");
	console_http_reply_bytes(ctx, 302, "text/plain; charset=utf-8", "see /fleet\n", 11);
}

/* web.root and web.chartjs from the configuration (conf.c), with their defaults. */
int console_web_static_init(struct console *c)
{
	const char *root = c->conf->web_root, *chart = c->conf->web_chartjs;
	bool root_set = console_conf_setting(c->conf, "web.root") != NULL;
	bool chart_set = console_conf_setting(c->conf, "web.chartjs") != NULL;
	int rc = load_dir(root);

	if (rc == -ENOENT && !root_set)
		els_log(ELS_LL_WARNING,
			"web: %s does not exist: the browser pages are not served "
			"(set web.root)",
			root);
	else if (rc < 0) {
		els_log(ELS_LL_ERROR, "web: web.root %s: %s", root, strerror(-rc));
		return rc;
	}
	rc = add_file(chart, "chart.min.js", "chart.js/chart.min.js");
	if (rc == -ENOENT && !chart_set)
		els_log(ELS_LL_WARNING,
			"web: %s/chart.min.js does not exist (install libjs-chart.js): "
			"the traffic page shows tables without charts",
			chart);
	else if (rc < 0) {
		els_log(ELS_LL_ERROR, "web: web.chartjs %s/chart.min.js: %s", chart, strerror(-rc));
		return rc;
	}

	rc = console_http_route(c, "GET", "/", on_root, ELS_ROLE_AUDITOR, false);
	if (rc == 0)
		rc = console_http_route(c, "GET", "/static/", on_static, ELS_ROLE_AUDITOR, false);
	for (size_t i = 0; rc == 0 && i < sizeof(web_pages) / sizeof(web_pages[0]); i++) {
		char prefix[32];
		snprintf(prefix, sizeof(prefix), "/%s", web_pages[i]);
		rc = console_http_route(c, "GET", prefix, on_page, ELS_ROLE_AUDITOR, false);
	}
	return rc;
}
