/* els-sweep's configuration: a libconfig file (see --help and docs/forensics.md), then the
 * command-line options over it. */
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sweep.h"

static int conf_string(config_t *cfg, const char *name, char **out)
{
	const config_setting_t *s = config_lookup(cfg, name);

	if (!s)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		fprintf(stderr, "els-sweep: %s:%d: '%s' must be a string\n",
			config_setting_source_file(s), config_setting_source_line(s), name);
		return -1;
	}
	*out = strdup(config_setting_get_string(s));
	return *out ? 0 : -1;
}

/* Reads the config file (when given, or when the default exists), then lets options win. */
int sweep_load_conf(const struct sweep_options *o, struct sweep_conf *c)
{
	static const char *const known[] = {"conninfo", "sslmode",    "sslrootcert", "monitor",
					    "key_file", "batch_size", NULL};
	config_t cfg;
	struct stat sb;
	int ret = -1;

	config_init(&cfg);
	c->batch = SWEEP_DEFAULT_BATCH;
	if (o->config_given || access(o->config, F_OK) == 0) {
		const config_setting_t *root;

		if (!config_read_file(&cfg, o->config)) {
			if (config_error_type(&cfg) == CONFIG_ERR_FILE_IO)
				fprintf(stderr, "els-sweep: %s: cannot read: %s\n", o->config,
					strerror(errno ? errno : EIO));
			else
				fprintf(stderr, "els-sweep: %s:%d: %s\n",
					config_error_file(&cfg) ? config_error_file(&cfg)
								: o->config,
					config_error_line(&cfg), config_error_text(&cfg));
			goto out;
		}
		root = config_root_setting(&cfg);
		for (int i = 0; i < config_setting_length(root); i++) {
			const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
			bool ok = false;

			for (const char *const *k = known; *k; k++)
				ok |= strcmp(*k, config_setting_name(s)) == 0;
			if (!ok) {
				fprintf(stderr,
					"els-sweep: %s:%d: unknown setting '%s' (known: conninfo, "
					"sslmode, sslrootcert, monitor, key_file, batch_size)\n",
					o->config, config_setting_source_line(s),
					config_setting_name(s));
				goto out;
			}
		}
		if (conf_string(&cfg, "conninfo", &c->conninfo) ||
		    conf_string(&cfg, "sslmode", &c->sslmode) ||
		    conf_string(&cfg, "sslrootcert", &c->sslrootcert) ||
		    conf_string(&cfg, "monitor", &c->monitor) ||
		    conf_string(&cfg, "key_file", &c->key_file))
			goto out;
		int b;
		if (config_lookup_int(&cfg, "batch_size", &b)) {
			if (b < 1 || b > 1000000) {
				fprintf(stderr,
					"els-sweep: %s: batch_size = %d is out of range "
					"1..1000000\n",
					o->config, b);
				goto out;
			}
			c->batch = (unsigned)b;
		}
		/* a password others can read is a password others have */
		if (c->conninfo && strstr(c->conninfo, "password") && stat(o->config, &sb) == 0 &&
		    (sb.st_mode & 077)) {
			fprintf(stderr,
				"els-sweep: %s: names a password but group or others may read it "
				"(mode %03o): chmod 600 it, or use ~/.pgpass\n",
				o->config, (unsigned)(sb.st_mode & 0777));
			goto out;
		}
	}
	if (o->db) {
		free(c->conninfo);
		c->conninfo = strdup(o->db);
	}
	if (o->sslmode) {
		free(c->sslmode);
		c->sslmode = strdup(o->sslmode);
	}
	if (o->monitor) {
		free(c->monitor);
		c->monitor = strdup(o->monitor);
	}
	if (!c->monitor)
		c->monitor = strdup(SWEEP_DEFAULT_MONITOR);
	if (o->key) {
		free(c->key_file);
		c->key_file = strdup(o->key);
	}
	if (!c->key_file && c->monitor)
		c->key_file = els_mon_key_path(c->monitor);
	if (o->batch)
		c->batch = o->batch;
	if (!c->monitor || !c->key_file) {
		fputs("els-sweep: out of memory\n", stderr);
		goto out;
	}
	ret = 0;
out:
	config_destroy(&cfg);
	return ret;
}

void sweep_free_conf(struct sweep_conf *c)
{
	free(c->conninfo);
	free(c->sslmode);
	free(c->sslrootcert);
	free(c->monitor);
	free(c->key_file);
}
