/*
 * registry — the device and its installed bundles, read from a device root.
 *
 * A device root is a plain folder (see registry.h for its layout): device.json
 * says who the device is, and every folder below bundles/ is one installed
 * bundle described by its bundle.json. Opening a device reads all of them into
 * one immutable reg_device_t, so the rest of the service never parses a
 * descriptor and never sees half of one.
 *
 * Two rules shape this file:
 *  - One bad descriptor must not hide the others. A bundle.json that is
 *    missing, not JSON, or holds a field of the wrong type is listed in
 *    dev->broken ("folder: reason") and the open still succeeds. Only what
 *    makes the whole device unusable (the root cannot be created, device.json
 *    is corrupt, out of memory) fails the open.
 *  - A descriptor says what OpenHarmony's backup config says (REFERENCE.md
 *    "what a bundle's backup consists of"): allowToBackupRestore, includes
 *    (the 13 default sandbox paths when absent or empty), excludes,
 *    fullBackupOnly, restoreDeps, supportScene, extraInfo and
 *    requireCompatibility. As in OpenHarmony, allowToBackupRestore is false
 *    unless the descriptor says true.
 *
 * The "mounts" of a descriptor are our own addition: they map sandbox path
 * prefixes to real folders of this machine, which is how a bundle made by
 * `demo` (mount "/" on its sandbox/ folder) and a bundle registered over any
 * application folder (`bundle add NAME DIR`) share one code path.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "fsutil.h"

#define BUNDLE_JSON "bundle.json"
#define DEVICE_JSON "device.json"
#define DESCRIPTOR_MAX (1u << 20)   /* a descriptor larger than 1 MiB is not a descriptor */
#define NAME_MAX_LEN 127

/* REFERENCE.md: the 13 sandbox paths OpenHarmony backs up when a bundle's
 * backup config lists no includes, in OpenHarmony's own order. */
const char *const reg_default_includes[] = {
	"data/storage/el1/database/",
	"data/storage/el1/base/files/",
	"data/storage/el1/base/preferences/",
	"data/storage/el1/base/haps/*/database/",
	"data/storage/el1/base/haps/*/files/",
	"data/storage/el1/base/haps/*/preferences/",
	"data/storage/el2/database/",
	"data/storage/el2/base/files/",
	"data/storage/el2/base/preferences/",
	"data/storage/el2/base/haps/*/database/",
	"data/storage/el2/base/haps/*/files/",
	"data/storage/el2/base/haps/*/preferences/",
	"data/storage/el2/distributedfiles/",
};
const size_t reg_default_includes_count = sizeof reg_default_includes / sizeof reg_default_includes[0];

/* What `bundle add NAME DIR` maps DIR onto, and the include that selects it. */
#define ADD_DIR_PREFIX "/data/storage/el2/base/files"
#define ADD_DIR_INCLUDE "data/storage/el2/base/files/"

/* ---- small helpers -------------------------------------------------------- */

static void
str_array_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void
bundle_free(reg_bundle_t *b)
{
	if (!b)
		return;
	free(b->name);
	free(b->version_name);
	free(b->extension);
	str_array_free(b->includes, b->n_includes);
	str_array_free(b->excludes, b->n_excludes);
	free(b->restore_deps);
	free(b->support_scene);
	free(b->extra_info_json);
	free(b->bundle_dir);
	free(b->temp_dir);
	for (size_t i = 0; i < b->n_mounts; i++) {
		free(b->mounts[i].sandbox_prefix);
		free(b->mounts[i].dir);
	}
	free(b->mounts);
	free(b);
}

/* A JSON number that is a whole value representable as int64 (cJSON keeps
 * numbers as doubles, exact up to 2^53). */
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

/* A sandbox prefix as we store it: absolute, single slashes, no trailing
 * slash except for "/" itself, no "." or ".." component. NULL when invalid
 * (*oom tells out-of-memory apart). */
static char *
sandbox_prefix_normalize(const char *in, bool *oom)
{
	*oom = false;
	if (!in || in[0] != '/')
		return NULL;
	size_t len = strlen(in);
	char *out = malloc(len + 1);
	if (!out) {
		*oom = true;
		return NULL;
	}
	size_t o = 0;
	const char *p = in;
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			free(out);
			return NULL;
		}
		out[o++] = '/';
		memcpy(out + o, p, n);
		o += n;
		p += n;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return out;
}

/* The real path of dir when it exists, else dir itself (a mount whose folder
 * is missing holds nothing; the scanner treats it as empty). */
static char *
resolve_dir(const char *dir)
{
	char *r = realpath(dir, NULL);
	return r ? r : strdup(dir);
}

/* Mounts are kept longest prefix first so reg_bundle_map can stop at the
 * first match. */
static int
mount_cmp(const void *a, const void *b)
{
	const reg_mount_t *x = a, *y = b;
	size_t lx = strlen(x->sandbox_prefix), ly = strlen(y->sandbox_prefix);
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return strcmp(x->sandbox_prefix, y->sandbox_prefix);
}

static int
bundle_ptr_cmp(const void *a, const void *b)
{
	const reg_bundle_t *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int
string_ptr_cmp(const void *a, const void *b)
{
	const char *const *x = a, *const *y = b;
	return strcmp(*x, *y);
}

bool
reg_bundle_name_is_valid(const char *name)
{
	if (!name)
		return false;
	size_t len = strlen(name);
	if (len == 0 || len > NAME_MAX_LEN)
		return false;
	const char *colon = strchr(name, ':');
	size_t base = colon ? (size_t)(colon - name) : len;
	if (base == 0)
		return false;
	for (size_t i = 0; i < base; i++) {
		char c = name[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		    c == '_' || c == '-'))
			return false;
	}
	if ((base == 1 && name[0] == '.') || (base == 2 && name[0] == '.' && name[1] == '.'))
		return false;
	if (colon) {
		/* ":<appIndex>": one or more digits, nothing after. */
		if (!colon[1])
			return false;
		for (const char *p = colon + 1; *p; p++)
			if (*p < '0' || *p > '9')
				return false;
	}
	return true;
}

/* ---- reading a descriptor --------------------------------------------------- */

/* Reads the optional string field key of obj into *out (def when absent).
 * Returns false when present with another type. */
static bool
get_string(const cJSON *obj, const char *key, const char *def, char **out, bool *oom)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	const char *v = def;
	if (it && !cJSON_IsNull(it)) {
		if (!cJSON_IsString(it))
			return false;
		v = it->valuestring;
	}
	if (!v) {
		*out = NULL;
		return true;
	}
	*out = strdup(v);
	if (!*out)
		*oom = true;
	return *out != NULL;
}

static bool
get_bool(const cJSON *obj, const char *key, bool def, bool *out)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!it) {
		*out = def;
		return true;
	}
	if (!cJSON_IsBool(it))
		return false;
	*out = cJSON_IsTrue(it);
	return true;
}

/* includes/excludes: an array of strings. A leading '/' is dropped, because
 * OpenHarmony writes these globs relative to the sandbox root. */
static bool
get_globs(const cJSON *obj, const char *key, char ***out, size_t *n, bool *oom)
{
	*out = NULL;
	*n = 0;
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!arr || cJSON_IsNull(arr))
		return true;
	if (!cJSON_IsArray(arr))
		return false;
	int count = cJSON_GetArraySize(arr);
	if (count == 0)
		return true;
	char **v = calloc((size_t)count, sizeof *v);
	if (!v) {
		*oom = true;
		return false;
	}
	size_t k = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr)
	{
		if (!cJSON_IsString(it)) {
			str_array_free(v, k);
			return false;
		}
		const char *s = it->valuestring;
		while (*s == '/')
			s++;
		if (!(v[k] = strdup(s))) {
			str_array_free(v, k);
			*oom = true;
			return false;
		}
		k++;
	}
	*out = v;
	*n = k;
	return true;
}

static int
set_default_includes(reg_bundle_t *b)
{
	b->includes = calloc(reg_default_includes_count, sizeof *b->includes);
	if (!b->includes)
		return OHB_E_NOMEM;
	for (size_t i = 0; i < reg_default_includes_count; i++) {
		if (!(b->includes[i] = strdup(reg_default_includes[i])))
			return OHB_E_NOMEM;
		b->n_includes = i + 1;
	}
	return 0;
}

static int
parse_mounts(reg_bundle_t *b, const cJSON *root, ohb_error_t *e)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "mounts");
	bool oom = false;
	if (!arr || cJSON_IsNull(arr)) {
		/* No mounts: the bundle's own sandbox/ folder is its "/". */
		b->mounts = calloc(1, sizeof *b->mounts);
		if (!b->mounts)
			return ohb_fail(e, OHB_E_NOMEM, "out of memory");
		b->n_mounts = 1;
		char *dir = fsu_join(b->bundle_dir, "sandbox");
		b->mounts[0].sandbox_prefix = strdup("/");
		b->mounts[0].dir = dir ? resolve_dir(dir) : NULL;
		free(dir);
		if (!b->mounts[0].sandbox_prefix || !b->mounts[0].dir)
			return ohb_fail(e, OHB_E_NOMEM, "out of memory");
		return 0;
	}
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return ohb_fail(e, OHB_E_INVAL, "\"mounts\" is not a non-empty array");
	int count = cJSON_GetArraySize(arr);
	b->mounts = calloc((size_t)count, sizeof *b->mounts);
	if (!b->mounts)
		return ohb_fail(e, OHB_E_NOMEM, "out of memory");
	int i = 0;
	const cJSON *m;
	cJSON_ArrayForEach(m, arr)
	{
		const cJSON *sb = cJSON_GetObjectItemCaseSensitive(m, "sandbox");
		const cJSON *dir = cJSON_GetObjectItemCaseSensitive(m, "dir");
		if (!cJSON_IsString(sb) || !cJSON_IsString(dir) || !dir->valuestring[0])
			return ohb_fail(e, OHB_E_INVAL, "mounts[%d] needs string fields \"sandbox\" and \"dir\"", i);
		reg_mount_t *mt = &b->mounts[b->n_mounts];
		mt->sandbox_prefix = sandbox_prefix_normalize(sb->valuestring, &oom);
		if (!mt->sandbox_prefix)
			return oom ? ohb_fail(e, OHB_E_NOMEM, "out of memory")
				   : ohb_fail(e, OHB_E_INVAL,
				         "mounts[%d]: sandbox \"%s\" is not an absolute path without . or ..", i,
				         sb->valuestring);
		b->n_mounts++;
		for (size_t k = 0; k + 1 < b->n_mounts; k++)
			if (strcmp(b->mounts[k].sandbox_prefix, mt->sandbox_prefix) == 0)
				return ohb_fail(e, OHB_E_INVAL, "mounts[%d]: sandbox \"%s\" is mounted twice", i,
				    mt->sandbox_prefix);
		/* A relative dir is relative to the bundle folder. */
		char *joined = dir->valuestring[0] == '/' ? strdup(dir->valuestring)
		                                          : fsu_join(b->bundle_dir, dir->valuestring);
		mt->dir = joined ? resolve_dir(joined) : NULL;
		free(joined);
		if (!mt->dir)
			return ohb_fail(e, OHB_E_NOMEM, "out of memory");
		i++;
	}
	qsort(b->mounts, b->n_mounts, sizeof *b->mounts, mount_cmp);
	return 0;
}

/* Fills b from the descriptor text; b->name and b->bundle_dir are already set
 * from the folder. On failure e says which field is wrong. */
static int
bundle_parse(reg_bundle_t *b, const char *text, size_t len, ohb_error_t *e)
{
	cJSON *root = cJSON_ParseWithLength(text, len);
	if (!root)
		return ohb_fail(e, OHB_E_INVAL, "bundle.json is not valid JSON");
	int rc = 0;
	bool oom = false;
	if (!cJSON_IsObject(root)) {
		rc = ohb_fail(e, OHB_E_INVAL, "bundle.json is not a JSON object");
		goto out;
	}
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(root, "name");
	if (!cJSON_IsString(name)) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"name\" is missing or not a string");
		goto out;
	}
	if (strcmp(name->valuestring, b->name) != 0) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"name\" is \"%s\" but the folder is named \"%s\"", name->valuestring,
		    b->name);
		goto out;
	}
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, "appIndex");
	int64_t v = 0;
	if (it && (!json_int64(it, &v) || v < 0 || v > INT_MAX)) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"appIndex\" is not a non-negative integer");
		goto out;
	}
	b->app_index = (int)v;
	it = cJSON_GetObjectItemCaseSensitive(root, "versionCode");
	if (it && !json_int64(it, &b->version_code)) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"versionCode\" is not an integer");
		goto out;
	}
	if (!get_string(root, "versionName", "", &b->version_name, &oom)) {
		rc = oom ? ohb_fail(e, OHB_E_NOMEM, "out of memory")
			 : ohb_fail(e, OHB_E_INVAL, "\"versionName\" is not a string");
		goto out;
	}
	if (!get_string(root, "extension", NULL, &b->extension, &oom)) {
		rc = oom ? ohb_fail(e, OHB_E_NOMEM, "out of memory")
			 : ohb_fail(e, OHB_E_INVAL, "\"extension\" is neither null nor a string");
		goto out;
	}
	if (b->extension && !b->extension[0]) {
		free(b->extension);
		b->extension = NULL;
	}
	if (b->extension && b->extension[0] != '/') {
		/* A relative extension path is relative to the bundle folder. */
		char *abs = fsu_join(b->bundle_dir, b->extension);
		free(b->extension);
		b->extension = abs;
		if (!abs) {
			rc = ohb_fail(e, OHB_E_NOMEM, "out of memory");
			goto out;
		}
	}

	const cJSON *bk = cJSON_GetObjectItemCaseSensitive(root, "backup");
	if (bk && !cJSON_IsObject(bk)) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"backup\" is not an object");
		goto out;
	}
	const char *bad = NULL;
	if (!get_bool(bk, "allowToBackupRestore", false, &b->allow_backup_restore))
		bad = "allowToBackupRestore";
	else if (!get_bool(bk, "fullBackupOnly", false, &b->full_backup_only))
		bad = "fullBackupOnly";
	else if (!get_bool(bk, "requireCompatibility", false, &b->require_compatibility))
		bad = "requireCompatibility";
	if (bad) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"backup.%s\" is not a boolean", bad);
		goto out;
	}
	if (!get_globs(bk, "includes", &b->includes, &b->n_includes, &oom) ||
	    !get_globs(bk, "excludes", &b->excludes, &b->n_excludes, &oom)) {
		rc = oom ? ohb_fail(e, OHB_E_NOMEM, "out of memory")
			 : ohb_fail(e, OHB_E_INVAL, "\"backup.includes\" and \"backup.excludes\" must be arrays of strings");
		goto out;
	}
	if (b->n_includes == 0 && set_default_includes(b) != 0) {
		rc = ohb_fail(e, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	if (!get_string(bk, "restoreDeps", "", &b->restore_deps, &oom) ||
	    !get_string(bk, "supportScene", "", &b->support_scene, &oom)) {
		rc = oom ? ohb_fail(e, OHB_E_NOMEM, "out of memory")
			 : ohb_fail(e, OHB_E_INVAL, "\"backup.restoreDeps\" and \"backup.supportScene\" must be strings");
		goto out;
	}
	const cJSON *extra = cJSON_GetObjectItemCaseSensitive(bk, "extraInfo");
	if (extra && !cJSON_IsNull(extra) && !cJSON_IsObject(extra)) {
		rc = ohb_fail(e, OHB_E_INVAL, "\"backup.extraInfo\" is not an object");
		goto out;
	}
	b->extra_info_json = (extra && cJSON_IsObject(extra)) ? cJSON_PrintUnformatted(extra) : strdup("{}");
	if (!b->extra_info_json) {
		rc = ohb_fail(e, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	rc = parse_mounts(b, root, e);
out:
	cJSON_Delete(root);
	return rc;
}

/* Loads bundles/<folder>. Returns 0 with *out set, or a code with e saying
 * why; only OHB_E_NOMEM is fatal for the device as a whole. */
static int
bundle_load(const char *bundles_dir, const char *folder, reg_bundle_t **out, ohb_error_t *e)
{
	*out = NULL;
	if (!reg_bundle_name_is_valid(folder))
		return ohb_fail(e, OHB_E_INVAL, "the folder name is not a valid bundle name");
	reg_bundle_t *b = calloc(1, sizeof *b);
	if (!b)
		return ohb_fail(e, OHB_E_NOMEM, "out of memory");
	int rc = 0;
	char *path = NULL, *text = NULL;
	size_t len = 0;
	b->name = strdup(folder);
	b->bundle_dir = fsu_join(bundles_dir, folder);
	b->temp_dir = b->bundle_dir ? fsu_join(b->bundle_dir, "backup") : NULL;
	path = b->bundle_dir ? fsu_join(b->bundle_dir, BUNDLE_JSON) : NULL;
	if (!b->name || !b->temp_dir || !path) {
		rc = ohb_fail(e, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = fsu_read_file(path, DESCRIPTOR_MAX, &text, &len, e)) != 0)
		goto out;
	rc = bundle_parse(b, text, len, e);
out:
	free(path);
	free(text);
	if (rc != 0)
		bundle_free(b);
	else
		*out = b;
	return rc;
}

/* ---- the device --------------------------------------------------------------- */

static int
device_read_identity(reg_device_t *dev, ohb_error_t *err)
{
	char *path = fsu_join(dev->root, DEVICE_JSON);
	if (!path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	char *text = NULL;
	size_t len = 0;
	cJSON *root = NULL;
	int rc = 0;
	struct stat st;
	if (stat(path, &st) == 0) {
		if ((rc = fsu_read_file(path, DESCRIPTOR_MAX, &text, &len, err)) != 0)
			goto out;
		root = cJSON_ParseWithLength(text, len);
		if (!cJSON_IsObject(root)) {
			rc = ohb_fail(err, OHB_E_INVAL, "%s is not a JSON object", path);
			goto out;
		}
	} else if (errno != ENOENT) {
		rc = ohb_fail_errno(err, errno, "cannot read %s", path);
		goto out;
	}
	bool oom = false;
	if (!get_string(root, "deviceType", "default", &dev->device_type, &oom) ||
	    !get_string(root, "systemFullName", "OpenHarmony-5.0.0", &dev->system_full_name, &oom) ||
	    !get_string(root, "backupVersion", "16.0", &dev->backup_version, &oom))
		rc = oom ? ohb_fail(err, OHB_E_NOMEM, "out of memory")
			 : ohb_fail(err, OHB_E_INVAL,
			       "%s: deviceType, systemFullName and backupVersion must be strings", path);
out:
	cJSON_Delete(root);
	free(text);
	free(path);
	return rc;
}

static int
add_broken(reg_device_t *dev, const char *folder, const char *why)
{
	char **nv = realloc(dev->broken, (dev->n_broken + 1) * sizeof *nv);
	if (!nv)
		return OHB_E_NOMEM;
	dev->broken = nv;
	if (!(nv[dev->n_broken] = fsu_printf("%s: %s", folder, why)))
		return OHB_E_NOMEM;
	dev->n_broken++;
	return 0;
}

static int
add_bundle(reg_device_t *dev, reg_bundle_t *b, size_t *cap)
{
	if (dev->n_bundles == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		reg_bundle_t **nv = realloc(dev->bundles, nc * sizeof *nv);
		if (!nv)
			return OHB_E_NOMEM;
		dev->bundles = nv;
		*cap = nc;
	}
	dev->bundles[dev->n_bundles++] = b;
	return 0;
}

static int
device_load_bundles(reg_device_t *dev, ohb_error_t *err)
{
	char *bundles_dir = fsu_join(dev->root, "bundles");
	if (!bundles_dir)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = fsu_mkdir_p(bundles_dir, 0755, err);
	DIR *d = rc == 0 ? opendir(bundles_dir) : NULL;
	if (rc == 0 && !d)
		rc = ohb_fail_errno(err, errno, "cannot list the bundles of %s", dev->root);
	size_t cap = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;   /* ".", "..", and hidden leftovers are not bundles */
		struct stat st;
		ohb_error_t e;
		ohb_error_clear(&e);
		reg_bundle_t *b = NULL;
		int lrc;
		if (fstatat(dirfd(d), de->d_name, &st, 0) != 0)
			lrc = ohb_fail_errno(&e, errno, "cannot stat the bundle folder");
		else if (!S_ISDIR(st.st_mode))
			lrc = ohb_fail(&e, OHB_E_INVAL, "not a folder");
		else
			lrc = bundle_load(bundles_dir, de->d_name, &b, &e);
		if (lrc == OHB_E_NOMEM)
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while reading bundle %s", de->d_name);
		else if (lrc != 0 && add_broken(dev, de->d_name, e.message) != 0)
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		else if (lrc == 0 && add_bundle(dev, b, &cap) != 0) {
			bundle_free(b);
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		}
	}
	if (d)
		closedir(d);
	free(bundles_dir);
	if (rc == 0 && dev->n_bundles > 1)
		qsort(dev->bundles, dev->n_bundles, sizeof *dev->bundles, bundle_ptr_cmp);
	if (rc == 0 && dev->n_broken > 1)
		qsort(dev->broken, dev->n_broken, sizeof *dev->broken, string_ptr_cmp);
	return rc;
}

int
reg_device_open(const char *root, reg_device_t **out, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!out)
		return ohb_fail(err, OHB_E_INVAL, "no place to return the device");
	*out = NULL;
	if (!root || !*root)
		return ohb_fail(err, OHB_E_INVAL, "a device root directory is required");
	int rc = fsu_mkdir_p(root, 0755, err);
	if (rc != 0)
		return rc;
	reg_device_t *dev = calloc(1, sizeof *dev);
	if (!dev)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	dev->root = realpath(root, NULL);
	if (!dev->root)
		rc = ohb_fail_errno(err, errno, "cannot resolve the device root %s", root);
	if (rc == 0)
		rc = device_read_identity(dev, err);
	if (rc == 0)
		rc = device_load_bundles(dev, err);
	if (rc != 0) {
		reg_device_free(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

void
reg_device_free(reg_device_t *dev)
{
	if (!dev)
		return;
	for (size_t i = 0; i < dev->n_bundles; i++)
		bundle_free(dev->bundles[i]);
	free(dev->bundles);
	str_array_free(dev->broken, dev->n_broken);
	free(dev->root);
	free(dev->device_type);
	free(dev->system_full_name);
	free(dev->backup_version);
	free(dev);
}

const reg_bundle_t *
reg_device_find(const reg_device_t *dev, const char *name)
{
	if (!dev || !name)
		return NULL;
	size_t lo = 0, hi = dev->n_bundles;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, dev->bundles[mid]->name);
		if (c == 0)
			return dev->bundles[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* ---- writing a descriptor ------------------------------------------------------ */

static cJSON *
globs_to_json(char *const *v, size_t n)
{
	cJSON *arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < n; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateString(v[i]));
	return arr;
}

/* The descriptor of b as JSON, or NULL with e set. */
static cJSON *
bundle_to_json(const reg_bundle_t *b, ohb_error_t *e)
{
	cJSON *extra = cJSON_Parse(b->extra_info_json ? b->extra_info_json : "{}");
	if (!cJSON_IsObject(extra)) {
		cJSON_Delete(extra);
		ohb_fail(e, OHB_E_INVAL, "the extraInfo of %s is not a JSON object", b->name);
		return NULL;
	}
	char num[32];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", b->name);
	cJSON_AddNumberToObject(o, "appIndex", b->app_index);
	snprintf(num, sizeof num, "%" PRId64, b->version_code);
	cJSON_AddRawToObject(o, "versionCode", num);
	cJSON_AddStringToObject(o, "versionName", b->version_name ? b->version_name : "");
	if (b->extension)
		cJSON_AddStringToObject(o, "extension", b->extension);
	else
		cJSON_AddNullToObject(o, "extension");
	cJSON *mounts = cJSON_AddArrayToObject(o, "mounts");
	for (size_t i = 0; i < b->n_mounts; i++) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "sandbox", b->mounts[i].sandbox_prefix);
		cJSON_AddStringToObject(m, "dir", b->mounts[i].dir);
		cJSON_AddItemToArray(mounts, m);
	}
	if (b->n_mounts == 0) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddStringToObject(m, "sandbox", "/");
		cJSON_AddStringToObject(m, "dir", "sandbox");
		cJSON_AddItemToArray(mounts, m);
	}
	cJSON *bk = cJSON_AddObjectToObject(o, "backup");
	cJSON_AddBoolToObject(bk, "allowToBackupRestore", b->allow_backup_restore);
	if (b->n_includes)
		cJSON_AddItemToObject(bk, "includes", globs_to_json(b->includes, b->n_includes));
	cJSON_AddItemToObject(bk, "excludes", globs_to_json(b->excludes, b->n_excludes));
	cJSON_AddBoolToObject(bk, "fullBackupOnly", b->full_backup_only);
	cJSON_AddStringToObject(bk, "restoreDeps", b->restore_deps ? b->restore_deps : "");
	cJSON_AddStringToObject(bk, "supportScene", b->support_scene ? b->support_scene : "");
	cJSON_AddItemToObject(bk, "extraInfo", extra);
	cJSON_AddBoolToObject(bk, "requireCompatibility", b->require_compatibility);
	return o;
}

/* Checks b's mounts and creates the folders a relative mount names. */
static int
prepare_mounts(const reg_bundle_t *b, const char *bundle_dir, ohb_error_t *err)
{
	for (size_t i = 0; i < b->n_mounts; i++) {
		const reg_mount_t *m = &b->mounts[i];
		bool oom = false;
		char *norm = sandbox_prefix_normalize(m->sandbox_prefix, &oom);
		free(norm);
		if (!norm)
			return oom ? ohb_fail(err, OHB_E_NOMEM, "out of memory")
				   : ohb_fail(err, OHB_E_INVAL,
				         "mount %zu of %s: \"%s\" is not an absolute sandbox path without . or ..", i,
				         b->name, m->sandbox_prefix ? m->sandbox_prefix : "(null)");
		if (!m->dir || !m->dir[0])
			return ohb_fail(err, OHB_E_INVAL, "mount %zu of %s has no folder", i, b->name);
	}
	for (size_t i = 0; i < (b->n_mounts ? b->n_mounts : 1); i++) {
		const char *dir = b->n_mounts ? b->mounts[i].dir : "sandbox";
		if (dir[0] == '/')
			continue;
		char *path = fsu_join(bundle_dir, dir);
		if (!path)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		int rc = fsu_mkdir_p(path, 0755, err);
		free(path);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
reg_bundle_write(const char *root, const reg_bundle_t *b, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!root || !*root || !b)
		return ohb_fail(err, OHB_E_INVAL, "a device root and a bundle are required");
	if (!reg_bundle_name_is_valid(b->name))
		return ohb_fail(err, OHB_E_INVAL,
		    "\"%s\" is not a valid bundle name (1 to 127 of A-Z a-z 0-9 . _ -, optionally :<appIndex>)",
		    b->name ? b->name : "");
	char *bundle_dir = fsu_printf("%s/bundles/%s", root, b->name);
	char *temp_dir = bundle_dir ? fsu_join(bundle_dir, "backup") : NULL;
	char *json_path = bundle_dir ? fsu_join(bundle_dir, BUNDLE_JSON) : NULL;
	char *text = NULL;
	cJSON *doc = NULL;
	int rc = 0;
	if (!temp_dir || !json_path) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	/* Registered means "has a bundle.json". Check-then-write is enough here:
	 * registering is an operator's action, not something that races. */
	struct stat st;
	if (lstat(json_path, &st) == 0) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s is already registered on this device", b->name);
		goto out;
	}
	if (!(doc = bundle_to_json(b, err))) {
		rc = err && err->code ? err->code : OHB_E_NOMEM;
		goto out;
	}
	if (!(text = cJSON_Print(doc))) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	if ((rc = fsu_mkdir_p(bundle_dir, 0755, err)) != 0 || (rc = fsu_mkdir_p(temp_dir, 0700, err)) != 0 ||
	    (rc = prepare_mounts(b, bundle_dir, err)) != 0)
		goto out;
	/* cJSON_Print leaves no final newline; a text file wants one. */
	size_t len = strlen(text);
	char *nl = realloc(text, len + 2);
	if (!nl) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	text = nl;
	text[len] = '\n';
	text[len + 1] = '\0';
	rc = fsu_write_atomic(bundle_dir, BUNDLE_JSON, text, len + 1, 0644, err);
out:
	cJSON_Delete(doc);
	free(text);
	free(json_path);
	free(temp_dir);
	free(bundle_dir);
	return rc;
}

/* True when `inner` is `outer` or lies below it (both absolute, resolved). */
static bool
path_is_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);
	if (n == 1 && outer[0] == '/')
		return true;
	return strncmp(inner, outer, n) == 0 && (inner[n] == '\0' || inner[n] == '/');
}

int
reg_bundle_add_dir(const char *root, const char *name, const char *dir, ohb_error_t *err)
{
	ohb_error_clear(err);
	if (!root || !*root || !dir || !*dir)
		return ohb_fail(err, OHB_E_INVAL, "a device root and a data folder are required");
	if (!reg_bundle_name_is_valid(name))
		return ohb_fail(err, OHB_E_INVAL,
		    "\"%s\" is not a valid bundle name (1 to 127 of A-Z a-z 0-9 . _ -, optionally :<appIndex>)",
		    name ? name : "");
	char *real = realpath(dir, NULL);
	if (!real)
		return ohb_fail_errno(err, errno, "cannot use %s as the data folder of %s", dir, name);
	int rc = 0;
	struct stat st;
	char *real_root = NULL;
	if (stat(real, &st) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot use %s as the data folder of %s", dir, name);
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s is not a directory, so it cannot be the data folder of %s", dir,
		    name);
		goto out;
	}
	/* A folder that holds the device root would back up the service's own
	 * temp files (bundles/<name>/backup) into itself. */
	if ((rc = fsu_mkdir_p(root, 0755, err)) != 0)
		goto out;
	real_root = realpath(root, NULL);
	if (!real_root) {
		rc = ohb_fail_errno(err, errno, "cannot resolve the device root %s", root);
		goto out;
	}
	if (path_is_within(real_root, real)) {
		rc = ohb_fail(err, OHB_E_INVAL, "%s holds the device root %s, so it cannot be the data folder of %s",
		    real, real_root, name);
		goto out;
	}
	char *include = ADD_DIR_INCLUDE;
	reg_mount_t mount = { ADD_DIR_PREFIX, real };
	reg_bundle_t b = {
		.name = (char *)name,
		.app_index = 0,
		.version_code = 1,
		.version_name = "1.0.0",
		.allow_backup_restore = true,
		.includes = &include,
		.n_includes = 1,
		.restore_deps = "",
		.support_scene = "",
		.extra_info_json = "{}",
		.mounts = &mount,
		.n_mounts = 1,
	};
	rc = reg_bundle_write(real_root, &b, err);
out:
	free(real_root);
	free(real);
	return rc;
}

/* ---- mapping sandbox paths ----------------------------------------------------- */

int
reg_bundle_map(const reg_bundle_t *b, const char *sandbox_path, const reg_mount_t **mount, const char **rel,
    ohb_error_t *err)
{
	if (!b || !sandbox_path || sandbox_path[0] != '/')
		return ohb_fail(err, OHB_E_INVAL, "\"%s\" is not an absolute sandbox path",
		    sandbox_path ? sandbox_path : "(null)");
	for (size_t i = 0; i < b->n_mounts; i++) {
		const reg_mount_t *m = &b->mounts[i];
		const char *p = m->sandbox_prefix;
		size_t n = strlen(p);
		const char *rest;
		if (n == 1 && p[0] == '/')
			rest = sandbox_path;
		else if (strncmp(sandbox_path, p, n) == 0 && (sandbox_path[n] == '\0' || sandbox_path[n] == '/'))
			rest = sandbox_path + n;
		else
			continue;
		while (*rest == '/')
			rest++;
		if (mount)
			*mount = m;
		if (rel)
			*rel = rest;
		return 0;
	}
	return ohb_fail(err, OHB_E_INVAL, "no mount of %s holds the sandbox path %s", b->name, sandbox_path);
}
