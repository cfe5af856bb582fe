/*
 * capability — the capability file of getLocalCapabilities (REFERENCE.md
 * "Capability file"): building it from the device, and parsing one handed to
 * SessionRestore.appendBundles.
 *
 * Parsing validates each entry on its own: where OpenHarmony drops the whole
 * list for one bad entry, we keep the good ones and say which entry is bad and
 * why. Thread-safe (no shared state).
 */
#ifndef OHB_CAPABILITY_H
#define OHB_CAPABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ohbackup.h"
#include "registry.h"

/* Builds the capability JSON (malloc'd, NUL-terminated) for every bundle of
 * dev. spaceOccupied is the byte size of the files a backup would take (the
 * bundle's includes/excludes). When times is not NULL, it is the incremental
 * variant: each entry also has increSpaceOccupied = bytes of files with mtime
 * (ms) > that bundle's lastIncrementalTime (bundles not named in times use 0). */
int cap_build_json(const reg_device_t *dev, const ohb_incremental_time_t *times, size_t n_times,
    char **json_out, ohb_error_t *err);

/* cap_build_json that also keeps the listings its walks made, for the backup
 * that usually follows (service.c): lists has dev->n_bundles zeroed slots;
 * bundle i's listing (scan_bundle_snapshot) lands in lists[i] while the
 * listings kept hold at most CAP_KEEP_ENTRIES entries in all (about 100 bytes
 * an entry); later bundles are only measured and their slots stay empty.
 * The caller frees the lists (scan_list_free), also on failure. */
#define CAP_KEEP_ENTRIES 65536u
struct scan_list;
int cap_build_json_keep(const reg_device_t *dev, const ohb_incremental_time_t *times, size_t n_times,
    struct scan_list *lists, char **json_out, ohb_error_t *err);

typedef struct cap_bundle {
	char *name;
	int app_index;
	int64_t version_code;
	char *version_name;
	int64_t space_occupied;
	int64_t incre_space_occupied;  /* -1 when absent */
	bool all_to_backup;
	bool full_backup_only;
	bool require_compatibility;
	char *extension_name;
	char *restore_deps;            /* "" when absent */
	bool valid;                    /* false: the entry is malformed ... */
	char *invalid_reason;          /* ... and this says which field and why */
} cap_bundle_t;

typedef struct cap_file {
	char *backup_version;
	char *device_type;
	char *system_full_name;
	cap_bundle_t *bundles;
	size_t n_bundles;
} cap_file_t;

/* Parses a capability document. Fails (13900020, with a sentence) only when
 * the document as a whole is unusable (not JSON, no bundleInfos array); bad
 * entries come back with valid=false. An entry with no usable name is kept
 * with name "" so its index can be reported. */
int cap_parse(const char *json, size_t len, cap_file_t *out, ohb_error_t *err);
void cap_file_free(cap_file_t *cf);

/* The entry named `name`, or NULL. */
const cap_bundle_t *cap_find(const cap_file_t *cf, const char *name);

#endif
