/*
 * cli_cloud — how both front ends (`ohbackup cloud` and the console's Cloud
 * screen) find the cloud settings and open the cloudSync engine.
 *
 * Settings, first found wins:
 *   url       the caller's --url, $OHBACKUP_CLOUD_URL, "url" in <root>/cloud/config.json
 *   user      $OHBACKUP_CLOUD_USER, "user" in config.json
 *   password  $OHBACKUP_CLOUD_PASSWORD, "password" in config.json
 *   battery   $OHBACKUP_POWER_SUPPLY (a folder shaped like /sys/class/power_supply;
 *             tests simulate a battery with it), else the machine's
 *   rate      $OHBACKUP_CLOUD_RATE (bytes per second, 0 = no cap)
 * config.json is {"url":…,"user":…,"password":…,"enabled":true}; "enabled":
 * false switches cloud sync off (every transfer: 22400001). A missing or
 * broken file counts as empty (the engine then reports 22400001 on the first
 * transfer).
 */
#ifndef OHB_CLI_CLOUD_H
#define OHB_CLI_CLOUD_H

#include "cli.h"
#include "ohbackup_cloud.h"

/* Opens the engine for ctx->root with the settings above. */
int cli_cloud_open(const cli_ctx_t *ctx, const char *url_opt, ohb_cloud_t **out, ohb_error_t *err);

#endif
