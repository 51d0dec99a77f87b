/* One rule for relative file names in the configuration (include/els/path.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "els/path.h"

char *els_path_beside(const char *path, const char *config_path)
{
	const char *slash = config_path ? strrchr(config_path, '/') : NULL;
	char *out = NULL;

	if (path[0] == '/' || !slash)
		return strdup(path);
	if (asprintf(&out, "%.*s/%s", (int)(slash - config_path), config_path, path) < 0)
		return NULL;
	return out;
}
