/*
 * errors — the spec's codes, their texts, and the errno mapping of REFERENCE.md
 * ("Error codes"). Keeping the mapping here, and only here, is what makes the
 * same failure read the same everywhere.
 */
#include "errors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *
ohb_code_text(int code)
{
	switch (code) {
	case OHB_OK: return "Success.";
	case OHB_E_PERMISSION: return "Permission verification failed.";
	case OHB_E_NOT_SYSTEM_APP: return "Not a system application.";
	case OHB_E_PARAM: return "Parameter error.";
	case OHB_E_NOT_SUPPORTED: return "The application is not added to the backup or restore.";
	case OHB_E_EXT_START_TIMEOUT: return "Failed to start application extension procedure.";
	case OHB_E_TIMEOUT: return "Backup or restore timed out.";
	case OHB_E_EXT_DIED: return "Application extension death.";
	case OHB_E_BUNDLE_EMPTY: return "The bundle info for backup or restore is empty.";
	case OHB_E_TAR: return "Failed to tar the file.";
	case OHB_E_EXT_THROW: return "The application extension threw an error.";
	case OHB_E_UNTAR: return "Failed to untar the file.";
	case OHB_E_EXT_BOOT: return "Failed to boot the application extension.";
	case OHB_E_CANCEL_UNSTARTED: return "Cancel of a task that has not started.";
	case OHB_E_CANCEL_UNKNOWN: return "Cancel of a task that does not exist.";
	case OHB_E_SESSION_CONFLICT: return "Session conflict.";
	case OHB_E_NOT_COMPATIBLE: return "Not compatible.";
	case OHB_E_IPC: return "IPC error.";
	case OHB_E_PERM: return "Operation not permitted.";
	case OHB_E_NOENT: return "No such file or directory.";
	case OHB_E_IO: return "I/O error.";
	case OHB_E_NOMEM: return "Out of memory.";
	case OHB_E_INVAL: return "Invalid argument.";
	case OHB_E_NOSPC: return "No space left on device.";
	case OHB_E_UNKNOWN: return "Unknown error.";
	default: return "Unknown error code.";
	}
}

int
ohb_code_from_errno(int errnum)
{
	switch (errnum) {
	case 0: return OHB_OK;
	case EPERM: return OHB_E_PERM;
	case EIO: case EBADF: case EACCES: case EFBIG: return OHB_E_IO;
	case ENOMEM: case EMFILE: return OHB_E_NOMEM;
	case ENOENT: case ENOTDIR: case EISDIR: case ENAMETOOLONG: return OHB_E_INVAL;
	case ENOSPC: case EDQUOT: return OHB_E_NOSPC;
	default: return OHB_E_UNKNOWN;
	}
}

static void __attribute__((format(printf, 4, 0)))
vset(ohb_error_t *err, int code, const char *suffix, const char *fmt, va_list ap)
{
	if (!err)
		return;
	err->code = code;
	int n = vsnprintf(err->message, sizeof err->message, fmt, ap);
	if (suffix && n >= 0 && (size_t)n < sizeof err->message)
		snprintf(err->message + n, sizeof err->message - (size_t)n, ": %s", suffix);
}

int
ohb_fail(ohb_error_t *err, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vset(err, code, NULL, fmt, ap);
	va_end(ap);
	return code;
}

int
ohb_fail_errno(ohb_error_t *err, int errnum, const char *fmt, ...)
{
	int code = ohb_code_from_errno(errnum);
	va_list ap;
	va_start(ap, fmt);
	vset(err, code, strerror(errnum), fmt, ap);
	va_end(ap);
	return code;
}

void
ohb_error_clear(ohb_error_t *err)
{
	if (!err)
		return;
	err->code = 0;
	err->message[0] = '\0';
}
