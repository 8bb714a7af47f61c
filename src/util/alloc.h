/* SPDX-License-Identifier: MIT */
/*
 * alloc.h — allocation that aborts on OOM (as crun and GLib do). Every request and every
 * user-controlled resource is bounded elsewhere, so OOM cannot be triggered remotely.
 */
#pragma once

#include <stdarg.h>
#include <stddef.h>

#include "macro.h"

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
/* realloc of an array: checks nmemb*size for overflow. */
void *xreallocarray(void *p, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
char *xvasprintf(const char *fmt, va_list ap) _printf_(1, 0);

/* Allocate n zeroed elements of type t, overflow-checked. */
#define xnew0(t, n) ((t *)xcalloc((n), sizeof(t)))
