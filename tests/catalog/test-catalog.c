/* SPDX-License-Identifier: MIT */
/*
 * test-catalog — the loader on every shipped model file (facts spot-checked against the tables
 * of ../shared/reference/mig.md and vgpu.md), the lookups, and corrupt input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "catalog/catalog.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"

static struct gv_catalog *load(void)
{
        struct gv_catalog *c = NULL;
        struct gv_error *e = NULL;
        int r = gv_catalog_load_default(&c, &e);
        if (r < 0)
                fail_msg("loading the shipped catalog failed: %s", gv_error_msg(e, r));
        return c;
}

static const struct gv_mig_gi_profile *gi(const struct gv_gpu_model *m, const char *name)
{
        const struct gv_mig_gi_profile *p = gv_gpu_model_find_gi_profile(m, name);
        if (!p)
                fail_msg("%s has no GI profile %s", m->name, name);
        return p;
}

static void test_all_models_load(void **state)
{
        (void)state;
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = load();
        static const char *const names[] = {
                "A100-PCIe-40GB", "A100-SXM4-80GB", "A30",   "H100-PCIe-80GB",
                "H100-SXM5-80GB", "H100-NVL-94GB",  "H200-SXM-141GB", "L40S",
                "L4",             "GeForce-RTX-3090", "A100-PCIe-80GB",
        };
        assert_int_equal(c->n_models, ELEMENTSOF(names));
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                assert_non_null(gv_catalog_find(c, names[i]));

        /* Models are sorted by file name, so the order is stable across readdir orders. */
        for (size_t i = 1; i < c->n_models; i++)
                assert_true(strcmp(c->models[i - 1].name, c->models[i].name) < 0);
}

/* Every source key used anywhere resolves in the model's table; unconfirmed facts say why. */
static void check_src(const struct gv_gpu_model *m, const struct gv_fact_source *s)
{
        assert_non_null(s->source);
        if (!gv_gpu_model_source_ref(m, s->source))
                fail_msg("%s: source key '%s' has no reference", m->name, s->source);
        if ((strcmp(s->source, "NOREF") == 0 || strcmp(s->source, "DERIVED") == 0) &&
            !s->unconfirmed)
                fail_msg("%s: a %s fact must be unconfirmed", m->name, s->source);
}

static void check_field_srcs(const struct gv_gpu_model *m, const struct gv_field_source *fs,
                             size_t n)
{
        for (size_t i = 0; i < n; i++)
                check_src(m, &fs[i].src);
}

static void test_every_fact_has_a_source(void **state)
{
        (void)state;
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = load();
        for (size_t i = 0; i < c->n_models; i++) {
                const struct gv_gpu_model *m = &c->models[i];
                check_src(m, &m->src);
                check_field_srcs(m, m->field_sources, m->n_field_sources);
                for (size_t j = 0; j < m->n_gi_profiles; j++) {
                        const struct gv_mig_gi_profile *p = &m->gi_profiles[j];
                        check_src(m, &p->src);
                        check_field_srcs(m, p->field_sources, p->n_field_sources);
                        assert_true(p->n_placements > 0);
                        for (size_t k = 0; k < p->n_placements; k++)
                                assert_true(p->placements[k].start + p->placements[k].size <=
                                            m->mig_memory_slices);
                        for (size_t k = 0; k < p->n_ci_profiles; k++) {
                                check_src(m, &p->ci_profiles[k].src);
                                assert_true(p->ci_profiles[k].slices <= p->slices);
                        }
                }
                for (size_t j = 0; j < m->n_vgpu_types; j++) {
                        const struct gv_vgpu_type *t = &m->vgpu_types[j];
                        check_src(m, &t->src);
                        check_field_srcs(m, t->field_sources, t->n_field_sources);
                        assert_true(t->max_instances_mixed <= t->max_instances);
                        assert_true((t->gi_profile == NULL) == (t->gi == NULL));
                }
        }
}

static void test_mig_facts(void **state)
{
        (void)state;
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = load();
        const struct gv_gpu_model *m;
        const struct gv_mig_gi_profile *p;

        /* H100 PCIe, SCW + mig.md §4: 3g.40gb ID 9, placements (0,4) (4,4), SM 46. */
        m = gv_catalog_find(c, "H100-PCIe-80GB");
        assert_non_null(m);
        assert_int_equal(m->mig_memory_slices, 8);
        assert_int_equal(m->mig_compute_slices, 7);
        assert_int_equal(m->mig_max_instances, 7);
        assert_int_equal(m->memory_mib, 81559);
        p = gi(m, "3g.40gb");
        assert_int_equal(p->id, 9);
        assert_int_equal(p->nvml_index, 2);
        assert_int_equal(p->slices, 3);
        assert_int_equal(p->sms, 46);
        assert_int_equal(p->instances, 2);
        assert_int_equal(p->n_placements, 2);
        assert_int_equal(p->placements[0].start, 0);
        assert_int_equal(p->placements[0].size, 4);
        assert_int_equal(p->placements[1].start, 4);
        assert_int_equal(p->placements[1].size, 4);
        assert_int_equal(gi(m, "7g.80gb")->sms, 114);
        assert_int_equal(gi(m, "1g.10gb+me")->instances, 1);
        assert_true(gi(m, "1g.10gb+me")->media_extensions);
        assert_false(gi(m, "1g.10gb")->media_extensions);
        /* 1g double-memory: {0,2,4,6}:2 */
        p = gi(m, "1g.20gb");
        assert_int_equal(p->id, 15);
        assert_int_equal(p->n_placements, 4);
        assert_int_equal(p->placements[3].start, 6);
        assert_int_equal(p->placements[3].size, 2);

        /* H100 SXM5: 3g.40gb from the MUG MPS example, 40448 MiB, SM 60; confirmed. */
        m = gv_catalog_find(c, "H100-SXM5-80GB");
        p = gi(m, "3g.40gb");
        assert_int_equal(p->memory_mib, 40448);
        assert_int_equal(p->sms, 60);
        assert_false(p->src.unconfirmed);
        /* Its placements were not observed (mig.md §12.4): marked unconfirmed. */
        assert_true(gv_fact_source_of(p, "placements")->unconfirmed);
        assert_true(gi(m, "1g.10gb")->src.unconfirmed);
        assert_int_equal(m->pci_device, 0x2330);

        /* A30: 4 memory slices, 4g.24gb ID 0 at (0,4), 1g.6gb ID 14 with 4 placements. */
        m = gv_catalog_find(c, "A30");
        assert_int_equal(m->mig_memory_slices, 4);
        assert_int_equal(m->mig_max_instances, 4);
        assert_int_equal(m->pci_device, 0x20b7);
        p = gi(m, "4g.24gb");
        assert_int_equal(p->id, 0);
        assert_int_equal(p->n_placements, 1);
        assert_int_equal(p->placements[0].size, 4);
        assert_int_equal(gi(m, "1g.6gb")->id, 14);
        assert_int_equal(gi(m, "1g.6gb+me")->id, 21);
        assert_int_equal(gi(m, "2g.12gb+me")->id, 6);
        assert_int_equal(gi(m, "1g.6gb")->n_placements, 4);
        /* The MUG/nvidia-smi decoder conflict is flagged. */
        assert_true(gv_fact_source_of(gi(m, "1g.6gb"), "decoders")->unconfirmed);

        /* A100 40GB, MOCK-A100 MiB values and the CI table of mig.md §6. */
        m = gv_catalog_find(c, "A100-PCIe-40GB");
        p = gi(m, "1g.5gb");
        assert_int_equal(p->memory_mib, 4864);
        assert_int_equal(p->id, 19);
        p = gi(m, "1g.10gb");
        assert_int_equal(p->nvml_index, 9); /* 1_SLICE_REV2 */
        assert_int_equal(p->id, 15);
        p = gi(m, "7g.40gb");
        assert_int_equal(p->placements[0].size, 8);
        assert_int_equal(p->n_ci_profiles, 5);
        assert_string_equal(p->ci_profiles[0].name, "1c.7g.40gb");
        assert_int_equal(p->ci_profiles[0].instances, 7);
        assert_int_equal(p->ci_profiles[1].instances, 3); /* 2_SLICE -> (3, 28) */
        assert_int_equal(p->ci_profiles[1].sms, 28);
        assert_string_equal(p->ci_profiles[4].name, "7g.40gb");
        assert_int_equal(p->ci_profiles[4].id, 4);
        p = gi(m, "4g.20gb");
        assert_int_equal(p->n_ci_profiles, 3); /* 1c, 2c, 4c: no 3c in a 4g GI */
        assert_int_equal(p->ci_profiles[2].slices, 4);
        /* The MUG 3g.20gb CI listing: 1c.3g.20gb ID 0 (3), 2c.3g.20gb ID 1 (1), 3g.20gb ID 2. */
        p = gi(m, "3g.20gb");
        assert_int_equal(p->n_ci_profiles, 3);
        assert_string_equal(p->ci_profiles[1].name, "2c.3g.20gb");
        assert_int_equal(p->ci_profiles[1].id, 1);
        assert_int_equal(p->ci_profiles[0].instances, 3);

        /* H200 memory per mig-parted issue #120. */
        m = gv_catalog_find(c, "H200-SXM-141GB");
        assert_int_equal(gi(m, "7g.141gb")->memory_mib, 143104);
        assert_int_equal(m->pci_device, 0x2335);

        /* No MIG on L40S, L4 and the consumer card. */
        assert_int_equal(gv_catalog_find(c, "L40S")->n_gi_profiles, 0);
        assert_int_equal(gv_catalog_find(c, "L4")->n_gi_profiles, 0);
        assert_int_equal(gv_catalog_find(c, "GeForce-RTX-3090")->n_gi_profiles, 0);
}

static void test_vgpu_facts(void **state)
{
        (void)state;
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = load();
        const struct gv_gpu_model *m;
        const struct gv_vgpu_type *t;

        /* KAYOBE: A100D-2-20C = nvidia-700 on 2g.20gb; A100D-4C = nvidia-692. */
        m = gv_catalog_find(c, "A100-PCIe-80GB");
        t = gv_gpu_model_find_vgpu_type_id(m, 700);
        assert_non_null(t);
        assert_string_equal(t->name, "A100D-2-20C");
        assert_non_null(t->gi);
        assert_string_equal(t->gi->name, "2g.20gb");
        assert_int_equal(t->max_instances, 3);
        assert_int_equal(t->series, GV_VGPU_SERIES_C);
        t = gv_gpu_model_find_vgpu_type(m, "A100D-4C");
        assert_int_equal(t->type_id, 692);
        assert_int_equal(t->max_instances, 20);
        assert_int_equal(t->max_instances_mixed, 16);
        assert_null(t->gi);
        assert_false(gv_fact_source_of(t, "type_id")->unconfirmed);
        assert_int_equal(gv_gpu_model_find_vgpu_type(m, "A100D-1-10CME")->type_id, 707);

        /* The SXM4 board uses the A100DX- prefix (vgpu.md §6) with invented, flagged ids. */
        m = gv_catalog_find(c, "A100-SXM4-80GB");
        t = gv_gpu_model_find_vgpu_type(m, "A100DX-2-20C");
        assert_non_null(t);
        assert_true(gv_fact_source_of(t, "type_id")->unconfirmed);

        /* H100-16C: 6 in NV-C, 5 in VDM: flagged as a conflict. */
        m = gv_catalog_find(c, "H100-PCIe-80GB");
        t = gv_gpu_model_find_vgpu_type(m, "H100-16C");
        assert_int_equal(t->max_instances, 6);
        assert_int_equal(t->max_instances_mixed, 4);
        assert_true(gv_fact_source_of(t, "max_instances")->unconfirmed);
        assert_non_null(gv_fact_source_of(t, "max_instances")->note);
        t = gv_gpu_model_find_vgpu_type(m, "H100-1-10CME");
        assert_string_equal(t->gi->name, "1g.10gb+me");

        /* H200: 1428 H200X-141C, 1414 H200X-1-18C on 1g.18gb (KVDP). */
        m = gv_catalog_find(c, "H200-SXM-141GB");
        assert_string_equal(gv_gpu_model_find_vgpu_type_id(m, 1428)->name, "H200X-141C");
        t = gv_gpu_model_find_vgpu_type_id(m, 1414);
        assert_string_equal(t->name, "H200X-1-18C");
        assert_string_equal(t->gi->name, "1g.18gb");
        assert_int_equal(t->max_instances, 7);

        /* L40S: HARV ids, VDM maxima, C-series cap of 12. */
        m = gv_catalog_find(c, "L40S");
        t = gv_gpu_model_find_vgpu_type_id(m, 1147);
        assert_string_equal(t->name, "L40S-1Q");
        assert_int_equal(t->max_instances, 32);
        assert_int_equal(t->series, GV_VGPU_SERIES_Q);
        assert_int_equal(gv_gpu_model_find_vgpu_type(m, "L40S-48Q")->type_id, 1156);
        assert_int_equal(gv_gpu_model_find_vgpu_type(m, "L40S-3B")->type_id, 2164);
        assert_int_equal(gv_gpu_model_find_vgpu_type(m, "L40S-4C")->max_instances, 12);
        assert_int_equal(gv_gpu_model_find_vgpu_type(m, "L40S-16C")->max_instances_mixed, 2);

        /* L4-6Q = 0x392 with four placement ids (NV-AIE5 §2.10). */
        m = gv_catalog_find(c, "L4");
        t = gv_gpu_model_find_vgpu_type(m, "L4-6Q");
        assert_int_equal(t->type_id, 0x392);
        assert_int_equal(t->max_instances, 4);
        assert_int_equal(t->max_instances_mixed, 4);

        /* The consumer card: VGA class, HDMI audio at function 1, no SR-IOV, no vGPU. */
        m = gv_catalog_find(c, "GeForce-RTX-3090");
        assert_true(m->has_audio_function);
        assert_int_equal(m->audio_pci_device, 0x1aef);
        assert_int_equal(m->pci_class, 0x030000);
        assert_int_equal(m->sriov_total_vfs, 0);
        assert_int_equal(m->n_vgpu_types, 0);
        assert_true(m->src.unconfirmed);
        assert_false(gv_fact_source_of(m, "has_audio_function")->unconfirmed);

        /* Power limits are not in the reference: every model flags them. */
        for (size_t i = 0; i < c->n_models; i++)
                assert_true(gv_fact_source_of(&c->models[i], "power_max_mw")->unconfirmed);
}

static void test_lookups(void **state)
{
        (void)state;
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = load();
        const struct gv_gpu_model *m = gv_catalog_find(c, "h100-sxm5-80gb");

        assert_non_null(m);
        assert_string_equal(m->name, "H100-SXM5-80GB");
        assert_ptr_equal(gv_catalog_find_pci(c, 0x10de, 0x2330), m);
        assert_null(gv_catalog_find_pci(c, 0x10de, 0xffff));
        assert_null(gv_catalog_find(c, "H100"));
        assert_null(gv_catalog_find(c, NULL));

        assert_string_equal(gv_gpu_model_find_gi_profile(m, "3G.40GB")->name, "3g.40gb");
        assert_string_equal(gv_gpu_model_find_gi_profile(m, "MIG 3g.40gb")->name, "3g.40gb");
        assert_string_equal(gv_gpu_model_find_gi_profile_id(m, 20)->name, "1g.10gb+me");
        assert_null(gv_gpu_model_find_gi_profile(m, "5g.50gb"));
        assert_null(gv_gpu_model_find_gi_profile_id(m, 99));

        assert_string_equal(gv_gpu_model_find_vgpu_type(m, "h100xm-1-10c")->name, "H100XM-1-10C");
        assert_string_equal(gv_gpu_model_find_vgpu_type(m, "NVIDIA H100XM-20C")->name,
                            "H100XM-20C");
        assert_null(gv_gpu_model_find_vgpu_type(m, "H100-20C"));
        m = gv_catalog_find(c, "A100-PCIe-80GB");
        assert_string_equal(gv_gpu_model_find_vgpu_type(m, "GRID A100D-2-20C")->name,
                            "A100D-2-20C");

        _cleanup_free_ char *gis = gv_gpu_model_gi_profile_names(m);
        assert_string_equal(gis, "1g.10gb, 1g.10gb+me, 1g.20gb, 2g.20gb, 3g.40gb, 4g.40gb, "
                                 "7g.80gb");
        _cleanup_free_ char *none = gv_gpu_model_gi_profile_names(gv_catalog_find(c, "L4"));
        assert_string_equal(none, "");
        _cleanup_free_ char *types = gv_gpu_model_vgpu_type_names(gv_catalog_find(c, "L4"));
        assert_non_null(strstr(types, "L4-24C, "));
        _cleanup_free_ char *models = gv_catalog_model_names(c);
        assert_non_null(strstr(models, "A100-PCIe-40GB, A100-PCIe-80GB"));
        assert_string_equal(gv_gpu_model_source_ref(m, "KAYOBE") ? "y" : "n", "y");
        assert_null(gv_gpu_model_source_ref(m, "NOPE"));
}

static void test_series_table(void **state)
{
        (void)state;
        assert_string_equal(gv_vgpu_series_to_string(GV_VGPU_SERIES_Q), "Q");
        assert_int_equal(gv_vgpu_series_from_string("C"), GV_VGPU_SERIES_C);
        assert_int_equal(gv_vgpu_series_from_string("A"), GV_VGPU_SERIES_A);
        assert_int_equal(gv_vgpu_series_from_string("Z"), -EINVAL);
        assert_int_equal(gv_vgpu_series_from_string(NULL), -EINVAL);
        assert_null(gv_vgpu_series_to_string(_GV_VGPU_SERIES_MAX));
}

/* ---- corrupt input ---- */

static const char base_model[] =
        "{\"name\": \"Test-GPU\", \"nvml_name\": \"NVIDIA Test\", \"architecture\": \"hopper\","
        " \"pci_vendor\": \"0x10de\", \"pci_device\": \"0x1234\", \"pci_class\": \"0x030200\","
        " \"memory_mib\": 81920, \"source\": \"MUG\","
        " \"mig\": {\"memory_slices\": 8, \"compute_slices\": 7, \"max_instances\": 7,"
        "  \"gi_profiles\": ["
        "   {\"name\": \"1g.10gb\", \"nvml_index\": 0, \"id\": 19, \"slices\": 1,"
        "    \"memory_slices\": 1, \"memory_mib\": 9856, \"instances\": 7, \"sms\": 14,"
        "    \"copy_engines\": 1, \"decoders\": 1, \"encoders\": 0, \"jpegs\": 1, \"ofas\": 0,"
        "    \"placements\": [0, 1, 2, 3, 4, 5, 6], \"source\": \"MUG\","
        "    \"ci_profiles\": [{\"name\": \"1g.10gb\", \"nvml_index\": 0, \"id\": 0,"
        "     \"slices\": 1, \"instances\": 1, \"sms\": 14, \"source\": \"MUG\"}]},"
        "   {\"name\": \"4g.40gb\", \"nvml_index\": 3, \"id\": 5, \"slices\": 4,"
        "    \"memory_slices\": 4, \"memory_mib\": 40192, \"instances\": 1, \"sms\": 56,"
        "    \"copy_engines\": 4, \"decoders\": 2, \"encoders\": 0, \"jpegs\": 0, \"ofas\": 0,"
        "    \"placements\": [0], \"source\": \"MUG\"}]},"
        " \"vgpu\": {\"heterogeneous_capable\": true, \"types\": ["
        "   {\"name\": \"T-1-10C\", \"type_id\": 1, \"series\": \"C\", \"class\": \"Compute\","
        "    \"framebuffer_mib\": 10240, \"max_instances\": 7, \"max_instances_mixed\": 7,"
        "    \"gi_profile\": \"1g.10gb\", \"source\": \"NV-C\"},"
        "   {\"name\": \"T-40C\", \"type_id\": 2, \"series\": \"C\", \"class\": \"Compute\","
        "    \"framebuffer_mib\": 40960, \"max_instances\": 2, \"max_instances_mixed\": 2,"
        "    \"source\": \"NV-C\", \"unconfirmed\": true, \"note\": \"test\","
        "    \"fact_sources\": {\"type_id\": {\"source\": \"MUG\", \"unconfirmed\": true}}}]},"
        " \"sources\": {\"MUG\": \"https://example.invalid/mug\","
        "  \"NV-C\": \"https://example.invalid/nvc\"}}";

struct tmp {
        char dir[64];
};

static int setup_tmp(void **state)
{
        struct tmp *t = xnew0(struct tmp, 1);
        strcpy(t->dir, "/tmp/gv-test-catalog-XXXXXX");
        if (!mkdtemp(t->dir))
                return -1;
        *state = t;
        return 0;
}

static int teardown_tmp(void **state)
{
        struct tmp *t = *state;
        gv_rm_rf(t->dir);
        free(t);
        return 0;
}

static json_t *base(void)
{
        json_error_t je;
        json_t *j = json_loads(base_model, 0, &je);
        if (!j)
                fail_msg("base model: %s (line %d col %d)", je.text, je.line, je.column);
        return j;
}

static char *write_model(struct tmp *t, const char *file, json_t *j)
{
        char *path = gv_path_join(t->dir, file);
        char *s = json_dumps(j, JSON_INDENT(1));
        assert_int_equal(gv_write_file(path, s, GV_WRITE_CREATE), 0);
        free(s);
        return path;
}

/* Load path; the call must fail with EINVAL and a message holding every needle. */
static void expect_error(const char *path, ...)
{
        struct gv_gpu_model m = {};
        struct gv_error *e = NULL;
        va_list ap;

        int r = gv_catalog_load_file(path, &m, &e);
        assert_int_equal(r, -EINVAL);
        assert_non_null(e);
        assert_null(m.name); /* ret untouched */
        va_start(ap, path);
        for (const char *n; (n = va_arg(ap, const char *));)
                if (!strstr(e->msg, n))
                        fail_msg("error '%s' does not contain '%s'", e->msg, n);
        va_end(ap);
        gv_error_free(e);
}

static json_t *gi_at(json_t *root, size_t i)
{
        return json_array_get(json_object_get(json_object_get(root, "mig"), "gi_profiles"), i);
}

static json_t *type_at(json_t *root, size_t i)
{
        return json_array_get(json_object_get(json_object_get(root, "vgpu"), "types"), i);
}

static void test_base_loads(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();
        _cleanup_free_ char *path = write_model(t, "Test-GPU.json", j);
        struct gv_gpu_model m = {};
        struct gv_error *e = NULL;
        int r = gv_catalog_load_file(path, &m, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_int_equal(m.n_gi_profiles, 2);
        assert_ptr_equal(m.vgpu_types[0].gi, &m.gi_profiles[0]);
        assert_true(m.vgpu_types[1].src.unconfirmed);
        assert_string_equal(m.vgpu_types[1].src.note, "test");
        assert_string_equal(gv_fact_source_of(&m.vgpu_types[1], "type_id")->source, "MUG");
        assert_string_equal(gv_fact_source_of(&m.vgpu_types[1], "name")->source, "NV-C");
        assert_int_equal(m.gi_profiles[1].placements[0].size, 4);
        gv_gpu_model_done(&m);
}

static void test_truncated(void **state)
{
        struct tmp *t = *state;
        _cleanup_free_ char *path = gv_path_join(t->dir, "Cut.json");
        _cleanup_free_ char *cut = xstrndup(base_model, sizeof(base_model) / 2);
        assert_int_equal(gv_write_file(path, cut, GV_WRITE_CREATE), 0);
        expect_error(path, path, "invalid JSON", NULL);

        /* A shipped file cut short fails the same way. */
        _cleanup_free_ char *shipped = NULL;
        const char *data = getenv("GPUVIRT_DATA_DIR");
        assert_non_null(data);
        _cleanup_free_ char *src = gv_path_join(data, "gpus", "H100-PCIe-80GB.json");
        size_t len = 0;
        assert_int_equal(gv_read_file(src, 1 << 20, &shipped, &len), 0);
        shipped[len - 100] = '\0';
        assert_int_equal(gv_write_file(path, shipped, GV_WRITE_CREATE), 0);
        expect_error(path, "invalid JSON", NULL);
}

static void test_unknown_keys(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();

        json_object_set_new(j, "colour", json_string("green"));
        _cleanup_free_ char *p1 = write_model(t, "A.json", j);
        expect_error(p1, p1, "unknown key 'colour'", "valid keys: name, nvml_name", NULL);
        json_object_del(j, "colour");

        json_object_set_new(gi_at(j, 1), "sm", json_integer(56));
        _cleanup_free_ char *p2 = write_model(t, "B.json", j);
        expect_error(p2, "gi_profiles[1] '4g.40gb'", "unknown key 'sm'", NULL);
        json_object_del(gi_at(j, 1), "sm");

        json_object_set_new(json_object_get(type_at(j, 1), "fact_sources"), "colour",
                            json_pack("{s:s}", "source", "MUG"));
        _cleanup_free_ char *p3 = write_model(t, "C.json", j);
        expect_error(p3, "vgpu.types[1] 'T-40C'", "'fact_sources' names 'colour'",
                     "valid fields: name, type_id", NULL);
}

static void test_wrong_types(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();

        json_object_set_new(j, "memory_mib", json_string("80G"));
        _cleanup_free_ char *p1 = write_model(t, "A.json", j);
        expect_error(p1, "key 'memory_mib' must be an integer", NULL);
        json_object_set_new(j, "memory_mib", json_integer(81920));

        json_object_set_new(j, "pci_device", json_string("2330"));
        _cleanup_free_ char *p2 = write_model(t, "B.json", j);
        expect_error(p2, "key 'pci_device' must be a hexadecimal string", "'2330'", NULL);
        json_object_set_new(j, "pci_device", json_string("0x1234"));

        json_object_set_new(j, "architecture", json_string("fermi2"));
        _cleanup_free_ char *p3 = write_model(t, "C.json", j);
        expect_error(p3, "unknown architecture 'fermi2'", "ampere", NULL);
        json_object_set_new(j, "architecture", json_string("hopper"));

        json_object_set_new(type_at(j, 0), "series", json_string("X"));
        _cleanup_free_ char *p4 = write_model(t, "D.json", j);
        expect_error(p4, "unknown vGPU series 'X'; valid series: A, B, C, Q", NULL);
        json_object_set_new(type_at(j, 0), "series", json_string("C"));

        json_object_set_new(j, "source", json_string("WIKI"));
        _cleanup_free_ char *p5 = write_model(t, "E.json", j);
        expect_error(p5, "source 'WIKI' is not in the file's \"sources\" table", "MUG, NV-C",
                     NULL);
        json_object_set_new(j, "source", json_string("MUG"));

        json_object_set_new(gi_at(j, 0), "placements", json_string("0-6"));
        _cleanup_free_ char *p6 = write_model(t, "F.json", j);
        expect_error(p6, "key 'placements' must be an array", NULL);
}

static void test_placement_out_of_range(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();

        /* 4g.40gb (4 memory slices) starting at 6 would cover slices 6-9 of 8. */
        json_array_append_new(json_object_get(gi_at(j, 1), "placements"), json_integer(6));
        _cleanup_free_ char *p1 = write_model(t, "A.json", j);
        expect_error(p1, p1, "gi_profiles[1] '4g.40gb'",
                     "placement 6 of '4g.40gb' covers memory slices 6-9, but the GPU has 8 (0-7)",
                     NULL);

        json_array_set_new(json_object_get(gi_at(j, 1), "placements"), 1, json_integer(8));
        _cleanup_free_ char *p2 = write_model(t, "B.json", j);
        expect_error(p2, "placements[1]' must be a start slice from 0 to 7", NULL);

        json_array_set_new(json_object_get(gi_at(j, 1), "placements"), 1, json_integer(0));
        _cleanup_free_ char *p3 = write_model(t, "C.json", j);
        expect_error(p3, "placement 0 of '4g.40gb' is listed twice", NULL);
        json_array_remove(json_object_get(gi_at(j, 1), "placements"), 1);

        json_object_set_new(gi_at(j, 1), "memory_slices", json_integer(9));
        _cleanup_free_ char *p4 = write_model(t, "D.json", j);
        expect_error(p4, "key 'memory_slices' is 9; it must be from 1 to 8", NULL);
}

static void test_unknown_gi_profile(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();

        json_object_set_new(type_at(j, 0), "gi_profile", json_string("5g.50gb"));
        _cleanup_free_ char *p1 = write_model(t, "A.json", j);
        expect_error(p1, "vGPU type 'T-1-10C' names GPU-instance profile '5g.50gb'",
                     "valid profiles: 1g.10gb, 4g.40gb", NULL);

        /* The same on a model without MIG. */
        json_object_del(j, "mig");
        _cleanup_free_ char *p2 = write_model(t, "B.json", j);
        expect_error(p2, "is MIG-backed ('5g.50gb') but the model has no \"mig\" section", NULL);
}

static void test_duplicates(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();

        json_object_set_new(type_at(j, 1), "type_id", json_integer(1));
        _cleanup_free_ char *p1 = write_model(t, "A.json", j);
        expect_error(p1, "vGPU types 'T-1-10C' and 'T-40C' share type id 1", NULL);
        json_object_set_new(type_at(j, 1), "type_id", json_integer(2));

        json_object_set_new(type_at(j, 1), "name", json_string("t-1-10c"));
        _cleanup_free_ char *p2 = write_model(t, "B.json", j);
        expect_error(p2, "vGPU type 't-1-10c' is listed twice", NULL);
        json_object_set_new(type_at(j, 1), "name", json_string("T-40C"));

        json_object_set_new(gi_at(j, 1), "id", json_integer(19));
        _cleanup_free_ char *p3 = write_model(t, "C.json", j);
        expect_error(p3, "'1g.10gb' and '4g.40gb' share profile id 19", NULL);
        json_object_set_new(gi_at(j, 1), "id", json_integer(5));

        json_object_set_new(type_at(j, 1), "max_instances_mixed", json_integer(3));
        _cleanup_free_ char *p4 = write_model(t, "D.json", j);
        expect_error(p4, "'max_instances_mixed' (3) exceeds 'max_instances' (2)", NULL);
}

static void test_load_dir(void **state)
{
        struct tmp *t = *state;
        _cleanup_json_ json_t *j = base();
        struct gv_catalog *c = NULL;
        struct gv_error *e = NULL;

        /* Empty directory. */
        assert_int_equal(gv_catalog_load_dir(t->dir, &c, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "no *.json model files"));
        e = gv_error_free(e);

        /* A file not named after its model. */
        _cleanup_free_ char *p1 = write_model(t, "Other.json", j);
        assert_int_equal(gv_catalog_load_dir(t->dir, &c, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "holds model 'Test-GPU'; name the file after its model "
                                       "('Test-GPU.json')"));
        e = gv_error_free(e);
        unlink(p1);

        /* GPUVIRT_DATA_DIR points gv_catalog_load_default at <dir>/gpus. */
        _cleanup_free_ char *gpus = gv_path_join(t->dir, "gpus");
        assert_int_equal(gv_mkdir_p(gpus, 0755), 0);
        _cleanup_free_ char *p2 = gv_path_join(gpus, "Test-GPU.json");
        char *s = json_dumps(j, 0);
        assert_int_equal(gv_write_file(p2, s, GV_WRITE_CREATE), 0);
        free(s);
        const char *saved = getenv("GPUVIRT_DATA_DIR");
        _cleanup_free_ char *saved_copy = saved ? xstrdup(saved) : NULL;
        setenv("GPUVIRT_DATA_DIR", t->dir, 1);
        int r = gv_catalog_load_default(&c, &e);
        if (saved_copy)
                setenv("GPUVIRT_DATA_DIR", saved_copy, 1);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_int_equal(c->n_models, 1);
        assert_string_equal(c->models[0].name, "Test-GPU");
        c = gv_catalog_free(c);

        /* Two models with one PCI id. */
        json_object_set_new(j, "name", json_string("Test-GPU2"));
        _cleanup_free_ char *p3 = gv_path_join(gpus, "Test-GPU2.json");
        s = json_dumps(j, 0);
        assert_int_equal(gv_write_file(p3, s, GV_WRITE_CREATE), 0);
        free(s);
        assert_int_equal(gv_catalog_load_dir(gpus, &c, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "PCI id 10de:1234 of 'Test-GPU2' is already used by "
                                       "'Test-GPU'"));
        assert_null(c);
        gv_error_free(e);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_all_models_load),
                cmocka_unit_test(test_every_fact_has_a_source),
                cmocka_unit_test(test_mig_facts),
                cmocka_unit_test(test_vgpu_facts),
                cmocka_unit_test(test_lookups),
                cmocka_unit_test(test_series_table),
                cmocka_unit_test_setup_teardown(test_base_loads, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_truncated, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_unknown_keys, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_wrong_types, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_placement_out_of_range, setup_tmp,
                                                teardown_tmp),
                cmocka_unit_test_setup_teardown(test_unknown_gi_profile, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_duplicates, setup_tmp, teardown_tmp),
                cmocka_unit_test_setup_teardown(test_load_dir, setup_tmp, teardown_tmp),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
