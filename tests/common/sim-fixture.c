/* SPDX-License-Identifier: MIT */
/* sim-fixture.c — see sim-fixture.h. The re-exec follows libvirt's VIR_TEST_MAIN_PRELOAD idea. */
#include "sim-fixture.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"

#ifndef SIM_FIXTURE_NVML_LIB
#define SIM_FIXTURE_NVML_LIB ""
#endif
#ifndef SIM_FIXTURE_KMOCK_LIB
#define SIM_FIXTURE_KMOCK_LIB ""
#endif

#define PRELOADED_ENV "GPUVIRT_TEST_KMOCK_PRELOADED"

const char *sim_fixture_nvml_lib(void)
{
        const char *v = getenv("GPUVIRT_SIM_NVML_LIB");
        return v && *v ? v : SIM_FIXTURE_NVML_LIB;
}

const char *sim_fixture_kmock_lib(void)
{
        const char *v = getenv("GPUVIRT_SIM_KMOCK");
        return v && *v ? v : SIM_FIXTURE_KMOCK_LIB;
}

/* Where hosts go: $GPUVIRT_TEST_TMPDIR, else /dev/shm when it is a writable tmpfs with room
 * (a host is tens of thousands of small files: a disk makes each test seconds slower), else
 * $TMPDIR, else /tmp. */
static const char *fixture_tmpdir(void)
{
        const char *v = getenv("GPUVIRT_TEST_TMPDIR");
        if (v && *v)
                return v;
        struct statvfs st;
        if (access("/dev/shm", W_OK) == 0 && statvfs("/dev/shm", &st) == 0 &&
            (uint64_t)st.f_bavail * st.f_frsize >= (1ull << 30) && st.f_favail >= 200000)
                return "/dev/shm";
        v = getenv("TMPDIR");
        return v && *v ? v : "/tmp";
}

int sim_fixture_create(const char *profile, char **ret_root)
{
        _cleanup_free_ char *dir = xasprintf("%s/gpuvirt-sim-XXXXXX", fixture_tmpdir());
        if (!mkdtemp(dir)) {
                int e = errno;
                fprintf(stderr, "sim-fixture: cannot create '%s': %s\n", dir, strerror(e));
                return -e;
        }
        struct gv_error *err = NULL;
        int r = sim_host_create(dir, profile, sim_fixture_nvml_lib(), &err);
        if (r < 0) {
                fprintf(stderr, "sim-fixture: %s\n", gv_error_msg(err, r));
                gv_error_free(err);
                (void)gv_rm_rf(dir);
                return r;
        }
        *ret_root = TAKE_PTR(dir);
        return 0;
}

void sim_fixture_destroy(char *root)
{
        if (!root)
                return;
        const char *keep = getenv("GPUVIRT_TEST_KEEP_ROOT");
        if (keep && strcmp(keep, "1") == 0)
                fprintf(stderr, "sim-fixture: keeping simulated host '%s'\n", root);
        else
                (void)gv_rm_rf(root);
        free(root);
}

void sim_fixture_reexec_with_kmock(int argc, char **argv)
{
        (void)argc;
        const char *done = getenv(PRELOADED_ENV);
        if (done && strcmp(done, "1") == 0)
                return;
        const char *kmock = sim_fixture_kmock_lib();
        if (!*kmock) {
                fprintf(stderr, "sim-fixture: the kernel mock was not built; set "
                        "GPUVIRT_SIM_KMOCK to its path\n");
                abort();
        }
        const char *old = getenv("LD_PRELOAD");
        _cleanup_free_ char *preload = old && *old ? xasprintf("%s:%s", kmock, old) : xstrdup(kmock);
        const char *asan = getenv("ASAN_OPTIONS");
        _cleanup_free_ char *asan_opts = asan && *asan ?
                xasprintf("%s:verify_asan_link_order=0", asan) :
                xstrdup("verify_asan_link_order=0");
        if (setenv("LD_PRELOAD", preload, 1) < 0 || setenv("ASAN_OPTIONS", asan_opts, 1) < 0 ||
            setenv(PRELOADED_ENV, "1", 1) < 0) {
                perror("sim-fixture: setenv");
                abort();
        }
        execv("/proc/self/exe", argv);
        fprintf(stderr, "sim-fixture: cannot re-exec '%s' with '%s': %s\n", argv[0], kmock,
                strerror(errno));
        abort();
}
