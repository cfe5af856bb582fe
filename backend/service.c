/*
 * service — the module functions of @ohos.file.backup that need no session:
 * opening the service over a device root, getLocalCapabilities (all
 * variants), getBackupVersion and getBackupInfo.
 *
 * Opening the service is also where an interrupted restore is finished or
 * rolled back (stage_recover), so a bundle is wholly old or wholly new once
 * any next command has run.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "capability.h"
#include "errors.h"
#include "extension.h"
#include "fsutil.h"
#include "registry.h"
#include "scanner.h"
#include "session.h"
#include "stage.h"

/* Finishes or rolls back restores a crash interrupted. Only when no session
 * holds the device: a live session in another process owns its stages, and
 * recovering under it would break its all-or-nothing apply. */
static int
recover_restores(const reg_device_t *dev, ohb_error_t *err)
{
	char *lock_path = fsu_join(dev->root, "service.lock");
	if (!lock_path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	free(lock_path);
	if (fd < 0)
		return 0;   /* a read-only device root has nothing we could recover anyway */
	int rc = 0;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		for (size_t i = 0; i < dev->n_bundles && rc == 0; i++) {
			ohb_error_t e;
			const reg_bundle_t *b = dev->bundles[i];
			if (stage_recover(b, &e) != 0) {
				rc = ohb_fail(err, e.code, "cannot finish an interrupted restore of %s: %s", b->name,
				    e.message);
				break;
			}
			/* stage_recover also dropped a killed restore's received files; the
			 * emptied restore/ folder goes too (rmdir fails harmlessly otherwise). */
			char *restore_dir = fsu_join(b->temp_dir, "restore");
			if (restore_dir)
				rmdir(restore_dir);
			free(restore_dir);
		}
	}
	close(fd);
	return rc;
}

/* A restore takes file leases for an instant (job_restore.c, unpacker.c).
 * Were one ever broken by another process opening the file, the kernel would
 * send this process SIGIO, whose default action ends it; a program that
 * handles SIGIO itself keeps its handler. */
static void
ignore_lease_breaks(void)
{
	struct sigaction sa;
	if (sigaction(SIGIO, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL)
		signal(SIGIO, SIG_IGN);
}

int
ohb_service_open(const ohb_service_options_t *opts, ohb_service_t **out, ohb_error_t *err)
{
	ohb_error_clear(err);
	ignore_lease_breaks();
	if (!opts || !opts->device_root || !*opts->device_root || !out)
		return ohb_fail(err, OHB_E_PARAM, "a device root directory is required");
	reg_device_t *dev = NULL;
	int rc = reg_device_open(opts->device_root, &dev, err);
	if (rc != 0)
		return rc;
	if ((rc = recover_restores(dev, err)) != 0) {
		reg_device_free(dev);
		return rc;
	}
	ohb_service_t *svc = calloc(1, sizeof *svc);
	if (!svc || !(svc->root = strdup(dev->root))) {
		free(svc);
		reg_device_free(dev);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	reg_device_free(dev);
	svc->max_parallel = opts->max_parallel > 0 ? opts->max_parallel : 3;
	svc->process_interval_ms = opts->process_interval_ms > 0 ? opts->process_interval_ms : 250;
	svc->lock_fd = -1;
	pthread_mutex_init(&svc->lock, NULL);
	*out = svc;
	return 0;
}

static void listings_free(struct svc_listing *v, size_t n);

void
ohb_service_close(ohb_service_t *svc)
{
	if (!svc)
		return;
	pthread_mutex_destroy(&svc->lock);
	listings_free(svc->listings, svc->n_listings);
	free(svc->root);
	free(svc);
}

/* ---- listings kept from the capability walk ------------------------------------------
 *
 * A client asks for the capability file (spaceOccupied: a walk of every
 * bundle with a stat per file) and then backs bundles up (the job's walk:
 * the same stats again). The CLI does exactly that, and the two walks were
 * 10-15 % of a backup of 50 000 small files (docs/PERFORMANCE.md). So the
 * capability walk keeps its listings (within CAP_KEEP_ENTRIES) and a full
 * backup's job takes its bundle's instead of walking again, when it is at
 * most LISTING_MAX_AGE_MS old, the bundle's mounts and patterns are the same
 * and no directory changed since (scan_list_is_current, with a margin of
 * LISTING_RACY_MS). Otherwise the job walks as before. */
#define LISTING_MAX_AGE_MS 10000
#define LISTING_RACY_MS 1000

typedef struct svc_listing {
	char *name;
	int app_index;
	char *config;     /* listing_config: what the walk depended on */
	scan_list_t list;
} svc_listing_t;

/* The mounts, includes and excludes of b as one string. */
static char *
listing_config(const reg_bundle_t *b)
{
	/* Each line is its text plus two characters ('=' or the sign, and '\n'). */
	size_t len = 1;
	for (size_t i = 0; i < b->n_mounts; i++)
		len += strlen(b->mounts[i].sandbox_prefix) + strlen(b->mounts[i].dir) + 2;
	for (size_t i = 0; i < b->n_includes; i++)
		len += strlen(b->includes[i]) + 2;
	for (size_t i = 0; i < b->n_excludes; i++)
		len += strlen(b->excludes[i]) + 2;
	char *s = malloc(len);
	if (!s)
		return NULL;
	size_t at = 0;
	for (size_t i = 0; i < b->n_mounts; i++)
		at += (size_t)snprintf(s + at, len - at, "%s=%s\n", b->mounts[i].sandbox_prefix, b->mounts[i].dir);
	for (size_t i = 0; i < b->n_includes; i++)
		at += (size_t)snprintf(s + at, len - at, "+%s\n", b->includes[i]);
	for (size_t i = 0; i < b->n_excludes; i++)
		at += (size_t)snprintf(s + at, len - at, "-%s\n", b->excludes[i]);
	return s;
}

static void
listings_free(svc_listing_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].config);
		scan_list_free(&v[i].list);
	}
	free(v);
}

/* Replaces the service's listings by those of dev's bundles in lists. */
static void
listings_keep(ohb_service_t *svc, const reg_device_t *dev, scan_list_t *lists)
{
	svc_listing_t *v = calloc(dev->n_bundles ? dev->n_bundles : 1, sizeof *v);
	size_t n = 0;
	for (size_t i = 0; i < dev->n_bundles; i++) {
		if (!lists[i].reusable || !v)
			continue;
		svc_listing_t *l = &v[n];
		l->name = strdup(dev->bundles[i]->name);
		l->app_index = dev->bundles[i]->app_index;
		l->config = listing_config(dev->bundles[i]);
		if (!l->name || !l->config) {
			free(l->name);
			free(l->config);
			continue;
		}
		l->list = lists[i];
		memset(&lists[i], 0, sizeof lists[i]);
		n++;
	}
	pthread_mutex_lock(&svc->lock);
	svc_listing_t *old = svc->listings;
	size_t n_old = svc->n_listings;
	svc->listings = v;
	svc->n_listings = v ? n : 0;
	pthread_mutex_unlock(&svc->lock);
	listings_free(old, n_old);
}

bool
service_take_listing(ohb_service_t *svc, const reg_bundle_t *b, bool want, scan_list_t *out)
{
	svc_listing_t l;
	bool found = false;
	pthread_mutex_lock(&svc->lock);
	for (size_t i = 0; i < svc->n_listings; i++) {
		if (svc->listings[i].app_index == b->app_index && strcmp(svc->listings[i].name, b->name) == 0) {
			l = svc->listings[i];
			svc->listings[i] = svc->listings[--svc->n_listings];
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&svc->lock);
	if (!found)
		return false;
	char *config = want ? listing_config(b) : NULL;
	bool ok = config && strcmp(config, l.config) == 0 && fsu_now_ms() - l.list.walked_ms <= LISTING_MAX_AGE_MS &&
	    scan_list_is_current(&l.list, LISTING_RACY_MS);
	free(config);
	if (ok) {
		*out = l.list;
		memset(&l.list, 0, sizeof l.list);
	}
	free(l.name);
	free(l.config);
	scan_list_free(&l.list);
	return ok;
}

static int
capabilities_fd(ohb_service_t *svc, const ohb_incremental_time_t *list, size_t n, int *fd_out, ohb_error_t *err)
{
	reg_device_t *dev = NULL;
	int rc = reg_device_open(svc->root, &dev, err);
	if (rc != 0)
		return rc;
	char *json = NULL;
	scan_list_t *lists = calloc(dev->n_bundles ? dev->n_bundles : 1, sizeof *lists);
	rc = cap_build_json_keep(dev, list, n, lists, &json, err);
	if (rc == 0)
		rc = fsu_anon_fd(NULL, json, strlen(json), fd_out, err);
	if (rc == 0 && lists)
		listings_keep(svc, dev, lists);
	for (size_t i = 0; lists && i < dev->n_bundles; i++)
		scan_list_free(&lists[i]);
	free(lists);
	free(json);
	reg_device_free(dev);
	return rc;
}

int
ohb_get_local_capabilities(ohb_service_t *svc, int *fd_out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !fd_out)
		return ohb_fail(err, OHB_E_PARAM, "a service and an output fd are required");
	return capabilities_fd(svc, NULL, 0, fd_out, err);
}

int
ohb_get_local_capabilities_incremental(ohb_service_t *svc, const ohb_incremental_time_t *list, size_t n,
    int *fd_out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !fd_out || !list || n == 0)
		return ohb_fail(err, OHB_E_PARAM, "the list of bundles with their last incremental time is empty");
	for (size_t i = 0; i < n; i++)
		if (!list[i].bundle_name || list[i].last_incremental_time < 0)
			return ohb_fail(err, OHB_E_PARAM, "entry %zu of the list is invalid", i);
	return capabilities_fd(svc, list, n, fd_out, err);
}

int
ohb_get_backup_version(ohb_service_t *svc, char **out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !out)
		return ohb_fail(err, OHB_E_PARAM, "a service and an output pointer are required");
	reg_device_t *dev = NULL;
	int rc = reg_device_open(svc->root, &dev, err);
	if (rc != 0)
		return rc;
	*out = fsu_printf("{\"backupVersion\":\"%s\"}", dev->backup_version);
	reg_device_free(dev);
	return *out ? 0 : ohb_fail(err, OHB_E_NOMEM, "out of memory");
}

int
ohb_get_backup_info(ohb_service_t *svc, const char *bundle, char **out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!svc || !out || !bundle || !*bundle)
		return ohb_fail(err, OHB_E_PARAM, "a bundle name is required");
	reg_device_t *dev = NULL;
	int rc = reg_device_open(svc->root, &dev, err);
	if (rc != 0)
		return rc;
	const reg_bundle_t *b = reg_device_find(dev, bundle);
	if (!b) {
		rc = ohb_fail(err, OHB_E_PARAM, "%s is not installed on this device", bundle);
		reg_device_free(dev);
		return rc;
	}
	uint64_t bytes = 0, inc = 0;
	rc = scan_bundle_size(b, 0, &bytes, &inc, err);
	if (rc == 0) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "bundleName", b->name);
		cJSON_AddNumberToObject(o, "appIndex", b->app_index);
		cJSON_AddNumberToObject(o, "versionCode", (double)b->version_code);
		cJSON_AddStringToObject(o, "versionName", b->version_name);
		cJSON_AddNumberToObject(o, "spaceOccupied", (double)bytes);
		cJSON_AddBoolToObject(o, "allToBackup", b->allow_backup_restore);
		cJSON_AddBoolToObject(o, "fullBackupOnly", b->full_backup_only);
		cJSON_AddStringToObject(o, "restoreDeps", b->restore_deps);
		cJSON_AddStringToObject(o, "supportScene", b->support_scene);
		cJSON *extra = cJSON_Parse(b->extra_info_json);
		cJSON_AddItemToObject(o, "extraInfo", extra ? extra : cJSON_CreateObject());
		cJSON *inc_arr = cJSON_AddArrayToObject(o, "includes");
		for (size_t i = 0; i < b->n_includes; i++)
			cJSON_AddItemToArray(inc_arr, cJSON_CreateString(b->includes[i]));
		cJSON *exc_arr = cJSON_AddArrayToObject(o, "excludes");
		for (size_t i = 0; i < b->n_excludes; i++)
			cJSON_AddItemToArray(exc_arr, cJSON_CreateString(b->excludes[i]));
		/* What the application itself says (its extension's `info`), when it has one. */
		char *app = NULL;
		if (b->extension && ext_query(b, "info", NULL, 5000, &app, NULL) == 0 && app && *app) {
			cJSON *parsed = cJSON_Parse(app);
			cJSON_AddItemToObject(o, "appInfo", parsed ? parsed : cJSON_CreateString(app));
		}
		free(app);
		*out = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		if (!*out)
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	reg_device_free(dev);
	return rc;
}
