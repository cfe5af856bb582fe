/*
 * incremental — what an incremental backup sends (REFERENCE.md "Incremental
 * backup"), given the bundle's current scan and the base backup's all.rp:
 *
 * - a file is sent when it is new, or its size, mtime (seconds) or mode
 *   differs from the base; its SHA-256 is computed only for such files (for
 *   all.rp). Unlike OpenHarmony we also send a file that was only touched
 *   (same hash, new mtime): the tar entry is what brings its mtime back on a
 *   restore. A directory is sent when it is new or its mode or mtime changed;
 * - changed files up to 2 MiB go into <now_ms>_part.<N>.tar (same tar rules
 *   as packer.h, split at 100 MiB / 6000 entries), each tar followed by
 *   <now_ms>_part.<N>.rp listing its entries (isIncremental 1);
 * - each changed bigger file is sent raw under pack_big_file_name(), followed
 *   by <that name>.rp, a one-row report;
 * - *all_out receives every current file and directory (sorted), with the hash
 *   when it was computed now or carried over from the base row when size and
 *   mtime are unchanged ("" otherwise).
 *
 * manage_out lists the tars and big files (not the .rp files), as manage.h
 * describes; the caller sends manage.json last with all.rp as its manifest
 * fd. An empty base sends everything (a self-contained backup).
 *
 * rp_from_scan builds the all.rp of a full backup (no hashes: an incremental
 * against it compares size, mtime and mode first and hashes only then).
 *
 * One call per thread; calls on different threads are independent.
 */
#ifndef OHB_INCREMENTAL_H
#define OHB_INCREMENTAL_H

#include <stdint.h>

#include "manage.h"
#include "ohbackup.h"
#include "packer.h"
#include "registry.h"
#include "rp.h"
#include "scanner.h"

int inc_pack_bundle(const reg_bundle_t *b, const scan_list_t *list, const rp_list_t *base, int64_t now_ms,
    const char *tmp_dir, const pack_sink_t *sink, manage_list_t *manage_out, rp_list_t *all_out,
    pack_result_t *result, ohb_error_t *err);

int rp_from_scan(const scan_list_t *list, rp_list_t *out, ohb_error_t *err);

#endif
