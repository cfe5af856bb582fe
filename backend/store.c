/*
 * store — the backup store: one folder per backup set, written by the client
 * from the fds the service hands over, read back by a restore.
 *
 *   <store>/<set-id>/set.json          written LAST: its presence with
 *                                      "complete":true is what makes a set good
 *   <store>/<set-id>/capability.json   the capability file at backup time
 *   <store>/<set-id>/<bundle>/<uri>    every file received through onFileReady
 *
 * Three ideas carry the module (ARCHITECTURE.md "The backup store"; LESSONS.md
 * rules 3, 5 and 9):
 *
 *  - Nothing appears half written. Every file goes through fsutil's atomic
 *    writers (a ".name.tmp.*" temp file, fsync, rename, fsync of the folder),
 *    and set.json is the last file of a set. A crash, a cancel or a full disk
 *    therefore leaves a folder without set.json: an *interrupted* set, listed
 *    as such, never offered as a restore point, removable on request.
 *
 *  - Set ids are UTC timestamps "YYYYMMDD-HHMMSS-mmm", so they sort by age and
 *    say when they were made. Two sets begun in the same millisecond get
 *    "-2", "-3", ...: the folder is claimed with a plain mkdir, which fails
 *    with EEXIST if anyone (another thread, another process) got there first.
 *
 *  - Reading never writes. Listing a store on a full or read-only disk must
 *    still work, so store_list and friends only open, read and stat; anything
 *    they do not understand (stray files, folders that are not set ids, a
 *    corrupt set.json) is skipped or shown as interrupted, never fatal.
 */
#include "ohbackup_store.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "manage.h"

#define STORE_DIR_MODE 0700    /* backups hold private app data */
#define STORE_FILE_MODE 0600
#define SET_JSON "set.json"
#define CAPABILITY_JSON "capability.json"
#define MANAGE_JSON "manage.json"
#define SET_JSON_MAX (16u << 20)
#define SET_ID_BASE_LEN 19     /* "YYYYMMDD-HHMMSS-mmm" */
#define SET_ID_MAX_TRIES 10000

struct store {
	char *dir;
};

/* What a writer knows about one bundle of the set it is writing. */
typedef struct writer_bundle {
	char *name;
	bool has_result;       /* store_writer_set_result was called */
	int code;
	char *message;
	uint64_t bytes;
	uint64_t files;
	uint64_t received;     /* files stored by store_writer_put_file */
} writer_bundle_t;

struct store_writer {
	store_t *st;
	char *id;
	char *path;
	char *kind;
	char *base;
	int64_t created_ms;
	writer_bundle_t *bundles;
	size_t n_bundles, cap_bundles;
};

/* ---- names ---------------------------------------------------------------- */

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* The bundle-name rule of the registry, kept here so that the store (which the
 * CLI and the console use without a device) does not depend on registry.c:
 * 1..127 chars of [A-Za-z0-9._-], optionally ":<appIndex>", not "." or "..". */
static bool
bundle_name_is_valid(const char *name)
{
	if (!name)
		return false;
	size_t n = 0;
	for (; name[n] && name[n] != ':'; n++) {
		char c = name[n];
		bool ok = is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
		    c == '_' || c == '-';
		if (!ok)
			return false;
	}
	if (n == 0 || n > 127)
		return false;
	if ((n == 1 && name[0] == '.') || (n == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	if (name[n] == '\0')
		return true;
	const char *idx = name + n + 1;
	size_t k = 0;
	for (; idx[k]; k++)
		if (!is_digit(idx[k]))
			return false;
	return k >= 1 && k <= 10;
}

/* Parses a set id "YYYYMMDD-HHMMSS-mmm[-N]" (N >= 2, no leading zero). On
 * success fills the creation time it encodes and its sequence number (1 when
 * there is no suffix). Anything else is not a set of ours. */
static bool
set_id_parse(const char *id, int64_t *ms_out, unsigned *seq_out)
{
	static const char shape[] = "dddddddd-dddddd-ddd";
	if (!id)
		return false;
	for (size_t i = 0; i < SET_ID_BASE_LEN; i++) {
		if (shape[i] == 'd' ? !is_digit(id[i]) : id[i] != '-')
			return false;
	}
	unsigned seq = 1;
	const char *rest = id + SET_ID_BASE_LEN;
	if (*rest) {
		if (rest[0] != '-' || !is_digit(rest[1]) || rest[1] == '0')
			return false;
		unsigned long v = 0;
		size_t k = 1;
		for (; rest[k]; k++) {
			if (!is_digit(rest[k]) || k > 6)
				return false;
			v = v * 10 + (unsigned long)(rest[k] - '0');
		}
		if (v < 2)
			return false;
		seq = (unsigned)v;
	}
	int f[7];
	static const int at[7] = { 0, 4, 6, 9, 11, 13, 16 };
	static const int len[7] = { 4, 2, 2, 2, 2, 2, 3 };
	for (int i = 0; i < 7; i++) {
		f[i] = 0;
		for (int k = 0; k < len[i]; k++)
			f[i] = f[i] * 10 + (id[at[i] + k] - '0');
	}
	if (f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 || f[4] > 59 || f[5] > 60)
		return false;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = f[0] - 1900;
	tm.tm_mon = f[1] - 1;
	tm.tm_mday = f[2];
	tm.tm_hour = f[3];
	tm.tm_min = f[4];
	tm.tm_sec = f[5];
	if (ms_out)
		*ms_out = (int64_t)timegm(&tm) * 1000 + f[6];
	if (seq_out)
		*seq_out = seq;
	return true;
}

/* "YYYYMMDD-HHMMSS-mmm" (id) and "YYYY-MM-DDTHH:MM:SSZ" (iso) of ms, in UTC.
 * Buffers of TIME_BUF bytes always suffice, whatever the year. */
#define TIME_BUF 80
static void
format_times(int64_t ms, char *id, size_t id_size, char *iso, size_t iso_size)
{
	int64_t sec = ms / 1000, milli = ms % 1000;
	if (milli < 0) {
		milli += 1000;
		sec--;
	}
	time_t t = (time_t)sec;
	struct tm tm;
	if (!gmtime_r(&t, &tm))
		memset(&tm, 0, sizeof tm);
	if (id)
		snprintf(id, id_size, "%04d%02d%02d-%02d%02d%02d-%03d", tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
	if (iso)
		snprintf(iso, iso_size, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		    tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* ---- opening -------------------------------------------------------------- */

int
store_open(const char *dir, store_t **out, ohb_error_t *err)
{
	*out = NULL;
	if (!dir || !*dir)
		return ohb_fail(err, OHB_E_INVAL, "no store directory was given");
	struct stat sb;
	/* Only create what is missing: an existing store on a read-only or full
	 * disk must still open, for listing and restoring. */
	if (stat(dir, &sb) != 0) {
		if (errno != ENOENT)
			return ohb_fail_errno(err, errno, "cannot open the store %s", dir);
		int rc = fsu_mkdir_p(dir, STORE_DIR_MODE, err);
		if (rc != 0)
			return rc;
	} else if (!S_ISDIR(sb.st_mode)) {
		return ohb_fail(err, OHB_E_INVAL, "the store %s exists and is not a directory", dir);
	}
	store_t *st = calloc(1, sizeof *st);
	if (!st || !(st->dir = strdup(dir))) {
		free(st);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	*out = st;
	return 0;
}

void
store_close(store_t *st)
{
	if (!st)
		return;
	free(st->dir);
	free(st);
}

const char *
store_dir(const store_t *st)
{
	return st->dir;
}

/* ---- writing a set -------------------------------------------------------- */

static void
writer_free(store_writer_t *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->n_bundles; i++) {
		free(w->bundles[i].name);
		free(w->bundles[i].message);
	}
	free(w->bundles);
	free(w->id);
	free(w->path);
	free(w->kind);
	free(w->base);
	free(w);
}

/* Claims a fresh set folder: mkdir (not -p) of the timestamp id, then of
 * "-2", "-3", ... while the name is taken. mkdir is atomic, so two writers can
 * never share a folder even when they begin in the same millisecond. */
static int
claim_set_folder(store_writer_t *w, ohb_error_t *err)
{
	char base[TIME_BUF];
	format_times(w->created_ms, base, sizeof base, NULL, 0);
	for (unsigned seq = 1; seq <= SET_ID_MAX_TRIES; seq++) {
		char *id = seq == 1 ? fsu_printf("%s", base) : fsu_printf("%s-%u", base, seq);
		char *path = id ? fsu_join(w->st->dir, id) : NULL;
		if (!path) {
			free(id);
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		}
		if (mkdir(path, STORE_DIR_MODE) == 0) {
			w->id = id;
			w->path = path;
			/* The new folder's name must survive a crash as much as its files. */
			return fsu_fsync_dir(w->st->dir, err);
		}
		int e = errno;
		free(id);
		free(path);
		if (e != EEXIST)
			return ohb_fail_errno(err, e, "cannot create a backup set folder in %s", w->st->dir);
	}
	return ohb_fail(err, OHB_E_IO, "cannot find a free set id for %s in %s", base, w->st->dir);
}

int
store_writer_begin(store_t *st, const char *kind, const char *base, store_writer_t **out,
    ohb_error_t *err)
{
	*out = NULL;
	if (!kind || (strcmp(kind, "full") != 0 && strcmp(kind, "incremental") != 0))
		return ohb_fail(err, OHB_E_INVAL, "a backup set is \"full\" or \"incremental\", not \"%s\"",
		    kind ? kind : "(null)");
	if (base && strcmp(kind, "full") == 0)
		return ohb_fail(err, OHB_E_INVAL, "a full backup set has no base set (got %s)", base);
	if (base && !set_id_parse(base, NULL, NULL))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a backup set id", base);

	store_writer_t *w = calloc(1, sizeof *w);
	if (!w)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	w->st = st;
	w->created_ms = fsu_now_ms();
	w->kind = strdup(kind);
	w->base = base ? strdup(base) : NULL;
	if (!w->kind || (base && !w->base)) {
		writer_free(w);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	int rc = claim_set_folder(w, err);
	if (rc != 0) {
		if (w->path)
			rmdir(w->path);    /* still empty: nothing was written into it */
		writer_free(w);
		return rc;
	}
	*out = w;
	return 0;
}

const char *
store_writer_id(const store_writer_t *w)
{
	return w->id;
}

const char *
store_writer_path(const store_writer_t *w)
{
	return w->path;
}

/* The writer's record of bundle name, added if new; NULL on out-of-memory. */
static writer_bundle_t *
writer_bundle(store_writer_t *w, const char *name)
{
	for (size_t i = 0; i < w->n_bundles; i++)
		if (strcmp(w->bundles[i].name, name) == 0)
			return &w->bundles[i];
	if (w->n_bundles == w->cap_bundles) {
		size_t cap = w->cap_bundles ? w->cap_bundles * 2 : 8;
		writer_bundle_t *nb = realloc(w->bundles, cap * sizeof *nb);
		if (!nb)
			return NULL;
		w->bundles = nb;
		w->cap_bundles = cap;
	}
	writer_bundle_t *b = &w->bundles[w->n_bundles];
	memset(b, 0, sizeof *b);
	if (!(b->name = strdup(name)))
		return NULL;
	w->n_bundles++;
	return b;
}

/* Rewrites err's sentence as "<prefix>: <what it said>" so that every failure
 * names the file of the set it concerns. */
static void
prefix_error(ohb_error_t *err, int code, const char *prefix)
{
	if (!err)
		return;
	char inner[sizeof err->message];
	snprintf(inner, sizeof inner, "%s", err->message);
	ohb_fail(err, code, "%s: %s", prefix, inner);
}

int
store_writer_put_capability(store_writer_t *w, int fd, ohb_error_t *err)
{
	/* The header promises "from offset 0"; a pipe cannot seek and is read as is. */
	if (lseek(fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		return ohb_fail_errno(err, errno, "cannot read the capability file for set %s", w->id);
	int rc = fsu_copy_fd_atomic(fd, w->path, CAPABILITY_JSON, STORE_FILE_MODE, NULL, err);
	if (rc != 0) {
		char what[300];
		snprintf(what, sizeof what, "cannot store %s of set %s", CAPABILITY_JSON, w->id);
		prefix_error(err, rc, what);
	}
	return rc;
}

int
store_writer_put_file(store_writer_t *w, const char *bundle, const char *uri, int fd,
    uint64_t *bytes, ohb_error_t *err)
{
	if (bytes)
		*bytes = 0;
	if (!bundle_name_is_valid(bundle))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a valid bundle name", bundle ? bundle : "(null)");
	if (!fsu_uri_is_valid(uri))
		return ohb_fail(err, OHB_E_INVAL, "bundle %s: \"%s\" is not a valid file uri", bundle,
		    uri ? uri : "(null)");
	/* Names starting with '.' are the store's temp files and are never listed;
	 * storing one would lose it silently on restore, so refuse it here. */
	if (uri[0] == '.')
		return ohb_fail(err, OHB_E_INVAL, "bundle %s: file uri \"%s\" starts with '.', which the store reserves",
		    bundle, uri);

	writer_bundle_t *b = writer_bundle(w, bundle);
	char *dir = fsu_join(w->path, bundle);
	if (!b || !dir) {
		free(dir);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	char what[400];
	snprintf(what, sizeof what, "cannot store %s/%s in set %s", bundle, uri, w->id);
	int rc = 0;
	if (mkdir(dir, STORE_DIR_MODE) == 0) {
		rc = fsu_fsync_dir(w->path, err);    /* the bundle folder's own name */
	} else if (errno != EEXIST) {
		rc = ohb_fail_errno(err, errno, "cannot create folder %s", dir);
	}
	/* The service hands tars, manage.json and all.rp over as anonymous
	 * O_TMPFILE files: when one lives on the store's file system it is
	 * given its name here instead of being written a second time. Files
	 * with a name (a big file is the application's own) are always copied
	 * (fsu_link_fd_atomic says why). */
	uint64_t copied = 0;
	bool linked = false;
	if (rc == 0)
		rc = fsu_link_fd_atomic(fd, dir, uri, STORE_FILE_MODE, &linked, &copied, err);
	if (rc == 0 && !linked)
		rc = fsu_copy_fd_atomic(fd, dir, uri, STORE_FILE_MODE, &copied, err);
	free(dir);
	if (rc != 0) {
		prefix_error(err, rc, what);
		return rc;
	}
	b->received++;
	if (bytes)
		*bytes = copied;
	return 0;
}

int
store_writer_set_result(store_writer_t *w, const char *bundle, int code, const char *message,
    uint64_t bytes, uint64_t files, ohb_error_t *err)
{
	if (!bundle_name_is_valid(bundle))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a valid bundle name", bundle ? bundle : "(null)");
	writer_bundle_t *b = writer_bundle(w, bundle);
	char *msg = strdup(message ? message : "");
	if (!b || !msg) {
		free(msg);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	}
	free(b->message);
	b->message = msg;
	b->has_result = true;
	b->code = code;
	b->bytes = bytes;
	b->files = files;
	return 0;
}

/* Adds one bundle's outcome to the "bundles" array; false on out-of-memory. */
static bool
add_bundle_json(cJSON *arr, const writer_bundle_t *b)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return false;
	cJSON_AddItemToArray(arr, o);
	/* Files arrived but nobody said how the bundle ended: record it as failed,
	 * so that it is never taken for a good restore point. */
	int code = b->has_result ? b->code : OHB_E_UNKNOWN;
	const char *msg = b->has_result ? b->message : "no result was recorded for this bundle";
	return cJSON_AddStringToObject(o, "name", b->name) && cJSON_AddNumberToObject(o, "code", code) &&
	    cJSON_AddStringToObject(o, "message", msg ? msg : "") &&
	    cJSON_AddNumberToObject(o, "bytes", (double)b->bytes) &&
	    cJSON_AddNumberToObject(o, "files", (double)b->files) &&
	    cJSON_AddNumberToObject(o, "received", (double)b->received);
}

/* set.json of the writer as text (malloc'd), or NULL on out-of-memory. */
static char *
writer_set_json(const store_writer_t *w, const char *system_full_name, const char *device_type)
{
	char iso[TIME_BUF];
	format_times(w->created_ms, NULL, 0, iso, sizeof iso);
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return NULL;
	bool ok = cJSON_AddNumberToObject(root, "format", 1) && cJSON_AddStringToObject(root, "id", w->id) &&
	    cJSON_AddStringToObject(root, "kind", w->kind) &&
	    (w->base ? cJSON_AddStringToObject(root, "base", w->base) != NULL
	             : cJSON_AddNullToObject(root, "base") != NULL) &&
	    cJSON_AddStringToObject(root, "created", iso) &&
	    cJSON_AddNumberToObject(root, "createdMs", (double)w->created_ms) &&
	    cJSON_AddBoolToObject(root, "complete", 1);
	cJSON *dev = ok ? cJSON_AddObjectToObject(root, "device") : NULL;
	ok = dev && cJSON_AddStringToObject(dev, "systemFullName", system_full_name ? system_full_name : "") &&
	    cJSON_AddStringToObject(dev, "deviceType", device_type ? device_type : "");
	cJSON *arr = ok ? cJSON_AddArrayToObject(root, "bundles") : NULL;
	ok = arr != NULL;
	for (size_t i = 0; ok && i < w->n_bundles; i++)
		ok = add_bundle_json(arr, &w->bundles[i]);
	char *text = ok ? cJSON_Print(root) : NULL;
	cJSON_Delete(root);
	return text;
}

/* The files of a bundle that failed can never be restored (restore takes only
 * bundles with code 0); on a full disk they are exactly the space the next
 * backup needs. set.json still records the failure. */
static void
drop_failed_bundles(store_writer_t *w)
{
	for (size_t i = 0; i < w->n_bundles; i++) {
		const writer_bundle_t *b = &w->bundles[i];
		if (b->has_result && b->code == 0)
			continue;
		char *dir = fsu_join(w->path, b->name);
		if (dir)
			fsu_rm_rf(dir, NULL);
		free(dir);
	}
}

int
store_writer_finish(store_writer_t *w, const char *system_full_name, const char *device_type,
    ohb_error_t *err)
{
	drop_failed_bundles(w);
	char *text = writer_set_json(w, system_full_name, device_type);
	int rc;
	if (!text) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while writing set.json of set %s", w->id);
	} else {
		rc = fsu_write_atomic(w->path, SET_JSON, text, strlen(text), STORE_FILE_MODE, err);
		if (rc != 0) {
			char what[300];
			snprintf(what, sizeof what, "cannot complete set %s (it stays interrupted)", w->id);
			prefix_error(err, rc, what);
		}
	}
	free(text);
	writer_free(w);
	return rc;
}

void
store_writer_abandon(store_writer_t *w)
{
	writer_free(w);
}

/* ---- reading sets --------------------------------------------------------- */

void
store_set_info_clear(store_set_info_t *info)
{
	if (!info)
		return;
	for (size_t i = 0; i < info->n_bundles; i++) {
		free(info->bundles[i].name);
		free(info->bundles[i].message);
	}
	free(info->bundles);
	free(info->id);
	free(info->kind);
	free(info->base);
	free(info->created);
	memset(info, 0, sizeof *info);
}

void
store_set_infos_free(store_set_info_t *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		store_set_info_clear(&v[i]);
	free(v);
}

/* A JSON number as a non-negative integer; 0 for anything else. */
static uint64_t
json_u64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0) || v->valuedouble > 1.8e19)
		return 0;
	return (uint64_t)v->valuedouble;
}

static const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Fills info->bundles from a set.json "bundles" array, skipping malformed
 * entries. Returns false on out-of-memory only. */
static bool
info_read_bundles(store_set_info_t *info, const cJSON *arr)
{
	if (!cJSON_IsArray(arr))
		return true;
	int n = cJSON_GetArraySize(arr);
	if (n <= 0)
		return true;
	info->bundles = calloc((size_t)n, sizeof *info->bundles);
	if (!info->bundles)
		return false;
	const cJSON *o;
	cJSON_ArrayForEach(o, arr) {
		const char *name = json_str(o, "name");
		if (!cJSON_IsObject(o) || !name)
			continue;
		store_bundle_info_t *b = &info->bundles[info->n_bundles];
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "code");
		const char *msg = json_str(o, "message");
		b->name = strdup(name);
		b->message = strdup(msg ? msg : "");
		info->n_bundles++;
		if (!b->name || !b->message)
			return false;
		/* A missing or odd code must not read as success (0). */
		b->code = cJSON_IsNumber(code) ? code->valueint : OHB_E_UNKNOWN;
		b->bytes = json_u64(o, "bytes");
		b->files = json_u64(o, "files");
		info->bytes += b->bytes;
	}
	return true;
}

/* Reads the set in folder id of the store into info (which it owns on
 * success). A missing or unreadable set.json is not an error: the set is
 * interrupted. Only out-of-memory fails. Never writes. */
static int
info_load(const store_t *st, const char *id, store_set_info_t *info, ohb_error_t *err)
{
	memset(info, 0, sizeof *info);
	int64_t id_ms = 0;
	set_id_parse(id, &id_ms, NULL);
	char iso[TIME_BUF];
	format_times(id_ms, NULL, 0, iso, sizeof iso);

	cJSON *root = NULL;
	char *path = fsu_printf("%s/%s/%s", st->dir, id, SET_JSON);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char *text = NULL;
	if (fsu_read_file(path, SET_JSON_MAX, &text, NULL, NULL) == 0) {
		root = cJSON_Parse(text);
		free(text);
		if (root && !cJSON_IsObject(root)) {
			cJSON_Delete(root);
			root = NULL;
		}
	}
	free(path);

	const char *kind = root ? json_str(root, "kind") : NULL;
	if (kind && strcmp(kind, "full") != 0 && strcmp(kind, "incremental") != 0)
		kind = NULL;
	const char *base = root ? json_str(root, "base") : NULL;
	const char *created = root ? json_str(root, "created") : NULL;
	const cJSON *cms = root ? cJSON_GetObjectItemCaseSensitive(root, "createdMs") : NULL;
	/* Only a well-formed record saying complete:true makes a good set. */
	info->complete = root && kind && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "complete"));
	/* Bounded before the cast: a hostile createdMs of 1e300 must not be UB. */
	bool cms_ok = cJSON_IsNumber(cms) && cms->valuedouble > -9e15 && cms->valuedouble < 9e15;
	info->created_ms = cms_ok ? (int64_t)cms->valuedouble : id_ms;
	info->id = strdup(id);
	info->kind = strdup(kind ? kind : "unknown");
	info->base = base ? strdup(base) : NULL;
	info->created = strdup(created ? created : iso);
	bool ok = info->id && info->kind && info->created && (!base || info->base);
	if (ok && root)
		ok = info_read_bundles(info, cJSON_GetObjectItemCaseSensitive(root, "bundles"));
	cJSON_Delete(root);
	if (!ok) {
		store_set_info_clear(info);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory while reading set %s", id);
	}
	return 0;
}

/* Newest first: by the time in the id, then by its "-N" suffix. The id, not
 * set.json, is the key, so interrupted and complete sets sort alike. */
static int
cmp_sets_newest_first(const void *a, const void *b)
{
	const store_set_info_t *x = a, *y = b;
	int64_t mx = 0, my = 0;
	unsigned sx = 1, sy = 1;
	set_id_parse(x->id, &mx, &sx);
	set_id_parse(y->id, &my, &sy);
	if (mx != my)
		return mx < my ? 1 : -1;
	if (sx != sy)
		return sx < sy ? 1 : -1;
	return strcmp(y->id, x->id);
}

/* True when id names a set folder of the store (a directory, not a link). */
static bool
set_folder_exists(const store_t *st, const char *id)
{
	struct stat sb;
	char *path = fsu_join(st->dir, id);
	bool yes = path && lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
	free(path);
	return yes;
}

int
store_list(store_t *st, store_set_info_t **out, size_t *n, ohb_error_t *err)
{
	*out = NULL;
	*n = 0;
	DIR *d = opendir(st->dir);
	if (!d)
		return ohb_fail_errno(err, errno, "cannot read the store %s", st->dir);
	store_set_info_t *v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (name[0] == '.' || !set_id_parse(name, NULL, NULL))
			continue;    /* not a set of ours: leave it alone */
		struct stat sb;
		if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(sb.st_mode))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			store_set_info_t *nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while listing %s", st->dir);
				break;
			}
			v = nv;
			cap = ncap;
		}
		rc = info_load(st, name, &v[count], err);
		if (rc != 0)
			break;
		count++;
	}
	closedir(d);
	if (rc != 0) {
		store_set_infos_free(v, count);
		return rc;
	}
	if (count > 1)
		qsort(v, count, sizeof *v, cmp_sets_newest_first);
	*out = v;
	*n = count;
	return 0;
}

int
store_set_info(store_t *st, const char *set_id, store_set_info_t *out, ohb_error_t *err)
{
	memset(out, 0, sizeof *out);
	if (!set_id_parse(set_id, NULL, NULL) || !set_folder_exists(st, set_id))
		return ohb_fail(err, OHB_E_INVAL, "there is no backup set \"%s\" in %s", set_id ? set_id : "(null)",
		    st->dir);
	return info_load(st, set_id, out, err);
}

/* Opens a file of the store read-only, never through a symlink. */
static int
open_read(const char *path, const char *what, int *fd_out, ohb_error_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot open %s", what);
	*fd_out = fd;
	return 0;
}

int
store_open_capability(store_t *st, const char *set_id, int *fd_out, ohb_error_t *err)
{
	*fd_out = -1;
	if (!set_id_parse(set_id, NULL, NULL))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a backup set id", set_id ? set_id : "(null)");
	char *path = fsu_printf("%s/%s/%s", st->dir, set_id, CAPABILITY_JSON);
	char what[300];
	snprintf(what, sizeof what, "the capability file of set %s", set_id);
	int rc = path ? open_read(path, what, fd_out, err) : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	free(path);
	return rc;
}

/* manage.json first, then numbers in names by value (part.2.tar before
 * part.10.tar); order_by_manage then puts what manage.json names in its order. */
static int
cmp_uris(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;
	bool mx = strcmp(x, MANAGE_JSON) == 0, my = strcmp(y, MANAGE_JSON) == 0;
	if (mx != my)
		return mx ? -1 : 1;
	return strverscmp(x, y);
}

typedef struct ranked_uri {
	size_t rank;
	char *uri;
} ranked_uri_t;

static int
cmp_ranked(const void *a, const void *b)
{
	const ranked_uri_t *x = a, *y = b;
	return x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int
cmp_entry_names(const void *a, const void *b)
{
	return strcmp((*(const manage_entry_t *const *)a)->file_name, (*(const manage_entry_t *const *)b)->file_name);
}

/* Puts the files manage.json names in its order, right after it (a restoring
 * service applies them in that order, each as it arrives); the others keep
 * their order after them. Without a readable manage.json nothing moves. */
static void
order_by_manage(const char *bundle_dir, char **v, size_t n)
{
	char *path = fsu_join(bundle_dir, MANAGE_JSON);
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	free(path);
	manage_list_t m;
	const manage_entry_t **byname = NULL;
	ranked_uri_t *r = NULL;
	int rc = fd >= 0 ? manage_read_fd(fd, &m, NULL) : -1;   /* its names are unique */
	if (fd >= 0)
		close(fd);
	if (rc != 0)
		return;
	if (!(byname = calloc(m.n ? m.n : 1, sizeof *byname)) || !(r = calloc(n ? n : 1, sizeof *r)))
		goto out;
	for (size_t i = 0; i < m.n; i++)
		byname[i] = &m.v[i];
	qsort(byname, m.n, sizeof *byname, cmp_entry_names);
	for (size_t i = 0; i < n; i++) {
		manage_entry_t key = { .file_name = v[i] };
		const manage_entry_t *pkey = &key;
		const manage_entry_t *const *hit = bsearch(&pkey, byname, m.n, sizeof *byname, cmp_entry_names);
		r[i].uri = v[i];
		r[i].rank = strcmp(v[i], MANAGE_JSON) == 0 ? 0 : hit ? 1 + (size_t)(*hit - m.v) : 1 + m.n + i;
	}
	qsort(r, n, sizeof *r, cmp_ranked);
	for (size_t i = 0; i < n; i++)
		v[i] = r[i].uri;
out:
	free(r);
	free(byname);
	manage_list_free(&m);
}

void
store_strings_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int
store_list_files(store_t *st, const char *set_id, const char *bundle, char ***uris, size_t *n,
    ohb_error_t *err)
{
	*uris = NULL;
	*n = 0;
	if (!set_id_parse(set_id, NULL, NULL) || !set_folder_exists(st, set_id))
		return ohb_fail(err, OHB_E_INVAL, "there is no backup set \"%s\" in %s", set_id ? set_id : "(null)",
		    st->dir);
	if (!bundle_name_is_valid(bundle))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a valid bundle name", bundle ? bundle : "(null)");
	char *path = fsu_printf("%s/%s/%s", st->dir, set_id, bundle);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	DIR *d = opendir(path);
	free(path);
	if (!d) {
		if (errno == ENOENT)
			return ohb_fail(err, OHB_E_INVAL, "set %s holds no files of bundle %s", set_id, bundle);
		return ohb_fail_errno(err, errno, "cannot read the files of bundle %s in set %s", bundle, set_id);
	}
	char **v = NULL;
	size_t count = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		/* Dot-names are temp files of unfinished writes (and . and ..). */
		if (name[0] == '.' || !fsu_uri_is_valid(name))
			continue;
		struct stat sb;
		if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
			continue;
		if (count == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			char **nv = realloc(v, ncap * sizeof *nv);
			if (!nv) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
				break;
			}
			v = nv;
			cap = ncap;
		}
		if (!(v[count] = strdup(name))) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
			break;
		}
		count++;
	}
	closedir(d);
	if (rc != 0) {
		store_strings_free(v, count);
		return rc;
	}
	if (count > 1) {
		qsort(v, count, sizeof *v, cmp_uris);
		char *bundle_dir = fsu_printf("%s/%s/%s", st->dir, set_id, bundle);
		if (bundle_dir)
			order_by_manage(bundle_dir, v, count);
		free(bundle_dir);
	}
	*uris = v;
	*n = count;
	return 0;
}

int
store_open_file(store_t *st, const char *set_id, const char *bundle, const char *uri, int *fd_out,
    ohb_error_t *err)
{
	*fd_out = -1;
	if (!set_id_parse(set_id, NULL, NULL))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a backup set id", set_id ? set_id : "(null)");
	if (!bundle_name_is_valid(bundle))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a valid bundle name", bundle ? bundle : "(null)");
	if (!fsu_uri_is_valid(uri))
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not a valid file uri", uri ? uri : "(null)");
	char *path = fsu_printf("%s/%s/%s/%s", st->dir, set_id, bundle, uri);
	char what[400];
	snprintf(what, sizeof what, "%s/%s of set %s", bundle, uri, set_id);
	int rc = path ? open_read(path, what, fd_out, err) : ohb_fail(err, OHB_E_NOMEM, "out of memory");
	free(path);
	return rc;
}

int
store_copy_file_to(store_t *st, const char *set_id, const char *bundle, const char *uri, int out_fd,
    uint64_t *bytes, ohb_error_t *err)
{
	*bytes = 0;
	int in = -1;
	int rc = store_open_file(st, set_id, bundle, uri, &in, err);
	if (rc != 0)
		return rc;
	/* A guess from the name: the service reads a tar back at once (through
	 * the page cache) and moves a big file into its stage untouched. A big
	 * file whose own name ends in .tar is copied the tar's way, which costs
	 * page cache, never correctness: the set does not record the kind. */
	bool read_back = fsu_is_tar_name(uri);
	if (read_back) {
		/* Read once, long after it was written: the page cache has often let
		 * it go. Asking for all of it lets the device read it in parallel
		 * instead of one read-ahead window after another. */
		(void)posix_fadvise(in, 0, 0, POSIX_FADV_WILLNEED);
		rc = fsu_copy_fd(in, out_fd, bytes, err);
	} else {
		rc = fsu_copy_fd_uncached(in, out_fd, bytes, err);
	}
	close(in);
	return rc;
}

int
store_remove_interrupted(store_t *st, const char *set_id, ohb_error_t *err)
{
	if (!set_id_parse(set_id, NULL, NULL) || !set_folder_exists(st, set_id))
		return ohb_fail(err, OHB_E_INVAL, "there is no backup set \"%s\" in %s", set_id ? set_id : "(null)",
		    st->dir);
	store_set_info_t info;
	int rc = info_load(st, set_id, &info, err);
	if (rc != 0)
		return rc;
	bool complete = info.complete;
	store_set_info_clear(&info);
	/* A complete set is a restore point: removing it is pruning, not cleaning
	 * up (LESSONS.md rule 9), and this function does not do that. */
	if (complete)
		return ohb_fail(err, OHB_E_PERM, "set %s is complete; only interrupted sets are removed here", set_id);
	char *path = fsu_join(st->dir, set_id);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	rc = fsu_rm_rf(path, err);
	free(path);
	if (rc == 0)
		(void)fsu_fsync_dir(st->dir, NULL);    /* best effort: the removal itself succeeded */
	return rc;
}

/* ---- chains --------------------------------------------------------------- */

static bool
holds_good(const store_set_info_t *info, const char *bundle)
{
	for (size_t i = 0; i < info->n_bundles; i++)
		if (strcmp(info->bundles[i].name, bundle) == 0)
			return info->bundles[i].code == 0;
	return false;
}

int
store_find_good_set(store_t *st, const char *bundle, const char *before_set, store_set_info_t *out,
    ohb_error_t *err)
{
	store_set_info_t *v = NULL;
	size_t n = 0;
	int rc = store_list(st, &v, &n, err);
	if (rc != 0)
		return rc;
	bool passed = before_set == NULL;
	size_t found = n;
	for (size_t i = 0; i < n && found == n; i++) {
		if (!passed) {
			passed = strcmp(v[i].id, before_set) == 0;
			continue;
		}
		if (v[i].complete && holds_good(&v[i], bundle))
			found = i;
	}
	if (found == n) {
		rc = ohb_fail(err, OHB_E_INVAL, "the store holds no good backup of %s%s%s", bundle,
		    before_set ? " older than set " : "", before_set ? before_set : "");
	} else {
		*out = v[found];
		memset(&v[found], 0, sizeof v[found]);
	}
	store_set_infos_free(v, n);
	return rc;
}
