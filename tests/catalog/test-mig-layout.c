/* SPDX-License-Identifier: MIT */
/*
 * test-mig-layout — MIG geometry on the shipped profiles (A100-40GB, H100 PCIe, A30) and on a
 * hand-built geometry that never touched the catalog: free placements, plans that must match
 * the placements NVIDIA's driver was seen to choose (mig.md §4), the MUG order issue, and the
 * failure messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "catalog/mig-layout.h"
#include "util/alloc.h"

static struct gv_catalog *catalog;

static int setup(void **state)
{
        struct gv_error *e = NULL;
        (void)state;
        int r = gv_catalog_load_default(&catalog, &e);
        if (r < 0) {
                print_error("catalog: %s\n", gv_error_msg(e, r));
                gv_error_free(e);
                return -1;
        }
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        catalog = gv_catalog_free(catalog);
        return 0;
}

static const struct gv_gpu_model *model(const char *name, struct gv_mig_geometry *g)
{
        const struct gv_gpu_model *m = gv_catalog_find(catalog, name);
        assert_non_null(m);
        gv_mig_geometry_from_model(m, g);
        return m;
}

static const struct gv_mig_gi_profile *by_id(const struct gv_gpu_model *m, uint32_t id)
{
        const struct gv_mig_gi_profile *p = gv_gpu_model_find_gi_profile_id(m, id);
        assert_non_null(p);
        return p;
}

static struct gv_mig_instance inst(const struct gv_mig_gi_profile *p, uint32_t start)
{
        return (struct gv_mig_instance){
                .profile = p,
                .placement = { .start = start, .size = p->memory_slices },
        };
}

/* Plan `-cgi ids` on an empty GPU or next to existing; check the starts. */
static void plan_ids(const char *gpu, const struct gv_mig_instance *existing, size_t n_existing,
                     const uint32_t *ids, size_t n, const uint32_t *want_starts)
{
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model(gpu, &g);
        const struct gv_mig_gi_profile *wanted[16];
        struct gv_mig_placement got[16];
        struct gv_error *e = NULL;

        for (size_t i = 0; i < n; i++)
                wanted[i] = by_id(m, ids[i]);
        int r = gv_mig_plan(&g, existing, n_existing, wanted, n, got, &e);
        if (r < 0)
                fail_msg("plan failed: %s", gv_error_msg(e, r));
        for (size_t i = 0; i < n; i++) {
                if (got[i].start != want_starts[i])
                        fail_msg("%s: wanted[%zu] (%s) placed at %u, expected %u", gpu, i,
                                 wanted[i]->name, got[i].start, want_starts[i]);
                assert_int_equal(got[i].size, wanted[i]->memory_slices);
        }
}

static void test_masks(void **state)
{
        (void)state;
        struct gv_mig_placement p = { .start = 4, .size = 4 };
        assert_int_equal(gv_mig_placement_mask(&p), 0xf0);
        p = (struct gv_mig_placement){ .start = 6, .size = 1 };
        assert_int_equal(gv_mig_placement_mask(&p), 0x40);
        p = (struct gv_mig_placement){ .start = 30, .size = 4 };
        assert_int_equal(gv_mig_placement_mask(&p), 0); /* beyond 32 slices */
        p = (struct gv_mig_placement){ .start = 0, .size = 32 };
        assert_int_equal(gv_mig_placement_mask(&p), UINT32_MAX);
}

static void test_free_placements(void **state)
{
        (void)state;
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model("H100-PCIe-80GB", &g);
        const struct gv_mig_gi_profile *p3g = gv_gpu_model_find_gi_profile(m, "3g.40gb");
        const struct gv_mig_gi_profile *p1g = gv_gpu_model_find_gi_profile(m, "1g.10gb");
        const struct gv_mig_gi_profile *p2g = gv_gpu_model_find_gi_profile(m, "2g.20gb");
        struct gv_mig_placement buf[8];

        assert_int_equal(gv_mig_free_placements(p3g, 0, NULL), 2);
        /* 1g.10gb at slice 2 blocks 3g placement 0-3; 4-7 stays. */
        struct gv_mig_instance one = inst(p1g, 2);
        uint32_t occ = gv_mig_occupied(&one, 1);
        assert_int_equal(occ, 0x4);
        assert_int_equal(gv_mig_free_placements(p3g, occ, buf), 1);
        assert_int_equal(buf[0].start, 4);
        assert_int_equal(buf[0].size, 4);
        /* 2g.20gb: {0,2,4}:2 minus the one at 2. */
        assert_int_equal(gv_mig_free_placements(p2g, occ, buf), 2);
        assert_int_equal(buf[0].start, 0);
        assert_int_equal(buf[1].start, 4);
        /* 1g.10gb: 0..6 minus 2. */
        assert_int_equal(gv_mig_free_placements(p1g, occ, buf), 6);
        assert_int_equal(buf[2].start, 3);
        /* Full GPU: nothing. */
        assert_int_equal(gv_mig_free_placements(p1g, 0xff, NULL), 0);
}

static void test_plan_driver_examples(void **state)
{
        (void)state;
        /* MUG `-cgi 9,19,14,19`: 1g at 0:1 and 1:1, 2g at 2:2, 3g at 4:4. */
        plan_ids("A100-PCIe-40GB", NULL, 0, (const uint32_t[]){ 9, 19, 14, 19 }, 4,
                 (const uint32_t[]){ 4, 0, 2, 1 });
        /* MUG `-cgi 19,14,5`: 1g at 6:1, 2g at 4:2, 4g at 0:4. */
        plan_ids("A100-PCIe-40GB", NULL, 0, (const uint32_t[]){ 19, 14, 5 }, 3,
                 (const uint32_t[]){ 6, 4, 0 });
        /* SCW H100 `-cgi 9,19,19,19`: 1g at 0:1, 1:1, 2:1; 3g at 4:4. */
        plan_ids("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 9, 19, 19, 19 }, 4,
                 (const uint32_t[]){ 4, 0, 1, 2 });
}

static void test_plan_order_issue(void **state)
{
        (void)state;
        /* MUG known issue: `-cgi 19,19,14,9` fails on the driver because the 3g comes last;
         * planned as a set, larger first, it fits. */
        plan_ids("A100-PCIe-40GB", NULL, 0, (const uint32_t[]){ 19, 19, 14, 9 }, 4,
                 (const uint32_t[]){ 0, 1, 2, 4 });
        plan_ids("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 19, 19, 14, 9 }, 4,
                 (const uint32_t[]){ 0, 1, 2, 4 });
}

static void test_plan_keeps_capacity(void **state)
{
        (void)state;
        /* A lone 1g goes to slice 6: it keeps 4g (0-3) placeable, unlike 0-3, and keeps more
         * free placements than 4 or 5. */
        plan_ids("A100-PCIe-40GB", NULL, 0, (const uint32_t[]){ 19 }, 1, (const uint32_t[]){ 6 });
        /* Seven 1g fill 0-6. */
        plan_ids("A100-PCIe-40GB", NULL, 0, (const uint32_t[]){ 19, 19, 19, 19, 19, 19, 19 }, 7,
                 (const uint32_t[]){ 0, 1, 2, 3, 4, 5, 6 });
        /* Two 3g: 0 and 4. 1g double-memory x4: 0 2 4 6. */
        plan_ids("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 9, 9 }, 2,
                 (const uint32_t[]){ 0, 4 });
        plan_ids("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 15, 15, 15, 15 }, 4,
                 (const uint32_t[]){ 0, 2, 4, 6 });
        /* A lone 2g keeps both 3g... impossible; it keeps 4g at 0 by going to 4. */
        plan_ids("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 14 }, 1, (const uint32_t[]){ 4 });

        /* Next to existing instances: a 4g at 0 leaves 4-7 to the 3g. */
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model("H100-PCIe-80GB", &g);
        struct gv_mig_instance ex[] = { inst(by_id(m, 5), 0) };
        plan_ids("H100-PCIe-80GB", ex, 1, (const uint32_t[]){ 9 }, 1, (const uint32_t[]){ 4 });
        /* A 1g at 6 existing: 2g at 2 or 4 with the 1g+me beside it both leave one 2g
         * placeable and five free placements; the tie packs low: 1g+me at 0, 2g at 2. */
        struct gv_mig_instance ex2[] = { inst(by_id(m, 19), 6) };
        plan_ids("H100-PCIe-80GB", ex2, 1, (const uint32_t[]){ 20, 14 }, 2,
                 (const uint32_t[]){ 0, 2 });

        /* A30: 4 slices. Two 2g.12gb at 0 and 2; a 1g next to a 2g+me. */
        plan_ids("A30", NULL, 0, (const uint32_t[]){ 5, 5 }, 2, (const uint32_t[]){ 0, 2 });
        plan_ids("A30", NULL, 0, (const uint32_t[]){ 14, 6, 14 }, 3,
                 (const uint32_t[]){ 0, 2, 1 });
}

static void expect_plan_error(const char *gpu, const struct gv_mig_instance *existing,
                              size_t n_existing, const uint32_t *ids, size_t n, int code, ...)
{
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model(gpu, &g);
        const struct gv_mig_gi_profile *wanted[16];
        struct gv_mig_placement got[16];
        struct gv_error *e = NULL;
        va_list ap;

        for (size_t i = 0; i < n; i++)
                wanted[i] = by_id(m, ids[i]);
        memset(got, 0xaa, sizeof got);
        int r = gv_mig_plan(&g, existing, n_existing, wanted, n, got, &e);
        assert_int_equal(r, -code);
        assert_non_null(e);
        for (size_t i = 0; i < n; i++) /* ret untouched on failure */
                assert_int_equal(got[i].start, 0xaaaaaaaa);
        va_start(ap, code);
        for (const char *s; (s = va_arg(ap, const char *));)
                if (!strstr(e->msg, s))
                        fail_msg("error '%s' does not contain '%s'", e->msg, s);
        va_end(ap);
        gv_error_free(e);
}

static void test_plan_failures(void **state)
{
        (void)state;
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model("H100-PCIe-80GB", &g);

        /* Both 3g placements blocked by existing instances. */
        struct gv_mig_instance ex[] = { inst(by_id(m, 19), 2), inst(by_id(m, 14), 4) };
        expect_plan_error("H100-PCIe-80GB", ex, 2, (const uint32_t[]){ 9 }, 1, ENOSPC,
                          "cannot place 3g.40gb: its placements 0-3 and 4-7 are blocked by "
                          "1g.10gb at slice 2 (existing) and 2g.20gb at slices 4-5 (existing)",
                          "layout: 0-1:free 2:1g.10gb 3:free 4-5:2g.20gb 6-7:free", NULL);

        /* Blocked by a planned instance: the first 3g takes 4-7, the second has nowhere. */
        expect_plan_error("H100-PCIe-80GB", ex, 1, (const uint32_t[]){ 9, 9 }, 2, ENOSPC,
                          "cannot place 3g.40gb: its placements 0-3 and 4-7 are blocked by "
                          "1g.10gb at slice 2 (existing) and 3g.40gb at slices 4-7 (planned)",
                          NULL);

        /* 4g has one placement. */
        struct gv_mig_instance ex3[] = { inst(by_id(m, 19), 3) };
        expect_plan_error("H100-PCIe-80GB", ex3, 1, (const uint32_t[]){ 5 }, 1, ENOSPC,
                          "cannot place 4g.40gb: its placement 0-3 is blocked by 1g.10gb at "
                          "slice 3 (existing)",
                          NULL);

        /* Instance-count limits. */
        expect_plan_error("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 20, 20 }, 2, ENOSPC,
                          "cannot place 2 x 1g.10gb+me: 1g.10gb+me allows 1 instance per GPU "
                          "(0 exist, 2 wanted)",
                          NULL);
        struct gv_mig_instance ex4[] = { inst(by_id(m, 9), 0) };
        expect_plan_error("H100-PCIe-80GB", ex4, 1, (const uint32_t[]){ 9, 9 }, 2, ENOSPC,
                          "3g.40gb allows 2 instances per GPU (1 exist, 2 wanted)", NULL);
        expect_plan_error("H100-PCIe-80GB", NULL, 0,
                          (const uint32_t[]){ 19, 19, 19, 19, 19, 19, 19, 19 }, 8, ENOSPC,
                          "the GPU allows at most 7 (0 exist, 8 wanted)", NULL);
        /* A30: four instances at most, and the 4g excludes everything. */
        expect_plan_error("A30", NULL, 0, (const uint32_t[]){ 0, 14 }, 2, ENOSPC,
                          "compute slices", NULL);
        /* Memory full of planned instances. */
        expect_plan_error("H100-PCIe-80GB", NULL, 0, (const uint32_t[]){ 9, 19, 9 }, 3, ENOSPC,
                          "cannot place 1g.10gb: its placements 0, 1, 2, 3, 4, 5 and 6 are "
                          "blocked by 3g.40gb at slices 0-3 (planned) and 3g.40gb at slices 4-7 "
                          "(planned)",
                          NULL);

        /* An inconsistent existing layout is refused. */
        struct gv_mig_instance bad[] = { inst(by_id(m, 14), 2), inst(by_id(m, 19), 3) };
        expect_plan_error("H100-PCIe-80GB", bad, 2, (const uint32_t[]){ 19 }, 1, EINVAL,
                          "the existing GPU instances are inconsistent",
                          "1g.10gb at slice 3 overlaps 2g.20gb at slices 2-3", NULL);
        struct gv_mig_instance odd[] = { inst(by_id(m, 14), 1) };
        expect_plan_error("H100-PCIe-80GB", odd, 1, (const uint32_t[]){ 19 }, 1, EINVAL,
                          "2g.20gb at slices 1-2 is not one of the profile's placements", NULL);
}

static void test_format(void **state)
{
        (void)state;
        struct gv_mig_geometry g;
        const struct gv_gpu_model *m = model("A100-SXM4-80GB", &g);
        struct gv_mig_instance l[] = {
                inst(gv_gpu_model_find_gi_profile(m, "2g.20gb"), 4),
                inst(gv_gpu_model_find_gi_profile(m, "4g.40gb"), 0),
                inst(gv_gpu_model_find_gi_profile(m, "1g.10gb"), 6),
        };
        _cleanup_free_ char *s = gv_mig_layout_format(&g, l, 3);
        assert_string_equal(s, "0-3:4g.40gb 4-5:2g.20gb 6:1g.10gb 7:free");
        _cleanup_free_ char *empty = gv_mig_layout_format(&g, NULL, 0);
        assert_string_equal(empty, "0-7:free");
        assert_int_equal(gv_mig_layout_check(&g, l, 3, NULL), 0);
}

/* A geometry built by hand, as the hardware layer builds it from NVML: ids differ from the
 * catalog's and nothing comes from a file. */
static void test_hand_built_geometry(void **state)
{
        (void)state;
        struct gv_mig_placement pl_small[] = { { 0, 1 }, { 1, 1 }, { 2, 1 }, { 3, 1 } };
        struct gv_mig_placement pl_half[] = { { 0, 2 }, { 2, 2 } };
        struct gv_mig_placement pl_full[] = { { 0, 4 } };
        struct gv_mig_gi_profile profiles[] = {
                { .name = (char *)"small", .id = 100, .slices = 1, .memory_slices = 1,
                  .instances = 4, .placements = pl_small, .n_placements = 4 },
                { .name = (char *)"half", .id = 101, .slices = 2, .memory_slices = 2,
                  .instances = 2, .placements = pl_half, .n_placements = 2 },
                { .name = (char *)"full", .id = 102, .slices = 4, .memory_slices = 4,
                  .instances = 1, .placements = pl_full, .n_placements = 1 },
        };
        struct gv_mig_geometry g = {
                .memory_slices = 4, .compute_slices = 6, .max_instances = 4,
                .profiles = profiles, .n_profiles = 3,
        };
        const struct gv_mig_gi_profile *wanted[] = { &profiles[0], &profiles[1], &profiles[0] };
        struct gv_mig_placement got[3];
        struct gv_error *e = NULL;

        /* Half first (larger), at 2 or 0 — the small ones pack low: small 0,1, half 2. */
        assert_int_equal(gv_mig_plan(&g, NULL, 0, wanted, 3, got, &e), 0);
        assert_int_equal(got[1].start, 2);
        assert_int_equal(got[0].start, 0);
        assert_int_equal(got[2].start, 1);

        struct gv_mig_instance ex[] = { { &profiles[0], { 1, 1 } } };
        const struct gv_mig_gi_profile *w2[] = { &profiles[1], &profiles[1] };
        assert_int_equal(gv_mig_plan(&g, ex, 1, w2, 2, got, &e), -ENOSPC);
        assert_non_null(strstr(e->msg, "cannot place half: its placements 0-1 and 2-3 are "
                                       "blocked by small at slice 1 (existing) and half at "
                                       "slices 2-3 (planned)"));
        e = gv_error_free(e);

        /* Nothing wanted: success, nothing written. */
        assert_int_equal(gv_mig_plan(&g, ex, 1, NULL, 0, NULL, NULL), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_masks),
                cmocka_unit_test(test_free_placements),
                cmocka_unit_test(test_plan_driver_examples),
                cmocka_unit_test(test_plan_order_issue),
                cmocka_unit_test(test_plan_keeps_capacity),
                cmocka_unit_test(test_plan_failures),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_hand_built_geometry),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
