/*
 * fsutil — file-system primitives done the safe way once.
 *
 * The rule of the project is that nothing on disk is ever half written: a file
 * appears under its final name only after its bytes are on stable storage.
 * fsu_write_atomic and fsu_copy_fd_atomic implement that rule (temp name in
 * the same directory, fsync, rename, fsync of the directory), and every module
 * that writes a file goes through them.
 */
#include "fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "direct_copy.h"
#include "errors.h"

#define COPY_CHUNK (4u << 20)
/* An atomic copy asks the kernel to start writing back every this many bytes
 * as it goes, so that the fsync at its end waits for the tail only: copying
 * (CPU) and writing to the device overlap instead of following each other. */
#define WRITEBACK_EVERY (8u << 20)
/* Uncached copies (copy_uncached): sources smaller than this are copied the
 * plain way (a few page-cache pages cost less than direct_copy's threads). */
#define UNCACHED_MIN (8u << 20)

char *
fsu_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

char *
fsu_join(const char *a, const char *b)
{
	size_t la = strlen(a);
	while (*b == '/')
		b++;
	if (la > 0 && a[la - 1] == '/')
		return fsu_printf("%s%s", a, b);
	return fsu_printf("%s/%s", a, b);
}

int64_t
fsu_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
fsu_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool
fsu_is_tar_name(const char *name)
{
	size_t n = strlen(name);
	return n >= 4 && strcmp(name + n - 4, ".tar") == 0;
}

bool
fsu_uri_is_valid(const char *name)
{
	if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return false;
	if (strlen(name) > 255)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;
		bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '_' || c == '.';
		if (!ok)
			return false;
	}
	return true;
}

int
fsu_fsync_dir(const char *path, ohb_error_t *err)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot open directory %s", path);
	int rc = 0;
	if (fsync(fd) != 0 && errno != EINVAL)
		rc = ohb_fail_errno(err, errno, "cannot sync directory %s", path);
	close(fd);
	return rc;
}

int
fsu_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fsu_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = ENOSPC;   /* no progress: the device takes no more */
			return -1;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* fsu_copy_fd; with `writeback`, out_fd's pages are handed to the device
 * every WRITEBACK_EVERY bytes (sync_file_range: starts the I/O, waits for
 * nothing; the caller's fsync is what makes the data durable). */
static int
copy_fd(int in_fd, int out_fd, bool writeback, uint64_t *copied, ohb_error_t *err)
{
	uint64_t total = 0, kicked = 0;
	bool try_cfr = true, try_sendfile = true;
	char *buf = NULL;
	int rc = 0;

	for (;;) {
		ssize_t n;
		if (try_cfr) {
			n = copy_file_range(in_fd, NULL, out_fd, NULL, COPY_CHUNK, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
			    errno == EOPNOTSUPP || errno == EBADF)) {
				try_cfr = false;
				continue;
			}
		} else if (try_sendfile) {
			n = sendfile(out_fd, in_fd, NULL, COPY_CHUNK);
			if (n < 0 && (errno == EINVAL || errno == ENOSYS)) {
				try_sendfile = false;
				continue;
			}
		} else {
			if (!buf && !(buf = malloc(COPY_CHUNK))) {
				rc = ohb_fail(err, OHB_E_NOMEM, "out of memory while copying a file");
				break;
			}
			n = read(in_fd, buf, COPY_CHUNK);
			if (n > 0 && fsu_write_all(out_fd, buf, (size_t)n) != 0) {
				rc = ohb_fail_errno(err, errno, "cannot write");
				break;
			}
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = ohb_fail_errno(err, errno, "cannot copy data");
			break;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		if (writeback && total - kicked >= WRITEBACK_EVERY) {
			(void)sync_file_range(out_fd, (off_t)kicked, (off_t)(total - kicked), SYNC_FILE_RANGE_WRITE);
			kicked = total;
		}
	}
	free(buf);
	if (copied)
		*copied = total;
	return rc;
}

int
fsu_copy_fd(int in_fd, int out_fd, uint64_t *copied, ohb_error_t *err)
{
	return copy_fd(in_fd, out_fd, false, copied, err);
}

/* fsu_copy_fd_uncached; `writeback` as for copy_fd when it falls back. */
static int
copy_uncached(int in_fd, int out_fd, bool writeback, uint64_t *copied, ohb_error_t *err)
{
	struct stat st;
	if (fstat(in_fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= (off_t)UNCACHED_MIN) {
		bool handled;
		int rc = direct_copy(in_fd, out_fd, copied, &handled, err);
		if (handled)
			return rc;
	}
	return copy_fd(in_fd, out_fd, writeback, copied, err);
}

int
fsu_copy_fd_uncached(int in_fd, int out_fd, uint64_t *copied, ohb_error_t *err)
{
	return copy_uncached(in_fd, out_fd, false, copied, err);
}

static atomic_uint temp_counter;  /* only makes temp names unique; not program state */

static char *
temp_name(const char *dir, const char *name)
{
	unsigned n = atomic_fetch_add(&temp_counter, 1);
	return fsu_printf("%s/.%s.tmp.%ld.%u", dir, name, (long)getpid(), n);
}

/* Opens a fresh temp file next to dir/name; fills *tmp_out (malloc'd path). */
static int
open_temp(const char *dir, const char *name, mode_t mode, char **tmp_out, ohb_error_t *err)
{
	for (int attempt = 0; attempt < 100; attempt++) {
		char *tmp = temp_name(dir, name);
		if (!tmp)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
		if (fd >= 0) {
			*tmp_out = tmp;
			return fd;
		}
		int e = errno;
		free(tmp);
		if (e != EEXIST) {
			ohb_fail_errno(err, e, "cannot create a file in %s", dir);
			return -1;
		}
	}
	ohb_fail(err, OHB_E_IO, "cannot find a free temporary name in %s", dir);
	return -1;
}

/* fsync + close + rename + fsync(dir); removes tmp on failure. */
static int
commit_temp(int fd, char *tmp, const char *dir, const char *name, ohb_error_t *err)
{
	int rc = 0;
	char *final = NULL;
	if (fsync(fd) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot write %s/%s to disk", dir, name);
		close(fd);
		goto out;
	}
	if (close(fd) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot write %s/%s", dir, name);
		goto out;
	}
	final = fsu_join(dir, name);
	if (!final) {
		rc = ohb_fail(err, OHB_E_NOMEM, "out of memory");
		goto out;
	}
	if (rename(tmp, final) != 0) {
		rc = ohb_fail_errno(err, errno, "cannot rename into %s", final);
		goto out;
	}
	rc = fsu_fsync_dir(dir, err);
out:
	if (rc != 0)
		unlink(tmp);
	free(tmp);
	free(final);
	return rc;
}

int
fsu_write_atomic(const char *dir, const char *name, const void *data, size_t len, mode_t mode,
    ohb_error_t *err)
{
	char *tmp = NULL;
	int fd = open_temp(dir, name, mode, &tmp, err);
	if (fd < 0)
		return err ? err->code : OHB_E_IO;
	if (fsu_write_all(fd, data, len) != 0) {
		int rc = ohb_fail_errno(err, errno, "cannot write %s/%s", dir, name);
		close(fd);
		unlink(tmp);
		free(tmp);
		return rc;
	}
	return commit_temp(fd, tmp, dir, name, err);
}

int
fsu_copy_fd_atomic(int in_fd, const char *dir, const char *name, mode_t mode, uint64_t *copied,
    ohb_error_t *err)
{
	char *tmp = NULL;
	int fd = open_temp(dir, name, mode, &tmp, err);
	if (fd < 0)
		return err ? err->code : OHB_E_IO;
	int rc = copy_uncached(in_fd, fd, true, copied, err);
	if (rc != 0) {
		/* Name the file in the sentence: "cannot copy data" alone helps no one. */
		if (err) {
			char msg[sizeof err->message];
			snprintf(msg, sizeof msg, "%s", err->message);
			ohb_fail(err, rc, "cannot write %s/%s: %s", dir, name, msg);
		}
		close(fd);
		unlink(tmp);
		free(tmp);
		return rc;
	}
	return commit_temp(fd, tmp, dir, name, err);
}

int
fsu_link_fd_atomic(int in_fd, const char *dir, const char *name, mode_t mode, bool *linked,
    uint64_t *size, ohb_error_t *err)
{
	*linked = false;
	struct stat st;
	/* st_nlink == 0 is the safety rule: such a file has no name anywhere, so
	 * nothing but this fd can change it once it is ours. */
	if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink != 0 || st.st_uid != geteuid() ||
	    (st.st_mode & 07777) != mode || lseek(in_fd, 0, SEEK_CUR) != 0)
		return 0;
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", in_fd);
	char *tmp = NULL;
	for (int attempt = 0; attempt < 100 && !tmp; attempt++) {
		if (!(tmp = temp_name(dir, name)))
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		if (linkat(AT_FDCWD, proc, AT_FDCWD, tmp, AT_SYMLINK_FOLLOW) == 0)
			break;
		int e = errno;
		free(tmp);
		tmp = NULL;
		if (e != EEXIST)
			return 0;   /* EXDEV, not an O_TMPFILE file, no /proc, ...: copy instead */
	}
	if (!tmp)
		return 0;
	*linked = true;
	if (size)
		*size = (uint64_t)st.st_size;
	(void)lseek(in_fd, 0, SEEK_END);
	/* commit_temp closes the fd it is given: hand it a duplicate, the caller keeps in_fd. */
	int fd = fcntl(in_fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		int rc = ohb_fail_errno(err, errno, "cannot write %s/%s", dir, name);
		unlink(tmp);
		free(tmp);
		return rc;
	}
	return commit_temp(fd, tmp, dir, name, err);
}

int
fsu_read_fd(int fd, size_t max, char **out, size_t *len, ohb_error_t *err)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= max + 1) {
				free(buf);
				return ohb_fail(err, OHB_E_INVAL, "file is larger than %zu bytes", max);
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return ohb_fail(err, OHB_E_NOMEM, "out of memory");
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int rc = ohb_fail_errno(err, errno, "cannot read");
			free(buf);
			return rc;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return ohb_fail(err, OHB_E_INVAL, "file is larger than %zu bytes", max);
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int
fsu_read_file(const char *path, size_t max, char **out, size_t *len, ohb_error_t *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ohb_fail_errno(err, errno, "cannot open %s", path);
	int rc = fsu_read_fd(fd, max, out, len, err);
	if (rc != 0 && err) {
		char msg[sizeof err->message];
		snprintf(msg, sizeof msg, "%s", err->message);
		ohb_fail(err, rc, "%s: %s", path, msg);
	}
	close(fd);
	return rc;
}

int
fsu_anon_fd(const char *dir, const void *data, size_t len, int *fd_out, ohb_error_t *err)
{
	if (!dir) {
		dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/tmp";
	}
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0) {
		char *tmpl = fsu_join(dir, "ohbackup.XXXXXX");
		if (!tmpl)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		fd = mkostemp(tmpl, O_CLOEXEC);
		if (fd >= 0)
			unlink(tmpl);
		free(tmpl);
		if (fd < 0)
			return ohb_fail_errno(err, errno, "cannot create a temporary file in %s", dir);
	}
	if (fsu_write_all(fd, data, len) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
		int rc = ohb_fail_errno(err, errno, "cannot write a temporary file in %s", dir);
		close(fd);
		return rc;
	}
	*fd_out = fd;
	return 0;
}

int
fsu_mkdir_p(const char *path, mode_t mode, ohb_error_t *err)
{
	char *p = strdup(path);
	if (!p)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char saved = *s;
		*s = '\0';
		if (mkdir(p, mode) != 0 && errno != EEXIST) {
			rc = ohb_fail_errno(err, errno, "cannot create directory %s", p);
			break;
		}
		*s = saved;
		if (saved == '\0')
			break;
	}
	if (rc == 0) {
		struct stat st;
		if (stat(path, &st) != 0)
			rc = ohb_fail_errno(err, errno, "cannot create directory %s", path);
		else if (!S_ISDIR(st.st_mode))
			rc = ohb_fail(err, OHB_E_INVAL, "%s exists and is not a directory", path);
	}
	free(p);
	return rc;
}

/* Empties the directory open as dfd (which it closes), never following links. */
static int
rm_tree_at(int dfd, const char *what, ohb_error_t *err)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int rc = ohb_fail_errno(err, errno, "cannot read directory %s", what);
		close(dfd);
		return rc;
	}
	int rc = 0;
	struct dirent *de;
	while (rc == 0 && (de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), n, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM) {
			rc = ohb_fail_errno(err, errno, "cannot remove %s/%s", what, n);
			break;
		}
		int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0) {
			rc = ohb_fail_errno(err, errno, "cannot remove %s/%s", what, n);
			break;
		}
		rc = rm_tree_at(sub, what, err);
		if (rc == 0 && unlinkat(dirfd(d), n, AT_REMOVEDIR) != 0 && errno != ENOENT)
			rc = ohb_fail_errno(err, errno, "cannot remove %s/%s", what, n);
	}
	closedir(d);
	return rc;
}

int
fsu_rm_rf(const char *path, ohb_error_t *err)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : ohb_fail_errno(err, errno, "cannot remove %s", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return ohb_fail_errno(err, errno, "cannot remove %s", path);
		return 0;
	}
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return ohb_fail_errno(err, errno, "cannot remove %s", path);
	int rc = rm_tree_at(dfd, path, err);
	if (rc == 0 && rmdir(path) != 0 && errno != ENOENT)
		rc = ohb_fail_errno(err, errno, "cannot remove %s", path);
	return rc;
}

char *
fsu_url_encode(const char *path)
{
	char *out = malloc(strlen(path) * 3 + 1);
	if (!out)
		return NULL;
	static const char hex[] = "0123456789ABCDEF";
	char *o = out;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || strchr("-._~/", *p)) {
			*o++ = (char)*p;
		} else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

int
fsu_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
