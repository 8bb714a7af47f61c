/* SPDX-License-Identifier: MIT */
/*
 * error.h — the error convention (docs/HACKING.md, "Errors").
 *
 * Every fallible function returns int: >= 0 on success, -errno on failure. Functions whose
 * callers need a human-readable reason also take `struct gv_error **err` as their LAST
 * parameter (it may be NULL: the caller only wants the errno). Rules, after QEMU's error.h:
 *   - on success *err is never touched;
 *   - on failure *err is set to a new error (if err != NULL and *err == NULL);
 *   - the return value alone says whether the call failed;
 *   - never log and also return an error.
 * Context is added on the way up with gv_error_wrap(): "outer: inner".
 */
#pragma once

#include <stdarg.h>

#include "macro.h"

struct gv_error {
        int code;  /* positive errno */
        char *msg; /* whole sentence, no trailing newline */
};

/* Set *err (if err and !*err) to a new error; returns -code (code is a positive errno). */
int gv_error_set(struct gv_error **err, int code, const char *fmt, ...) _printf_(3, 4);
int gv_error_setv(struct gv_error **err, int code, const char *fmt, va_list ap) _printf_(3, 0);

/* Prefix context to an existing error: "context: old message". If *err is NULL (the callee
 * gave only an errno) a new error is made from code and strerror. Returns -code where code is
 * the error's code (or the given code when no error object was given). */
int gv_error_wrap(struct gv_error **err, int code, const char *fmt, ...) _printf_(3, 4);

/* Move src into *dst (if dst and !*dst), else free src. */
void gv_error_propagate(struct gv_error **dst, struct gv_error *src);

struct gv_error *gv_error_free(struct gv_error *e);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_error *, gv_error_free);

/* The message of e, or strerror(-r) when e is NULL. Never NULL. */
const char *gv_error_msg(const struct gv_error *e, int r);

/* "ENOENT", "EBUSY", ... for a positive or negative errno; "E<number>" for unknown values. */
const char *gv_errno_name(int code);
