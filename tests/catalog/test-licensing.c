/* SPDX-License-Identifier: MIT */
/* test-licensing.c — licence editions against ../shared/reference/vgpu.md §6 and §12. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "catalog/licensing.h"
#include "util/alloc.h"

/* The reference's "Series → licence edition" table, row by row, preferred edition first. */
static const struct {
        const char *series;
        const char *editions[4];
} series_rows[] = {
        { "A", { "vapps" } },
        { "B", { "vpc", "vws" } },
        { "Q", { "vws" } },
        { "C", { "nvaie", "vcs", "vws" } },
};

static void test_series_editions(void **state)
{
        (void)state;
        for (size_t i = 0; i < sizeof(series_rows) / sizeof(series_rows[0]); i++) {
                enum gv_vgpu_series s = gv_vgpu_series_from_string(series_rows[i].series);
                assert_true(s >= 0);
                enum gv_license_edition got[_GV_LICENSE_EDITION_MAX];
                size_t n = gv_license_editions_for_series(s, got), want = 0;
                while (want < 4 && series_rows[i].editions[want])
                        want++;
                assert_int_equal(n, want);
                for (size_t k = 0; k < n; k++)
                        assert_string_equal(gv_license_edition_to_string(got[k]),
                                            series_rows[i].editions[k]);
        }
        enum gv_license_edition none[_GV_LICENSE_EDITION_MAX];
        assert_int_equal(gv_license_editions_for_series(_GV_VGPU_SERIES_INVALID, none), 0);
}

static void test_names_round_trip(void **state)
{
        (void)state;
        for (int e = 0; e < _GV_LICENSE_EDITION_MAX; e++) {
                const char *s = gv_license_edition_to_string(e);
                assert_non_null(s);
                assert_int_equal(gv_license_edition_from_string(s), e);
                assert_non_null(gv_license_edition_title(e));
        }
        assert_int_equal(gv_license_edition_from_string("vWS"), -EINVAL); /* strict */
        assert_int_equal(gv_license_edition_from_string("grid"), -EINVAL);
        assert_int_equal(gv_license_edition_from_string(NULL), -EINVAL);
        assert_null(gv_license_edition_to_string(_GV_LICENSE_EDITION_MAX));
        assert_null(gv_license_edition_title(-1));
        char *names = gv_license_edition_names();
        assert_string_equal(names, "nvaie, vcs, vws, vpc, vapps");
        free(names);
}

/* Counting names; vPC never licenses pass-through. */
static void test_counting_and_passthrough(void **state)
{
        (void)state;
        assert_string_equal(gv_license_counting_to_string(GV_LICENSE_COUNT_GPU), "gpu");
        assert_int_equal(gv_license_counting_from_string("vm"), GV_LICENSE_COUNT_VM);
        assert_int_equal(gv_license_counting_from_string("seat"), -EINVAL);
        assert_false(gv_license_edition_covers_passthrough(GV_LICENSE_VPC));
        assert_true(gv_license_edition_covers_passthrough(GV_LICENSE_VWS));
        assert_true(gv_license_edition_covers_passthrough(GV_LICENSE_VAPPS));
        assert_true(gv_license_edition_covers_passthrough(GV_LICENSE_VCS));
        assert_false(gv_license_edition_covers_passthrough(_GV_LICENSE_EDITION_INVALID));
}

/* Every vGPU type in the shipped catalog has at least one edition that licenses it. */
static void test_catalog_types_licensable(void **state)
{
        (void)state;
        struct gv_catalog *c = NULL;
        assert_int_equal(gv_catalog_load_default(&c, NULL), 0);
        size_t types = 0;
        for (size_t m = 0; m < c->n_models; m++)
                for (size_t t = 0; t < c->models[m].n_vgpu_types; t++) {
                        enum gv_license_edition e[_GV_LICENSE_EDITION_MAX];
                        assert_true(gv_license_editions_for_series(
                                            c->models[m].vgpu_types[t].series, e) >= 1);
                        types++;
                }
        assert_true(types > 10);
        gv_catalog_free(c);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_series_editions),
                cmocka_unit_test(test_names_round_trip),
                cmocka_unit_test(test_counting_and_passthrough),
                cmocka_unit_test(test_catalog_types_licensable),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
