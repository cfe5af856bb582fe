/*
 * errors — filling an ohb_error_t, and the one place errno becomes a spec code.
 *
 * Every fallible function in the backend returns 0 or an OHB_E_* code and, when
 * given an ohb_error_t *err (which may be NULL), writes a sentence into it with
 * ohb_fail / ohb_fail_errno. Callers propagate the code and keep the sentence.
 * Thread-safe (no shared state).
 */
#ifndef OHB_ERRORS_H
#define OHB_ERRORS_H

#include "ohbackup.h"

/* Sets err (if not NULL) to code and a printf-formatted sentence; returns code. */
int ohb_fail(ohb_error_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Maps errnum with ohb_code_from_errno and appends ": <strerror>"; returns the code. */
int ohb_fail_errno(ohb_error_t *err, int errnum, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Clears err to code 0 and an empty message. */
void ohb_error_clear(ohb_error_t *err);

#endif
