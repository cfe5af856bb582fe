/*
 * direct_copy — copies a file into another with O_DIRECT writes, reading and
 * writing at once. fsutil's uncached copies (fsu_copy_fd_uncached and the
 * atomic copy into a backup set) are built on it.
 *
 * Why: a big file copied into a backup set, or into a restore's stage, is not
 * read again soon. Written through the page cache it costs a page allocation
 * and a copy per 4 KiB (on a virtual machine whose free memory the host has
 * taken back, each new page is a fault in the host: measured 2.4 ms per MB,
 * 1.2 s for 500 MB, against 0.13 s into pages freed a moment before), pushes
 * the operator's working set out of memory, and leaves all of its writeback
 * to the fsync that follows. A direct write hands the caller's buffer to the
 * device and returns once the device has it: 500 MB in 0.36–0.40 s here,
 * whatever the state of memory (docs/PERFORMANCE.md).
 *
 * How: out_fd is reopened through /proc/self/fd with O_DIRECT, so the status
 * flags of out_fd (and of anyone sharing its open file description) never
 * change. That open checks the file's permissions like any other: a file the
 * caller cannot write by its mode (created 0444 by a non-root process) is not
 * handled, so create it writable and set its mode after. The first chunk is read with pread and written as a probe: a file
 * system that refuses direct writes (EINVAL) costs nothing and the caller
 * copies the ordinary way. Then the calling thread reads DC_CHUNK bytes at a
 * time into one of DC_SLOTS page-aligned buffers and DC_WRITERS threads write
 * full buffers at their offsets (reading and writing one after the other
 * was 30 % slower; a second writer gains a few per cent more). The tail of the file, under 4096 bytes, is
 * written through out_fd the ordinary way. Nothing is fsync'd: the caller's
 * fsync still makes the metadata (size, block map) durable.
 *
 * Memory: DC_SLOTS × DC_CHUNK = 8 MiB, mmap'd for the copy and unmapped after.
 */
#ifndef OHB_DIRECT_COPY_H
#define OHB_DIRECT_COPY_H

#include <stdbool.h>
#include <stdint.h>

#include "ohbackup.h"

#define DC_ALIGN 4096u           /* the largest logical block size of Linux block devices */
#define DC_CHUNK (2u << 20)
#define DC_SLOTS 4
#define DC_WRITERS 2

/* Copies in_fd (a regular file, from its offset to EOF) to out_fd (at its
 * offset, which must be a multiple of DC_ALIGN). *handled is false, with
 * nothing read or written and 0 returned, when the direct path cannot be
 * taken (offset, /proc, memory, the file system's refusal): copy another way.
 * When *handled is true the return is 0 or the error's code, with the file
 * offsets of both fds after the bytes copied, as a read/write loop would
 * leave them. *copied may be NULL. */
int direct_copy(int in_fd, int out_fd, uint64_t *copied, bool *handled, ohb_error_t *err);

#endif
