/*
 * cloud_dir — the directory cloud driver: a folder of this machine is the
 * cloud ("file:///srv/cloud" or "/srv/cloud"). It is the embedded default and
 * also serves any mounted remote (NFS, sshfs, a synced folder).
 *
 * Two rules shape the code:
 *
 *  - Nothing inside the root is reached through a symlink. Every path is
 *    walked component by component with openat(O_NOFOLLOW | O_DIRECTORY), so
 *    a link planted in the cloud folder cannot send a get or put outside it;
 *    listings skip links. (The root itself may be a link: that is config.)
 *  - Nothing appears half written under its real name. put copies into
 *    ".<name>.ohbtmp.<pid>.<n>" in the target folder, fsyncs it, renames it
 *    over the target and fsyncs the folder — fsutil's rule, done on a folder
 *    fd because the fsu_*_atomic helpers take paths and paths follow links.
 *
 * Errors on the cloud side use the cloud contract (cloud_driver.h), not the
 * generic errno table: a missing file is 13900002 and ENOSPC/EDQUOT mean "the
 * cloud is full" (22400004). Errors writing the caller's fd in get are local
 * and keep the generic mapping (ENOSPC -> 13900025).
 */
#include "cloud_ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"
#include "fsutil.h"

#define DIR_CHUNK (256u * 1024u)   /* progress and cancel granularity */
#define DIR_MAX_DEPTH 128

typedef struct dir_cloud {
	char *root;
	uint64_t tmp_n;   /* counts temp names up from a random seed */
} dir_cloud_t;

/* A cloud-side errno as a sentence and the cloud contract's code. */
static int __attribute__((format(printf, 3, 4)))
dir_fail(ohb_error_t *err, int errnum, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	int code;
	switch (errnum) {
	case ENOENT: case ENOTDIR: case ELOOP: code = OHB_E_NOENT; break;
	case ENOSPC: case EDQUOT: code = CLOUD_E_LIMIT; break;
	default: code = ohb_code_from_errno(errnum); break;
	}
	if (code == CLOUD_E_LIMIT)
		return ohb_fail(err, code, "%s: the cloud is full (%s)", msg, strerror(errnum));
	return ohb_fail(err, code, "%s: %s", msg, strerror(errnum));
}

static int
dir_open(const char *url, const char *user, const char *password, void **impl, ohb_error_t *err)
{
	(void)user;
	(void)password;
	const char *path = url;
	if (strncasecmp(url, "file://", 7) == 0) {
		path = url + 7;
		if (strncasecmp(path, "localhost/", 10) == 0)
			path += 9;
	}
	if (path[0] != '/')
		return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud URL %s does not name an absolute folder", url);
	struct stat st;
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud folder %s does not exist", path);
	dir_cloud_t *dc = calloc(1, sizeof *dc);
	if (!dc || !(dc->root = strdup(path))) {
		free(dc);
		return ohb_fail(err, OHB_E_NOMEM, "out of memory opening the cloud folder %s", path);
	}
	dc->tmp_n = cloud_temp_seed(dc);
	*impl = dc;
	return OHB_OK;
}

static void
dir_close(void *impl)
{
	dir_cloud_t *dc = impl;
	if (!dc)
		return;
	free(dc->root);
	free(dc);
}

/* The root is opened on every call: a mounted remote may come and go. */
static int
open_root(dir_cloud_t *dc, int *fd, ohb_error_t *err)
{
	*fd = open(dc->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*fd >= 0)
		return OHB_OK;
	int e = errno;
	if (e == ENOENT || e == ENOTDIR)
		return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud folder %s does not exist", dc->root);
	return ohb_fail(err, CLOUD_E_NOT_READY, "the cloud folder %s cannot be opened: %s", dc->root, strerror(e));
}

/* Opens the folder holding path (relative, already valid) without following
 * any symlink, creating missing folders when `create`. *leaf points into path
 * at the last component. The caller closes *pfd. */
static int
walk_parent(dir_cloud_t *dc, const char *path, bool create, int *pfd, const char **leaf, ohb_error_t *err)
{
	int cur;
	int rc = open_root(dc, &cur, err);
	if (rc != OHB_OK)
		return rc;
	const char *p = path;
	const char *slash;
	while ((slash = strchr(p, '/')) != NULL) {
		char comp[256];
		snprintf(comp, sizeof comp, "%.*s", (int)(slash - p), p);
		int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0 && errno == ENOENT && create) {
			if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
				int e = errno;
				close(cur);
				return dir_fail(err, e, "cannot create the cloud folder %.*s", (int)(slash - path), path);
			}
			next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		}
		if (next < 0) {
			int e = errno;
			close(cur);
			return dir_fail(err, e, "cannot open the cloud folder %.*s", (int)(slash - path), path);
		}
		close(cur);
		cur = next;
		p = slash + 1;
	}
	*pfd = cur;
	*leaf = p;
	return OHB_OK;
}

static void
fill_entry(cloud_entry_t *e, const struct stat *st)
{
	e->is_dir = S_ISDIR(st->st_mode);
	e->size = e->is_dir ? 0 : (uint64_t)st->st_size;
	e->mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
	long long ns = (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
	snprintf(e->etag, sizeof e->etag, "%llu-%lld", (unsigned long long)e->size, ns);
}

/* Appends everything below the open folder dfd (taken over and closed) to
 * vec, named prefix/name. Links, sockets and our temp files are skipped. */
static int
list_rec(int dfd, const char *prefix, int depth, cloud_entry_vec_t *vec, ohb_error_t *err)
{
	if (depth > DIR_MAX_DEPTH) {
		close(dfd);
		return ohb_fail(err, OHB_E_INVAL, "the cloud folder %s is nested too deeply", prefix);
	}
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return dir_fail(err, e, "cannot list the cloud folder %s", *prefix ? prefix : "/");
	}
	int rc = OHB_OK;
	struct dirent *de;
	while (rc == OHB_OK && (errno = 0, de = readdir(d)) != NULL) {
		const char *name = de->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || cloud_is_temp_name(name))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;   /* vanished while we looked */
		if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			continue;
		char *rel = *prefix ? fsu_printf("%s/%s", prefix, name) : strdup(name);
		if (!rel) {
			rc = ohb_fail(err, OHB_E_NOMEM, "out of memory listing the cloud");
			break;
		}
		cloud_entry_t tmp = {0};
		fill_entry(&tmp, &st);
		rc = cloud_entry_vec_add(vec, rel, tmp.is_dir, tmp.size, tmp.mtime_ms, tmp.etag, err);
		if (rc == OHB_OK && tmp.is_dir) {
			int cfd = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd >= 0)
				rc = list_rec(cfd, rel, depth + 1, vec, err);
		}
		free(rel);
	}
	closedir(d);
	return rc;
}

static int
dir_list(void *impl, const char *dir, cloud_entry_t **out, size_t *n, ohb_error_t *err)
{
	dir_cloud_t *dc = impl;
	int dfd;
	int rc;
	if (!*dir) {
		rc = open_root(dc, &dfd, err);
		if (rc != OHB_OK)
			return rc;
	} else {
		int pfd;
		const char *leaf;
		rc = walk_parent(dc, dir, false, &pfd, &leaf, err);
		if (rc == OHB_E_NOENT)
			return OHB_OK;   /* a missing folder lists as empty */
		if (rc != OHB_OK)
			return rc;
		dfd = openat(pfd, leaf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(pfd);
		if (dfd < 0) {
			if (e == ENOENT || e == ENOTDIR || e == ELOOP)
				return OHB_OK;
			return dir_fail(err, e, "cannot list the cloud folder %s", dir);
		}
	}
	cloud_entry_vec_t vec = {0};
	rc = list_rec(dfd, dir, 0, &vec, err);
	if (rc != OHB_OK) {
		cloud_entries_free(vec.v, vec.n);
		return rc;
	}
	*out = vec.v;
	*n = vec.n;
	return OHB_OK;
}

static int
dir_stat(void *impl, const char *path, cloud_entry_t *out, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = walk_parent(impl, path, false, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	int r = fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW);
	int e = errno;
	close(pfd);
	if (r != 0)
		return dir_fail(err, e, "cannot find %s in the cloud", path);
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return ohb_fail(err, OHB_E_NOENT, "%s in the cloud is not a file or folder (a link is never followed)",
		    path);
	out->path = strdup(path);
	if (!out->path)
		return ohb_fail(err, OHB_E_NOMEM, "out of memory");
	fill_entry(out, &st);
	return OHB_OK;
}

/* Moves up to len bytes from in (at *in_off, or its position when NULL) to
 * out's position: copy_file_range, else read + write. Returns the count (0 at
 * end of input) or -1 with errno. */
static ssize_t
copy_some(int in, off_t *in_off, int out, size_t len)
{
	ssize_t k = copy_file_range(in, in_off, out, NULL, len, 0);
	if (k >= 0 || (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
	    errno != EBADF))
		return k;
	char buf[64 * 1024];
	size_t want = len < sizeof buf ? len : sizeof buf;
	ssize_t r = in_off ? pread(in, buf, want, *in_off) : read(in, buf, want);
	if (r <= 0)
		return r;
	for (ssize_t done = 0; done < r;) {
		ssize_t w = write(out, buf + done, (size_t)(r - done));
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += w;
	}
	if (in_off)
		*in_off += r;
	return r;
}

static int
dir_get(void *impl, const char *path, uint64_t offset, int out_fd, const cloud_transfer_t *t, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = walk_parent(impl, path, false, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	int fd = openat(pfd, leaf, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	int e = errno;
	close(pfd);
	if (fd < 0)
		return dir_fail(err, e, "cannot open %s in the cloud", path);
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return ohb_fail(err, OHB_E_INVAL, "%s in the cloud is not a file", path);
	}
	uint64_t size = (uint64_t)st.st_size;
	if (offset > size) {
		close(fd);
		return ohb_fail(err, OHB_E_INVAL, "cannot resume %s at byte %llu: the cloud copy has only %llu bytes",
		    path, (unsigned long long)offset, (unsigned long long)size);
	}
	off_t pos = (off_t)offset;
	cloud_xfer_progress(t, offset, size);
	for (;;) {
		if (cloud_xfer_cancelled(t)) {
			rc = ohb_fail(err, CLOUD_CANCELLED, "the download of %s was cancelled", path);
			break;
		}
		ssize_t k = copy_some(fd, &pos, out_fd, DIR_CHUNK);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			rc = ohb_fail_errno(err, errno, "cannot download %s from the cloud", path);
			break;
		}
		if (k == 0)
			break;
		cloud_xfer_progress(t, (uint64_t)pos, size > (uint64_t)pos ? size : (uint64_t)pos);
	}
	close(fd);
	return rc;
}

static int
dir_put(void *impl, const char *path, int in_fd, uint64_t size, const cloud_transfer_t *t, cloud_entry_t *out,
    ohb_error_t *err)
{
	dir_cloud_t *dc = impl;
	int pfd;
	const char *leaf;
	int rc = walk_parent(dc, path, true, &pfd, &leaf, err);
	if (rc != OHB_OK)
		return rc;
	char *tmp = NULL;
	int fd = -1;
	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		free(tmp);
		tmp = cloud_temp_path(leaf, dc->tmp_n++);
		if (!tmp)
			break;
		fd = openat(pfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (fd < 0 && errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = tmp ? errno : ENOMEM;
		free(tmp);
		close(pfd);
		return dir_fail(err, e, "cannot create a temporary file for %s in the cloud", path);
	}
	uint64_t done = 0;
	cloud_xfer_progress(t, 0, size);
	while (rc == OHB_OK && done < size) {
		if (cloud_xfer_cancelled(t)) {
			rc = ohb_fail(err, CLOUD_CANCELLED, "the upload of %s was cancelled", path);
			break;
		}
		uint64_t left = size - done;
		ssize_t k = copy_some(in_fd, NULL, fd, left < DIR_CHUNK ? (size_t)left : DIR_CHUNK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			rc = dir_fail(err, errno, "cannot upload %s to the cloud", path);
		else if (k == 0)
			rc = ohb_fail(err, OHB_E_IO, "cannot upload %s: the local file ended after %llu of %llu bytes", path,
			    (unsigned long long)done, (unsigned long long)size);
		else {
			done += (uint64_t)k;
			cloud_xfer_progress(t, done, size);
		}
	}
	struct stat st;
	if (rc == OHB_OK && (fsync(fd) != 0 || fstat(fd, &st) != 0))
		rc = dir_fail(err, errno, "cannot write %s to the cloud", path);
	if (close(fd) != 0 && rc == OHB_OK)
		rc = dir_fail(err, errno, "cannot write %s to the cloud", path);
	if (rc == OHB_OK && renameat(pfd, tmp, pfd, leaf) != 0)
		rc = dir_fail(err, errno, "cannot put %s in place in the cloud", path);
	if (rc != OHB_OK)
		unlinkat(pfd, tmp, 0);
	else
		fsync(pfd);   /* the rename is durable; a failure here changes nothing we can undo */
	free(tmp);
	close(pfd);
	if (rc == OHB_OK && out) {
		out->path = strdup(path);
		if (!out->path)
			return ohb_fail(err, OHB_E_NOMEM, "out of memory");
		fill_entry(out, &st);
	}
	return rc;
}

static int
dir_remove(void *impl, const char *path, ohb_error_t *err)
{
	int pfd;
	const char *leaf;
	int rc = walk_parent(impl, path, false, &pfd, &leaf, err);
	if (rc == OHB_E_NOENT)
		return OHB_OK;
	if (rc != OHB_OK)
		return rc;
	int r = unlinkat(pfd, leaf, 0);
	if (r != 0 && (errno == EISDIR || errno == EPERM)) {
		struct stat st;
		if (fstatat(pfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
			r = unlinkat(pfd, leaf, AT_REMOVEDIR);
	}
	int e = errno;
	if (r == 0)
		fsync(pfd);
	close(pfd);
	if (r != 0 && e != ENOENT) {
		if (e == ENOTEMPTY || e == EEXIST)
			return ohb_fail(err, OHB_E_INVAL, "cannot remove the cloud folder %s: it is not empty", path);
		return dir_fail(err, e, "cannot remove %s from the cloud", path);
	}
	return OHB_OK;
}

static int
dir_move(void *impl, const char *from, const char *to, ohb_error_t *err)
{
	int fpfd, tpfd;
	const char *fleaf, *tleaf;
	int rc = walk_parent(impl, from, false, &fpfd, &fleaf, err);
	if (rc != OHB_OK)
		return rc;
	struct stat st;
	if (fstatat(fpfd, fleaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		int e = errno;
		close(fpfd);
		return dir_fail(err, e, "cannot move %s in the cloud", from);
	}
	rc = walk_parent(impl, to, true, &tpfd, &tleaf, err);
	if (rc != OHB_OK) {
		close(fpfd);
		return rc;
	}
	int r = renameat2(fpfd, fleaf, tpfd, tleaf, RENAME_NOREPLACE);
	if (r != 0 && errno == EINVAL) {
		/* a file system without RENAME_NOREPLACE (some network mounts) */
		if (fstatat(tpfd, tleaf, &st, AT_SYMLINK_NOFOLLOW) == 0)
			errno = EEXIST;
		else
			r = renameat(fpfd, fleaf, tpfd, tleaf);
	}
	int e = errno;
	if (r == 0) {
		fsync(tpfd);
		fsync(fpfd);
	}
	close(fpfd);
	close(tpfd);
	if (r == 0)
		return OHB_OK;
	if (e == EEXIST || e == ENOTEMPTY)
		return ohb_fail(err, OHB_E_INVAL, "cannot move %s to %s in the cloud: %s already exists", from, to, to);
	return dir_fail(err, e, "cannot move %s to %s in the cloud", from, to);
}

const cloud_ops_t cloud_dir_ops = {
	.kind = "dir",
	.open = dir_open,
	.close = dir_close,
	.list = dir_list,
	.stat = dir_stat,
	.get = dir_get,
	.put = dir_put,
	.remove = dir_remove,
	.move = dir_move,
};
