/* Reading a whole small file the agent was told to read (lib/files/readfile.c): a policy document,
 * a list file, a CA bundle, a certificate, a CRL. */
#ifndef ELS_READFILE_H
#define ELS_READFILE_H

#include <stddef.h>

/* Reads name in dirfd (AT_FDCWD: a path) whole into *text, malloc'd and NUL-terminated (for
 * parsers that want a string; *len stays the byte count). Only a regular file, checked with
 * fstat on the descriptor read, of at most max bytes; flags are added to the open (O_NOFOLLOW
 * to refuse a symbolic link). Never blocks on a FIFO (O_NONBLOCK). 0, or -errno: -EINVAL not a
 * regular file, -EFBIG larger than max (or grew past its size while being read). */
int els_read_file_at(int dirfd, const char *name, int flags, size_t max, char **text, size_t *len);

#endif
