/* SPDX-License-Identifier: MIT */
/*
 * test-nvml-load.c — loading NVML without the simulator: library absent, not a library, a
 * library missing a required symbol (fixture-nvml-initonly), a library with the required
 * symbols only, some under older names (fixture-nvml-minimal); the errno table; the symbol
 * table's shape.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expected-errno.h"
#include "hw/nvml/nvml-internal.h"
#include "hw/nvml/nvml.h"
#include "util/fileio.h"

#define assert_contains(hay, needle)                                                     \
        do {                                                                             \
                const char *h_ = (hay);                                                  \
                if (!h_ || !strstr(h_, (needle)))                                        \
                        fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", (needle)); \
        } while (0)

static void test_absent(void **state)
{
        (void)state;
        struct gv_nvml *n = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        int r = gv_nvml_open("/nonexistent/gpuvirt-test/libnvidia-ml.so.1", &n, &err);
        assert_int_equal(r, -ENOENT);
        assert_null(n);
        assert_non_null(err);
        assert_int_equal(err->code, ENOENT);
        assert_contains(err->msg, "NVML library '/nonexistent/gpuvirt-test/libnvidia-ml.so.1' "
                                  "not found (");
        assert_contains(err->msg, "NVIDIA driver not installed or not in the library path");
        assert_contains(err->msg, "GPU inventory from sysfs still works, MIG and vGPU "
                                  "management need NVML");
}

static void test_not_a_library(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-nvml-test-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *path = gv_path_join(dir, "libnvidia-ml.so.1");
        assert_int_equal(gv_write_file(path, "this is not an ELF file\n", GV_WRITE_CREATE), 0);

        struct gv_nvml *n = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_nvml_open(path, &n, &err);
        assert_int_equal(r, -ELIBACC);
        assert_null(n);
        assert_contains(err->msg, path);
        assert_contains(err->msg, "could not be loaded");
        assert_int_equal(gv_rm_rf(dir), 0);
}

static void test_missing_required_symbol(void **state)
{
        (void)state;
        struct gv_nvml *n = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        int r = gv_nvml_open(FIXTURE_INITONLY, &n, &err);
        assert_int_equal(r, -ELIBBAD);
        assert_null(n);
        /* nvmlShutdown is the first required row after nvmlInit_v2 (which the fixture has) */
        assert_contains(err->msg, "does not export the required symbol 'nvmlShutdown'");
        assert_contains(err->msg, "'" FIXTURE_INITONLY "'");
        assert_contains(err->msg, "more)");
}

static void test_minimal(void **state)
{
        (void)state;
        _cleanup_(gv_nvml_unrefp) struct gv_nvml *n = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        struct gv_nvml_device *d = NULL;

        assert_int_equal(gv_nvml_open(FIXTURE_MINIMAL, &n, &err), 0);
        assert_null(err);
        assert_string_equal(gv_nvml_library_path(n), FIXTURE_MINIMAL);

        /* every optional capability is missing from the fixture */
        for (int c = 0; c < _GV_NVML_CAP_MAX; c++)
                if (gv_nvml_has(n, c))
                        fail_msg("capability '%s' set for a library without its symbols",
                                 gv_nvml_cap_to_string(c));

        _cleanup_free_ char *driver = NULL, *nvmlv = NULL;
        assert_int_equal(gv_nvml_driver_version(n, &driver, NULL), 0);
        assert_string_equal(driver, "999.1.2");
        assert_int_equal(gv_nvml_nvml_version(n, &nvmlv, NULL), 0);
        assert_string_equal(nvmlv, "12.999.1.2");

        unsigned count = 0; /* through the older name nvmlDeviceGetCount */
        assert_int_equal(gv_nvml_device_count(n, &count, NULL), 0);
        assert_int_equal(count, 1);

        assert_int_equal(gv_nvml_device_by_index(n, 0, &d, NULL), 0);
        /* labelled through nvmlDeviceGetPciInfo_v2, numeric fields (busId left empty) */
        assert_string_equal(gv_nvml_device_label(d), "GPU 0000:18:00.0");
        struct gv_nvml_device *d2 = NULL;
        assert_int_equal(gv_nvml_device_by_pci(n, "0000:18:00.0", &d2, NULL), 0);
        assert_ptr_equal(d, d2); /* same handle, same object */

        struct gv_nvml_pci_info pci;
        assert_int_equal(gv_nvml_device_pci_info(d, &pci, NULL), 0);
        assert_int_equal(pci.addr.domain, 0);
        assert_int_equal(pci.addr.bus, 0x18);
        assert_int_equal(pci.vendor, 0x10de);
        assert_int_equal(pci.device, 0x2330);
        assert_int_equal(pci.subsystem_vendor, 0x10de);
        assert_int_equal(pci.subsystem_device, 0x16c1);

        struct gv_nvml_memory mem;
        assert_int_equal(gv_nvml_device_memory(d, &mem, NULL), 0);
        assert_false(mem.has_reserved); /* v1 */
        assert_true(mem.total == 81559ull << 20);
        struct gv_nvml_utilization u;
        assert_int_equal(gv_nvml_device_utilization(d, &u, NULL), 0);
        assert_int_equal(u.gpu_pct, 42);
        assert_int_equal(u.memory_pct, 7);
        uint32_t mw = 0;
        assert_int_equal(gv_nvml_device_power(d, &mw, NULL), 0);
        assert_int_equal(mw, 123456);

        /* optional symbols missing: -EOPNOTSUPP naming the symbol (and the version that added
         * it when the reference says) */
        int celsius;
        assert_int_equal(gv_nvml_device_temperature(d, &celsius, &err), -EOPNOTSUPP);
        assert_contains(err->msg, "does not export 'nvmlDeviceGetTemperature'");
        err = gv_error_free(err);

        bool cur, pend;
        assert_int_equal(gv_nvml_mig_mode(d, &cur, &pend, &err), -EOPNOTSUPP);
        assert_contains(err->msg, "'nvmlDeviceGetMigMode'");
        assert_contains(err->msg, FIXTURE_MINIMAL);
        err = gv_error_free(err);

        bool het;
        assert_int_equal(gv_nvml_vgpu_heterogeneous_mode(d, &het, &err), -EOPNOTSUPP);
        assert_contains(err->msg, "'nvmlDeviceGetVgpuHeterogeneousMode' (added in NVML 12.4)");
        err = gv_error_free(err);

        struct gv_mig_gi_profile p;
        assert_int_equal(gv_nvml_gi_profile_info(d, 0, &p, &err), -EOPNOTSUPP);
        assert_contains(err->msg, "'nvmlDeviceGetGpuInstanceProfileInfo'");
        err = gv_error_free(err);

        /* an NVML error from the library: call, argument, symbolic code, NVML's own text */
        struct gv_nvml_device *none = NULL;
        assert_int_equal(gv_nvml_device_by_uuid(n, "GPU-nope", &none, &err), -ENOENT);
        assert_null(none);
        assert_string_equal(err->msg, "nvmlDeviceGetHandleByUUID('GPU-nope'): "
                                      "NVML_ERROR_NOT_FOUND (Fixture Not Found)");
        err = gv_error_free(err);
        assert_int_equal(gv_nvml_device_by_index(n, 3, &none, &err), -EINVAL);
        assert_string_equal(err->msg, "nvmlDeviceGetHandleByIndex_v2(index 3): "
                                      "NVML_ERROR_INVALID_ARGUMENT (Fixture Error)");
}

static void test_refcount(void **state)
{
        (void)state;
        struct gv_nvml *n = NULL;

        assert_int_equal(gv_nvml_open(FIXTURE_MINIMAL, &n, NULL), 0);
        assert_ptr_equal(gv_nvml_ref(n), n);
        assert_null(gv_nvml_unref(n));
        /* still loaded and usable after the first unref */
        unsigned count = 0;
        assert_int_equal(gv_nvml_device_count(n, &count, NULL), 0);
        assert_int_equal(count, 1);
        assert_null(gv_nvml_unref(n));
        assert_null(gv_nvml_unref(NULL));
}

static void test_errno_table(void **state)
{
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(expected_errno); i++) {
                assert_int_equal(gv_nvml_return_to_errno(expected_errno[i].code),
                                 expected_errno[i].errnum);
                assert_string_equal(gv_nvml_return_to_string(expected_errno[i].code),
                                    expected_errno[i].name);
        }
        assert_int_equal(gv_nvml_return_to_errno(0), 0);
        assert_string_equal(gv_nvml_return_to_string(0), "NVML_SUCCESS");
        /* not an NVML code */
        assert_int_equal(gv_nvml_return_to_errno(31), EIO);
        assert_null(gv_nvml_return_to_string(31));
        assert_int_equal(gv_nvml_return_to_errno(-1), EIO);

        /* an unknown code still produces a message naming the call and the number */
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(nvml_fail(NULL, (nvmlReturn_t)4242, &err, "nvmlFoo", "GPU %d", 1),
                         -EIO);
        assert_string_equal(err->msg, "nvmlFoo(GPU 1): NVML_ERROR_4242 (no description)");
}

static void test_symbol_table(void **state)
{
        (void)state;
        bool cap_seen[_GV_NVML_CAP_MAX] = { false };

        assert_true(gv_nvml_symbol_table_size * sizeof(void *) == sizeof(struct gv_nvml_syms));
        for (size_t i = 0; i < gv_nvml_symbol_table_size; i++) {
                const struct gv_nvml_symbol *s = &gv_nvml_symbol_table[i];

                assert_non_null(s->names[0]);
                assert_true(s->offset % sizeof(void *) == 0);
                if (s->required)
                        assert_int_equal(s->cap, -1);
                else {
                        assert_in_range(s->cap, 0, _GV_NVML_CAP_MAX - 1);
                        cap_seen[s->cap] = true;
                }
                for (size_t j = i + 1; j < gv_nvml_symbol_table_size; j++) {
                        assert_string_not_equal(s->names[0], gv_nvml_symbol_table[j].names[0]);
                        assert_true(s->offset != gv_nvml_symbol_table[j].offset);
                }
        }
        for (int c = 0; c < _GV_NVML_CAP_MAX; c++)
                if (!cap_seen[c])
                        fail_msg("no symbol carries capability '%s'", gv_nvml_cap_to_string(c));

        /* capability names round-trip; unknown is -EINVAL */
        for (int c = 0; c < _GV_NVML_CAP_MAX; c++)
                assert_int_equal(gv_nvml_cap_from_string(gv_nvml_cap_to_string(c)), c);
        assert_int_equal(gv_nvml_cap_from_string("warp-drive"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_absent),
                cmocka_unit_test(test_not_a_library),
                cmocka_unit_test(test_missing_required_symbol),
                cmocka_unit_test(test_minimal),
                cmocka_unit_test(test_refcount),
                cmocka_unit_test(test_errno_table),
                cmocka_unit_test(test_symbol_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
