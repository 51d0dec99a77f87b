/* Parsers of what /proc and sock_diag say about a socket's owner (include/els/owner.h). Their
 * input comes from processes elsd does not trust (a cgroup path is chosen by whoever creates
 * the cgroup), so each reads only within the length it is given and is fuzzed
 * (tests/fuzz/fuzz_owner_parse.c). */
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdio.h>
#include <string.h>

#include "els/owner.h"

static const char *const unit_suffixes[] = {".service", ".scope", ".socket",
					    ".mount",	".swap",  NULL};

/* systemd unit names: letters, digits, ":-_.\" and one "@" (template instances); anything
 * else in a cgroup path component means it is not a unit systemd made. */
static bool unit_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ':' || c == '-' || c == '_' || c == '.' || c == '\\' || c == '@'))
			return false;
	}
	return n > 0;
}

static bool is_unit(const char *s, size_t n)
{
	if (!unit_chars(s, n))
		return false;
	for (unsigned i = 0; unit_suffixes[i]; i++) {
		size_t l = strlen(unit_suffixes[i]);
		if (n > l && memcmp(s + n - l, unit_suffixes[i], l) == 0)
			return true;
	}
	return false;
}

/* The deepest unit component of path[0..n). */
static bool unit_of_path(const char *path, size_t n, char *unit, size_t size)
{
	bool found = false;
	size_t i = 0;

	while (i < n) {
		while (i < n && path[i] == '/')
			i++;
		size_t start = i;
		while (i < n && path[i] != '/')
			i++;
		size_t l = i - start;
		if (l && is_unit(path + start, l) && l < size) {
			memcpy(unit, path + start, l);
			unit[l] = '\0';
			found = true;
		}
	}
	return found;
}

bool els_owner_unit_parse(const char *text, size_t len, char *unit, size_t size)
{
	const char *v1 = NULL, *v2 = NULL;
	size_t v1n = 0, v2n = 0, i = 0;

	if (size)
		unit[0] = '\0';
	if (size < 2)
		return false;
	while (i < len) {
		size_t start = i;
		while (i < len && text[i] != '\n')
			i++;
		const char *line = text + start, *end = text + i;
		i++; /* past the newline */
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		if (!c1)
			continue;
		const char *c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
		if (!c2)
			continue;
		size_t ctl = (size_t)(c2 - c1 - 1);
		if (ctl == 12 && memcmp(c1 + 1, "name=systemd", 12) == 0) {
			v1 = c2 + 1;
			v1n = (size_t)(end - v1);
		} else if (ctl == 0 && c1 - line == 1 && line[0] == '0') {
			v2 = c2 + 1;
			v2n = (size_t)(end - v2);
		}
	}
	/* On a hybrid host both exist and agree; systemd tracks units in the named hierarchy
	 * on v1 hosts, where the unified one may be mounted empty. */
	if (v1 && unit_of_path(v1, v1n, unit, size))
		return true;
	if (v2 && unit_of_path(v2, v2n, unit, size))
		return true;
	unit[0] = '\0';
	return false;
}

/* The second number after "Key:" on a line of its own. */
static bool status_field(const char *text, size_t len, const char *key, uint32_t *out)
{
	size_t kl = strlen(key), i = 0;

	while (i < len) {
		size_t start = i;
		while (i < len && text[i] != '\n')
			i++;
		size_t n = i - start;
		const char *l = text + start;
		i++;
		if (n <= kl || memcmp(l, key, kl) != 0)
			continue;
		size_t j = kl;
		for (int field = 0; field < 2; field++) {
			while (j < n && (l[j] == '\t' || l[j] == ' '))
				j++;
			uint64_t v = 0;
			size_t d0 = j;
			while (j < n && l[j] >= '0' && l[j] <= '9' && j - d0 < 10)
				v = v * 10 + (uint64_t)(l[j++] - '0');
			if (j == d0 || v > UINT32_MAX || (j < n && l[j] != '\t' && l[j] != ' '))
				return false;
			if (field == 1) {
				*out = (uint32_t)v;
				return true;
			}
		}
	}
	return false;
}

bool els_owner_status_parse(const char *text, size_t len, uint32_t *euid, uint32_t *egid)
{
	return status_field(text, len, "Uid:", euid) && status_field(text, len, "Gid:", egid);
}

bool els_owner_socket_link(const char *text, size_t len, uint64_t *inode)
{
	static const char pre[] = "socket:[";
	size_t pl = sizeof(pre) - 1;
	uint64_t v = 0;

	if (len < pl + 2 || memcmp(text, pre, pl) != 0 || text[len - 1] != ']')
		return false;
	for (size_t i = pl; i < len - 1; i++) {
		if (text[i] < '0' || text[i] > '9' || i - pl >= 19)
			return false;
		v = v * 10 + (uint64_t)(text[i] - '0');
	}
	*inode = v;
	return len - 1 > pl;
}

bool els_owner_diag_parse(const void *payload, size_t len, uint64_t *inode, uint32_t *uid)
{
	struct inet_diag_msg m;

	if (!payload || len < sizeof(m))
		return false;
	memcpy(&m, payload, sizeof(m)); /* the netlink buffer guarantees 4-byte alignment only */
	*inode = m.idiag_inode;
	*uid = m.idiag_uid;
	return true;
}

int els_owner_diag_answer(const void *buf, size_t len, uint32_t seq, uint64_t *inode, uint32_t *uid)
{
	/* Each header is checked against what is left before it is read (NLMSG_OK's checks,
	 * written with unsigned sizes throughout, so no sign conversion). */
	const unsigned char *p = buf;
	size_t left = len;
	while (left >= sizeof(struct nlmsghdr)) {
		const struct nlmsghdr *h = (const void *)p;
		if (h->nlmsg_len < sizeof(*h) || h->nlmsg_len > left)
			break;
		size_t step = NLMSG_ALIGN(h->nlmsg_len) < left ? NLMSG_ALIGN(h->nlmsg_len) : left;
		p += step;
		left -= step;
		if (h->nlmsg_seq != seq)
			continue;
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY)
			return 0; /* NLMSG_ERROR: no such socket */
		return els_owner_diag_parse(NLMSG_DATA(h), h->nlmsg_len - NLMSG_HDRLEN, inode,
					    uid) &&
			       *inode
			   ? 1
			   : 0;
	}
	return -1;
}

void els_owner_describe(const struct els_owner *o, char *buf, size_t size)
{
	/* A long exe is cut: the unit, uid and pid come first. Without a pid the kernel's ids
	 * with an outbound packet were all that was asked. */
	if (!o->pid)
		snprintf(buf, size, "uid=%u gid=%u", o->uid, o->gid);
	else
		snprintf(buf, size, "unit=%s uid=%u pid=%u exe=%s", o->unit[0] ? o->unit : "-",
			 o->uid, o->pid, o->exe[0] ? o->exe : "?");
}
