/*
 * manage — manage.json, the index that ends a bundle's backup (REFERENCE.md
 * "Backup: what a bundle's backup consists of"): one object per file sent,
 *
 *   {"fileName":"part.0.tar","information":{"path":"","stat":{"st_size":N,
 *    "st_mode":M,"st_mtim":{"tv_sec":S,"tv_nsec":NS}}},"isUserTar":false,
 *    "isBigFile":false}
 *
 * Writing: numbers are emitted as raw integer text (cJSON_CreateRaw) rather
 * than cJSON numbers, because cJSON prints doubles with "%1.15g" and a size of
 * 10^15 would come out as "1e+15", which OpenHarmony's reader would not take
 * as an integer.
 *
 * Reading is the restore side's first line of defence, so it is strict about
 * what the restore relies on and lenient about the rest: every entry needs a
 * valid uri as fileName (fsu_uri_is_valid: no '/', no "..", REFERENCE.md "A uri
 * containing / is refused"), no two entries may share a fileName, and a big
 * file needs an absolute path that passes the restore path rule (no "../"
 * component, no trailing "/..", at most 4096 bytes). A missing "stat" or
 * "isUserTar" reads as zeros / false, except the mode, which reads as 0660
 * (a regular file) as in OpenHarmony's reader; a present one of the wrong
 * type is an error. A missing "isBigFile" (a set older than the key) reads as
 * OpenHarmony's reader takes it (GetExtManageInfo): a big file unless the
 * fileName ends in ".tar". An entry with "isUserTar" true is a big file (an
 * application's own tar, restored whole, never unpacked), as in OpenHarmony's
 * restore. "tarEntries" (ohbackup's own tars: how many entries were written)
 * is optional; when present it must be an integer >= 0. Every error is
 * 13500008 and names the entry.
 */
#include "manage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "fsutil.h"

#define MANAGE_PATH_MAX 4096
/* A big file's mode when its entry records none: OpenHarmony's reader's
 * default (JsonValue2Stat), rather than a file nobody may read. */
#define MANAGE_DEFAULT_MODE 0100660

static void
entry_free(manage_entry_t *e)
{
	free(e->file_name);
	free(e->path);
	memset(e, 0, sizeof *e);
}

static char *
dup_str(const char *s)
{
	return strdup(s ? s : "");
}

int
manage_add(manage_list_t *list, const manage_entry_t *e, ohb_error_t *err)
{
	if (list->n == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		manage_entry_t *v = realloc(list->v, cap * sizeof *v);
		if (!v)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory while indexing %s", e->file_name);
		list->v = v;
		list->cap = cap;
	}
	manage_entry_t c = *e;
	c.file_name = dup_str(e->file_name);
	c.path = dup_str(e->path);
	if (!c.file_name || !c.path) {
		entry_free(&c);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while indexing %s", e->file_name);
	}
	list->v[list->n++] = c;
	return 0;
}

void
manage_list_free(manage_list_t *list)
{
	if (!list)
		return;
	for (size_t i = 0; i < list->n; i++)
		entry_free(&list->v[i]);
	free(list->v);
	memset(list, 0, sizeof *list);
}

/* ---- writing ------------------------------------------------------------ */

static bool
add_int(cJSON *obj, const char *key, bool is_signed, uint64_t u, int64_t s)
{
	char buf[32];
	if (is_signed)
		snprintf(buf, sizeof buf, "%" PRId64, s);
	else
		snprintf(buf, sizeof buf, "%" PRIu64, u);
	return cJSON_AddRawToObject(obj, key, buf) != NULL;
}

static cJSON *
entry_to_json(const manage_entry_t *e)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON *info, *st, *tim;
	bool ok = cJSON_AddStringToObject(o, "fileName", e->file_name ? e->file_name : "") &&
	          (info = cJSON_AddObjectToObject(o, "information")) != NULL &&
	          cJSON_AddStringToObject(info, "path", e->path ? e->path : "") &&
	          (st = cJSON_AddObjectToObject(info, "stat")) != NULL &&
	          add_int(st, "st_size", false, e->size, 0) && add_int(st, "st_mode", false, e->mode, 0) &&
	          (tim = cJSON_AddObjectToObject(st, "st_mtim")) != NULL &&
	          add_int(tim, "tv_sec", true, 0, e->mtime_sec) &&
	          add_int(tim, "tv_nsec", true, 0, e->mtime_nsec) &&
	          cJSON_AddBoolToObject(o, "isUserTar", e->is_user_tar) &&
	          cJSON_AddBoolToObject(o, "isBigFile", e->is_big_file) &&
	          (!e->has_tar_entries || add_int(o, "tarEntries", false, e->tar_entries, 0));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int
manage_to_json(const manage_list_t *list, char **json_out, ohb_error_t *err)
{
	*json_out = NULL;
	cJSON *arr = cJSON_CreateArray();
	if (!arr)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while writing manage.json");
	for (size_t i = 0; i < list->n; i++) {
		cJSON *o = entry_to_json(&list->v[i]);
		if (!o || !cJSON_AddItemToArray(arr, o)) {
			cJSON_Delete(o);
			cJSON_Delete(arr);
			return ohb_fail(err, OHB_E_NOMEM, "out of memory while writing manage.json");
		}
	}
	char *s = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	if (!s)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while writing manage.json");
	*json_out = s;
	return 0;
}

/* ---- reading ------------------------------------------------------------ */

/* REFERENCE.md "Restore" path rule, plus: absolute. */
static bool
sandbox_path_is_valid(const char *p)
{
	size_t len = strlen(p);
	if (len < 2 || len > MANAGE_PATH_MAX || p[0] != '/' || p[len - 1] == '/')
		return false;
	for (const char *c = p; (c = strstr(c, "..")) != NULL; c += 2) {
		bool starts = c == p || c[-1] == '/';
		bool ends = c[2] == '/' || c[2] == '\0';
		if (starts && ends)
			return false;
	}
	return true;
}

/* A member that must be an integer in [lo, hi] when present; *ok cleared otherwise. */
static double
get_int(const cJSON *obj, const char *key, double lo, double hi, bool *ok)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it)
		return 0;
	/* the range check comes first so that the cast is defined */
	if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi) ||
	    (double)(int64_t)it->valuedouble != it->valuedouble) {
		*ok = false;
		return 0;
	}
	return it->valuedouble;
}

static bool
get_bool(const cJSON *obj, const char *key, bool *ok)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it)
		return false;
	if (!cJSON_IsBool(it)) {
		*ok = false;
		return false;
	}
	return cJSON_IsTrue(it);
}

/* Parses one array element into e (strings borrowed from the cJSON tree). */
static const char *
entry_from_json(const cJSON *o, manage_entry_t *e)
{
	memset(e, 0, sizeof *e);
	if (!cJSON_IsObject(o))
		return "not an object";
	const cJSON *fn = cJSON_GetObjectItemCaseSensitive(o, "fileName");
	if (!cJSON_IsString(fn) || !fsu_uri_is_valid(fn->valuestring))
		return "invalid fileName";
	e->file_name = fn->valuestring;
	bool ok = true;
	e->is_user_tar = get_bool(o, "isUserTar", &ok);
	e->is_big_file = get_bool(o, "isBigFile", &ok);
	if (!ok)
		return "isUserTar/isBigFile is not a boolean";
	if (!cJSON_GetObjectItemCaseSensitive(o, "isBigFile"))
		e->is_big_file = !fsu_is_tar_name(e->file_name);   /* a set older than the key: as OpenHarmony reads it */
	/* An application's own tar, kept whole: OpenHarmony never unpacks an
	 * entry marked isUserTar, whatever isBigFile says. */
	if (e->is_user_tar)
		e->is_big_file = true;
	e->path = "";
	e->mode = MANAGE_DEFAULT_MODE;
	const cJSON *info = cJSON_GetObjectItemCaseSensitive(o, "information");
	if (info && !cJSON_IsObject(info))
		return "information is not an object";
	const cJSON *path = info ? cJSON_GetObjectItemCaseSensitive(info, "path") : NULL;
	if (path) {
		if (!cJSON_IsString(path))
			return "path is not a string";
		e->path = path->valuestring;
	}
	if (cJSON_GetObjectItemCaseSensitive(o, "tarEntries")) {
		e->tar_entries = (uint64_t)get_int(o, "tarEntries", 0, 9007199254740992.0, &ok);
		if (!ok)
			return "tarEntries is not an integer >= 0";
		e->has_tar_entries = true;
	}
	if (e->is_big_file && !sandbox_path_is_valid(e->path))
		return e->path[0] ? "invalid path for a big file" : "missing path for a big file";
	const cJSON *st = info ? cJSON_GetObjectItemCaseSensitive(info, "stat") : NULL;
	if (st) {
		if (!cJSON_IsObject(st))
			return "stat is not an object";
		e->size = (uint64_t)get_int(st, "st_size", 0, 9007199254740992.0, &ok);
		if (cJSON_GetObjectItemCaseSensitive(st, "st_mode"))
			e->mode = (uint32_t)get_int(st, "st_mode", 0, 4294967295.0, &ok);
		const cJSON *tim = cJSON_GetObjectItemCaseSensitive(st, "st_mtim");
		if (tim && !cJSON_IsObject(tim))
			return "st_mtim is not an object";
		if (tim) {
			e->mtime_sec =
			    (int64_t)get_int(tim, "tv_sec", -9007199254740992.0, 9007199254740992.0, &ok);
			e->mtime_nsec = (int64_t)get_int(tim, "tv_nsec", 0, 999999999.0, &ok);
		}
		if (!ok)
			return "bad number in stat";
	}
	return NULL;
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every fileName once: sorts a copy of the name pointers. */
static int
check_unique(const manage_list_t *l, ohb_error_t *err)
{
	if (l->n < 2)
		return 0;
	char **names = malloc(l->n * sizeof *names);
	if (!names)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while reading manage.json");
	for (size_t i = 0; i < l->n; i++)
		names[i] = l->v[i].file_name;
	qsort(names, l->n, sizeof *names, name_cmp);
	int rc = 0;
	for (size_t i = 1; i < l->n && rc == 0; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = ohb_fail(err, OHB_E_UNTAR, "manage.json: fileName \"%s\" appears twice",
			              names[i]);
	free(names);
	return rc;
}

int
manage_read_fd(int fd, manage_list_t *out, ohb_error_t *err)
{
	memset(out, 0, sizeof out[0]);
	char *text = NULL;
	size_t len = 0;
	ohb_error_t why;
	if (fsu_read_fd(fd, MANAGE_JSON_MAX, &text, &len, &why) != 0)
		return ohb_fail(err, OHB_E_UNTAR, "manage.json cannot be read: %s", why.message);
	int rc = manage_parse(text, len, out, err);   /* out holds copies */
	free(text);
	return rc;
}

int
manage_parse(const char *json, size_t len, manage_list_t *out, ohb_error_t *err)
{
	memset(out, 0, sizeof *out);
	cJSON *root = cJSON_ParseWithLength(json, len);
	if (!root)
		return ohb_fail(err, OHB_E_UNTAR, "manage.json is not valid JSON");
	int rc = 0;
	if (!cJSON_IsArray(root)) {
		rc = ohb_fail(err, OHB_E_UNTAR, "manage.json is not a JSON array");
		goto out;
	}
	size_t i = 0;
	const cJSON *it;
	for (it = root->child; it; it = it->next) {
		manage_entry_t e;
		const char *why = entry_from_json(it, &e);
		if (why) {
			const cJSON *fn =
			    cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "fileName") : NULL;
			rc = ohb_fail(err, OHB_E_UNTAR, "manage.json entry %zu (fileName \"%.200s\"): %s", i,
			              cJSON_IsString(fn) ? fn->valuestring : "", why);
			goto out;
		}
		if ((rc = manage_add(out, &e, err)) != 0)
			goto out;
		i++;
	}
	rc = check_unique(out, err);
out:
	cJSON_Delete(root);
	if (rc != 0)
		manage_list_free(out);
	return rc;
}
