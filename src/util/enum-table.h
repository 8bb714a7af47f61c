/* SPDX-License-Identifier: MIT */
/*
 * enum-table.h — one string table per exposed enum (systemd DEFINE_STRING_TABLE_LOOKUP).
 *
 *   enum gv_gpu_mode { GV_GPU_MODE_NONE, ..., _GV_GPU_MODE_MAX, _GV_GPU_MODE_INVALID = -EINVAL };
 *   static const char *const gpu_mode_table[_GV_GPU_MODE_MAX] = { [GV_GPU_MODE_NONE] = "none", ...};
 *   DEFINE_STRING_TABLE_LOOKUP(gv_gpu_mode, enum gv_gpu_mode, gpu_mode_table);
 *
 * gives gv_gpu_mode_to_string(v) (NULL for out-of-range) and gv_gpu_mode_from_string(s)
 * (-EINVAL for unknown or NULL input; never a default).
 */
#pragma once

#include <errno.h>
#include <string.h>

#include "macro.h"

#define DEFINE_STRING_TABLE_LOOKUP(name, type, table)                          \
        const char *name##_to_string(type v)                                   \
        {                                                                      \
                if ((int)v < 0 || (size_t)v >= ELEMENTSOF(table))              \
                        return NULL;                                           \
                return table[v];                                               \
        }                                                                      \
        type name##_from_string(const char *s)                                 \
        {                                                                      \
                if (!s)                                                        \
                        return (type)-EINVAL;                                  \
                for (size_t i = 0; i < ELEMENTSOF(table); i++)                 \
                        if (table[i] && strcmp(table[i], s) == 0)              \
                                return (type)i;                                \
                return (type)-EINVAL;                                          \
        }

/* Writes "a, b, c" of every table entry into a newly allocated string (for error hints). */
char *gv_string_table_join(const char *const *table, size_t n, const char *sep);
#define STRING_TABLE_JOIN(table, sep) gv_string_table_join((table), ELEMENTSOF(table), (sep))
