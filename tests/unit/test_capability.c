/*
 * test_capability — the capability file: built from a device (sizes are what
 * a backup would take, increSpaceOccupied only in the incremental variant),
 * parsed back, and parsed from hostile documents where each malformed entry
 * is refused on its own with a sentence naming the entry and the field.
 * Each test works in its own mkdtemp folder and removes it.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "capability.h"
#include "errors.h"
#include "fsutil.h"
#include "registry.h"

/* A device with two bundles registered over folders of known content:
 *   com.app   old.txt (100 bytes, mtime 1000 s), new/b.bin (250 bytes, mtime 3000 s),
 *             cache/c.tmp (40 bytes, excluded by nothing: inside the include)
 *   com.off   x.txt (10 bytes), allowToBackupRestore false */
typedef struct fixture {
	char *tmp;
	char *root;
	reg_device_t *dev;
} fixture_t;

static void
put_sized(const char *dir, const char *rel, size_t size, time_t mtime)
{
	char *path = fsu_join(dir, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	ck_assert_int_eq(fsu_mkdir_p(path, 0755, NULL), 0);
	char *data = calloc(1, size + 1);
	memset(data, 'x', size);
	ck_assert_int_eq(fsu_write_atomic(path, slash + 1, data, size, 0644, NULL), 0);
	*slash = '/';
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	free(data);
	free(path);
}

static void
fixture_open(fixture_t *f)
{
	char tmpl[] = "/tmp/ohb-test-capability-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	f->tmp = strdup(tmpl);
	f->root = fsu_join(f->tmp, "device");
	char *app = fsu_join(f->tmp, "app");
	char *off = fsu_join(f->tmp, "off");
	put_sized(app, "old.txt", 100, 1000);
	put_sized(app, "new/b.bin", 250, 3000);
	put_sized(off, "x.txt", 10, 1000);
	ohb_error_t err;
	ck_assert_int_eq(reg_bundle_add_dir(f->root, "com.app", app, &err), 0);
	char *json = fsu_printf("{\"name\":\"com.off\",\"versionCode\":5,\"versionName\":\"0.5\","
	                        "\"mounts\":[{\"sandbox\":\"/data/storage/el2/base/files\",\"dir\":\"%s\"}],"
	                        "\"backup\":{\"allowToBackupRestore\":false,\"extraInfo\":{\"a\":1}}}",
	    off);
	char *dir = fsu_printf("%s/bundles/com.off", f->root);
	ck_assert_int_eq(fsu_mkdir_p(dir, 0755, NULL), 0);
	ck_assert_int_eq(fsu_write_atomic(dir, "bundle.json", json, strlen(json), 0644, NULL), 0);
	ck_assert_int_eq(reg_device_open(f->root, &f->dev, &err), 0);
	ck_assert_uint_eq(f->dev->n_bundles, 2);
	free(dir);
	free(json);
	free(app);
	free(off);
}

static void
fixture_close(fixture_t *f)
{
	reg_device_free(f->dev);
	ck_assert_int_eq(fsu_rm_rf(f->tmp, NULL), 0);
	free(f->root);
	free(f->tmp);
}

START_TEST(test_build_and_parse)
{
	fixture_t f;
	fixture_open(&f);
	char *json = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cap_build_json(f.dev, NULL, 0, &json, &err), 0);

	cJSON *doc = cJSON_Parse(json);
	ck_assert_ptr_nonnull(doc);
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "backupVersion")->valuestring, "16.0");
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "deviceType")->valuestring, "default");
	ck_assert_str_eq(cJSON_GetObjectItem(doc, "systemFullName")->valuestring, "OpenHarmony-5.0.0");
	cJSON *e0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "bundleInfos"), 0);
	ck_assert_ptr_null(cJSON_GetObjectItem(e0, "increSpaceOccupied"));
	ck_assert(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetObjectItem(e0, "extraInfo"), "supportScene")));
	static const char *const keys[] = { "name", "appIndex", "versionCode", "versionName", "spaceOccupied",
		"allToBackup", "fullBackupOnly", "requireCompatibility", "extensionName", "restoreDeps",
		"supportScene", "extraInfo" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		ck_assert_msg(cJSON_HasObjectItem(e0, keys[i]), "missing %s", keys[i]);
	cJSON *e1 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "bundleInfos"), 1);
	cJSON *extra1 = cJSON_GetObjectItem(e1, "extraInfo");
	ck_assert_int_eq(cJSON_GetObjectItem(extra1, "a")->valueint, 1);   /* the bundle's own extraInfo kept */
	ck_assert(cJSON_IsArray(cJSON_GetObjectItem(extra1, "supportScene")));
	cJSON_Delete(doc);

	cap_file_t cf;
	ck_assert_int_eq(cap_parse(json, strlen(json), &cf, &err), 0);
	ck_assert_str_eq(cf.backup_version, "16.0");
	ck_assert_str_eq(cf.device_type, "default");
	ck_assert_uint_eq(cf.n_bundles, 2);
	const cap_bundle_t *a = cap_find(&cf, "com.app");
	ck_assert_ptr_nonnull(a);
	ck_assert(a->valid);
	ck_assert_ptr_null(a->invalid_reason);
	ck_assert_int_eq(a->space_occupied, 350);
	ck_assert_int_eq(a->incre_space_occupied, -1);
	ck_assert(a->all_to_backup);
	ck_assert_int_eq(a->version_code, 1);
	ck_assert_str_eq(a->version_name, "1.0.0");
	ck_assert_str_eq(a->extension_name, "BackupExtensionAbility");
	const cap_bundle_t *o = cap_find(&cf, "com.off");
	ck_assert_ptr_nonnull(o);
	ck_assert(o->valid);
	ck_assert(!o->all_to_backup);
	ck_assert_int_eq(o->version_code, 5);
	ck_assert_int_eq(o->space_occupied, 10);
	ck_assert_ptr_null(cap_find(&cf, "com.none"));
	cap_file_free(&cf);
	free(json);
	fixture_close(&f);
}
END_TEST

START_TEST(test_incremental)
{
	fixture_t f;
	fixture_open(&f);
	/* com.app last backed up at 2000 s: only new/b.bin changed since. */
	ohb_incremental_time_t times[] = { { "com.app", 2000 * 1000LL } };
	char *json = NULL;
	ohb_error_t err;
	ck_assert_int_eq(cap_build_json(f.dev, times, 1, &json, &err), 0);
	cap_file_t cf;
	ck_assert_int_eq(cap_parse(json, strlen(json), &cf, &err), 0);
	const cap_bundle_t *a = cap_find(&cf, "com.app");
	ck_assert_int_eq(a->space_occupied, 350);
	ck_assert_int_eq(a->incre_space_occupied, 250);
	const cap_bundle_t *o = cap_find(&cf, "com.off");   /* not named: time 0, all of it is new */
	ck_assert_int_eq(o->incre_space_occupied, 10);
	cap_file_free(&cf);
	free(json);
	fixture_close(&f);
}
END_TEST

/* Three entries; the middle one (com.b) gets `field` replaced by `value`
 * (NULL: removed). */
static char *
doc_with(const char *field, const char *value)
{
	static const char *const fields[][2] = {
		{ "name", "\"com.b\"" },
		{ "versionCode", "1000000" },
		{ "versionName", "\"1.0.0\"" },
		{ "spaceOccupied", "12345" },
		{ "allToBackup", "true" },
		{ "extensionName", "\"BackupExtensionAbility\"" },
	};
	char mid[1024] = "{";
	size_t o = 1;
	for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
		const char *v = strcmp(fields[i][0], field) == 0 ? value : fields[i][1];
		if (!v)
			continue;
		o += (size_t)snprintf(mid + o, sizeof mid - o, "%s\"%s\":%s", o > 1 ? "," : "", fields[i][0], v);
	}
	snprintf(mid + o, sizeof mid - o, "}");
	return fsu_printf("{\"backupVersion\":\"16.0\",\"bundleInfos\":["
	                  "{\"name\":\"com.a\",\"versionCode\":1,\"versionName\":\"1\",\"spaceOccupied\":0,"
	                  "\"allToBackup\":true,\"extensionName\":\"\"},%s,"
	                  "{\"name\":\"com.c\",\"versionCode\":1,\"versionName\":\"1\",\"spaceOccupied\":0,"
	                  "\"allToBackup\":false,\"extensionName\":\"\",\"increSpaceOccupied\":5}]}",
	    mid);
}

START_TEST(test_required_fields)
{
	static const struct {
		const char *field, *value, *reason;
	} cases[] = {
		{ "name", NULL, "bundleInfos[1]: name is missing or not a non-empty string" },
		{ "name", "42", "bundleInfos[1]: name is missing or not a non-empty string" },
		{ "versionCode", NULL, "bundleInfos[1] (com.b): versionCode is missing or not an integer" },
		{ "versionCode", "\"7\"", "bundleInfos[1] (com.b): versionCode is missing or not an integer" },
		{ "versionCode", "1.5", "bundleInfos[1] (com.b): versionCode is missing or not an integer" },
		{ "versionName", NULL, "bundleInfos[1] (com.b): versionName is missing or not a string" },
		{ "versionName", "1", "bundleInfos[1] (com.b): versionName is missing or not a string" },
		{ "spaceOccupied", NULL, "bundleInfos[1] (com.b): spaceOccupied is missing or not an integer" },
		{ "spaceOccupied", "\"big\"", "bundleInfos[1] (com.b): spaceOccupied is missing or not an integer" },
		{ "allToBackup", NULL, "bundleInfos[1] (com.b): allToBackup is missing or not a boolean" },
		{ "allToBackup", "1", "bundleInfos[1] (com.b): allToBackup is missing or not a boolean" },
		{ "extensionName", NULL, "bundleInfos[1] (com.b): extensionName is missing or not a string" },
		{ "extensionName", "null", "bundleInfos[1] (com.b): extensionName is missing or not a string" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *doc = doc_with(cases[i].field, cases[i].value);
		cap_file_t cf;
		ohb_error_t err;
		ck_assert_msg(cap_parse(doc, strlen(doc), &cf, &err) == 0, "case %zu: %s", i, err.message);
		ck_assert_uint_eq(cf.n_bundles, 3);
		ck_assert(cf.bundles[0].valid);
		ck_assert(cf.bundles[2].valid);
		ck_assert_int_eq(cf.bundles[2].incre_space_occupied, 5);
		ck_assert_msg(!cf.bundles[1].valid, "case %zu should be invalid", i);
		ck_assert_str_eq(cf.bundles[1].invalid_reason, cases[i].reason);
		cap_file_free(&cf);
		free(doc);
	}
	/* The untouched document is valid throughout. */
	char *doc = doc_with("none", NULL);
	cap_file_t cf;
	ck_assert_int_eq(cap_parse(doc, strlen(doc), &cf, NULL), 0);
	for (size_t i = 0; i < cf.n_bundles; i++)
		ck_assert(cf.bundles[i].valid);
	ck_assert_int_eq(cf.bundles[1].space_occupied, 12345);
	cap_file_free(&cf);
	free(doc);
}
END_TEST

START_TEST(test_whole_document_failures)
{
	static const char *const docs[] = {
		"",
		"not json",
		"{\"bundleInfos\":[",
		"[]",
		"{\"backupVersion\":\"16.0\"}",
		"{\"bundleInfos\":{}}",
		"{\"bundleInfos\":\"x\"}",
	};
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		cap_file_t cf;
		ohb_error_t err;
		ck_assert_msg(cap_parse(docs[i], strlen(docs[i]), &cf, &err) == OHB_E_INVAL, "doc %zu", i);
		ck_assert_int_eq(err.code, OHB_E_INVAL);
		ck_assert(err.message[0] != '\0');
		ck_assert_uint_eq(cf.n_bundles, 0);
	}
	/* len bounds the parse: a valid prefix followed by garbage is read up to len. */
	const char *text = "{\"bundleInfos\":[]}GARBAGE";
	cap_file_t cf;
	ck_assert_int_eq(cap_parse(text, 18, &cf, NULL), 0);
	ck_assert_uint_eq(cf.n_bundles, 0);
	ck_assert_str_eq(cf.backup_version, "");
	cap_file_free(&cf);
}
END_TEST

START_TEST(test_odd_entries_and_find)
{
	const char *doc = "{\"bundleInfos\":["
	                  "7,"
	                  "{\"name\":\"com.x\",\"appIndex\":1,\"versionCode\":1,\"versionName\":\"a\","
	                  "\"spaceOccupied\":1,\"allToBackup\":true,\"extensionName\":\"e\",\"restoreDeps\":\"com.y\"},"
	                  "{\"name\":\"com.x\",\"versionCode\":2,\"versionName\":\"b\","
	                  "\"spaceOccupied\":2,\"allToBackup\":true,\"extensionName\":\"e\"},"
	                  "{\"name\":\"com.x\",\"versionCode\":3,\"versionName\":\"c\","
	                  "\"spaceOccupied\":3,\"allToBackup\":true,\"extensionName\":\"e\"},"
	                  "{\"name\":\"com.z\",\"appIndex\":-1,\"versionCode\":1,\"versionName\":\"a\","
	                  "\"spaceOccupied\":1,\"allToBackup\":true,\"extensionName\":\"e\"},"
	                  "{\"name\":\"com.w\"}]}";
	cap_file_t cf;
	ohb_error_t err;
	ck_assert_int_eq(cap_parse(doc, strlen(doc), &cf, &err), 0);
	ck_assert_uint_eq(cf.n_bundles, 6);
	ck_assert(!cf.bundles[0].valid);
	ck_assert_str_eq(cf.bundles[0].name, "");
	ck_assert_str_eq(cf.bundles[0].invalid_reason, "bundleInfos[0]: the entry is not a JSON object");
	ck_assert(cf.bundles[1].valid && cf.bundles[2].valid);
	ck_assert(!cf.bundles[3].valid);   /* the same app as bundleInfos[2] */
	ck_assert_ptr_nonnull(strstr(cf.bundles[3].invalid_reason, "listed again"));
	ck_assert(!cf.bundles[4].valid);
	ck_assert_ptr_nonnull(strstr(cf.bundles[4].invalid_reason, "appIndex"));
	/* Every fault of an entry is named, not only the first. */
	ck_assert_str_eq(cf.bundles[5].invalid_reason,
	    "bundleInfos[5] (com.w): versionCode is missing or not an integer; versionName is missing or not a "
	    "string; spaceOccupied is missing or not an integer; allToBackup is missing or not a boolean; "
	    "extensionName is missing or not a string");

	ck_assert_ptr_eq(cap_find(&cf, "com.x"), &cf.bundles[2]);   /* the app, not its clone */
	const cap_bundle_t *b = cap_find(&cf, "com.x:1");
	ck_assert_ptr_eq(b, &cf.bundles[1]);
	ck_assert_str_eq(b->restore_deps, "com.y");
	ck_assert_str_eq(cf.bundles[2].restore_deps, "");
	ck_assert_ptr_null(cap_find(&cf, "com.x:2"));
	ck_assert_ptr_null(cap_find(&cf, "com.x:"));
	ck_assert_ptr_null(cap_find(&cf, ""));
	ck_assert_ptr_null(cap_find(&cf, NULL));
	cap_file_free(&cf);
	cap_file_free(&cf);   /* freeing twice is harmless: the first free zeroes it */
}
END_TEST

extern Suite *capability_suite(void);

Suite *capability_suite(void)
{
	Suite *s = suite_create("capability");
	TCase *tc = tcase_create("capability");
	tcase_add_test(tc, test_build_and_parse);
	tcase_add_test(tc, test_incremental);
	tcase_add_test(tc, test_required_fields);
	tcase_add_test(tc, test_whole_document_failures);
	tcase_add_test(tc, test_odd_entries_and_find);
	suite_add_tcase(s, tc);
	return s;
}
