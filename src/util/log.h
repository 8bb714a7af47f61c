/* SPDX-License-Identifier: MIT */
/*
 * log.h — logging for programs (CLI, daemon, simulator tools). Library layers (src/util,
 * src/hw, src/catalog, src/sched) never log above debug: they return errors instead.
 * The level comes from GPUVIRT_LOG_LEVEL (error, warning, info, debug); default warning.
 */
#pragma once

#include "macro.h"

enum gv_log_level {
        GV_LOG_ERROR,
        GV_LOG_WARNING,
        GV_LOG_INFO,
        GV_LOG_DEBUG,
        _GV_LOG_LEVEL_MAX,
        _GV_LOG_LEVEL_INVALID = -EINVAL,
};

const char *gv_log_level_to_string(enum gv_log_level l);
enum gv_log_level gv_log_level_from_string(const char *s);

void gv_log_set_level(enum gv_log_level l);
enum gv_log_level gv_log_get_level(void);
void gv_log(enum gv_log_level l, const char *fmt, ...) _printf_(2, 3);

#define log_error(...) gv_log(GV_LOG_ERROR, __VA_ARGS__)
#define log_warning(...) gv_log(GV_LOG_WARNING, __VA_ARGS__)
#define log_info(...) gv_log(GV_LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                           \
        do {                                                     \
                if (gv_log_get_level() >= GV_LOG_DEBUG)          \
                        gv_log(GV_LOG_DEBUG, __VA_ARGS__);       \
        } while (0)
