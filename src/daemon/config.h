/* SPDX-License-Identifier: MIT */
/*
 * config.h — gpuvirtd's configuration file (docs/configuration.md): `key = value` lines, `#`
 * comments, keys the long options' names. The file's settings become "--key=value" arguments
 * placed before the command line's, so an option given on the command line wins.
 */
#pragma once

#include "util/error.h"

/* Read `path` and append "--key=value" for each setting to *argv (a strv). Keys not in
 * `known` (NULL-terminated) are errors naming file, line and the valid keys; so are lines
 * without '=', empty values and a key given twice (but
 * 'shared-storage', which takes one directory a line). */
int gv_daemon_config_load(const char *path, const char *const *known, char ***argv,
                          struct gv_error **err);
