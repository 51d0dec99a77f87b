/* header_filter, service-bound permits: `service`, `exe`, `user`, `group` name who must own the
 * local socket of a new flow (docs/els-policy.md, "Service-bound permits"). Parsing is off the
 * packet path; hf_svc_check is on it and only compares what the worker's owner lookup
 * (els_ctx.owner, agent/packet/owner.c) hands back. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "header_filter.h"

static const char *const unit_suffixes[] = {".service", ".scope", ".socket",
					    ".mount",	".swap",  NULL};

static bool has_unit_suffix(const char *s)
{
	size_t n = strlen(s);
	for (unsigned i = 0; unit_suffixes[i]; i++) {
		size_t l = strlen(unit_suffixes[i]);
		if (n > l && strcmp(s + n - l, unit_suffixes[i]) == 0)
			return true;
	}
	return false;
}

static const char *get_string(struct hf_build *b, const config_setting_t *g, const char *key,
			      const config_setting_t **sp)
{
	const config_setting_t *s = config_setting_get_member(g, key);
	*sp = s;
	if (!s)
		return NULL;
	const char *v = config_setting_get_string(s);
	if (!v || !*v) {
		els_diag_at(b->d, s, "%s: '%s' must be a non-empty string", b->where, key);
		return NULL;
	}
	return v;
}

/* A user or group: a name this host knows, or a number. */
static bool parse_id(struct hf_build *b, const config_setting_t *s, const char *key, uint32_t *out)
{
	if (config_setting_type(s) == CONFIG_TYPE_INT ||
	    config_setting_type(s) == CONFIG_TYPE_INT64) {
		long long v = config_setting_get_int64(s);
		if (v < 0 || v >= UINT32_MAX) {
			els_diag_at(b->d, s, "%s: '%s' = %lld is not a valid id", b->where, key, v);
			return false;
		}
		*out = (uint32_t)v;
		return true;
	}
	const char *name = config_setting_get_string(s);
	if (!name || !*name) {
		els_diag_at(b->d, s, "%s: '%s' must be a name or a number", b->where, key);
		return false;
	}
	char buf[4096];
	if (key[0] == 'u') {
		struct passwd pw, *res = NULL;
		if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res) {
			*out = (uint32_t)res->pw_uid;
			return true;
		}
	} else {
		struct group gr, *res = NULL;
		if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res) {
			*out = (uint32_t)res->gr_gid;
			return true;
		}
	}
	els_diag_at(b->d, s, "%s: '%s': no %s \"%s\" on this host", b->where, key,
		    key[0] == 'u' ? "user" : "group", name);
	return false;
}

void hf_parse_service(struct hf_build *b, uint32_t idx)
{
	const config_setting_t *g = b->pm[idx].s, *s_unit, *s_exe, *s;
	struct hf_rule *r = &b->c->rules[idx];
	const char *unit = get_string(b, g, "service", &s_unit);
	const char *exe = get_string(b, g, "exe", &s_exe);
	const config_setting_t *s_user = config_setting_get_member(g, "user");
	const config_setting_t *s_group = config_setting_get_member(g, "group");
	struct hf_svc *v;

	if (!s_unit && !s_exe && !s_user && !s_group)
		return;
	if ((s = s_unit	  ? s_unit
		 : s_exe  ? s_exe
		 : s_user ? s_user
			  : s_group) &&
	    (b->pm[idx].protos & ~HF_P_MASK_PORTS)) {
		els_diag_at(b->d, s,
			    "%s: service, exe, user and group need proto \"tcp\" or \"udp\" (or "
			    "ports): ICMP has no socket that owns it",
			    b->where);
		return;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		b->err = -ENOMEM;
		return;
	}
	r->svc = v;
	if (unit) {
		bool ok = strlen(unit) < ELS_OWNER_UNIT_LEN - 9 && !strchr(unit, '/');
		if (!ok)
			els_diag_at(b->d, s_unit,
				    "%s: 'service' = \"%s\" is not a systemd unit name such as "
				    "\"nginx.service\"",
				    b->where, unit);
		else if (has_unit_suffix(unit))
			v->unit = strdup(unit);
		else if (asprintf(&v->unit, "%s.service", unit) < 0) /* as systemctl reads it */
			v->unit = NULL;
		if (ok && !v->unit)
			b->err = -ENOMEM;
		v->need |= ELS_OWNER_NEED_PROC;
	}
	if (exe) {
		if (exe[0] != '/' || strlen(exe) >= ELS_OWNER_EXE_LEN ||
		    exe[strlen(exe) - 1] == '/')
			els_diag_at(b->d, s_exe,
				    "%s: 'exe' = \"%s\" must be an absolute file name (under %d "
				    "characters)",
				    b->where, exe, ELS_OWNER_EXE_LEN);
		else if (!(v->exe = strdup(exe)))
			b->err = -ENOMEM;
		v->need |= ELS_OWNER_NEED_PROC;
	}
	if (s_user && (v->has_uid = parse_id(b, s_user, "user", &v->uid)))
		v->need |= ELS_OWNER_NEED_UID;
	if (s_group && (v->has_gid = parse_id(b, s_group, "group", &v->gid)))
		v->need |= ELS_OWNER_NEED_GID;
}

void hf_svc_free(struct hf_svc *s)
{
	if (!s)
		return;
	free(s->unit);
	free(s->exe);
	free(s);
}

enum hf_svc_res hf_svc_check(const struct hf_svc *s, const struct els_ctx *ctx)
{
	const struct els_owner *o = NULL;

	if (ctx->origin)
		return HF_SVC_OK; /* an existing connection: its owner was checked at its start */
	if (!ctx->owner)
		return HF_SVC_OK; /* no sockets to ask (a replayed capture): ports decide alone */
	switch (ctx->owner(ctx->owner_arg, ctx->pkt, s->need, &o)) {
	case ELS_OWNER_FOUND:
		break;
	case ELS_OWNER_PENDING:
		return HF_SVC_PENDING;
	default:
		return HF_SVC_UNKNOWN;
	}
	if (hf_svc_match(s, o))
		return HF_SVC_OK;
	/* Refused on the ids alone: the drop names the process too, so it is looked up now (a
	 * refusal is rare; a flow that passes never pays for it). */
	if (!o->pid &&
	    ctx->owner(ctx->owner_arg, ctx->pkt, ELS_OWNER_NEED_PROC, &o) == ELS_OWNER_PENDING)
		return HF_SVC_PENDING;
	return HF_SVC_WRONG;
}

bool hf_svc_match(const struct hf_svc *s, const struct els_owner *o)
{
	if (s->has_uid && o->uid != s->uid)
		return false;
	if (s->has_gid && o->gid != s->gid)
		return false;
	if (s->unit && strcmp(o->unit, s->unit) != 0)
		return false;
	/* By name and by file: a copy elsewhere has another name, a link or another mount's file
	 * of that name has another device and inode (exe_ok). */
	if (s->exe && (!o->exe_ok || strcmp(o->exe, s->exe) != 0))
		return false;
	return true;
}

void hf_svc_describe(const struct hf_svc *s, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	if (!s)
		return;
	if (s->unit && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%sservice=%s", n ? " " : "", s->unit);
	if (s->exe && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%sexe=%s", n ? " " : "", s->exe);
	if (s->has_uid && n < size)
		n += (size_t)snprintf(buf + n, size - n, "%suid=%u", n ? " " : "", s->uid);
	if (s->has_gid && n < size)
		snprintf(buf + n, size - n, "%sgid=%u", n ? " " : "", s->gid);
}
