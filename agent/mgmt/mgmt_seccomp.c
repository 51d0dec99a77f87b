/* The management endpoint's system-call filter, in addition to Landlock (agent/sandbox.c).
 *
 * Written as a classic BPF program rather than with libseccomp: the filter is a short deny
 * list that reads in one screen, and elsd (and its Debian package) need no further library.
 * A deny list rather than an allow list, because what OpenSSL, glibc and the sanitizers call
 * in a poll loop varies with their versions, and a missing entry there would kill the
 * endpoint; what an attacker in the endpoint would need to reach beyond it (new sockets,
 * programs, namespaces, other processes' memory, the kernel's rarer interfaces) is listed
 * here and answered EPERM, which the unit tests and t_mgmt_confine check. */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "mgmt.h"

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#endif

#ifdef FILTER_ARCH

static const unsigned denied[] = {
    /* no new sockets, no new peers: accept4 on the listening socket is all it needs */
    __NR_socket,
    __NR_socketpair,
    __NR_connect,
    __NR_bind,
    __NR_listen,
    __NR_sendmsg,
    __NR_sendmmsg,
    /* no other program, no other process */
    __NR_execve,
    __NR_execveat,
    __NR_ptrace,
    __NR_process_vm_readv,
    __NR_process_vm_writev,
    __NR_kcmp,
    __NR_pidfd_getfd,
    /* no namespaces, mounts or roots */
    __NR_unshare,
    __NR_setns,
    __NR_mount,
    __NR_umount2,
    __NR_pivot_root,
    __NR_chroot,
    __NR_open_tree,
    __NR_move_mount,
    __NR_fsopen,
    __NR_fsconfig,
    __NR_fsmount,
    __NR_fspick,
    __NR_mount_setattr,
    /* kernel interfaces an exploit reaches for, or that get around this filter */
    __NR_bpf,
    __NR_perf_event_open,
    __NR_userfaultfd,
    __NR_io_uring_setup,
    __NR_io_uring_enter,
    __NR_io_uring_register,
    __NR_keyctl,
    __NR_add_key,
    __NR_request_key,
    __NR_init_module,
    __NR_finit_module,
    __NR_delete_module,
    __NR_kexec_load,
    __NR_kexec_file_load,
    __NR_reboot,
    __NR_swapon,
    __NR_swapoff,
    __NR_open_by_handle_at,
    __NR_name_to_handle_at,
    __NR_fanotify_init,
    __NR_acct,
    __NR_settimeofday,
    __NR_clock_settime,
    __NR_syslog,
    __NR_quotactl,
    __NR_personality,
};

#define NS_FLAGS                                                                                   \
	(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |             \
	 CLONE_NEWPID | CLONE_NEWNET)
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (ARG_LO(i) + 4) /* little-endian: both architectures above */
#define DENY(e)	  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((e)&SECCOMP_RET_DATA))
#define ALLOW	  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)

int els_mgmt_seccomp(char *err, size_t n)
{
	enum { NDENIED = sizeof(denied) / sizeof(denied[0]) };
	struct sock_filter f[8 + 2 * NDENIED + 16];
	unsigned k = 0;

	/* Another ABI (i386 on x86_64, x32) numbers its calls differently: kill. */
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FILTER_ARCH, 1, 0);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
#ifdef __x86_64__
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (unsigned i = 0; i < NDENIED; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied[i], 0, 1);
		f[k++] = (struct sock_filter)DENY(EPERM);
	}
	/* clone3 passes its flags in memory the filter cannot read: ENOSYS makes glibc fall
	 * back to clone, whose flags it can. */
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	f[k++] = (struct sock_filter)DENY(ENOSYS);
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 4);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, NS_FLAGS, 0, 1);
	f[k++] = (struct sock_filter)DENY(EPERM);
	f[k++] = (struct sock_filter)ALLOW;
	/* sendto with an address (a datagram to a new peer); send() on a connected socket
	 * passes none and stays allowed. */
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sendto, 0, 6);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(4));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 3);
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_HI(4));
	f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1);
	f[k++] = (struct sock_filter)ALLOW;
	f[k++] = (struct sock_filter)DENY(EPERM);
	f[k++] = (struct sock_filter)ALLOW;

	struct sock_fprog prog = {.len = (unsigned short)k, .filter = f};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0) {
		snprintf(err, n, "seccomp filter: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

#else

int els_mgmt_seccomp(char *err, size_t n)
{
	snprintf(err, n,
		 "seccomp filter: this architecture is not supported by elsd's filter "
		 "(agent/mgmt_seccomp.c knows x86_64 and aarch64)");
	return -ENOTSUP;
}

#endif
