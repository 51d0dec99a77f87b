/* policy get | check | apply | rollback, and the top-level rollback. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "els/diag.h"
#include "els/mgmt.h"
#include "els/policy.h"
#include "../elsctl.h"

/* The body cap minus room for the envelope and JSON escaping of a typical policy. */
#define POLICY_TEXT_MAX (ELS_MGMT_MAX_FRAME / 2)

/* Reads a policy file to send as "text". NULL after printing why. */
static json_t *read_policy_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;
	json_t *s = NULL;

	if (!f) {
		fprintf(stderr, "elsctl: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	buf = malloc(POLICY_TEXT_MAX + 1);
	if (!buf) {
		fprintf(stderr, "elsctl: out of memory\n");
		goto out;
	}
	n = fread(buf, 1, POLICY_TEXT_MAX + 1, f);
	if (ferror(f)) {
		fprintf(stderr, "elsctl: %s: read error\n", path);
		goto out;
	}
	if (n > POLICY_TEXT_MAX) {
		fprintf(stderr, "elsctl: %s: larger than %u bytes, too big to send\n", path,
			POLICY_TEXT_MAX);
		goto out;
	}
	s = json_stringn(buf, n);
	if (!s)
		fprintf(stderr, "elsctl: %s: not UTF-8 text (or contains a NUL byte)\n", path);
out:
	free(buf);
	fclose(f);
	return s;
}

/* ---- policy ---- */

static int show_policy_get(json_t *r, FILE *out)
{
	const char *text = json_string_value(json_object_get(r, "text"));

	/* The file as is, so that `elsctl policy get > elsd.conf` round-trips. */
	if (text)
		fputs(text, out);
	if (strcmp(ctl_jstr(r, "sha256"), ctl_jstr(r, "running_sha256")))
		fprintf(stderr, "elsctl: note: %s was edited on the agent and is not running yet\n",
			ctl_jstr(r, "path"));
	return CTL_EXIT_OK;
}

static void sum_policy_get(json_t *r, char *buf, size_t len)
{
	char h[13];

	snprintf(buf, len, "generation %" JSON_INTEGER_FORMAT " sha256 %s%s",
		 ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "running_sha256"), h),
		 strcmp(ctl_jstr(r, "sha256"), ctl_jstr(r, "running_sha256"))
		     ? " (file edited, not running)"
		     : "");
}

static int show_validate(json_t *r, FILE *out)
{
	json_t *h;
	size_t i;

	fprintf(out, "valid on the agent: sha256 %s, chain:", ctl_jstr(r, "sha256"));
	json_array_foreach(json_object_get(r, "chain"), i, h)
	    fprintf(out, "%s%s", i ? " -> " : " ", json_string_value(h));
	fputc('\n', out);
	return CTL_EXIT_OK;
}

static void sum_validate(json_t *r, char *buf, size_t len)
{
	char h[13];

	snprintf(buf, len, "valid sha256 %s", ctl_short_hash(ctl_jstr(r, "sha256"), h));
}

static void print_warnings(json_t *r, FILE *out)
{
	json_t *w;
	size_t i;

	json_array_foreach(json_object_get(r, "warnings"), i, w)
	    fprintf(out, "warning: %s\n", json_string_value(w));
}

static int show_apply(json_t *r, FILE *out)
{
	char h[13], p[13];

	if (json_is_false(json_object_get(r, "changed")))
		fprintf(out,
			"unchanged: generation %" JSON_INTEGER_FORMAT
			" already runs this policy (sha256 %s)\n",
			ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "sha256"), h));
	else
		fprintf(out,
			"applied: generation %" JSON_INTEGER_FORMAT ", sha256 %s (previous %s)\n",
			ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "sha256"), h),
			ctl_short_hash(ctl_jstr(r, "previous_sha256"), p));
	print_warnings(r, out);
	return CTL_EXIT_OK;
}

static int show_rollback(json_t *r, FILE *out)
{
	char h[13], p[13];

	fprintf(out, "rolled back: generation %" JSON_INTEGER_FORMAT ", sha256 %s (replaced %s)\n",
		ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "sha256"), h),
		ctl_short_hash(ctl_jstr(r, "previous_sha256"), p));
	print_warnings(r, out);
	return CTL_EXIT_OK;
}

static void sum_apply(json_t *r, char *buf, size_t len)
{
	char h[13];
	size_t nw = json_array_size(json_object_get(r, "warnings"));
	int n;

	n = snprintf(buf, len, "generation %" JSON_INTEGER_FORMAT " sha256 %s%s",
		     ctl_jint(r, "generation"), ctl_short_hash(ctl_jstr(r, "sha256"), h),
		     json_is_false(json_object_get(r, "changed")) ? " (unchanged)" : "");
	if (nw && n > 0 && (size_t)n < len)
		snprintf(buf + n, len - (size_t)n, " (%zu warning%s: restart needed)", nw,
			 nw == 1 ? "" : "s");
}

/* Local check: the same checks elsd gives a console's document (only the chain and handler
 * sections, list files by name in the file's own directory), so the errors are those the
 * agent would answer. */
static int check_local(const char *path, bool json)
{
	struct els_diag d;
	struct els_policy *p = NULL;
	char *text = NULL, *dir = strdup(path);
	size_t len = 0;
	int rc;

	els_diag_init(&d, path);
	FILE *f = fopen(path, "re");
	text = malloc(ELS_POLICY_DOC_MAX + 2);
	if (f && text)
		len = fread(text, 1, ELS_POLICY_DOC_MAX + 1, f);
	if (!f || !text || ferror(f)) {
		els_diag_file(&d, path, 0, "cannot read: %s", strerror(errno ? errno : ENOMEM));
	} else {
		char *slash = dir ? strrchr(dir, '/') : NULL;
		const char *pd = !dir ? "." : slash == dir ? "/" : slash ? (*slash = 0, dir) : ".";
		int dfd = open(pd, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		p = els_policy_load_document(text, len, path, dfd, pd, NULL, &d);
		if (dfd >= 0)
			close(dfd);
	}
	if (f)
		fclose(f);
	free(text);
	free(dir);
	if (json) {
		json_t *o = json_pack("{s:s, s:b}", "file", path, "valid", p != NULL);
		json_t *errs = json_array();

		for (unsigned i = 0; i < d.count; i++)
			json_array_append_new(errs, json_string(d.msgs[i]));
		json_object_set_new(o, "errors", errs);
		if (p)
			json_object_set_new(o, "sha256", json_string(p->hash));
		ctl_print_json(o, stdout);
		json_decref(o);
	} else if (p) {
		printf("%s: valid, chain:", path);
		for (unsigned i = 0; i < p->nlinks; i++)
			printf("%s%s", i ? " -> " : " ", p->links[i].h->name);
		printf(", sha256 %s\n", p->hash);
	} else {
		els_diag_print(&d, stderr);
		fprintf(stderr, "elsctl: %s: %u error%s\n", path, d.count, d.count == 1 ? "" : "s");
	}
	rc = p ? CTL_EXIT_OK : CTL_EXIT_FAILED;
	els_policy_free(p);
	els_diag_free(&d);
	return rc;
}

static int policy_get(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {
	    .cmd = "policy.get", .show = show_policy_get, .summary = sum_policy_get};
	int rc = ctl_no_options(ctl_cmd_find("policy"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}

static int policy_rollback(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "policy.rollback", .show = show_rollback, .summary = sum_apply};
	int rc = ctl_no_options(ctl_cmd_find("policy"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}

static int policy_check(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"remote", no_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct ctl_req r = {
	    .cmd = "policy.validate", .show = show_validate, .summary = sum_validate};
	bool remote = false;
	json_t *text;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "rh", lo, NULL)) != -1) {
		if (ch == 'r')
			remote = true;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("policy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("policy");
	}
	if (argc - optind != 1)
		return ctl_usage_error("policy", "%s", "policy check needs one FILE");
	if (!remote)
		return check_local(argv[optind], c->json);
	text = read_policy_text(argv[optind]);
	if (!text)
		return CTL_EXIT_USAGE;
	r.args = json_pack("{s:o}", "text", text);
	r.text_name = argv[optind];
	rc = ctl_run(c, &r);
	json_decref(r.args);
	return rc;
}

static int policy_apply(struct ctl *c, int argc, char *argv[])
{
	static const struct option lo[] = {
	    {"expect-sha256", required_argument, NULL, 'e'}, {"help", no_argument, NULL, 'h'}, {0}};
	struct ctl_req r = {.cmd = "policy.apply", .show = show_apply, .summary = sum_apply};
	const char *expect = NULL;
	json_t *text;
	int ch, rc;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		if (ch == 'e')
			expect = optarg;
		else if (ch == 'h')
			return fputs(ctl_cmd_find("policy")->usage, stdout), CTL_EXIT_OK;
		else
			return ctl_bad_option("policy");
	}
	if (argc - optind != 1)
		return ctl_usage_error("policy", "%s", "policy apply needs one FILE");
	if (expect && (strlen(expect) != 64 || strspn(expect, "0123456789abcdef") != 64))
		return ctl_usage_error("policy", "--expect-sha256 %s: need 64 lowercase hex digits",
				       expect);
	text = read_policy_text(argv[optind]);
	if (!text)
		return CTL_EXIT_USAGE;
	r.args = json_pack("{s:o}", "text", text);
	if (expect)
		json_object_set_new(r.args, "expect_sha256", json_string(expect));
	r.text_name = argv[optind];
	rc = ctl_run(c, &r);
	json_decref(r.args);
	return rc;
}

static const struct ctl_cmd policy_cmds[] = {
    {"get", policy_get, "print the agent's policy file", NULL},
    {"check", policy_check, "validate a policy file here, or on the agent with --remote", NULL},
    {"apply", policy_apply, "validate, persist and run a policy file on the agent", NULL},
    {"rollback", policy_rollback, "go back to the policy before the last change", NULL},
    /* the names the ELS policy documents use for the local tools (docs/els-policy.md) */
    {"suggest", cmd_suggest, "the same as `elsctl suggest`", NULL},
    {"report", cmd_registry, "the same as `elsctl registry`", NULL},
    {0},
};

int cmd_policy(struct ctl *c, int argc, char *argv[])
{
	return ctl_dispatch(policy_cmds, "policy", c, argc, argv);
}

int cmd_rollback(struct ctl *c, int argc, char *argv[])
{
	struct ctl_req r = {.cmd = "policy.rollback", .show = show_rollback, .summary = sum_apply};
	int rc = ctl_no_options(ctl_cmd_find("rollback"), argc, argv, 0);

	return rc >= 0 ? rc : ctl_run(c, &r);
}
