/* SPDX-License-Identifier: MIT */
/*
 * test-migmode: the mapping rule of bench-place's MIG/vGPU mode (bench/place/migmode.h,
 * docs/placement-mig-mode.md): openb shares onto H100 SXM5 MIG profiles and vGPU types at every
 * boundary, whole GPUs, QoS in the mixed mode, the qos column reader and its errors.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "migmode.h"
#include "util/alloc.h"

static struct gv_catalog *cat;
static const struct gv_gpu_model *h100;

static int setup(void **state)
{
        struct gv_error *e = NULL;
        (void)state;
        if (gv_catalog_load_default(&cat, &e) < 0) {
                print_error("catalog: %s\n", gv_error_msg(e, -EINVAL));
                gv_error_free(e);
                return -1;
        }
        h100 = gv_catalog_find(cat, MIGMODE_MODEL);
        return h100 ? 0 : -1;
}

static int teardown(void **state)
{
        (void)state;
        cat = gv_catalog_free(cat);
        return 0;
}

static const char *mig_name(uint32_t milli)
{
        int i = migmode_mig_profile_for(h100, milli);
        return i < 0 ? NULL : h100->gi_profiles[i].name;
}

static const char *vgpu_name(uint32_t milli, bool mixed)
{
        int i = migmode_vgpu_type_for(h100, milli, mixed);
        return i < 0 ? NULL : h100->vgpu_types[i].name;
}

/* Each profile covers s when g/7 >= s and memory slices/8 >= s: the boundaries fall at
 * min(g/7, slices/8) (mig.md §1, §3.4). */
static void test_mig_rule(void **state)
{
        static const struct {
                uint32_t milli;
                const char *profile;
        } t[] = {
                { 1, "1g.10gb" },   { 50, "1g.10gb" },   { 125, "1g.10gb" }, /* 1/8 */
                { 126, "1g.20gb" }, { 142, "1g.20gb" },                      /* 1/7 */
                { 143, "2g.20gb" }, { 250, "2g.20gb" },                      /* 2/8 */
                { 251, "3g.40gb" }, { 428, "3g.40gb" },                      /* 3/7 */
                { 429, "4g.40gb" }, { 470, "4g.40gb" }, { 500, "4g.40gb" },  /* 4/8 */
                { 501, "7g.80gb" }, { 810, "7g.80gb" }, { 1000, "7g.80gb" },
        };
        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
                const char *got = mig_name(t[i].milli);
                if (!got || strcmp(got, t[i].profile) != 0)
                        fail_msg("share %u: got '%s', expected '%s'", t[i].milli,
                                 got ? got : "(none)", t[i].profile);
        }
        assert_int_equal(migmode_mig_profile_for(h100, 0), -ENOENT);
        assert_int_equal(migmode_mig_profile_for(h100, 1001), -ENOENT);
}

/* The smallest time-sliced C type with framebuffer / 81559 MiB >= s (vgpu.md §7.1); never a
 * MIG-backed type (H100XM-1-10C has the same framebuffer as H100XM-10C). */
static void test_vgpu_rule(void **state)
{
        static const struct {
                uint32_t milli;
                const char *type;
        } t[] = {
                { 1, "H100XM-4C" },    { 50, "H100XM-4C" },   { 51, "H100XM-5C" },
                { 62, "H100XM-5C" },   { 63, "H100XM-8C" },   { 100, "H100XM-8C" },
                { 101, "H100XM-10C" }, { 125, "H100XM-10C" }, { 126, "H100XM-16C" },
                { 200, "H100XM-16C" }, { 201, "H100XM-20C" }, { 251, "H100XM-20C" },
                { 252, "H100XM-40C" }, { 502, "H100XM-40C" }, { 503, "H100XM-80C" },
                { 1000, "H100XM-80C" },
        };
        (void)state;
        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
                for (int mixed = 0; mixed < 2; mixed++) {
                        const char *got = vgpu_name(t[i].milli, mixed);
                        if (!got || strcmp(got, t[i].type) != 0)
                                fail_msg("share %u (mixed %d): got '%s', expected '%s'",
                                         t[i].milli, mixed, got ? got : "(none)", t[i].type);
                }
        assert_int_equal(migmode_vgpu_type_for(h100, 0, false), -ENOENT);
}

/* On a hand-made model: "+me" never chosen even when listed first; a type without mixed-size
 * instances skipped only in mixed-size mode; MIG-backed types never. */
static void test_rule_filters(void **state)
{
        struct gv_mig_placement pl[1] = { { 0, 1 } };
        struct gv_mig_gi_profile gi[2] = {
                { .name = (char *)"1g.10gb+me", .slices = 1, .memory_slices = 1,
                  .instances = 1, .media_extensions = true, .placements = pl,
                  .n_placements = 1 },
                { .name = (char *)"1g.10gb", .slices = 1, .memory_slices = 1, .instances = 7,
                  .placements = pl, .n_placements = 1 },
        };
        struct gv_vgpu_type vt[3] = {
                { .name = (char *)"X-1-10C", .series = GV_VGPU_SERIES_C, .framebuffer_mib = 10240,
                  .max_instances = 7, .max_instances_mixed = 7, .gi_profile = (char *)"1g.10gb" },
                { .name = (char *)"X-10C", .series = GV_VGPU_SERIES_C, .framebuffer_mib = 10240,
                  .max_instances = 8, .max_instances_mixed = 0 },
                { .name = (char *)"X-20C", .series = GV_VGPU_SERIES_C, .framebuffer_mib = 20480,
                  .max_instances = 4, .max_instances_mixed = 4 },
        };
        struct gv_gpu_model m = {
                .name = (char *)"X", .memory_mib = 81920, .mig_memory_slices = 8,
                .mig_compute_slices = 7, .mig_max_instances = 7, .gi_profiles = gi,
                .n_gi_profiles = 2, .vgpu_types = vt, .n_vgpu_types = 3,
        };
        (void)state;
        assert_int_equal(migmode_mig_profile_for(&m, 100), 1);
        assert_int_equal(migmode_mig_profile_for(&m, 200), -ENOENT);
        assert_int_equal(migmode_vgpu_type_for(&m, 100, false), 1);
        assert_int_equal(migmode_vgpu_type_for(&m, 100, true), 2);
        assert_int_equal(migmode_vgpu_type_for(&m, 300, false), -ENOENT);
        m.n_gi_profiles = 0;
        assert_int_equal(migmode_mig_profile_for(&m, 100), -ENOENT);
}

static void test_map_pod(void **state)
{
        struct openb_pod cpu = { .name = (char *)"p-cpu", .cpu_milli = 4000 };
        struct openb_pod whole = { .name = (char *)"p-4", .num_gpu = 4, .gpu_milli = 1000 };
        struct openb_pod one = { .name = (char *)"p-1", .num_gpu = 1, .gpu_milli = 1000 };
        struct openb_pod share = { .name = (char *)"p-470", .num_gpu = 1, .gpu_milli = 470 };
        struct openb_pod bad = { .name = (char *)"p-bad", .num_gpu = 2, .gpu_milli = 500 };
        struct migmode_map x;
        struct gv_error *err = NULL;
        (void)state;

        for (int mode = 0; mode < _MIGMODE_MAX; mode++) {
                assert_int_equal(migmode_map_pod(h100, mode, &cpu, MIGMODE_QOS_LS, &x, NULL), 0);
                assert_int_equal(x.kind, GV_SCHED_KIND_NONE);
                assert_true(x.demand_milli == 0);
                assert_int_equal(migmode_map_pod(h100, mode, &whole, MIGMODE_QOS_BE, &x, NULL), 0);
                assert_int_equal(x.kind, GV_SCHED_KIND_WHOLE);
                assert_int_equal(x.num_gpu, 4);
                assert_true(x.demand_milli == 4000);
                /* a whole single GPU is pass-through, not 7g.80gb or an 80C */
                assert_int_equal(migmode_map_pod(h100, mode, &one, MIGMODE_QOS_LS, &x, NULL), 0);
                assert_int_equal(x.kind, GV_SCHED_KIND_WHOLE);
                assert_int_equal(x.num_gpu, 1);
        }

        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIG, &share, MIGMODE_QOS_BE, &x, NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_MIG);
        assert_string_equal(x.name, "4g.40gb");
        assert_true(fabs(x.demand_milli - 4000.0 / 7) < 1e-9);

        assert_int_equal(migmode_map_pod(h100, MIGMODE_VGPU, &share, MIGMODE_QOS_LS, &x, NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_VGPU);
        assert_string_equal(x.name, "H100XM-40C");
        assert_true(fabs(x.demand_milli - 1000.0 * 40960 / h100->memory_mib) < 1e-9);

        /* mixed: LS and Guaranteed -> MIG, BE and Burstable -> vGPU */
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIXED, &share, MIGMODE_QOS_LS, &x, NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_MIG);
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIXED, &share, MIGMODE_QOS_GUARANTEED, &x,
                                         NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_MIG);
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIXED, &share, MIGMODE_QOS_BE, &x, NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_VGPU);
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIXED, &share, MIGMODE_QOS_BURSTABLE, &x,
                                         NULL), 0);
        assert_int_equal(x.kind, GV_SCHED_KIND_VGPU);
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIXED, &share, _MIGMODE_QOS_INVALID, &x,
                                         &err), -EINVAL);
        assert_non_null(strstr(err->msg, "'p-470'"));
        err = gv_error_free(err);

        x.kind = GV_SCHED_KIND_NEED; /* untouched on failure */
        assert_int_equal(migmode_map_pod(h100, MIGMODE_MIG, &bad, MIGMODE_QOS_LS, &x, &err),
                         -EINVAL);
        assert_int_equal(x.kind, GV_SCHED_KIND_NEED);
        assert_non_null(strstr(err->msg, "'p-bad'"));
        err = gv_error_free(err);
}

static void test_qos(void **state)
{
        struct openb_pod pods[2] = { { .name = (char *)"a" }, { .name = (char *)"b" } };
        struct openb_pods trace = { .pods = pods, .n_pods = 2 };
        enum migmode_qos *q = NULL;
        struct gv_error *err = NULL;
        char *text;
        (void)state;

        text = xstrdup("name,cpu_milli,qos,x\r\na,1,LS,\nb,2,Burstable,y\n");
        assert_int_equal(migmode_qos_parse("p.csv", text, &trace, &q, NULL), 0);
        free(text);
        assert_int_equal(q[0], MIGMODE_QOS_LS);
        assert_int_equal(q[1], MIGMODE_QOS_BURSTABLE);
        free(q);
        q = NULL;

        text = xstrdup("name,qos\na,LS\nb,gold\n");
        assert_int_equal(migmode_qos_parse("p.csv", text, &trace, &q, &err), -EINVAL);
        free(text);
        assert_null(q);
        assert_non_null(strstr(err->msg, "row 3"));
        assert_non_null(strstr(err->msg, "'gold'"));
        assert_non_null(strstr(err->msg, "Guaranteed"));
        err = gv_error_free(err);

        text = xstrdup("name,cpu_milli\na,1\nb,2\n");
        assert_int_equal(migmode_qos_parse("p.csv", text, &trace, &q, &err), -EINVAL);
        free(text);
        assert_non_null(strstr(err->msg, "'qos'"));
        err = gv_error_free(err);

        text = xstrdup("name,qos\nb,LS\na,BE\n");
        assert_int_equal(migmode_qos_parse("p.csv", text, &trace, &q, &err), -EINVAL);
        free(text);
        assert_non_null(strstr(err->msg, "row 2"));
        err = gv_error_free(err);

        text = xstrdup("name,qos\na,LS\n");
        assert_int_equal(migmode_qos_parse("p.csv", text, &trace, &q, &err), -EINVAL);
        free(text);
        err = gv_error_free(err);
}

static void test_policies_and_shapes(void **state)
{
        struct gv_error *err = NULL;
        uint64_t cpu = 0, mem = 0;
        (void)state;

        assert_int_equal(migmode_check_policy("gpuvirt", NULL), 0);
        assert_int_equal(migmode_check_policy("best-fit", NULL), 0);
        assert_int_equal(migmode_check_policy("fgd", &err), -EINVAL);
        assert_non_null(strstr(err->msg, "'fgd'"));
        err = gv_error_free(err);
        assert_true(migmode_check_policy("no-such", NULL) < 0);

        assert_int_equal(migmode_host_shape("G2", &cpu, &mem, NULL), 0);
        assert_int_equal(cpu, 96000);
        assert_int_equal(mem, 393216);
        assert_int_equal(migmode_host_shape("g3", &cpu, &mem, NULL), 0);
        assert_int_equal(cpu, 128000);
        assert_int_equal(mem, 786432);
        assert_int_equal(migmode_host_shape("T4", &cpu, &mem, &err), -EINVAL);
        assert_int_equal(cpu, 128000); /* untouched */
        assert_non_null(strstr(err->msg, "G2"));
        err = gv_error_free(err);

        assert_int_equal(migmode_mode_from_string("vgpu-mixed-size"), MIGMODE_VGPU_MIXED_SIZE);
        assert_int_equal(migmode_mode_from_string("share"), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mig_rule),
                cmocka_unit_test(test_vgpu_rule),
                cmocka_unit_test(test_rule_filters),
                cmocka_unit_test(test_map_pod),
                cmocka_unit_test(test_qos),
                cmocka_unit_test(test_policies_and_shapes),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
