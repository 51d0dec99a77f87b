/* els_privdrop: the no-op cases, the errors, and (as root) the drop itself. Criterion runs
 * every test in a process of its own, so a test that drops privileges changes nothing else. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "privdrop.h"

static bool only_net_admin(cap_flag_t set)
{
	cap_t caps = cap_get_proc();
	bool ok = caps != NULL;
	for (cap_value_t c = 0; ok && c < (cap_value_t)cap_max_bits(); c++) {
		cap_flag_value_t v = CAP_CLEAR;
		cap_get_flag(caps, c, set, &v);
		ok = (v == CAP_SET) == (c == CAP_NET_ADMIN);
	}
	cap_free(caps);
	return ok;
}

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root");
}

Test(privdrop, no_user_changes_nothing)
{
	uid_t before = geteuid();
	cr_assert_eq(els_privdrop(NULL, NULL, NULL), 0);
	cr_assert_eq(els_privdrop("", "/nonexistent/monitor.db", NULL), 0);
	cr_assert_eq(geteuid(), before);
}

Test(privdrop, unknown_user_is_enoent)
{
	uid_t before = geteuid();
	cr_assert_eq(els_privdrop("els-no-such-user-x", NULL, NULL), -ENOENT);
	cr_assert_eq(geteuid(), before);
}

Test(privdrop, drops_to_nobody_keeping_net_admin)
{
	need_root();
	const struct passwd *pw = getpwnam("nobody");
	cr_assert_not_null(pw);
	uid_t uid = pw->pw_uid;
	gid_t gid = pw->pw_gid;
	char dir[] = "/tmp/els-privdrop.XXXXXX", db[64], wal[80], key[80];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/monitor.db", dir);
	snprintf(wal, sizeof(wal), "%s-wal", db);
	snprintf(key, sizeof(key), "%s/monitor.key", dir);
	close(open(db, O_CREAT | O_WRONLY, 0640));
	close(open(wal, O_CREAT | O_WRONLY, 0640));
	close(open(key, O_CREAT | O_WRONLY, 0600)); /* no -shm: a missing file is skipped */
	cr_assert_eq(chown(dir, uid, gid), 0);	    /* so that nobody can clean up */

	cr_assert_eq(els_privdrop("nobody", db, NULL), 0);

	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	cr_expect(r == uid && e == uid && s == uid, "uids %u %u %u", r, e, s);
	cr_expect(gr == gid && ge == gid && gs == gid, "gids %u %u %u", gr, ge, gs);
	cr_expect_eq(getgroups(0, NULL), 0, "supplementary groups left");
	cr_expect(only_net_admin(CAP_PERMITTED), "permitted set is not just CAP_NET_ADMIN");
	cr_expect(only_net_admin(CAP_EFFECTIVE), "effective set is not just CAP_NET_ADMIN");
	cr_expect_eq(prctl(PR_CAPBSET_READ, CAP_SYS_ADMIN, 0, 0, 0), 0, "CAP_SYS_ADMIN bounded");
	cr_expect_eq(prctl(PR_CAPBSET_READ, CAP_NET_ADMIN, 0, 0, 0), 1);
	cr_expect_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
	cr_expect_neq(setuid(0), 0, "root regained");
	struct stat st;
	cr_expect(stat(db, &st) == 0 && st.st_uid == uid, "monitor not given to nobody");
	cr_expect(stat(wal, &st) == 0 && st.st_uid == uid, "-wal not given to nobody");
	cr_expect(stat(key, &st) == 0 && st.st_uid == uid, "key not given to nobody");
	/* Now that user already: nothing to do. Another user: refused, nothing changes. */
	cr_expect_eq(els_privdrop("nobody", db, NULL), 0);
	cr_expect_eq(els_privdrop("root", NULL, NULL), -EPERM);
	cr_expect_eq(geteuid(), uid);
	unlink(db);
	unlink(wal);
	unlink(key);
	cr_expect_eq(rmdir(dir), 0);
}

/* The monitor's directory may belong to the user: a link planted there as the -shm file must
 * not make root give away what it points to. */
Test(privdrop, refuses_a_planted_link)
{
	need_root();
	char dir[] = "/tmp/els-privdrop.XXXXXX", db[64], shm[80], target[80];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/monitor.db", dir);
	snprintf(shm, sizeof(shm), "%s-shm", db);
	snprintf(target, sizeof(target), "%s/precious", dir);
	close(open(db, O_CREAT | O_WRONLY, 0640));
	close(open(target, O_CREAT | O_WRONLY, 0600));
	cr_assert_eq(symlink(target, shm), 0);

	int rc = els_privdrop("nobody", db, NULL);
	struct stat st;
	cr_expect_lt(rc, 0);
	cr_expect(stat(target, &st) == 0 && st.st_uid == 0, "the link's target was given away");
	cr_expect_eq(geteuid(), 0, "dropped despite the error");
	unlink(shm);
	unlink(target);
	unlink(db);
	rmdir(dir);
}

/* The step the management endpoint and the policy-check child share: nothing held, nothing to
 * regain through exec. */
Test(privdrop, confine_gives_up_every_capability)
{
	char err[128] = "";
	cap_t caps;
	char *text;

	cr_assert_eq(els_privdrop_confine(err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0), 1);
	caps = cap_get_proc();
	text = cap_to_text(caps, NULL);
	cr_assert_str_eq(text, "=", "capabilities left: %s", text);
	cap_free(text);
	cap_free(caps);
	/* (The bounding set empties only with CAP_SETPCAP, which a container may withhold; the
	 * capabilities are gone from every set the process holds either way.) */
}

Test(privdrop, become_names_the_failing_step)
{
	const char *step = NULL;

	if (geteuid() == 0)
		cr_skip_test("as root every step succeeds");
	cr_assert_eq(els_privdrop_become(0, 0, &step), -EPERM);
	cr_assert_str_eq(step, "setgroups");
}
