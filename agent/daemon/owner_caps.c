/* elsd -n's warning for service-bound permits elsd cannot serve: which process holds a socket
 * is read from /proc/PID/fd, which for other users' processes needs CAP_DAC_READ_SEARCH (to
 * list it) and CAP_SYS_PTRACE (to read its links). Without them such owners are unknown, and
 * every new flow to the permit's port gets the section's fail policy: a config that looks
 * right would drop (or, fail = "open", admit unchecked) its service's traffic. */
#include <jansson.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/capability.h>
#include <unistd.h>

#include "els/registry.h"
#include "owner_caps.h"

/* The capabilities the packet workers will lack, as "CAP_A and CAP_B", or "" when none. The
 * workers keep what this process has, unless `user` makes elsd (started as root) drop to
 * another account: that keeps CAP_NET_ADMIN alone (privdrop.c). */
static void missing_caps(const struct els_policy *p, char *buf, size_t size, const char **why)
{
	static const struct {
		cap_value_t cap;
		const char *name;
	} need[] = {{CAP_DAC_READ_SEARCH, "CAP_DAC_READ_SEARCH"},
		    {CAP_SYS_PTRACE, "CAP_SYS_PTRACE"}};
	const struct passwd *pw = p->set.user && p->set.user[0] ? getpwnam(p->set.user) : NULL;
	bool dropped = pw && pw->pw_uid != 0 && geteuid() != pw->pw_uid;
	cap_t caps = dropped ? NULL : cap_get_proc();
	size_t n = 0;

	buf[0] = '\0';
	*why = dropped ? "the policy's user setting drops elsd to an account that keeps "
			 "CAP_NET_ADMIN alone"
		       : "this process does not hold them";
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		cap_flag_value_t v = CAP_CLEAR;
		if (caps && cap_get_flag(caps, need[i].cap, CAP_EFFECTIVE, &v) == 0 && v == CAP_SET)
			continue;
		if (n < size)
			n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? " and " : "",
					      need[i].name);
	}
	cap_free(caps);
}

/* The header filter's permits (id, line) as the registry lists them. */
static json_t *permits_of(const struct els_policy *p)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	int rc = els_registry_report_json(p, NULL, NULL, f);
	fclose(f);
	json_t *root = rc >= 0 && text ? json_loadb(text, len, 0, NULL) : NULL;
	free(text);
	json_t *permits = json_incref(json_object_get(root, "permits"));
	json_decref(root);
	return permits;
}

unsigned els_owner_caps_lint(const struct els_policy *p, FILE *out)
{
	char missing[64];
	const char *why;
	unsigned n = 0;

	missing_caps(p, missing, sizeof(missing), &why);
	if (!missing[0])
		return 0;
	json_t *permits = permits_of(p);
	size_t i;
	json_t *pm;
	json_array_foreach(permits, i, pm) {
		const char *id = json_string_value(json_object_get(pm, "id"));
		struct els_owner none = {0};
		char want[256];
		if (!id || els_registry_service_check(p, id, &none, want, sizeof(want)) == 0)
			continue;
		if (!strstr(want, "service=") && !strstr(want, "exe="))
			continue; /* user/group: the kernel gives those ids, no /proc needed */
		fprintf(out,
			"%s:%lld: warning: permit '%s' is bound to %s, but elsd will lack %s (%s): "
			"the owners of other users' sockets will be unknown and its flows get the "
			"section's fail policy (reason owner_unknown); grant both with the systemd "
			"drop-in in docs/els-policy.md, \"Privileges\"\n",
			p->path, (long long)json_integer_value(json_object_get(pm, "line")), id, want,
			missing, why);
		n++;
	}
	json_decref(permits);
	return n;
}
