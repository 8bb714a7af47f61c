/* SPDX-License-Identifier: MIT */
/*
 * test-nvml-sim.c — the binding against the NVML simulator on simulated hosts: dgx-h100
 * inventory, MIG mode, GI profiles compared with the catalog (ids vs indices, names,
 * placements), GI/CI create/list/destroy, MIG device handles, vGPU types, instances and the
 * count protocol.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "catalog/catalog.h"
#include "host/sim-profile.h"
#include "hw/nvml/nvml-abi.h"
#include "hw/nvml/nvml.h"
#include "nvml-sim-host.h"
#include "util/alloc.h"

#define assert_contains(hay, needle)                                                     \
        do {                                                                             \
                const char *h_ = (hay);                                                  \
                if (!h_ || !strstr(h_, (needle)))                                        \
                        fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", (needle)); \
        } while (0)

#define OK(expr)                                                                          \
        do {                                                                              \
                _cleanup_(gv_error_freep) struct gv_error *e_ = NULL;                     \
                struct gv_error **err_ = &e_;                                             \
                int r_ = (expr);                                                          \
                if (r_ < 0)                                                               \
                        fail_msg("%s failed: %s", #expr, gv_error_msg(e_, r_));           \
        } while (0)

struct ctx {
        struct simhost host;
        struct gv_nvml *nvml;
        struct gv_catalog *catalog;
};

static const char *const dgx_h100_bdfs[] = {
        "0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
        "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0",
};

static int setup_h100(void **state)
{
        struct ctx *c = xnew0(struct ctx, 1);

        simhost_make("dgx-h100", &c->host);
        OK(gv_nvml_open(c->host.nvml_path, &c->nvml, err_));
        OK(gv_catalog_load_default(&c->catalog, err_));
        *state = c;
        return 0;
}

static int setup_mixed(void **state)
{
        struct ctx *c = xnew0(struct ctx, 1);

        simhost_make("mixed", &c->host);
        OK(gv_nvml_open(c->host.nvml_path, &c->nvml, err_));
        OK(gv_catalog_load_default(&c->catalog, err_));
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        struct ctx *c = *state;

        gv_nvml_unref(c->nvml);
        gv_catalog_free(c->catalog);
        simhost_done(&c->host);
        free(c);
        return 0;
}

static struct gv_nvml_device *dev(struct ctx *c, unsigned index)
{
        struct gv_nvml_device *d = NULL;

        OK(gv_nvml_device_by_index(c->nvml, index, &d, err_));
        return d;
}

static void test_inventory(void **state)
{
        struct ctx *c = *state;
        const struct gv_gpu_model *m = gv_catalog_find(c->catalog, "H100-SXM5-80GB");
        const struct sim_profile *p = sim_profile_find("dgx-h100");
        unsigned count = 0;
        char *uuids[8] = { NULL };

        assert_non_null(m);
        assert_non_null(p);
        for (int cap = 0; cap < _GV_NVML_CAP_MAX; cap++)
                if (cap != GV_NVML_CAP_TEMPERATURE && !gv_nvml_has(c->nvml, cap))
                        fail_msg("the simulator lacks capability '%s'",
                                 gv_nvml_cap_to_string(cap));

        _cleanup_free_ char *driver = NULL, *nvmlv = NULL;
        OK(gv_nvml_driver_version(c->nvml, &driver, err_));
        assert_string_equal(driver, p->driver_version);
        OK(gv_nvml_nvml_version(c->nvml, &nvmlv, err_));
        assert_string_equal(nvmlv, p->nvml_version);

        OK(gv_nvml_device_count(c->nvml, &count, err_));
        assert_int_equal(count, 8);

        for (unsigned i = 0; i < count; i++) {
                struct gv_nvml_device *d = dev(c, i), *same = NULL;
                char label[64], bdf[GV_PCI_ADDR_STR_MAX];
                _cleanup_free_ char *name = NULL;
                struct gv_nvml_pci_info pci;
                struct gv_nvml_memory mem;
                struct gv_nvml_utilization u;
                uint32_t mw;
                int celsius;

                snprintf(label, sizeof(label), "GPU %s", dgx_h100_bdfs[i]);
                assert_string_equal(gv_nvml_device_label(d), label);
                OK(gv_nvml_device_name(d, &name, err_));
                assert_string_equal(name, "NVIDIA H100 80GB HBM3");
                assert_string_equal(name, m->nvml_name);

                OK(gv_nvml_device_pci_info(d, &pci, err_));
                assert_string_equal(gv_pci_addr_format(&pci.addr, bdf), dgx_h100_bdfs[i]);
                assert_int_equal(pci.vendor, 0x10de);
                assert_int_equal(pci.device, 0x2330);
                assert_int_equal(pci.subsystem_vendor, m->pci_subsystem_vendor);
                assert_int_equal(pci.subsystem_device, m->pci_subsystem_device);

                OK(gv_nvml_device_memory(d, &mem, err_));
                assert_true(mem.total == m->memory_mib * 1024 * 1024);
                assert_true(mem.used <= mem.total);

                OK(gv_nvml_device_utilization(d, &u, err_));
                assert_in_range(u.gpu_pct, 0, 100);
                assert_in_range(u.memory_pct, 0, 100);
                OK(gv_nvml_device_power(d, &mw, err_));
                assert_in_range(mw, 1, m->power_max_mw);
                OK(gv_nvml_device_temperature(d, &celsius, err_));
                assert_in_range(celsius, 1, 120);

                OK(gv_nvml_device_uuid(d, &uuids[i], err_));
                assert_true(gv_startswith(uuids[i], "GPU-"));
                for (unsigned j = 0; j < i; j++)
                        assert_string_not_equal(uuids[i], uuids[j]);

                /* the same GPU by PCI address (both spellings) and by UUID: the same object */
                OK(gv_nvml_device_by_pci(c->nvml, dgx_h100_bdfs[i], &same, err_));
                assert_ptr_equal(same, d);
                OK(gv_nvml_device_by_uuid(c->nvml, uuids[i], &same, err_));
                assert_ptr_equal(same, d);
        }
        for (unsigned i = 0; i < 8; i++)
                free(uuids[i]);

        /* errors name the call and the argument */
        struct gv_nvml_device *none = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_nvml_device_by_index(c->nvml, 8, &none, &err), -EINVAL);
        assert_null(none);
        assert_contains(err->msg, "nvmlDeviceGetHandleByIndex_v2(index 8): "
                                  "NVML_ERROR_INVALID_ARGUMENT (");
        err = gv_error_free(err);
        assert_int_equal(gv_nvml_device_by_pci(c->nvml, "0000:77:00.0", &none, &err), -ENOENT);
        assert_contains(err->msg, "nvmlDeviceGetHandleByPciBusId_v2('0000:77:00.0'): "
                                  "NVML_ERROR_NOT_FOUND (");
}

static void test_gpu_lost(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 3);
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        _cleanup_free_ char *name = NULL;

        simhost_set_lost(&c->host, 3, true);
        assert_int_equal(gv_nvml_device_name(d, &name, &err), -ENODEV);
        assert_null(name);
        assert_contains(err->msg, "nvmlDeviceGetName(GPU 0000:5d:00.0): NVML_ERROR_GPU_IS_LOST");
        assert_contains(err->msg, "reset the GPU or reboot the host");
        simhost_set_lost(&c->host, 3, false);
        OK(gv_nvml_device_name(d, &name, err_));
}

static void test_mig_mode(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 4);
        bool cur = true, pend = true;
        int activation = -1;
        _cleanup_free_ char *msg = NULL;

        OK(gv_nvml_mig_mode(d, &cur, &pend, err_));
        assert_false(cur);
        assert_false(pend);

        OK(gv_nvml_mig_mode_set(d, true, &activation, &msg, err_));
        OK(gv_nvml_mig_mode(d, &cur, &pend, err_));
        assert_true(pend);
        /* Hopper: no reset needed (nvml-abi.md §9), so the mode is active at once */
        assert_int_equal(activation, 0);
        assert_null(msg);
        assert_true(cur);

        /* other GPUs are untouched */
        OK(gv_nvml_mig_mode(dev(c, 1), &cur, &pend, err_));
        assert_false(cur);

        OK(gv_nvml_mig_mode_set(d, false, &activation, NULL, err_));
        OK(gv_nvml_mig_mode(d, &cur, &pend, err_));
        assert_false(pend);
}

/* Every GI profile NVML reports matches the catalog entry with the same id: name (derived,
 * mig.md §7), index constant, slices, memory, instances, placements. */
static void check_profiles_match_catalog(struct ctx *c, struct gv_nvml_device *d,
                                         const char *model)
{
        const struct gv_gpu_model *m = gv_catalog_find(c->catalog, model);
        struct gv_mig_gi_profile *p = NULL;
        size_t n = 0;

        assert_non_null(m);
        OK(gv_nvml_gi_profiles(d, &p, &n, err_));
        assert_int_equal(n, m->n_gi_profiles);
        for (size_t i = 0; i < n; i++) {
                const struct gv_mig_gi_profile *want = gv_gpu_model_find_gi_profile_id(m, p[i].id);

                if (!want)
                        fail_msg("%s: NVML profile id %u (index %u) is not in the catalog", model,
                                 p[i].id, p[i].nvml_index);
                assert_string_equal(p[i].name, want->name);
                assert_int_equal(p[i].nvml_index, want->nvml_index);
                assert_int_equal(p[i].slices, want->slices);
                assert_int_equal(p[i].instances, want->instances);
                assert_true(p[i].memory_mib == want->memory_mib);
                assert_int_equal(p[i].media_extensions, want->media_extensions);
                assert_int_equal(p[i].n_placements, want->n_placements);
                for (size_t j = 0; j < p[i].n_placements; j++) {
                        assert_int_equal(p[i].placements[j].start, want->placements[j].start);
                        assert_int_equal(p[i].placements[j].size, want->placements[j].size);
                }
                assert_int_equal(p[i].memory_slices, want->memory_slices);
        }
        gv_nvml_gi_profiles_free(p, n);
}

static void test_gi_profiles(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 0);
        struct gv_mig_gi_profile p = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;

        struct gv_mig_gi_profile *none = NULL;
        size_t n_none = 1;
        int activation;

        /* MIG off: NVML offers no profile (the simulator answers NOT_SUPPORTED per index) */
        OK(gv_nvml_gi_profiles(d, &none, &n_none, err_));
        assert_int_equal(n_none, 0);
        gv_nvml_gi_profiles_free(none, n_none);

        OK(gv_nvml_mig_mode_set(d, true, &activation, NULL, err_));
        check_profiles_match_catalog(c, d, "H100-SXM5-80GB");

        /* index → device-specific id (nvml-abi.md §7.3) */
        OK(gv_nvml_gi_profile_info(d, NVML_GPU_INSTANCE_PROFILE_1_SLICE, &p, err_));
        assert_int_equal(p.id, 19);
        assert_string_equal(p.name, "1g.10gb");
        gv_nvml_gi_profile_done(&p);
        OK(gv_nvml_gi_profile_info(d, NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1, &p, err_));
        assert_int_equal(p.id, 20);
        assert_string_equal(p.name, "1g.10gb+me");
        assert_true(p.media_extensions);
        gv_nvml_gi_profile_done(&p);
        OK(gv_nvml_gi_profile_info(d, NVML_GPU_INSTANCE_PROFILE_7_SLICE, &p, err_));
        assert_int_equal(p.id, 0);
        assert_string_equal(p.name, "7g.80gb");
        gv_nvml_gi_profile_done(&p);

        /* 6_SLICE does not exist on H100: NOT_SUPPORTED; past the last index: INVALID_ARGUMENT */
        assert_int_equal(gv_nvml_gi_profile_info(d, NVML_GPU_INSTANCE_PROFILE_6_SLICE, &p, &err),
                         -EOPNOTSUPP);
        assert_contains(err->msg, "(GPU 0000:18:00.0, profile index 6): NVML_ERROR_NOT_SUPPORTED");
        err = gv_error_free(err);
        assert_int_equal(gv_nvml_gi_profile_info(d, 200, &p, &err), -EINVAL);
        assert_contains(err->msg, "profile index 200): NVML_ERROR_INVALID_ARGUMENT");
}

/* A30 (ids differ from the A100/H100 family: 4g.24gb is id 0) and A100 40GB. */
static void test_gi_profiles_other_models(void **state)
{
        struct ctx *c = *state;
        unsigned count = 0, checked = 0;

        OK(gv_nvml_device_count(c->nvml, &count, err_));
        for (unsigned i = 0; i < count; i++) {
                struct gv_nvml_device *d = dev(c, i);
                struct gv_nvml_pci_info pci;
                int activation;

                OK(gv_nvml_device_pci_info(d, &pci, err_));
                const struct gv_gpu_model *m = gv_catalog_find_pci(c->catalog, pci.vendor,
                                                                   pci.device);
                assert_non_null(m);
                if (m->n_gi_profiles == 0)
                        continue;
                _cleanup_free_ char *msg = NULL;
                char bdf[GV_PCI_ADDR_STR_MAX];
                bool cur = true;

                /* Ampere whose reset attempt fails: the new mode waits for a GPU reset
                 * (nvml-abi.md §9) */
                simhost_inject_once(&c->host, "nvmlDeviceSetMigMode:activation",
                                    NVML_ERROR_RESET_REQUIRED);
                OK(gv_nvml_mig_mode_set(d, true, &activation, &msg, err_));
                assert_int_equal(activation, -ENOTRECOVERABLE);
                assert_non_null(msg);
                assert_non_null(strstr(msg, "NVML_ERROR_RESET_REQUIRED"));
                assert_non_null(strstr(msg, "nvmlDeviceSetMigMode("));
                OK(gv_nvml_mig_mode(d, &cur, NULL, err_));
                assert_false(cur);
                simhost_reset_gpu(&c->host, gv_pci_addr_format(&pci.addr, bdf));
                OK(gv_nvml_mig_mode(d, &cur, NULL, err_));
                assert_true(cur);
                check_profiles_match_catalog(c, d, m->name);
                checked++;
        }
        assert_true(checked >= 2);
}

static void test_gi_ci_lifecycle(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 5); /* 0000:ab:00.0 */
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        struct gv_mig_placement *pl = NULL;
        size_t n_pl = 0;
        uint32_t cap = 0;
        int activation;

        OK(gv_nvml_mig_mode_set(d, true, &activation, NULL, err_));

        /* placements of 3g.40gb (id 9): {0,4}:4 (mig.md §4) */
        OK(gv_nvml_gi_possible_placements(d, 9, &pl, &n_pl, err_));
        assert_int_equal(n_pl, 2);
        assert_int_equal(pl[0].start, 0);
        assert_int_equal(pl[0].size, 4);
        assert_int_equal(pl[1].start, 4);
        assert_int_equal(pl[1].size, 4);
        free(pl);
        OK(gv_nvml_gi_remaining_capacity(d, 9, &cap, err_));
        assert_int_equal(cap, 2);

        struct gv_nvml_gi gi3 = { 0 }, gi1 = { 0 }, again = { 0 };
        const struct gv_mig_placement at4 = { 4, 4 };
        OK(gv_nvml_gi_create(d, 9, &at4, &gi3, err_));
        assert_ptr_equal(gi3.device, d);
        assert_int_equal(gi3.profile_id, 9);
        assert_int_equal(gi3.placement.start, 4);
        assert_int_equal(gi3.placement.size, 4);
        OK(gv_nvml_gi_remaining_capacity(d, 9, &cap, err_));
        assert_int_equal(cap, 1);

        /* overlap: refused, message names call, GPU, profile id and placement */
        assert_int_equal(gv_nvml_gi_create(d, 9, &at4, &again, &err), -ENOSPC);
        assert_contains(err->msg, "nvmlDeviceCreateGpuInstanceWithPlacement(GPU 0000:ab:00.0, "
                                  "profile id 9, placement 4:4): "
                                  "NVML_ERROR_INSUFFICIENT_RESOURCES (");
        err = gv_error_free(err);

        /* no placement: the driver picks one in the free half */
        OK(gv_nvml_gi_create(d, 19, NULL, &gi1, err_));
        assert_int_equal(gi1.profile_id, 19);
        assert_int_equal(gi1.placement.size, 1);
        assert_true(gi1.placement.start < 4);
        assert_true(gi1.id != gi3.id);

        struct gv_nvml_gi *list = NULL;
        size_t n_list = 0;
        OK(gv_nvml_gi_list(d, &list, &n_list, err_));
        assert_int_equal(n_list, 2);
        assert_true(list[0].id < list[1].id);
        assert_true((list[0].id == gi1.id && list[1].id == gi3.id) ||
                    (list[0].id == gi3.id && list[1].id == gi1.id));
        free(list);
        OK(gv_nvml_gi_list_profile(d, 9, &list, &n_list, err_));
        assert_int_equal(n_list, 1);
        assert_int_equal(list[0].id, gi3.id);
        free(list);

        OK(gv_nvml_gi_by_id(d, gi3.id, &again, err_));
        assert_int_equal(again.profile_id, 9);
        assert_int_equal(again.placement.start, 4);
        OK(gv_nvml_gi_info(&gi3, &again, err_));
        assert_int_equal(again.id, gi3.id);

        /* CI profiles inside the 3g GI, named after the GI profile */
        struct gv_mig_gi_profile gp = { 0 };
        struct gv_mig_ci_profile cp = { 0 }, whole = { 0 };
        OK(gv_nvml_gi_profile_info(d, NVML_GPU_INSTANCE_PROFILE_3_SLICE, &gp, err_));
        OK(gv_nvml_ci_profile_info(&gi3, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, &gp, &cp, err_));
        assert_int_equal(cp.slices, 1);
        assert_int_equal(cp.instances, 3);
        assert_string_equal(cp.name, "1c.3g.40gb");
        OK(gv_nvml_ci_profile_info(&gi3, NVML_COMPUTE_INSTANCE_PROFILE_3_SLICE, &gp, &whole,
                                   err_));
        assert_string_equal(whole.name, "3g.40gb");
        gv_nvml_gi_profile_done(&gp);
        OK(gv_nvml_ci_remaining_capacity(&gi3, cp.id, &cap, err_));
        assert_int_equal(cap, 3);

        struct gv_nvml_ci ci = { 0 }, ci2 = { 0 };
        OK(gv_nvml_ci_create(&gi3, cp.id, NULL, &ci, err_));
        assert_int_equal(ci.gi_id, gi3.id);
        assert_int_equal(ci.profile_id, cp.id);
        assert_int_equal(ci.placement.size, 1);
        OK(gv_nvml_ci_by_id(&gi3, ci.id, &ci2, err_));
        assert_int_equal(ci2.profile_id, cp.id);
        OK(gv_nvml_ci_info(&ci, &ci2, err_));
        assert_int_equal(ci2.id, ci.id);

        struct gv_nvml_ci *cis = NULL;
        size_t n_cis = 0;
        OK(gv_nvml_ci_list(&gi3, &cis, &n_cis, err_));
        assert_int_equal(n_cis, 1);
        assert_int_equal(cis[0].id, ci.id);
        free(cis);

        /* the CI is a MIG device */
        unsigned max = 0;
        struct gv_nvml_device *mig = NULL, *parent = NULL;
        uint32_t id;
        bool is_mig = false;
        _cleanup_free_ char *uuid = NULL;
        char label[96];
        OK(gv_nvml_mig_device_max_count(d, &max, err_));
        assert_true(max >= 1);
        OK(gv_nvml_mig_device_by_index(d, 0, &mig, err_));
        snprintf(label, sizeof(label), "MIG device 0 of GPU 0000:ab:00.0");
        assert_string_equal(gv_nvml_device_label(mig), label);
        OK(gv_nvml_device_is_mig(mig, &is_mig, err_));
        assert_true(is_mig);
        OK(gv_nvml_device_is_mig(d, &is_mig, err_));
        assert_false(is_mig);
        OK(gv_nvml_mig_device_gi_id(mig, &id, err_));
        assert_int_equal(id, gi3.id);
        OK(gv_nvml_mig_device_ci_id(mig, &id, err_));
        assert_int_equal(id, ci.id);
        OK(gv_nvml_device_uuid(mig, &uuid, err_));
        assert_true(gv_startswith(uuid, "MIG-"));
        OK(gv_nvml_mig_device_parent(mig, &parent, err_));
        assert_ptr_equal(parent, d);
        assert_int_equal(gv_nvml_mig_device_by_index(d, 1, &mig, &err), -ENOENT);
        err = gv_error_free(err);

        /* a GI with an active CI is in use (nvml-abi.md §7.5) */
        assert_int_equal(gv_nvml_gi_destroy(&gi3, &err), -EBUSY);
        assert_contains(err->msg, "nvmlGpuInstanceDestroy(GPU 0000:ab:00.0, GI ");
        assert_contains(err->msg, "NVML_ERROR_IN_USE");
        err = gv_error_free(err);

        OK(gv_nvml_ci_destroy(&ci, err_));
        OK(gv_nvml_gi_destroy(&gi3, err_));
        OK(gv_nvml_gi_destroy(&gi1, err_));
        OK(gv_nvml_gi_list(d, &list, &n_list, err_));
        assert_int_equal(n_list, 0);
        free(list);
        gv_nvml_ci_profile_done(&cp);
        gv_nvml_ci_profile_done(&whole);
}

static bool contains_id(const uint32_t *ids, size_t n, uint32_t id)
{
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static void test_vgpu(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 1);
        const struct gv_gpu_model *m = gv_catalog_find(c->catalog, "H100-SXM5-80GB");
        enum gv_nvml_virt_mode vm;
        bool sriov = false;

        OK(gv_nvml_virtualization_mode(d, &vm, err_));
        assert_int_equal(vm, GV_NVML_VIRT_HOST_VGPU);
        OK(gv_nvml_host_vgpu_sriov(d, &sriov, err_));
        assert_true(sriov); /* dgx-h100: SR-IOV vendor-VFIO */

        /* supported: every catalog type, through the count protocol */
        uint32_t *ids = NULL;
        size_t n = 0;
        OK(gv_nvml_vgpu_supported_types(d, &ids, &n, err_));
        assert_int_equal(n, m->n_vgpu_types);
        for (size_t i = 0; i < m->n_vgpu_types; i++)
                assert_true(contains_id(ids, n, m->vgpu_types[i].type_id));
        free(ids);

        const struct gv_vgpu_type *t20 = gv_gpu_model_find_vgpu_type(m, "H100XM-20C");
        const struct gv_vgpu_type *t3g = gv_gpu_model_find_vgpu_type(m, "H100XM-3-40C");
        assert_non_null(t20);
        assert_non_null(t3g);

        struct gv_nvml_vgpu_type info = { 0 };
        OK(gv_nvml_vgpu_type_info(d, t20->type_id, &info, err_));
        assert_contains(info.name, "H100XM-20C");
        assert_true(info.framebuffer_bytes == t20->framebuffer_mib * 1024 * 1024);
        assert_int_equal(info.max_instances, t20->max_instances);
        assert_int_equal(info.gi_profile_id, GV_NVML_NO_GI_PROFILE);
        assert_non_null(info.vgpu_class);
        assert_non_null(info.license);
        assert_true(info.max_instances_per_vm >= 1);
        gv_nvml_vgpu_type_done(&info);
        uint32_t gip = 0;
        OK(gv_nvml_vgpu_type_gi_profile_id(d, t3g->type_id, &gip, err_));
        assert_int_equal(gip, 9); /* MIG-backed on 3g.40gb, profile id 9 */

        OK(gv_nvml_vgpu_creatable_types(d, &ids, &n, err_));
        assert_true(contains_id(ids, n, t20->type_id));
        free(ids);
        OK(gv_nvml_vgpu_active_instances(d, &ids, &n, err_));
        assert_int_equal(n, 0);
        free(ids);

        /* one vGPU: the active list and the instance queries see it; equal-size mode now
         * offers only its type (vgpu.md §8) */
        const char *uuid = "5b3c0e36-8c3f-4a52-9d63-3d2f0a3f2b11";
        unsigned inst = simhost_add_vgpu(&c->host, 1, t20->type_id, uuid);
        OK(gv_nvml_vgpu_active_instances(d, &ids, &n, err_));
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], inst);
        free(ids);
        OK(gv_nvml_vgpu_creatable_types(d, &ids, &n, err_));
        assert_int_equal(n, 1);
        assert_int_equal(ids[0], t20->type_id);
        free(ids);

        uint32_t type = 0, gi = 0, placement = 0;
        uint64_t fb = 0;
        _cleanup_free_ char *iu = NULL, *vmid = NULL;
        OK(gv_nvml_vgpu_instance_type(d, inst, &type, err_));
        assert_int_equal(type, t20->type_id);
        OK(gv_nvml_vgpu_instance_uuid(d, inst, &iu, err_));
        assert_string_equal(iu, uuid);
        OK(gv_nvml_vgpu_instance_gi_id(d, inst, &gi, err_));
        assert_int_equal(gi, GV_NVML_NO_GI);
        OK(gv_nvml_vgpu_instance_fb_usage(d, inst, &fb, err_));
        assert_true(fb <= t20->framebuffer_mib * 1024 * 1024);
        OK(gv_nvml_vgpu_instance_vm_id(d, inst, &vmid, NULL, err_));
        OK(gv_nvml_vgpu_instance_placement_id(d, inst, &placement, err_));

        struct gv_nvml_vgpu_sample *samples = NULL;
        size_t n_samples = 0;
        OK(gv_nvml_vgpu_utilization(d, 0, &samples, &n_samples, err_));
        for (size_t i = 0; i < n_samples; i++) {
                assert_int_equal(samples[i].instance, inst);
                assert_in_range(samples[i].sm_pct, 0, 100);
        }
        free(samples);

        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_nvml_vgpu_instance_type(d, 4242, &type, &err), -ENOENT);
        assert_contains(err->msg, "nvmlVgpuInstanceGetType(GPU 0000:2a:00.0, vGPU instance "
                                  "4242): NVML_ERROR_NOT_FOUND");
}

static void test_vgpu_modes_and_placements(void **state)
{
        struct ctx *c = *state;
        struct gv_nvml_device *d = dev(c, 2);
        const struct gv_gpu_model *m = gv_catalog_find(c->catalog, "H100-SXM5-80GB");
        const struct gv_vgpu_type *t20 = gv_gpu_model_find_vgpu_type(m, "H100XM-20C");
        bool het = true;
        struct gv_nvml_sched_state sched;
        uint32_t capv = 0;

        OK(gv_nvml_vgpu_heterogeneous_mode(d, &het, err_));
        assert_false(het); /* equal-size by default (vgpu.md §8) */
        if (m->vgpu_heterogeneous_capable) {
                OK(gv_nvml_vgpu_set_heterogeneous_mode(d, true, err_));
                OK(gv_nvml_vgpu_heterogeneous_mode(d, &het, err_));
                assert_true(het);
                OK(gv_nvml_vgpu_set_heterogeneous_mode(d, false, err_));
        }

        OK(gv_nvml_vgpu_scheduler_state(d, &sched, err_));
        assert_non_null(gv_nvml_sched_policy_to_string(sched.policy));
        OK(gv_nvml_vgpu_device_capability(d, GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES,
                                          &capv, err_));
        assert_int_equal(capv != 0, m->vgpu_heterogeneous_capable);

        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        assert_int_equal(gv_nvml_vgpu_device_capability(d, 99, &capv, &err), -EINVAL);
        assert_contains(err->msg, "valid capabilities: fractional-multi-vgpu, ");

        struct gv_nvml_vgpu_placements sup = { 0 }, cre = { 0 };
        OK(gv_nvml_vgpu_supported_placements(d, t20->type_id, true, &sup, err_));
        OK(gv_nvml_vgpu_creatable_placements(d, t20->type_id, true, &cre, err_));
        /* creatable ⊆ supported */
        for (size_t i = 0; i < cre.n_ids; i++)
                assert_true(contains_id(sup.ids, sup.n_ids, cre.ids[i]));
        if (sup.n_ids > 0)
                assert_true(sup.placement_size > 0);
        gv_nvml_vgpu_placements_done(&sup);
        gv_nvml_vgpu_placements_done(&cre);
}

/* The dgx-h100 tests share one host (creating one is the slow part); each works on its own
 * GPUs: inventory reads all, lost 3, MIG mode 4, GI profiles 0, GI/CI lifecycle 5, vGPU 1,
 * vGPU modes 2. */
int main(void)
{
        const struct CMUnitTest h100[] = {
                cmocka_unit_test(test_inventory),
                cmocka_unit_test(test_gpu_lost),
                cmocka_unit_test(test_mig_mode),
                cmocka_unit_test(test_gi_profiles),
                cmocka_unit_test(test_gi_ci_lifecycle),
                cmocka_unit_test(test_vgpu),
                cmocka_unit_test(test_vgpu_modes_and_placements),
        };
        const struct CMUnitTest mixed[] = {
                cmocka_unit_test(test_gi_profiles_other_models),
        };
        int r = cmocka_run_group_tests_name("dgx-h100", h100, setup_h100, teardown);
        return r | cmocka_run_group_tests_name("mixed", mixed, setup_mixed, teardown);
}
