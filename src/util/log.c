/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "enum-table.h"

static const char *const log_level_table[_GV_LOG_LEVEL_MAX] = {
        [GV_LOG_ERROR] = "error",
        [GV_LOG_WARNING] = "warning",
        [GV_LOG_INFO] = "info",
        [GV_LOG_DEBUG] = "debug",
};
DEFINE_STRING_TABLE_LOOKUP(gv_log_level, enum gv_log_level, log_level_table);

static int current_level = -1;

void gv_log_set_level(enum gv_log_level l)
{
        current_level = l;
}

enum gv_log_level gv_log_get_level(void)
{
        if (current_level < 0) {
                const char *e = secure_getenv("GPUVIRT_LOG_LEVEL");
                enum gv_log_level l = gv_log_level_from_string(e);
                current_level = l < 0 ? GV_LOG_WARNING : l;
        }
        return current_level;
}

void gv_log(enum gv_log_level l, const char *fmt, ...)
{
        if (l > gv_log_get_level())
                return;
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "%s: ", gv_log_level_to_string(l));
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
}
