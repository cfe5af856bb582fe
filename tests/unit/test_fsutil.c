/* Tests of errors.c (the one errno mapping) and fsutil.c (atomic writes, copies, rm -rf). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "direct_copy.h"
#include "errors.h"
#include "fsutil.h"
#include "skip.h"

static char *
make_tmpdir(void)
{
	char tmpl[] = "/tmp/ohb-fsutil-XXXXXX";
	char *d = mkdtemp(tmpl);
	ck_assert_ptr_nonnull(d);
	return strdup(d);
}

START_TEST(errno_mapping_follows_reference)
{
	ck_assert_int_eq(ohb_code_from_errno(EPERM), 13900001);
	ck_assert_int_eq(ohb_code_from_errno(EIO), 13900005);
	ck_assert_int_eq(ohb_code_from_errno(EBADF), 13900005);
	ck_assert_int_eq(ohb_code_from_errno(EACCES), 13900005);
	ck_assert_int_eq(ohb_code_from_errno(EFBIG), 13900005);
	ck_assert_int_eq(ohb_code_from_errno(ENOMEM), 13900011);
	ck_assert_int_eq(ohb_code_from_errno(EMFILE), 13900011);
	ck_assert_int_eq(ohb_code_from_errno(ENOENT), 13900020);
	ck_assert_int_eq(ohb_code_from_errno(ENOTDIR), 13900020);
	ck_assert_int_eq(ohb_code_from_errno(EISDIR), 13900020);
	ck_assert_int_eq(ohb_code_from_errno(ENAMETOOLONG), 13900020);
	ck_assert_int_eq(ohb_code_from_errno(ENOSPC), 13900025);
	ck_assert_int_eq(ohb_code_from_errno(EXDEV), 13900042);
	ck_assert_str_eq(ohb_code_text(13900025), "No space left on device.");
}
END_TEST

START_TEST(fail_errno_names_the_cause)
{
	ohb_error_t err;
	int rc = ohb_fail_errno(&err, ENOSPC, "cannot write %s", "x.tar");
	ck_assert_int_eq(rc, OHB_E_NOSPC);
	ck_assert_int_eq(err.code, OHB_E_NOSPC);
	ck_assert_ptr_nonnull(strstr(err.message, "cannot write x.tar: "));
	ck_assert_int_eq(ohb_fail(NULL, 401, "no err object"), 401);
}
END_TEST

START_TEST(atomic_write_replaces_whole_file_and_leaves_no_temp)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	ck_assert_int_eq(fsu_write_atomic(d, "a.json", "old", 3, 0644, &err), 0);
	ck_assert_int_eq(fsu_write_atomic(d, "a.json", "newer", 5, 0600, &err), 0);
	char *p = fsu_join(d, "a.json");
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(fsu_read_file(p, 100, &text, &len, &err), 0);
	ck_assert_str_eq(text, "newer");
	struct stat st;
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	/* only a.json is left */
	char *cmd = fsu_printf("test $(ls -A %s | wc -l) -eq 1", d);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	free(text);
	free(p);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

START_TEST(atomic_write_into_missing_dir_fails_cleanly)
{
	ohb_error_t err;
	int rc = fsu_write_atomic("/nonexistent/ohb", "x", "1", 1, 0644, &err);
	ck_assert_int_eq(rc, 13900020);
	ck_assert_ptr_nonnull(strstr(err.message, "/nonexistent/ohb"));
}
END_TEST

START_TEST(read_file_caps_size)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	ck_assert_int_eq(fsu_write_atomic(d, "big", "0123456789", 10, 0644, &err), 0);
	char *p = fsu_join(d, "big");
	char *text = NULL;
	ck_assert_int_eq(fsu_read_file(p, 5, &text, NULL, &err), OHB_E_INVAL);
	ck_assert_int_eq(fsu_read_file(p, 10, &text, NULL, &err), 0);
	free(text);
	free(p);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

START_TEST(copy_fd_atomic_and_anon_fd)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	size_t n = 3u << 20;
	char *buf = malloc(n);
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)(i * 7);
	int fd = -1;
	ck_assert_int_eq(fsu_anon_fd(d, buf, n, &fd, &err), 0);
	uint64_t copied = 0;
	ck_assert_int_eq(fsu_copy_fd_atomic(fd, d, "copy", 0644, &copied, &err), 0);
	ck_assert_uint_eq(copied, n);
	close(fd);
	char *p = fsu_join(d, "copy");
	char *text = NULL;
	size_t len = 0;
	ck_assert_int_eq(fsu_read_file(p, n, &text, &len, &err), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_int_eq(memcmp(text, buf, n), 0);
	free(text);
	free(p);
	free(buf);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

START_TEST(rm_rf_does_not_follow_symlinks)
{
	char *d = make_tmpdir();
	char *outside = make_tmpdir();
	char *cmd = fsu_printf("mkdir -p %s/t/a/b && touch %s/t/a/b/f %s/keep && ln -s %s %s/t/a/link", d, d, outside,
	    outside, d);
	ck_assert_int_eq(system(cmd), 0);
	free(cmd);
	char *t = fsu_join(d, "t");
	ck_assert_int_eq(fsu_rm_rf(t, NULL), 0);
	ck_assert_int_ne(access(t, F_OK), 0);
	char *keep = fsu_join(outside, "keep");
	ck_assert_int_eq(access(keep, F_OK), 0);
	ck_assert_int_eq(fsu_rm_rf(t, NULL), 0);  /* missing is fine */
	free(keep);
	free(t);
	fsu_rm_rf(d, NULL);
	fsu_rm_rf(outside, NULL);
	free(d);
	free(outside);
}
END_TEST

START_TEST(uri_rule)
{
	ck_assert(fsu_uri_is_valid("part.0.tar"));
	ck_assert(fsu_uri_is_valid("3f9a0000aaaabbbb.db"));
	ck_assert(fsu_uri_is_valid("manage.json"));
	ck_assert(!fsu_uri_is_valid(""));
	ck_assert(!fsu_uri_is_valid(".."));
	ck_assert(!fsu_uri_is_valid("a/b"));
	ck_assert(!fsu_uri_is_valid("a-b"));
	ck_assert(!fsu_uri_is_valid("a b"));
}
END_TEST

START_TEST(tar_names_end_in_dot_tar)
{
	ck_assert(fsu_is_tar_name("part.0.tar"));
	ck_assert(fsu_is_tar_name("/data/storage/el2/base/files/own.tar"));
	ck_assert(fsu_is_tar_name(".tar"));
	ck_assert(!fsu_is_tar_name("part.0.TAR"));
	ck_assert(!fsu_is_tar_name("/data/x.tar/file"));
	ck_assert(!fsu_is_tar_name("tar"));
	ck_assert(!fsu_is_tar_name("a.tar.gz"));
	ck_assert(!fsu_is_tar_name(""));
}
END_TEST

START_TEST(url_encode_keeps_unreserved_and_slash)
{
	char *e = fsu_url_encode("a b/\xc3\xbc~x-y_z.0%?#");
	ck_assert_str_eq(e, "a%20b/%C3%BC~x-y_z.0%25%3F%23");
	free(e);
	e = fsu_url_encode("");
	ck_assert_str_eq(e, "");
	free(e);
	/* decoding it back with fsu_hex_digit gives the bytes again */
	e = fsu_url_encode("\x01\xff");
	ck_assert_str_eq(e, "%01%FF");
	ck_assert_int_eq(fsu_hex_digit(e[4]) * 16 + fsu_hex_digit(e[5]), 0xff);
	free(e);
}
END_TEST

START_TEST(mkdir_p_over_a_file_fails)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	char *deep = fsu_printf("%s/x/y/z", d);
	ck_assert_int_eq(fsu_mkdir_p(deep, 0755, &err), 0);
	ck_assert_int_eq(fsu_mkdir_p(deep, 0755, &err), 0);
	ck_assert_int_eq(fsu_write_atomic(d, "file", "x", 1, 0644, &err), 0);
	char *over = fsu_printf("%s/file/sub", d);
	ck_assert_int_ne(fsu_mkdir_p(over, 0755, &err), 0);
	free(over);
	free(deep);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* fsu_link_fd_atomic names an anonymous file without copying it, and never
 * links a file that has a name (an application's live file). */
START_TEST(link_fd_atomic_names_only_anonymous_files)
{
	char *d = make_tmpdir();
	ohb_error_t err;
	int fd = -1;
	ck_assert_int_eq(fsu_anon_fd(d, "tar bytes", 9, &fd, &err), 0);
	bool linked = false;
	uint64_t size = 0;
	ck_assert_int_eq(fsu_link_fd_atomic(fd, d, "part.0.tar", 0600, &linked, &size, &err), 0);
	ck_assert(linked);
	ck_assert_uint_eq(size, 9);
	struct stat fst, pst;
	ck_assert_int_eq(fstat(fd, &fst), 0);
	ck_assert_int_eq(fst.st_nlink, 1);
	char *p = fsu_join(d, "part.0.tar");
	ck_assert_int_eq(stat(p, &pst), 0);
	ck_assert_uint_eq(pst.st_ino, fst.st_ino);   /* the same file: nothing was copied */
	ck_assert_int_eq(pst.st_mode & 07777, 0600);
	char *text = NULL;
	ck_assert_int_eq(fsu_read_file(p, 100, &text, NULL, &err), 0);
	ck_assert_str_eq(text, "tar bytes");
	free(text);
	close(fd);

	/* A named file: not linked, nothing written. */
	ck_assert_int_eq(fsu_write_atomic(d, "live.db", "app data", 8, 0600, &err), 0);
	char *live = fsu_join(d, "live.db");
	fd = open(live, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	linked = true;
	ck_assert_int_eq(fsu_link_fd_atomic(fd, d, "copy.db", 0600, &linked, NULL, &err), 0);
	ck_assert(!linked);
	char *copy = fsu_join(d, "copy.db");
	ck_assert_int_ne(access(copy, F_OK), 0);
	close(fd);

	/* Anonymous, but not at offset 0, or not with the mode asked for: copied instead. */
	ck_assert_int_eq(fsu_anon_fd(d, "0123456789", 10, &fd, &err), 0);
	ck_assert_int_eq(lseek(fd, 4, SEEK_SET), 4);
	ck_assert_int_eq(fsu_link_fd_atomic(fd, d, "tail", 0600, &linked, NULL, &err), 0);
	ck_assert(!linked);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	ck_assert_int_eq(fsu_link_fd_atomic(fd, d, "mode", 0644, &linked, NULL, &err), 0);
	ck_assert(!linked);
	close(fd);

	/* No temp names left behind. */
	int n = 0;
	DIR *dir = opendir(d);
	struct dirent *de;
	while ((de = readdir(dir)) != NULL)
		n += de->d_name[0] != '.';
	closedir(dir);
	ck_assert_int_eq(n, 2);   /* part.0.tar, live.db */
	free(p);
	free(live);
	free(copy);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* A file of n pseudo-random bytes in dir; returns its fd (read-only, offset 0). */
static int
random_file(const char *dir, const char *name, size_t n, char **bytes_out)
{
	char *buf = malloc(n ? n : 1);
	ck_assert_ptr_nonnull(buf);
	uint32_t x = (uint32_t)n * 2654435761u + 1;
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (char)x;
	}
	ohb_error_t err;
	ck_assert_int_eq(fsu_write_atomic(dir, name, buf, n, 0600, &err), 0);
	char *p = fsu_join(dir, name);
	int fd = open(p, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	free(p);
	*bytes_out = buf;
	return fd;
}

static void
assert_file_is(const char *dir, const char *name, const char *bytes, size_t n)
{
	char *p = fsu_join(dir, name);
	char *text = NULL;
	size_t len = 0;
	ohb_error_t err;
	ck_assert_int_eq(fsu_read_file(p, n + 1, &text, &len, &err), 0);
	ck_assert_uint_eq(len, n);
	ck_assert_int_eq(memcmp(text, bytes, n), 0);
	free(text);
	free(p);
}

/* Whether this file system takes O_DIRECT at all (tmpfs before Linux 6.6 does not). */
static bool
dir_takes_direct(const char *dir)
{
	char *p = fsu_join(dir, ".probe");
	int fd = open(p, O_WRONLY | O_CREAT | O_DIRECT, 0600);
	if (fd >= 0)
		close(fd);
	unlink(p);
	free(p);
	return fd >= 0;
}

/* Every size shape: empty, under one block, whole blocks, a chunk and a
 * tail, many chunks; from offset 0 and from the middle of the source. The
 * bytes, the count, both offsets and out_fd's flags come out right. */
START_TEST(direct_copy_copies_every_shape)
{
	char *d = make_tmpdir();
	bool direct_ok = dir_takes_direct(d);
	if (!direct_ok)
		test_skip("no O_DIRECT on the temp folder", "fsutil: the direct path of direct_copy (%s)", d);
	const size_t sizes[] = {0, 100, DC_ALIGN, DC_ALIGN + 1, DC_CHUNK, DC_CHUNK + 4095,
	                        3 * DC_CHUNK + 777, 11 * DC_CHUNK + DC_ALIGN};
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		for (int from_middle = 0; from_middle < 2; from_middle++) {
			size_t n = sizes[k], skip = from_middle ? n / 3 : 0;
			char *bytes;
			int in = random_file(d, "src", n, &bytes);
			ck_assert_int_eq(lseek(in, (off_t)skip, SEEK_SET), (off_t)skip);
			char *out_path = fsu_join(d, "dst");
			int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
			ck_assert_int_ge(out, 0);
			int flags = fcntl(out, F_GETFL);
			uint64_t copied = 1;
			bool handled = false;
			ohb_error_t err;
			ck_assert_int_eq(direct_copy(in, out, &copied, &handled, &err), 0);
			ck_assert(handled == direct_ok);
			if (!handled)
				ck_assert_int_eq(fsu_copy_fd(in, out, &copied, &err), 0);
			ck_assert_uint_eq(copied, n - skip);
			ck_assert_int_eq(lseek(in, 0, SEEK_CUR), (off_t)n);
			ck_assert_int_eq(lseek(out, 0, SEEK_CUR), (off_t)(n - skip));
			ck_assert_int_eq(fcntl(out, F_GETFL), flags);
			close(out);
			close(in);
			assert_file_is(d, "dst", bytes + skip, n - skip);
			free(out_path);
			free(bytes);
		}
	}
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* Where the direct path cannot go it touches nothing: an out offset off the
 * block grid, O_APPEND. fsu_copy_fd_uncached then copies the plain way. */
START_TEST(direct_copy_declines_without_touching)
{
	char *d = make_tmpdir();
	char *bytes;
	size_t n = 9u << 20;
	int in = random_file(d, "src", n, &bytes);
	char *out_path = fsu_join(d, "dst");
	int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_eq(write(out, "abc", 3), 3);
	uint64_t copied = 0;
	bool handled = true;
	ohb_error_t err;
	ck_assert_int_eq(direct_copy(in, out, &copied, &handled, &err), 0);
	ck_assert(!handled);
	ck_assert_int_eq(lseek(in, 0, SEEK_CUR), 0);
	ck_assert_int_eq(lseek(out, 0, SEEK_CUR), 3);
	ck_assert_int_eq(fsu_copy_fd_uncached(in, out, &copied, &err), 0);
	ck_assert_uint_eq(copied, n);
	close(out);
	char *want = malloc(n + 3);
	memcpy(want, "abc", 3);
	memcpy(want + 3, bytes, n);
	assert_file_is(d, "dst", want, n + 3);
	free(want);

	out = open(out_path, O_WRONLY | O_TRUNC | O_APPEND);
	ck_assert_int_eq(lseek(in, 0, SEEK_SET), 0);
	handled = true;
	ck_assert_int_eq(direct_copy(in, out, &copied, &handled, &err), 0);
	ck_assert(!handled);
	ck_assert_int_eq(lseek(in, 0, SEEK_CUR), 0);
	close(out);
	close(in);
	free(out_path);
	free(bytes);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* A fresh file system of type fstype mounted at d/name (malloc'd path), or
 * NULL with the part recorded as skipped (mounting needs root; skip.h). */
static char *
mount_scratch(const char *d, const char *name, const char *fstype, const char *opts, const char *skipped)
{
	char *mnt = fsu_join(d, name);
	ck_assert_int_eq(mkdir(mnt, 0700), 0);
	if (mount(fstype, mnt, fstype, 0, opts) == 0)
		return mnt;
	test_skip("need root", "fsutil: %s (cannot mount a %s: %s)", skipped, fstype, strerror(errno));
	free(mnt);
	return NULL;
}

/* An atomic copy of a big file into a full file system: 13900025 with a
 * sentence, and nothing left behind (no temp file, no final name). Needs
 * root for the tmpfs; skipped otherwise. */
START_TEST(uncached_atomic_copy_on_a_full_disk)
{
	char *d = make_tmpdir();
	char *mnt = mount_scratch(d, "mnt", "tmpfs", "size=4m", "the full-disk copy");
	if (mnt) {
		char *bytes;
		int in = random_file(d, "src", 9u << 20, &bytes);
		ohb_error_t err;
		uint64_t copied = 0;
		int rc = fsu_copy_fd_atomic(in, mnt, "big", 0600, &copied, &err);
		ck_assert_int_eq(rc, OHB_E_NOSPC);
		ck_assert_ptr_nonnull(strstr(err.message, "big"));
		DIR *dir = opendir(mnt);
		struct dirent *de;
		int entries = 0;
		while ((de = readdir(dir)))
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
				entries++;
		closedir(dir);
		ck_assert_int_eq(entries, 0);
		close(in);
		free(bytes);
		umount2(mnt, MNT_DETACH);
	}
	free(mnt);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

/* A file system that takes no O_DIRECT (ramfs): direct_copy declines before
 * reading a byte, and the uncached and atomic copies are plain ones with the
 * same bytes. Needs root for the mount; skipped otherwise. */
START_TEST(uncached_copy_where_direct_io_is_refused)
{
	char *d = make_tmpdir();
	char *mnt = mount_scratch(d, "ram", "ramfs", NULL, "the refused-O_DIRECT copy");
	if (mnt) {
		ck_assert(!dir_takes_direct(mnt));
		char *bytes;
		size_t n = 9u << 20;
		int in = random_file(d, "src", n, &bytes);
		char *out_path = fsu_join(mnt, "dst");
		int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		ck_assert_int_ge(out, 0);
		uint64_t copied = 0;
		bool handled = true;
		ohb_error_t err;
		ck_assert_int_eq(direct_copy(in, out, &copied, &handled, &err), 0);
		ck_assert(!handled);
		ck_assert_int_eq(lseek(in, 0, SEEK_CUR), 0);
		ck_assert_int_eq(fsu_copy_fd_uncached(in, out, &copied, &err), 0);
		ck_assert_uint_eq(copied, n);
		close(out);
		assert_file_is(mnt, "dst", bytes, n);
		ck_assert_int_eq(lseek(in, 0, SEEK_SET), 0);
		ck_assert_int_eq(fsu_copy_fd_atomic(in, mnt, "atomic", 0600, &copied, &err), 0);
		assert_file_is(mnt, "atomic", bytes, n);
		close(in);
		free(out_path);
		free(bytes);
		umount2(mnt, MNT_DETACH);
	}
	free(mnt);
	fsu_rm_rf(d, NULL);
	free(d);
}
END_TEST

Suite *fsutil_suite(void)
{
	Suite *s = suite_create("fsutil");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, errno_mapping_follows_reference);
	tcase_add_test(tc, fail_errno_names_the_cause);
	tcase_add_test(tc, atomic_write_replaces_whole_file_and_leaves_no_temp);
	tcase_add_test(tc, atomic_write_into_missing_dir_fails_cleanly);
	tcase_add_test(tc, read_file_caps_size);
	tcase_add_test(tc, copy_fd_atomic_and_anon_fd);
	tcase_add_test(tc, rm_rf_does_not_follow_symlinks);
	tcase_add_test(tc, uri_rule);
	tcase_add_test(tc, tar_names_end_in_dot_tar);
	tcase_add_test(tc, url_encode_keeps_unreserved_and_slash);
	tcase_add_test(tc, mkdir_p_over_a_file_fails);
	tcase_add_test(tc, link_fd_atomic_names_only_anonymous_files);
	tcase_add_test(tc, direct_copy_copies_every_shape);
	tcase_add_test(tc, direct_copy_declines_without_touching);
	tcase_add_test(tc, uncached_atomic_copy_on_a_full_disk);
	tcase_add_test(tc, uncached_copy_where_direct_io_is_refused);
	suite_add_tcase(s, tc);
	return s;
}
