/* SPDX-License-Identifier: MIT */
#include "enum-table.h"

#include <stdbool.h>

#include "alloc.h"

char *gv_string_table_join(const char *const *table, size_t n, const char *sep)
{
        size_t len = 1, seplen = strlen(sep);
        for (size_t i = 0; i < n; i++)
                if (table[i])
                        len += strlen(table[i]) + seplen;
        char *s = xmalloc(len), *p = s;
        bool first = true;
        for (size_t i = 0; i < n; i++) {
                if (!table[i])
                        continue;
                if (!first) {
                        memcpy(p, sep, seplen);
                        p += seplen;
                }
                first = false;
                size_t l = strlen(table[i]);
                memcpy(p, table[i], l);
                p += l;
        }
        *p = 0;
        return s;
}
