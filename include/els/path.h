/* File names in the configuration (lib/files/path.c). */
#ifndef ELS_PATH_H
#define ELS_PATH_H

/* path as the configuration at config_path means it: an absolute path as it is, a relative one
 * from the config file's directory, so that a config and the files it names move together.
 * config_path NULL or without a '/': path as it is. malloc'd (caller frees); NULL on ENOMEM. */
char *els_path_beside(const char *path, const char *config_path);

#endif
