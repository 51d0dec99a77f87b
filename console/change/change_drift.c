/* Continuous compliance: the drift rules. An agent drifts when it runs another policy than its
 * group's deployed approved version, its steering rules are missing, it listens on a port its
 * policy does not permit, its monitor chain fails to verify, it holds a permit that has expired
 * (in the registry or by its own date), or it has been silent too long. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "change.h"

const char *const change_drift_names[DRIFT_NKINDS] = {
    "policy", "rules", "listener", "monitor", "expired_permit", "silent",
};

static bool loopback(const char *addr)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (addr && inet_pton(AF_INET, addr, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (addr && inet_pton(AF_INET6, addr, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return false;
}

static bool proto_match(const char *permit, const char *listener)
{
	return !permit || strcmp(permit, "any") == 0 || strcmp(permit, listener) == 0;
}

/* Appends "; text" to buf (or text when empty), cut at the buffer's end. */
static void add(char *buf, const char *text)
{
	size_t l = strlen(buf);
	snprintf(buf + l, CHANGE_REASON_LEN - l, "%s%s", l ? "; " : "", text);
}

static void listeners(const struct change_drift_input *in, char *out)
{
	char line[200];

	for (size_t i = 0; i < in->nlisteners; i++) {
		const struct change_listener *l = &in->listeners[i];
		bool ok = false;
		if (loopback(l->addr))
			continue;
		for (size_t k = 0; k < in->npermits && !ok; k++) {
			const struct change_permit *p = &in->permits[k];
			if (p->dir && strcmp(p->dir, "in") != 0)
				continue;
			if (!proto_match(p->proto, l->proto))
				continue;
			ok = change_ports_cover(p->port, l->port, l->port) == 1;
		}
		if (!ok) {
			snprintf(line, sizeof(line),
				 "listens on %s %s:%u, which no inbound permit "
				 "of its policy admits",
				 l->proto, l->addr ? l->addr : "*", l->port);
			add(out, line);
		}
	}
}

static void expired(const struct change_drift_input *in, time_t now, char *out)
{
	char line[200];

	for (size_t k = 0; k < in->npermits; k++) {
		const struct change_permit *p = &in->permits[k];
		for (size_t r = 0; p->id && r < in->nregistry; r++) {
			const struct change_registry_entry *e = &in->registry[r];
			if (strcmp(e->id, p->id) != 0 || !e->expires_s || e->expires_s > now)
				continue;
			snprintf(line, sizeof(line),
				 "permit '%s' is in force but its registry "
				 "entry expired",
				 p->id);
			add(out, line);
		}
	}
}

unsigned change_drift_eval(const struct change_drift_input *in, time_t now, unsigned silent_after_s,
			   char detail[DRIFT_NKINDS][CHANGE_REASON_LEN])
{
	unsigned mask = 0;

	for (int k = 0; k < DRIFT_NKINDS; k++)
		detail[k][0] = 0;
	if (!in->have_state)
		return 0; /* never said hello: nothing to compare yet */
	if (silent_after_s && now - in->last_seen > (time_t)silent_after_s)
		snprintf(detail[DRIFT_SILENT], CHANGE_REASON_LEN,
			 "silent for %lld s (more than %u s)", (long long)(now - in->last_seen),
			 silent_after_s);
	if (in->approved_sha256 &&
	    (!in->running_sha256 || strcmp(in->approved_sha256, in->running_sha256) != 0))
		snprintf(detail[DRIFT_POLICY], CHANGE_REASON_LEN,
			 "runs policy %.12s, the approved deployed version is %.12s",
			 in->running_sha256 ? in->running_sha256 : "(none)", in->approved_sha256);
	if (!in->rules_ok)
		snprintf(detail[DRIFT_RULES], CHANGE_REASON_LEN,
			 "its steering rules are missing or altered");
	if (!in->monitor_ok)
		snprintf(detail[DRIFT_MONITOR], CHANGE_REASON_LEN,
			 "its monitor chain fails to verify");
	listeners(in, detail[DRIFT_LISTENER]);
	expired(in, now, detail[DRIFT_EXPIRED_PERMIT]);
	for (int k = 0; k < DRIFT_NKINDS; k++)
		if (detail[k][0])
			mask |= 1u << k;
	return mask;
}
