/*
 * test_registry — the device root as registry.c reads and writes it: the
 * defaults of device.json, descriptors that load and descriptors that do not
 * (listed as broken while the others still load), bundle names, `bundle add`,
 * and mapping sandbox paths onto mounts (longest prefix wins).
 * Each test works in its own mkdtemp folder and removes it.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"
#include "registry.h"

static char *
tmp_root(void)
{
	char tmpl[] = "/tmp/ohb-test-registry-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(tmpl));
	char *real = realpath(tmpl, NULL);
	ck_assert_ptr_nonnull(real);
	return real;
}

static void
tmp_remove(char *dir)
{
	ck_assert_int_eq(fsu_rm_rf(dir, NULL), 0);
	free(dir);
}

/* Writes text to root/rel, creating its folder. */
static void
put(const char *root, const char *rel, const char *text)
{
	char *path = fsu_join(root, rel);
	char *slash = strrchr(path, '/');
	*slash = '\0';
	ck_assert_int_eq(fsu_mkdir_p(path, 0755, NULL), 0);
	ck_assert_int_eq(fsu_write_atomic(path, slash + 1, text, strlen(text), 0644, NULL), 0);
	free(path);
}

static bool
is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

START_TEST(test_open_defaults)
{
	char *tmp = tmp_root();
	char *root = fsu_join(tmp, "not/yet/there");
	reg_device_t *dev = NULL;
	ohb_error_t err;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_str_eq(dev->device_type, "default");
	ck_assert_str_eq(dev->system_full_name, "OpenHarmony-5.0.0");
	ck_assert_str_eq(dev->backup_version, "16.0");
	ck_assert_str_eq(dev->root, root);
	ck_assert_uint_eq(dev->n_bundles, 0);
	ck_assert_uint_eq(dev->n_broken, 0);
	reg_device_free(dev);
	char *bundles = fsu_join(root, "bundles");
	ck_assert(is_dir(bundles));
	free(bundles);

	put(root, "device.json", "{\"deviceType\":\"tablet\",\"backupVersion\":\"17.0\"}");
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_str_eq(dev->device_type, "tablet");
	ck_assert_str_eq(dev->system_full_name, "OpenHarmony-5.0.0");
	ck_assert_str_eq(dev->backup_version, "17.0");
	reg_device_free(dev);

	put(root, "device.json", "{\"deviceType\":");
	ck_assert_int_eq(reg_device_open(root, &dev, &err), OHB_E_INVAL);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(reg_device_open("", &dev, &err), OHB_E_INVAL);
	free(root);
	tmp_remove(tmp);
}
END_TEST

START_TEST(test_descriptor_defaults)
{
	char *root = tmp_root();
	put(root, "bundles/com.a/bundle.json", "{\"name\":\"com.a\"}");
	reg_device_t *dev = NULL;
	ohb_error_t err;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_bundles, 1);
	const reg_bundle_t *b = reg_device_find(dev, "com.a");
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(reg_default_includes_count, 13);
	ck_assert_uint_eq(b->n_includes, 13);
	for (size_t i = 0; i < 13; i++)
		ck_assert_str_eq(b->includes[i], reg_default_includes[i]);
	ck_assert_uint_eq(b->n_excludes, 0);
	ck_assert(!b->allow_backup_restore);   /* OpenHarmony's default */
	ck_assert_str_eq(b->version_name, "");
	ck_assert_str_eq(b->restore_deps, "");
	ck_assert_str_eq(b->extra_info_json, "{}");
	ck_assert_ptr_null(b->extension);
	ck_assert_uint_eq(b->n_mounts, 1);
	ck_assert_str_eq(b->mounts[0].sandbox_prefix, "/");
	char *want = fsu_printf("%s/bundles/com.a/sandbox", root);
	ck_assert_str_eq(b->mounts[0].dir, want);
	free(want);
	want = fsu_printf("%s/bundles/com.a/backup", root);
	ck_assert_str_eq(b->temp_dir, want);
	free(want);
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

START_TEST(test_broken_descriptors)
{
	char *root = tmp_root();
	put(root, "bundles/com.good/bundle.json",
	    "{\"name\":\"com.good\",\"versionCode\":7,\"backup\":{\"allowToBackupRestore\":true}}");
	put(root, "bundles/com.zeta/bundle.json", "{\"name\":\"com.zeta\"}");
	put(root, "bundles/com.notjson/bundle.json", "{\"name\": ");
	put(root, "bundles/com.badtype/bundle.json", "{\"name\":\"com.badtype\",\"versionCode\":\"7\"}");
	put(root, "bundles/com.wrongname/bundle.json", "{\"name\":\"com.other\"}");
	put(root, "bundles/com.badmount/bundle.json",
	    "{\"name\":\"com.badmount\",\"mounts\":[{\"sandbox\":\"rel/path\",\"dir\":\"x\"}]}");
	put(root, "bundles/com.nodesc/readme.txt", "no descriptor here");
	put(root, "bundles/stray-file", "not a folder");
	reg_device_t *dev = NULL;
	ohb_error_t err;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_bundles, 2);
	ck_assert_str_eq(dev->bundles[0]->name, "com.good");   /* sorted by name */
	ck_assert_str_eq(dev->bundles[1]->name, "com.zeta");
	ck_assert_int_eq(dev->bundles[0]->version_code, 7);
	ck_assert(dev->bundles[0]->allow_backup_restore);
	ck_assert_uint_eq(dev->n_broken, 6);
	const char *want[] = { "com.badmount: ", "com.badtype: ", "com.nodesc: ", "com.notjson: ",
		"com.wrongname: ", "stray-file: " };
	for (size_t i = 0; i < 6; i++)
		ck_assert_msg(strncmp(dev->broken[i], want[i], strlen(want[i])) == 0, "broken[%zu] = %s", i,
		    dev->broken[i]);
	ck_assert_ptr_nonnull(strstr(dev->broken[1], "versionCode"));
	ck_assert_ptr_nonnull(reg_device_find(dev, "com.zeta"));
	ck_assert_ptr_null(reg_device_find(dev, "com.notjson"));
	ck_assert_ptr_null(reg_device_find(dev, "com.missing"));
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

START_TEST(test_write_round_trip)
{
	char *root = tmp_root();
	char *excl[] = { "data/storage/el2/base/files/cache/" };
	char *incl[] = { "/data/storage/el2/base/files/", "data/storage/el2/database/" };
	reg_mount_t mounts[] = { { "/", "sandbox" }, { "/data/storage/el1//database/", "/nonexistent/el1db" } };
	reg_bundle_t b = {
		.name = "com.example.rt",
		.app_index = 2,
		.version_code = 9007199254740000LL,
		.version_name = "9.9",
		.allow_backup_restore = true,
		.includes = incl,
		.n_includes = 2,
		.excludes = excl,
		.n_excludes = 1,
		.full_backup_only = true,
		.restore_deps = "com.a,com.b",
		.support_scene = "scene",
		.extra_info_json = "{\"k\":[1,2]}",
		.require_compatibility = true,
		.mounts = mounts,
		.n_mounts = 2,
	};
	ohb_error_t err;
	ck_assert_int_eq(reg_bundle_write(root, &b, &err), 0);
	char *p = fsu_printf("%s/bundles/com.example.rt/sandbox", root);
	ck_assert(is_dir(p));
	free(p);
	p = fsu_printf("%s/bundles/com.example.rt/backup", root);
	ck_assert(is_dir(p));
	free(p);
	ck_assert_int_eq(reg_bundle_write(root, &b, &err), OHB_E_INVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "already registered"));

	reg_device_t *dev = NULL;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_broken, 0);
	const reg_bundle_t *r = reg_device_find(dev, "com.example.rt");
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(r->app_index, 2);
	ck_assert(r->version_code == 9007199254740000LL);
	ck_assert_str_eq(r->version_name, "9.9");
	ck_assert(r->allow_backup_restore && r->full_backup_only && r->require_compatibility);
	ck_assert_uint_eq(r->n_includes, 2);
	ck_assert_str_eq(r->includes[0], "data/storage/el2/base/files/");   /* leading '/' dropped */
	ck_assert_str_eq(r->includes[1], "data/storage/el2/database/");
	ck_assert_uint_eq(r->n_excludes, 1);
	ck_assert_str_eq(r->excludes[0], "data/storage/el2/base/files/cache/");
	ck_assert_str_eq(r->restore_deps, "com.a,com.b");
	ck_assert_str_eq(r->support_scene, "scene");
	ck_assert_str_eq(r->extra_info_json, "{\"k\":[1,2]}");
	ck_assert_uint_eq(r->n_mounts, 2);
	ck_assert_str_eq(r->mounts[0].sandbox_prefix, "/data/storage/el1/database");   /* longest first */
	ck_assert_str_eq(r->mounts[0].dir, "/nonexistent/el1db");
	ck_assert_str_eq(r->mounts[1].sandbox_prefix, "/");
	p = fsu_printf("%s/bundles/com.example.rt/sandbox", root);
	ck_assert_str_eq(r->mounts[1].dir, p);
	free(p);
	reg_device_free(dev);

	b.name = "bad/name";
	ck_assert_int_eq(reg_bundle_write(root, &b, &err), OHB_E_INVAL);
	b.name = "com.example.badextra";
	b.extra_info_json = "[1";
	ck_assert_int_eq(reg_bundle_write(root, &b, &err), OHB_E_INVAL);
	tmp_remove(root);
}
END_TEST

START_TEST(test_relative_mount_dir)
{
	char *root = tmp_root();
	put(root, "bundles/com.rel/bundle.json",
	    "{\"name\":\"com.rel\",\"mounts\":[{\"sandbox\":\"/data/storage/el2/base/files/\",\"dir\":\"../../data\"}]}");
	put(root, "data/a.txt", "a");
	reg_device_t *dev = NULL;
	ohb_error_t err;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_bundles, 1);
	char *want = fsu_join(root, "data");
	ck_assert_str_eq(dev->bundles[0]->mounts[0].dir, want);
	ck_assert_str_eq(dev->bundles[0]->mounts[0].sandbox_prefix, "/data/storage/el2/base/files");
	free(want);
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

START_TEST(test_map)
{
	char *root = tmp_root();
	put(root, "bundles/com.map/bundle.json",
	    "{\"name\":\"com.map\",\"mounts\":["
	    "{\"sandbox\":\"/data/storage/el2/base\",\"dir\":\"/m/base\"},"
	    "{\"sandbox\":\"/\",\"dir\":\"/m/root\"},"
	    "{\"sandbox\":\"/data/storage/el2/base/files\",\"dir\":\"/m/files\"}]}");
	put(root, "bundles/com.narrow/bundle.json",
	    "{\"name\":\"com.narrow\",\"mounts\":[{\"sandbox\":\"/data/x\",\"dir\":\"/m/x\"}]}");
	reg_device_t *dev = NULL;
	ohb_error_t err;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	const reg_bundle_t *b = reg_device_find(dev, "com.map");
	ck_assert_ptr_nonnull(b);
	static const struct {
		const char *path, *dir, *rel;
	} cases[] = {
		{ "/data/storage/el2/base/files/a/b.txt", "/m/files", "a/b.txt" },
		{ "/data/storage/el2/base/files", "/m/files", "" },
		{ "/data/storage/el2/base/files/", "/m/files", "" },
		{ "/data/storage/el2/base/filesX/y", "/m/base", "filesX/y" },
		{ "/data/storage/el2/base", "/m/base", "" },
		{ "/data/storage/el2/database/x.db", "/m/root", "data/storage/el2/database/x.db" },
		{ "/", "/m/root", "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		const reg_mount_t *m = NULL;
		const char *rel = NULL;
		ck_assert_int_eq(reg_bundle_map(b, cases[i].path, &m, &rel, &err), 0);
		ck_assert_msg(strcmp(m->dir, cases[i].dir) == 0, "%s -> %s", cases[i].path, m->dir);
		ck_assert_str_eq(rel, cases[i].rel);
	}
	const reg_mount_t *m = NULL;
	const char *rel = NULL;
	ck_assert_int_eq(reg_bundle_map(b, "relative/path", &m, &rel, &err), OHB_E_INVAL);
	const reg_bundle_t *n = reg_device_find(dev, "com.narrow");
	ck_assert_int_eq(reg_bundle_map(n, "/data/xy", &m, &rel, &err), OHB_E_INVAL);
	ck_assert_int_eq(err.code, OHB_E_INVAL);
	ck_assert_int_eq(reg_bundle_map(n, "/data/y", &m, &rel, &err), OHB_E_INVAL);
	ck_assert_int_eq(reg_bundle_map(n, "/data/x/k", &m, &rel, &err), 0);
	ck_assert_str_eq(rel, "k");
	reg_device_free(dev);
	tmp_remove(root);
}
END_TEST

START_TEST(test_names)
{
	char long_name[201], max_name[128];
	memset(long_name, 'a', 200);
	long_name[200] = '\0';
	memset(max_name, 'b', 127);
	max_name[127] = '\0';
	ck_assert(reg_bundle_name_is_valid("com.example.app"));
	ck_assert(reg_bundle_name_is_valid("a"));
	ck_assert(reg_bundle_name_is_valid("a-b_c.D9"));
	ck_assert(reg_bundle_name_is_valid("com.example.app:1"));
	ck_assert(reg_bundle_name_is_valid("..a"));
	ck_assert(reg_bundle_name_is_valid(max_name));
	max_name[126] = '\0';
	ck_assert(reg_bundle_name_is_valid(max_name));
	ck_assert(!reg_bundle_name_is_valid(NULL));
	ck_assert(!reg_bundle_name_is_valid(""));
	ck_assert(!reg_bundle_name_is_valid("."));
	ck_assert(!reg_bundle_name_is_valid(".."));
	ck_assert(!reg_bundle_name_is_valid("a/b"));
	ck_assert(!reg_bundle_name_is_valid("a b"));
	ck_assert(!reg_bundle_name_is_valid("café"));
	ck_assert(!reg_bundle_name_is_valid(long_name));
	long_name[128] = '\0';
	ck_assert(!reg_bundle_name_is_valid(long_name));
	ck_assert(!reg_bundle_name_is_valid("com.x:"));
	ck_assert(!reg_bundle_name_is_valid(":1"));
	ck_assert(!reg_bundle_name_is_valid("com.x:1a"));
	ck_assert(!reg_bundle_name_is_valid("com.x:1:2"));
	ck_assert(!reg_bundle_name_is_valid("..:1"));
}
END_TEST

START_TEST(test_add_dir)
{
	char *tmp = tmp_root();
	char *root = fsu_join(tmp, "device");
	char *data = fsu_join(tmp, "appdata");
	char *file = fsu_join(tmp, "plain.txt");
	char *link = fsu_join(tmp, "link-to-appdata");
	char *missing = fsu_join(tmp, "missing");
	put(tmp, "appdata/notes/a.txt", "hello");
	put(tmp, "plain.txt", "x");
	ck_assert_int_eq(symlink(data, link), 0);
	ohb_error_t err;

	ck_assert_int_eq(reg_bundle_add_dir(root, "com.missing", missing, &err), OHB_E_INVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "missing"));
	ck_assert_int_eq(reg_bundle_add_dir(root, "com.file", file, &err), OHB_E_INVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "not a directory"));
	ck_assert_int_eq(reg_bundle_add_dir(root, "bad name", data, &err), OHB_E_INVAL);
	ck_assert_int_eq(reg_bundle_add_dir(root, "com.all", tmp, &err), OHB_E_INVAL);   /* holds the root */
	ck_assert_int_eq(reg_bundle_add_dir(root, "com.app", link, &err), 0);
	ck_assert_int_eq(reg_bundle_add_dir(root, "com.app", data, &err), OHB_E_INVAL);
	ck_assert_ptr_nonnull(strstr(err.message, "already registered"));

	reg_device_t *dev = NULL;
	ck_assert_int_eq(reg_device_open(root, &dev, &err), 0);
	ck_assert_uint_eq(dev->n_bundles, 1);
	ck_assert_uint_eq(dev->n_broken, 0);
	const reg_bundle_t *b = reg_device_find(dev, "com.app");
	ck_assert_ptr_nonnull(b);
	ck_assert(b->allow_backup_restore);
	ck_assert_uint_eq(b->n_includes, 1);
	ck_assert_str_eq(b->includes[0], "data/storage/el2/base/files/");
	ck_assert_uint_eq(b->n_mounts, 1);
	ck_assert_str_eq(b->mounts[0].sandbox_prefix, "/data/storage/el2/base/files");
	ck_assert_str_eq(b->mounts[0].dir, data);   /* the symlink, resolved */
	const reg_mount_t *m = NULL;
	const char *rel = NULL;
	ck_assert_int_eq(reg_bundle_map(b, "/data/storage/el2/base/files/notes/a.txt", &m, &rel, &err), 0);
	ck_assert_str_eq(rel, "notes/a.txt");
	ck_assert_int_eq(reg_bundle_map(b, "/data/storage/el1/database/x", &m, &rel, &err), OHB_E_INVAL);
	reg_device_free(dev);
	free(root);
	free(data);
	free(file);
	free(link);
	free(missing);
	tmp_remove(tmp);
}
END_TEST

extern Suite *registry_suite(void);

Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");
	TCase *tc = tcase_create("registry");
	tcase_add_test(tc, test_open_defaults);
	tcase_add_test(tc, test_descriptor_defaults);
	tcase_add_test(tc, test_broken_descriptors);
	tcase_add_test(tc, test_write_round_trip);
	tcase_add_test(tc, test_relative_mount_dir);
	tcase_add_test(tc, test_map);
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_add_dir);
	suite_add_tcase(s, tc);
	return s;
}
