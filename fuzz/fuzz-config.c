/* SPDX-License-Identifier: MIT */
/*
 * fuzz-config — gpuvirtd's configuration file (src/daemon/config.c, docs/configuration.md):
 * `key = value` lines and `#` comments, read from a file as gpuvirtd reads it.
 *
 * The keys are gpuvirtd's long options that take a value (the list in gpuvirtd.c's opts[],
 * copied: the parser's behaviour does not depend on which keys exist, only on the list given).
 * Checked besides "no crash": every argument produced is "--KEY=VALUE" with KEY one of the
 * known keys and VALUE not empty, and the arguments already in argv are kept in front.
 */
#include <string.h>

#include "daemon/config.h"
#include "fuzz.h"
#include "util/alloc.h"
#include "util/strv.h"

static const char *const known[] = {
        "state-dir", "role", "socket", "listen", "sysfs-root", "nvml-library", "qemu", "accel",
        "stop-timeout", "orphan-grace", "shared-storage", "controller", "host-name",
        "advertise", "store", "api-socket", "api-listen", "host-down-after", "agent-timeout",
        "migration-stall-timeout", "sample-interval", "metrics-interval", "web-dir", NULL,
};

static const char *dir;
static char *path;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        dir = fuzz_tmpdir("config");
        path = xasprintf("%s/gpuvirtd.conf", dir);
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        fuzz_write_file(dir, "gpuvirtd.conf", data, size);
        strv_extend(&argv, "gpuvirtd");
        int r = gv_daemon_config_load(path, known, &argv, &e);
        if ((r < 0) != (e != NULL))
                fuzz_fail("gv_daemon_config_load returned %d with%s an error", r,
                          e ? "" : "out");
        if (!argv || strcmp(argv[0], "gpuvirtd") != 0)
                fuzz_fail("the arguments before the file's were lost");
        if (r < 0) {
                if (strv_length(argv) != 1)
                        fuzz_fail("a refused file still added %zu arguments",
                                  strv_length(argv) - 1);
                return 0;
        }
        STRV_FOREACH(a, argv + 1) {
                const char *eq = strchr(*a, '=');
                if (strncmp(*a, "--", 2) != 0 || !eq || !eq[1])
                        fuzz_fail("argument '%s' is not --KEY=VALUE", *a);
                _cleanup_free_ char *key = xstrndup(*a + 2, (size_t)(eq - *a - 2));
                if (!strv_contains((char *const *)known, key))
                        fuzz_fail("argument '%s' names an unknown key", *a);
        }
        return 0;
}
