/*
 * cmd_info — the commands that look rather than act: list (sets of the
 * store), caps, version, info, bundle list/add, demo, and the summary shown
 * when ohbackup runs without a command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "demo.h"
#include "fsutil.h"
#include "registry.h"

static int
print_sets(const cli_ctx_t *ctx, store_t *store)
{
	ohb_error_t err;
	store_set_info_t *sets = NULL;
	size_t n = 0;
	if (store_list(store, &sets, &n, &err) != 0)
		return cli_fail(ctx, &err);
	if (ctx->json) {
		cJSON *arr = cJSON_CreateArray();
		for (size_t i = 0; i < n; i++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", sets[i].id);
			cJSON_AddStringToObject(o, "kind", sets[i].kind);
			cJSON_AddStringToObject(o, "state", sets[i].complete ? "complete" : "interrupted");
			cJSON_AddStringToObject(o, "created", sets[i].created ? sets[i].created : "");
			cJSON_AddNumberToObject(o, "bytes", (double)sets[i].bytes);
			cJSON *b = cJSON_AddArrayToObject(o, "bundles");
			for (size_t k = 0; k < sets[i].n_bundles; k++) {
				cJSON *bo = cJSON_CreateObject();
				cJSON_AddStringToObject(bo, "name", sets[i].bundles[k].name);
				cJSON_AddNumberToObject(bo, "code", sets[i].bundles[k].code);
				cJSON_AddNumberToObject(bo, "bytes", (double)sets[i].bundles[k].bytes);
				cJSON_AddItemToArray(b, bo);
			}
			cJSON_AddItemToArray(arr, o);
		}
		char *t = cJSON_PrintUnformatted(arr);
		if (t)
			cli_json_line(t);
		free(t);
		cJSON_Delete(arr);
	} else if (n == 0) {
		printf("no backup sets in %s\n", store_dir(store));
	} else {
		printf("%-24s %-12s %-12s %8s %12s  %s\n", "SET", "KIND", "STATE", "BUNDLES", "SIZE", "CREATED");
		for (size_t i = 0; i < n; i++) {
			size_t ok = 0;
			for (size_t k = 0; k < sets[i].n_bundles; k++)
				ok += sets[i].bundles[k].code == 0;
			char h[32], counts[32];
			snprintf(counts, sizeof counts, "%zu/%zu", ok, sets[i].n_bundles);
			printf("%-24s %-12s %-12s %8s %12s  %s\n", sets[i].id, sets[i].kind,
			    sets[i].complete ? "complete" : "interrupted", counts, cli_human_bytes(sets[i].bytes, h, sizeof h),
			    sets[i].created ? sets[i].created : "");
		}
	}
	store_set_infos_free(sets, n);
	return CLI_OK;
}

int
cmd_list(cli_ctx_t *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage(cli_find_command("list"), "takes no arguments");
	ohb_error_t err;
	store_t *store = NULL;
	if (store_open(ctx->store, &store, &err) != 0)
		return cli_fail(ctx, &err);
	int rc = print_sets(ctx, store);
	store_close(store);
	return rc;
}

/* Runs fn on an open service and prints the JSON string it returns. */
static int
with_service(cli_ctx_t *ctx, int (*fn)(ohb_service_t *, const char *, char **, ohb_error_t *), const char *arg)
{
	ohb_error_t err;
	ohb_service_t *svc = NULL;
	char *out = NULL;
	int rc = cli_open_service(ctx, &svc, &err);
	if (rc == 0)
		rc = fn(svc, arg, &out, &err);
	if (rc != 0)
		rc = cli_fail(ctx, &err);
	else
		cli_json_line(out);
	free(out);
	ohb_service_close(svc);
	return rc;
}

static int
version_fn(ohb_service_t *svc, const char *arg, char **out, ohb_error_t *err)
{
	(void)arg;
	return ohb_get_backup_version(svc, out, err);
}

static int
caps_fn(ohb_service_t *svc, const char *arg, char **out, ohb_error_t *err)
{
	(void)arg;
	int fd = -1;
	int rc = ohb_get_local_capabilities(svc, &fd, err);
	if (rc == 0)
		rc = fsu_read_fd(fd, 64u << 20, out, NULL, err);
	if (fd >= 0)
		close(fd);
	return rc;
}

int
cmd_version(cli_ctx_t *ctx, int argc, char **argv)
{
	(void)argv;
	if (argc > 1)
		return cli_usage(cli_find_command("version"), "takes no arguments");
	return with_service(ctx, version_fn, NULL);
}

int
cmd_info(cli_ctx_t *ctx, int argc, char **argv)
{
	if (argc != 2)
		return cli_usage(cli_find_command("info"), "name one bundle");
	return with_service(ctx, ohb_get_backup_info, argv[1]);
}

int
cmd_caps(cli_ctx_t *ctx, int argc, char **argv)
{
	const char *out_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out_file = argv[++i];
		else
			return cli_usage(cli_find_command("caps"), "unknown argument");
	}
	if (!out_file)
		return with_service(ctx, caps_fn, NULL);
	ohb_error_t err;
	ohb_service_t *svc = NULL;
	char *text = NULL;
	int rc = cli_open_service(ctx, &svc, &err);
	if (rc == 0)
		rc = caps_fn(svc, NULL, &text, &err);
	if (rc == 0) {
		char *copy = strdup(out_file);
		char *slash = copy ? strrchr(copy, '/') : NULL;
		const char *dir = ".", *name = copy;
		if (slash) {
			*slash = '\0';
			dir = *copy ? copy : "/";
			name = slash + 1;
		}
		rc = copy ? fsu_write_atomic(dir, name, text, strlen(text), 0644, &err) : OHB_E_NOMEM;
		free(copy);
	}
	if (rc != 0)
		rc = cli_fail(ctx, &err);
	free(text);
	ohb_service_close(svc);
	return rc;
}

int
cmd_bundle(cli_ctx_t *ctx, int argc, char **argv)
{
	const cli_command_t *cmd = cli_find_command("bundle");
	ohb_error_t err;
	if (argc == 4 && strcmp(argv[1], "add") == 0) {
		if (reg_bundle_add_dir(ctx->root, argv[2], argv[3], &err) != 0)
			return cli_fail(ctx, &err);
		if (!ctx->json)
			printf("registered %s over %s\n", argv[2], argv[3]);
		return CLI_OK;
	}
	if (argc != 2 || strcmp(argv[1], "list") != 0)
		return cli_usage(cmd, "expected `bundle list` or `bundle add NAME DIR`");
	/* Opening the service first finishes any restore a crash interrupted, so the
	 * listing shows the device as it really is. */
	ohb_service_t *svc = NULL;
	if (cli_open_service(ctx, &svc, &err) != 0)
		return cli_fail(ctx, &err);
	ohb_service_close(svc);
	reg_device_t *dev = NULL;
	if (reg_device_open(ctx->root, &dev, &err) != 0)
		return cli_fail(ctx, &err);
	cJSON *arr = cJSON_CreateArray();
	if (!ctx->json)
		printf("%-36s %-12s %-8s %s\n", "BUNDLE", "VERSION", "BACKUP", "DATA");
	for (size_t i = 0; i < dev->n_bundles; i++) {
		const reg_bundle_t *b = dev->bundles[i];
		if (ctx->json) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", b->name);
			cJSON_AddStringToObject(o, "versionName", b->version_name);
			cJSON_AddBoolToObject(o, "allowToBackupRestore", b->allow_backup_restore);
			cJSON_AddStringToObject(o, "dir", b->n_mounts ? b->mounts[0].dir : "");
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-36s %-12s %-8s %s\n", b->name, b->version_name, b->allow_backup_restore ? "yes" : "no",
			    b->n_mounts ? b->mounts[0].dir : "");
		}
	}
	for (size_t i = 0; i < dev->n_broken; i++)
		fprintf(stderr, "ohbackup: warning: broken bundle descriptor: %s\n", dev->broken[i]);
	if (ctx->json) {
		char *t = cJSON_PrintUnformatted(arr);
		if (t)
			cli_json_line(t);
		free(t);
	}
	cJSON_Delete(arr);
	reg_device_free(dev);
	return CLI_OK;
}

int
cmd_demo(cli_ctx_t *ctx, int argc, char **argv)
{
	const char *cloud = NULL;
	if (argc == 3 && strcmp(argv[1], "--cloud") == 0)
		cloud = argv[2];
	else if (argc > 1)
		return cli_usage(cli_find_command("demo"), "takes only --cloud DIR");
	ohb_error_t err;
	if (fsu_mkdir_p(ctx->root, 0755, &err) != 0 || demo_build(ctx->root, 1, &err) != 0)
		return cli_fail(ctx, &err);
	if (cloud) {
		char *abs = NULL;
		if (fsu_mkdir_p(cloud, 0755, &err) != 0)
			return cli_fail(ctx, &err);
		if (!(abs = realpath(cloud, NULL)))
			return cli_error(ctx, 13900002, "cannot resolve the demo cloud's folder");
		int rc = demo_build_cloud(ctx->root, abs, &err);
		free(abs);
		if (rc != 0)
			return cli_fail(ctx, &err);
	}
	if (!ctx->json)
		printf("demo device built in %s%s%s\n", ctx->root, cloud ? ", its cloud in " : "", cloud ? cloud : "");
	return CLI_OK;
}

int
cmd_home(cli_ctx_t *ctx)
{
	ohb_error_t err;
	ohb_service_t *svc = NULL;
	if (cli_open_service(ctx, &svc, &err) != 0)
		return cli_fail(ctx, &err);
	ohb_service_close(svc);
	reg_device_t *dev = NULL;
	if (reg_device_open(ctx->root, &dev, &err) != 0)
		return cli_fail(ctx, &err);
	if (!ctx->json) {
		printf("ohbackup — device %s (%s, backup version %s)\n", dev->system_full_name, dev->device_type,
		    dev->backup_version);
		printf("device root: %s, %zu bundles\n", dev->root, dev->n_bundles);
		printf("store: %s\n\n", ctx->store);
	}
	reg_device_free(dev);
	store_t *store = NULL;
	if (store_open(ctx->store, &store, &err) != 0)
		return cli_fail(ctx, &err);
	int rc = print_sets(ctx, store);
	store_close(store);
	if (!ctx->json)
		printf("\nOn a terminal, ohbackup opens the console; ohbackup --help lists the commands.\n");
	return rc;
}
