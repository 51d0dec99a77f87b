/* Reading the files the configuration names: the product's one bounded reader. */
#include <fcntl.h>

#include "console.h"
#include "els/readfile.h"

int console_read_file(const char *path, size_t max, char **out, size_t *len)
{
	return els_read_file_at(AT_FDCWD, path, 0, max, out, len);
}
