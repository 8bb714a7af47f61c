/* SPDX-License-Identifier: MIT */
/* strv.h — NULL-terminated string vectors (owned). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "macro.h"

char **strv_free(char **l);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);
#define _cleanup_strv_free_ _cleanup_(strv_freep)

size_t strv_length(char *const *l);
/* Append a copy of s; *l may be NULL. */
void strv_extend(char ***l, const char *s);
/* Append s, taking ownership. */
void strv_consume(char ***l, char *s);
bool strv_contains(char *const *l, const char *s);
void strv_sort(char **l);
/* Join with sep into a new string ("" for an empty or NULL list). */
char *strv_join(char *const *l, const char *sep);
/* Split s at any character of seps, dropping empty fields. */
char **strv_split(const char *s, const char *seps);

#define STRV_FOREACH(s, l) for (char *const *s = (l); s && *s; s++)
