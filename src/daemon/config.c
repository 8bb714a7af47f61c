/* SPDX-License-Identifier: MIT */
/*
 * config.c — gpuvirtd's configuration file (config.h).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"

#define CONFIG_MAX (64u * 1024u)

/* Keys that may be given on several lines, each one more value (as the option repeated). */
static const char *const repeatable[] = { "shared-storage", NULL };

static char *trim(char *s)
{
        char *e;

        while (*s == ' ' || *s == '\t')
                s++;
        e = s + strlen(s);
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
                *--e = '\0';
        return s;
}

int gv_daemon_config_load(const char *path, const char *const *known, char ***argv,
                          struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **seen = NULL, **out = NULL;
        size_t len = 0;
        unsigned line = 0;
        char *save = NULL;
        int r = gv_read_file(path, CONFIG_MAX, &text, &len);

        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the configuration file '%s': %s.",
                                    path, strerror(-r));
        if (strlen(text) != len)
                return gv_error_set(err, EINVAL, "%s: holds a NUL byte; it is a text file of "
                                    "'key = value' lines.", path);
        /* strtok_r would skip empty lines and so miscount: split by hand. */
        for (char *p = text, *next; p; p = next) {
                next = strchr(p, '\n');
                if (next)
                        *next++ = '\0';
                line++;
                char *l = trim(p), *eq, *key, *value;
                if (!*l || *l == '#')
                        continue;
                eq = strchr(l, '=');
                if (!eq)
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' is not 'key = value'.",
                                            path, line, l);
                *eq = '\0';
                key = trim(l);
                value = trim(eq + 1);
                if (!strv_contains((char **)known, key)) {
                        _cleanup_free_ char *valid = strv_join((char **)known, ", ");
                        return gv_error_set(err, EINVAL, "%s:%u: unknown key '%s'; the keys are: "
                                            "%s.", path, line, key, valid);
                }
                if (!*value)
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' has no value (leave the "
                                            "line out for the default).", path, line, key);
                if (strv_contains(seen, key) && !strv_contains((char **)repeatable, key))
                        return gv_error_set(err, EINVAL, "%s:%u: '%s' is set twice.", path,
                                            line, key);
                strv_extend(&seen, key);
                strv_consume(&out, xasprintf("--%s=%s", key, value));
        }
        (void)save;
        STRV_FOREACH(a, out)
                strv_extend(argv, *a);
        return 0;
}
