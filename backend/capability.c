/*
 * capability — the capability file (REFERENCE.md "Capability file").
 *
 * Backup hands the client a JSON document that says who this device is and,
 * for every installed bundle, its version, how many bytes a backup of it
 * would take, and whether it may be backed up at all. Restore gets such a
 * document back from the client (usually the one saved with the backup set)
 * and uses it to decide which bundles may be restored.
 *
 * Building: spaceOccupied is what the scanner says a backup would select (the
 * bundle's includes minus its excludes), so the number matches the bytes the
 * client will then receive. The incremental variant adds increSpaceOccupied,
 * the bytes of the files changed since the bundle's lastIncrementalTime.
 * 64-bit integers are written as raw JSON numbers so no value is rounded
 * through a double on the way out.
 *
 * Parsing: each entry is judged on its own. OpenHarmony drops the whole list
 * when one entry is malformed; we keep the good entries and mark the bad one
 * with valid=false and a sentence naming the entry and the field, so a restore
 * can say exactly why a bundle was refused. Required fields are checked
 * strictly; optional ones fall back to their defaults when absent or of
 * another type, except appIndex, which names which copy of an app an entry is.
 */
#include "capability.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "fsutil.h"
#include "scanner.h"

#define EXTENSION_NAME "BackupExtensionAbility"

/* ---- building ----------------------------------------------------------------- */

static void
add_int64(cJSON *o, const char *key, int64_t v)
{
	char num[32];
	snprintf(num, sizeof num, "%" PRId64, v);
	cJSON_AddRawToObject(o, key, num);
}

/* The lastIncrementalTime the caller gave for name; 0 (never) when absent. */
static int64_t
incremental_time_of(const ohb_incremental_time_t *times, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (times[i].bundle_name && strcmp(times[i].bundle_name, name) == 0)
			return times[i].last_incremental_time;
	return 0;
}

/* extraInfo: the bundle's own object, with the "supportScene":[] that
 * OpenHarmony always writes added when the bundle does not say otherwise. */
static cJSON *
extra_info_of(const reg_bundle_t *b)
{
	cJSON *extra = cJSON_Parse(b->extra_info_json ? b->extra_info_json : "{}");
	if (!cJSON_IsObject(extra)) {
		cJSON_Delete(extra);
		extra = cJSON_CreateObject();
	}
	if (extra && !cJSON_HasObjectItem(extra, "supportScene"))
		cJSON_AddArrayToObject(extra, "supportScene");
	return extra;
}

/* keep: where to leave the walk's listing (NULL: measure only). */
static int
bundle_entry(const reg_bundle_t *b, bool incremental, int64_t since_ms, cJSON *arr, scan_list_t *keep,
    ohb_error_t *err)
{
	uint64_t bytes = 0, inc = 0;
	ohb_error_t e;
	ohb_error_clear(&e);
	int rc;
	if (keep) {
		rc = scan_bundle_snapshot(b, incremental ? since_ms : 0, keep, &inc, &e);
		bytes = keep->total_bytes;
	} else {
		rc = scan_bundle_size(b, incremental ? since_ms : 0, &bytes, &inc, &e);
	}
	if (rc != 0)
		return ohb_fail(err, rc, "cannot measure the data of %s: %s", b->name, e.message);
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	cJSON_AddItemToArray(arr, o);
	cJSON_AddStringToObject(o, "name", b->name);
	cJSON_AddNumberToObject(o, "appIndex", b->app_index);
	add_int64(o, "versionCode", b->version_code);
	cJSON_AddStringToObject(o, "versionName", b->version_name ? b->version_name : "");
	add_int64(o, "spaceOccupied", (int64_t)bytes);
	if (incremental)
		/* lastIncrementalTime 0 means "never": everything is new. */
		add_int64(o, "increSpaceOccupied", (int64_t)(since_ms > 0 ? inc : bytes));
	cJSON_AddBoolToObject(o, "allToBackup", b->allow_backup_restore);
	cJSON_AddBoolToObject(o, "fullBackupOnly", b->full_backup_only);
	cJSON_AddBoolToObject(o, "requireCompatibility", b->require_compatibility);
	cJSON_AddStringToObject(o, "extensionName", EXTENSION_NAME);
	cJSON_AddStringToObject(o, "restoreDeps", b->restore_deps ? b->restore_deps : "");
	cJSON_AddStringToObject(o, "supportScene", b->support_scene ? b->support_scene : "");
	cJSON_AddItemToObject(o, "extraInfo", extra_info_of(b));
	return 0;
}

int
cap_build_json(const reg_device_t *dev, const ohb_incremental_time_t *times, size_t n_times, char **json_out,
    ohb_error_t *err)
{
	return cap_build_json_keep(dev, times, n_times, NULL, json_out, err);
}

int
cap_build_json_keep(const reg_device_t *dev, const ohb_incremental_time_t *times, size_t n_times,
    scan_list_t *lists, char **json_out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!dev || !json_out)
		return ohb_fail(err, OHB_E_INVAL, "a device and an output pointer are required");
	*json_out = NULL;
	cJSON *doc = cJSON_CreateObject();
	if (!doc)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	cJSON_AddStringToObject(doc, "backupVersion", dev->backup_version);
	cJSON_AddStringToObject(doc, "deviceType", dev->device_type);
	cJSON_AddStringToObject(doc, "systemFullName", dev->system_full_name);
	cJSON *arr = cJSON_AddArrayToObject(doc, "bundleInfos");
	int rc = arr ? 0 : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	size_t kept = 0;
	for (size_t i = 0; rc == 0 && i < dev->n_bundles; i++) {
		const reg_bundle_t *b = dev->bundles[i];
		scan_list_t *keep = lists && kept < CAP_KEEP_ENTRIES ? &lists[i] : NULL;
		rc = bundle_entry(b, times != NULL, incremental_time_of(times, n_times, b->name), arr, keep, err);
		if (keep && (kept += keep->n) > CAP_KEEP_ENTRIES)
			scan_list_free(keep);   /* over the budget: this one is walked again by its job */
	}
	if (rc == 0 && !(*json_out = cJSON_PrintUnformatted(doc)))
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
	cJSON_Delete(doc);
	return rc;
}

/* ---- parsing ------------------------------------------------------------------ */

/* A JSON number that is a whole value representable as int64. */
static bool
json_int64(const cJSON *item, int64_t *out)
{
	if (!cJSON_IsNumber(item))
		return false;
	double d = item->valuedouble;
	if (d != d || d < -9223372036854775808.0 || d >= 9223372036854775808.0 || d != (double)(int64_t)d)
		return false;
	*out = (int64_t)d;
	return true;
}

/* Appends "; <what>" (or "<what>" first) to the entry's list of faults. */
static void
add_fault(char *buf, size_t size, const char *what)
{
	size_t used = strlen(buf);
	if (used < size)
		snprintf(buf + used, size - used, "%s%s", used ? "; " : "", what);
}

static char *
dup_string_field(const cJSON *o, const char *key, const char *def)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	return strdup(cJSON_IsString(it) ? it->valuestring : def);
}

static bool
bool_field(const cJSON *o, const char *key, bool def)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsBool(it) ? cJSON_IsTrue(it) : def;
}

/* Fills cb from entry i; returns OHB_E_NOMEM or 0 (malformed fields only make
 * the entry invalid). */
static int
parse_entry(const cJSON *o, size_t i, cap_bundle_t *cb)
{
	char faults[400] = "";
	cb->incre_space_occupied = -1;
	if (!cJSON_IsObject(o)) {
		cb->name = strdup("");
		add_fault(faults, sizeof faults, "the entry is not a JSON object");
		o = NULL;
	} else {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
		if (!cJSON_IsString(name) || !name->valuestring[0])
			add_fault(faults, sizeof faults, "name is missing or not a non-empty string");
		cb->name = strdup(cJSON_IsString(name) ? name->valuestring : "");
		if (!json_int64(cJSON_GetObjectItemCaseSensitive(o, "versionCode"), &cb->version_code))
			add_fault(faults, sizeof faults, "versionCode is missing or not an integer");
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "versionName")))
			add_fault(faults, sizeof faults, "versionName is missing or not a string");
		if (!json_int64(cJSON_GetObjectItemCaseSensitive(o, "spaceOccupied"), &cb->space_occupied))
			add_fault(faults, sizeof faults, "spaceOccupied is missing or not an integer");
		if (!cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(o, "allToBackup")))
			add_fault(faults, sizeof faults, "allToBackup is missing or not a boolean");
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "extensionName")))
			add_fault(faults, sizeof faults, "extensionName is missing or not a string");
		const cJSON *ai = cJSON_GetObjectItemCaseSensitive(o, "appIndex");
		int64_t app_index = 0;
		if (ai && (!json_int64(ai, &app_index) || app_index < 0 || app_index > INT_MAX))
			add_fault(faults, sizeof faults, "appIndex is not a non-negative integer");
		else
			cb->app_index = (int)app_index;
		const cJSON *inc = cJSON_GetObjectItemCaseSensitive(o, "increSpaceOccupied");
		if (!json_int64(inc, &cb->incre_space_occupied))
			cb->incre_space_occupied = -1;
		cb->all_to_backup = bool_field(o, "allToBackup", false);
		cb->full_backup_only = bool_field(o, "fullBackupOnly", false);
		cb->require_compatibility = bool_field(o, "requireCompatibility", false);
	}
	cb->version_name = dup_string_field(o, "versionName", "");
	cb->extension_name = dup_string_field(o, "extensionName", "");
	cb->restore_deps = dup_string_field(o, "restoreDeps", "");
	if (!cb->name || !cb->version_name || !cb->extension_name || !cb->restore_deps)
		return OHB_E_NOMEM;
	cb->valid = faults[0] == '\0';
	if (!cb->valid) {
		cb->invalid_reason = cb->name[0] ? fsu_printf("bundleInfos[%zu] (%s): %s", i, cb->name, faults)
		                                 : fsu_printf("bundleInfos[%zu]: %s", i, faults);
		if (!cb->invalid_reason)
			return OHB_E_NOMEM;
	}
	return 0;
}

/* A later entry for the same app (name and appIndex) as an earlier valid one
 * is refused: which of the two to restore would be a guess. */
static int
mark_duplicates(cap_file_t *cf)
{
	for (size_t i = 1; i < cf->n_bundles; i++) {
		cap_bundle_t *b = &cf->bundles[i];
		if (!b->valid)
			continue;
		for (size_t k = 0; k < i; k++) {
			const cap_bundle_t *a = &cf->bundles[k];
			if (!a->valid || a->app_index != b->app_index || strcmp(a->name, b->name) != 0)
				continue;
			b->valid = false;
			b->invalid_reason = fsu_printf("bundleInfos[%zu] (%s): listed again (first at bundleInfos[%zu])",
			    i, b->name, k);
			if (!b->invalid_reason)
				return OHB_E_NOMEM;
			break;
		}
	}
	return 0;
}

int
cap_parse(const char *json, size_t len, cap_file_t *out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!out)
		return ohb_fail(err, OHB_E_INVAL, "no place to return the capability file");
	memset(out, 0, sizeof *out);
	if (!json)
		return ohb_fail(err, OHB_E_INVAL, "the capability file is empty");
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(json, len, &end, false);
	if (!doc) {
		size_t at = end && end >= json ? (size_t)(end - json) : 0;
		return ohb_fail(err, OHB_E_INVAL, "the capability file is not valid JSON (error near byte %zu)", at);
	}
	int rc = 0;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "bundleInfos");
	if (!cJSON_IsObject(doc)) {
		rc = ohb_fail(err, OHB_E_INVAL, "the capability file is not a JSON object");
		goto out;
	}
	if (!cJSON_IsArray(arr)) {
		rc = ohb_fail(err, OHB_E_INVAL, "the capability file has no \"bundleInfos\" array");
		goto out;
	}
	out->backup_version = dup_string_field(doc, "backupVersion", "");
	out->device_type = dup_string_field(doc, "deviceType", "");
	out->system_full_name = dup_string_field(doc, "systemFullName", "");
	size_t n = (size_t)cJSON_GetArraySize(arr);
	out->bundles = n ? calloc(n, sizeof *out->bundles) : NULL;
	if (!out->backup_version || !out->device_type || !out->system_full_name || (n && !out->bundles)) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		size_t i = out->n_bundles++;
		if (parse_entry(it, i, &out->bundles[i]) != 0) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
			goto out;
		}
	}
	if (mark_duplicates(out) != 0)
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
out:
	cJSON_Delete(doc);
	if (rc != 0)
		cap_file_free(out);
	return rc;
}

void
cap_file_free(cap_file_t *cf)
{
	if (!cf)
		return;
	for (size_t i = 0; i < cf->n_bundles; i++) {
		cap_bundle_t *b = &cf->bundles[i];
		free(b->name);
		free(b->version_name);
		free(b->extension_name);
		free(b->restore_deps);
		free(b->invalid_reason);
	}
	free(cf->bundles);
	free(cf->backup_version);
	free(cf->device_type);
	free(cf->system_full_name);
	memset(cf, 0, sizeof *cf);
}

/* name is an entry's name, or "name:appIndex" for an app clone (REFERENCE.md:
 * appIndex > 0 is addressed as name:index). A plain name means the app itself
 * (appIndex 0), never one of its clones. */
const cap_bundle_t *
cap_find(const cap_file_t *cf, const char *name)
{
	if (!cf || !name || !*name)
		return NULL;
	const char *colon = strrchr(name, ':');
	for (size_t i = 0; i < cf->n_bundles; i++) {
		const cap_bundle_t *b = &cf->bundles[i];
		if (strcmp(b->name, name) == 0 && (b->app_index == 0 || colon))
			return b;
	}
	if (!colon || !colon[1])
		return NULL;
	char *endp = NULL;
	long idx = strtol(colon + 1, &endp, 10);
	if (*endp || idx <= 0 || idx > INT_MAX)
		return NULL;
	size_t base = (size_t)(colon - name);
	for (size_t i = 0; i < cf->n_bundles; i++) {
		const cap_bundle_t *b = &cf->bundles[i];
		if (b->app_index == (int)idx && strlen(b->name) == base && strncmp(b->name, name, base) == 0)
			return b;
	}
	return NULL;
}
