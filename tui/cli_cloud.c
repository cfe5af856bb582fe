/*
 * cli_cloud — the cloud settings of the front ends (cli_cloud.h).
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli_cloud.h"
#include "fsutil.h"

#define MAX_CONFIG_BYTES (64u * 1024u)

static const char *
env_nonempty(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

static const char *
config_string(const cJSON *cfg, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
cli_cloud_open(const cli_ctx_t *ctx, const char *url_opt, ohb_cloud_t **out, ohb_error_t *err)
{
	cJSON *cfg = NULL;
	char *path = fsu_printf("%s/cloud/config.json", ctx->root);
	char *text = NULL;
	size_t len = 0;
	if (path && fsu_read_file(path, MAX_CONFIG_BYTES, &text, &len, NULL) == 0)
		cfg = cJSON_Parse(text);
	free(text);
	free(path);

	ohb_cloud_options_t o = {0};
	o.root = ctx->root;
	o.url = url_opt ? url_opt : env_nonempty("OHBACKUP_CLOUD_URL");
	if (!o.url)
		o.url = config_string(cfg, "url");
	o.user = env_nonempty("OHBACKUP_CLOUD_USER");
	if (!o.user)
		o.user = config_string(cfg, "user");
	o.password = env_nonempty("OHBACKUP_CLOUD_PASSWORD");
	if (!o.password)
		o.password = config_string(cfg, "password");
	o.power_supply_dir = env_nonempty("OHBACKUP_POWER_SUPPLY");
	const cJSON *enabled = cJSON_GetObjectItemCaseSensitive(cfg, "enabled");
	o.switched_off = cJSON_IsFalse(enabled);
	const char *rate = env_nonempty("OHBACKUP_CLOUD_RATE");
	o.rate_limit = rate ? strtoull(rate, NULL, 10) : 0;
	int rc = ohb_cloud_open(&o, out, err);   /* copies every string */
	cJSON_Delete(cfg);
	return rc;
}
