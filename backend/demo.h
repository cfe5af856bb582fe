/*
 * demo — builds a demo device: eight bundles of realistic shape (many small
 * files in deep trees, big media files over the 2 MiB limit, a bundle that
 * forbids backup, excluded caches, UTF-8 and very long paths, one with a
 * BackupExtensionAbility script), so every path through backup and restore
 * can be tried without a real device.
 *
 * The device is a function of the seed alone: the same seed gives the same
 * files, sizes, contents, modes and mtimes on every machine.
 *
 * Thread-safe (no shared state); writes only below root.
 */
#ifndef OHB_DEMO_H
#define OHB_DEMO_H

#include <stdint.h>

#include "ohbackup.h"

/* Builds the demo bundles in the device root (created if missing) and writes
 * device.json when it is absent. A root that already holds bundles (or broken
 * bundle folders) is refused with 13900020: the demo never overwrites. */
int demo_build(const char *root, uint64_t seed, ohb_error_t *err);

/* Gives a demo device a directory cloud: cloud_dir (absolute, created) gets
 * three of the gallery bundle's camera photos under media/Camera and a note
 * under apps/com.example.notes, and <root>/cloud/config.json names it, so
 * the cloudSync commands and the console's Cloud screen have something to
 * list and sync at once. Files are written atomically; an existing
 * config.json is replaced. */
int demo_build_cloud(const char *root, const char *cloud_dir, ohb_error_t *err);

#endif
