/* The one secrecy check every secret file passes (OpenBSD relayd's check_file_secrecy): the
 * agent's management and metrics key, the event stream's client key, the console's key and
 * the monitor's chain key (lib/files/keyfile.c). */
#ifndef ELS_KEYFILE_H
#define ELS_KEYFILE_H

#include <openssl/evp.h>
#include <stddef.h>

/* Checks the open descriptor fd of the secret file path: a regular file, no permission bits
 * for group or others, owned by root or by the effective user. On the descriptor, so the file
 * checked is the file then read. `what` names the file in err, path follows it: "the agent
 * key /etc/elsd/tls/agent.key is accessible by group or others (mode 0640): run chmod 600
 * ...". 0, or -EPERM (-EINVAL: not a regular file) with err. */
int els_keyfile_check(int fd, const char *what, const char *path, char *err, size_t errlen);

/* Opens path read-only (flags such as O_NOFOLLOW added) and checks it with els_keyfile_check.
 * The descriptor (the caller closes it), or -errno with err ("WHAT PATH: why"). */
int els_keyfile_open(const char *what, const char *path, int flags, char *err, size_t errlen);

/* A PEM private key of at most 64 KiB from a file that passes the check; the bytes read are
 * wiped. The key (the caller frees it with EVP_PKEY_free), or NULL with err. */
EVP_PKEY *els_keyfile_read_pkey(const char *what, const char *path, char *err, size_t errlen);

#endif
