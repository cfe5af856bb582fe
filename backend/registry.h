/*
 * registry — the device: its identity and its installed bundles.
 *
 * Layout of a device root (docs/FORMATS.md):
 *   <root>/device.json                    {"deviceType","systemFullName","backupVersion"}
 *   <root>/bundles/<name>/bundle.json     one descriptor per bundle (below)
 *   <root>/bundles/<name>/sandbox/        the bundle's data, for bundles made by `demo`
 *   <root>/bundles/<name>/backup/         the service's temp files for this bundle
 *
 * A bundle's sandbox is what OpenHarmony calls "/" for the application: its
 * files have absolute sandbox paths like /data/storage/el2/base/files/a.txt.
 * The descriptor's "mounts" map sandbox path prefixes to real directories of
 * this machine (longest prefix wins). A demo bundle mounts "/" on its sandbox/
 * folder; `bundle add NAME DIR` mounts /data/storage/el2/base/files on DIR, so
 * any application folder of a plain Linux host can be backed up.
 *
 * bundle.json:
 *   {"name":"com.example.notes","appIndex":0,"versionCode":1000000,"versionName":"1.0.0",
 *    "extension":null,                       (an executable path, or null)
 *    "mounts":[{"sandbox":"/","dir":"sandbox"}],   (dir relative to the bundle folder, or absolute)
 *    "backup":{"allowToBackupRestore":true,"includes":[...],"excludes":[...],
 *              "fullBackupOnly":false,"restoreDeps":"","supportScene":"",
 *              "extraInfo":{},"requireCompatibility":false}}
 *
 * Thread model: a reg_device_t is immutable once opened; any thread may read it.
 */
#ifndef OHB_REGISTRY_H
#define OHB_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"

/* The 13 default includes of REFERENCE.md, used when a descriptor has none. */
extern const char *const reg_default_includes[];
extern const size_t reg_default_includes_count;

typedef struct reg_mount {
	char *sandbox_prefix;   /* absolute, no trailing slash except "/" itself */
	char *dir;              /* absolute real directory (resolved when the device is opened) */
} reg_mount_t;

typedef struct reg_bundle {
	char *name;
	int app_index;
	int64_t version_code;
	char *version_name;
	char *extension;                 /* executable path or NULL */
	bool allow_backup_restore;
	char **includes;                 /* never empty: defaults applied */
	size_t n_includes;
	char **excludes;
	size_t n_excludes;
	bool full_backup_only;
	char *restore_deps;              /* comma list, "" when none */
	char *support_scene;
	char *extra_info_json;           /* JSON text, "{}" when none */
	bool require_compatibility;
	char *bundle_dir;                /* <root>/bundles/<name> */
	char *temp_dir;                  /* <root>/bundles/<name>/backup */
	reg_mount_t *mounts;             /* sorted longest prefix first */
	size_t n_mounts;
} reg_bundle_t;

typedef struct reg_device {
	char *root;                      /* absolute */
	char *device_type;               /* "default" unless device.json says otherwise */
	char *system_full_name;          /* "OpenHarmony-5.0.0" unless device.json says otherwise */
	char *backup_version;            /* "16.0" unless device.json says otherwise */
	reg_bundle_t **bundles;          /* sorted by name */
	size_t n_bundles;
	char **broken;                   /* descriptors that failed to load: "name: reason" */
	size_t n_broken;
} reg_device_t;

/* Opens (and creates if missing) a device root. A descriptor that does not
 * parse is skipped and listed in dev->broken, so one bad file never hides the
 * others. */
int reg_device_open(const char *root, reg_device_t **out, ohb_error_t *err);
void reg_device_free(reg_device_t *dev);

/* NULL when not installed. */
const reg_bundle_t *reg_device_find(const reg_device_t *dev, const char *name);

/* A bundle name is valid when it is 1..127 chars of [A-Za-z0-9._-] (optionally
 * followed by ":<appIndex>"), and not "." or "..". */
bool reg_bundle_name_is_valid(const char *name);

/* Writes a new descriptor atomically (fails with 13900020 if the name is
 * invalid or already registered). `bundle add NAME DIR` uses the second form. */
int reg_bundle_write(const char *root, const reg_bundle_t *b, ohb_error_t *err);
int reg_bundle_add_dir(const char *root, const char *name, const char *dir, ohb_error_t *err);

/* Maps an absolute sandbox path to the mount that holds it. On success
 * *mount is the mount and *rel the part of the path below its prefix ("" for
 * the mount point itself, never starting with '/'). 13900020 when no mount
 * holds the path. Pure string work: touches no file. */
int reg_bundle_map(const reg_bundle_t *b, const char *sandbox_path, const reg_mount_t **mount,
    const char **rel, ohb_error_t *err);

#endif
