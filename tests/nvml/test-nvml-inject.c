/* SPDX-License-Identifier: MIT */
/*
 * test-nvml-inject.c — every NVML error code injected at every call site of the binding.
 *
 * The simulator fails an NVML symbol on demand (sim_inject entries in the host state). For each
 * row of `sites` (a wrapper and the NVML export it calls) and each code of expected_errno[],
 * we inject the code for that symbol, call the wrapper, and check the errno the binding maps it
 * to and that the message names the call and the symbolic code. Then the protocol-level
 * behaviours that depend on the code: profile enumeration skipping NOT_SUPPORTED and stopping at
 * INVALID_ARGUMENT, and the count protocol surviving a one-off INSUFFICIENT_SIZE.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "expected-errno.h"
#include "hw/nvml/nvml-abi.h"
#include "hw/nvml/nvml-internal.h"
#include "hw/nvml/nvml.h"
#include "nvml-sim-host.h"
#include "util/alloc.h"

#define OK(expr)                                                                          \
        do {                                                                              \
                _cleanup_(gv_error_freep) struct gv_error *e_ = NULL;                     \
                struct gv_error **err_ = &e_;                                             \
                int r_ = (expr);                                                          \
                if (r_ < 0)                                                               \
                        fail_msg("%s failed: %s", #expr, gv_error_msg(e_, r_));           \
        } while (0)

struct ictx {
        struct simhost host;
        struct gv_nvml *nvml;
        struct gv_nvml_device *mig_gpu;  /* GPU 0: MIG on, one 3g GI with one 1-slice CI */
        struct gv_nvml_device *vgpu_gpu; /* GPU 1: one time-sliced vGPU */
        struct gv_nvml_device *mig_dev;  /* MIG device 0 of GPU 0 */
        struct gv_nvml_gi gi;
        struct gv_nvml_ci ci;
        uint32_t ci_profile_id;
        uint32_t type_id;
        uint32_t instance;
};

/* ---- the call sites: one small function per wrapper ---- */

#define SITE(name) static int site_##name(struct ictx *c, struct gv_error **err)

SITE(init)
{
        struct gv_nvml *n = NULL;
        int r = gv_nvml_open(c->host.nvml_path, &n, err);
        gv_nvml_unref(n);
        return r;
}
SITE(driver_version)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_driver_version(c->nvml, &s, err);
}
SITE(nvml_version)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_nvml_version(c->nvml, &s, err);
}
SITE(count)
{
        unsigned n;
        return gv_nvml_device_count(c->nvml, &n, err);
}
SITE(by_index)
{
        struct gv_nvml_device *d;
        return gv_nvml_device_by_index(c->nvml, 1, &d, err);
}
SITE(by_pci)
{
        struct gv_nvml_device *d;
        return gv_nvml_device_by_pci(c->nvml, "0000:2a:00.0", &d, err);
}
SITE(by_uuid)
{
        struct gv_nvml_device *d;
        return gv_nvml_device_by_uuid(c->nvml, "GPU-00000000-0000-0000-0000-000000000000", &d,
                                      err);
}
SITE(name)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_device_name(c->vgpu_gpu, &s, err);
}
SITE(uuid)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_device_uuid(c->vgpu_gpu, &s, err);
}
SITE(pci)
{
        struct gv_nvml_pci_info p;
        return gv_nvml_device_pci_info(c->vgpu_gpu, &p, err);
}
SITE(memory)
{
        struct gv_nvml_memory m;
        return gv_nvml_device_memory(c->vgpu_gpu, &m, err);
}
SITE(utilization)
{
        struct gv_nvml_utilization u;
        return gv_nvml_device_utilization(c->vgpu_gpu, &u, err);
}
SITE(temperature)
{
        int t;
        return gv_nvml_device_temperature(c->vgpu_gpu, &t, err);
}
SITE(power)
{
        uint32_t mw;
        return gv_nvml_device_power(c->vgpu_gpu, &mw, err);
}
SITE(mig_mode)
{
        bool a, b;
        return gv_nvml_mig_mode(c->mig_gpu, &a, &b, err);
}
SITE(mig_mode_set)
{
        int act;
        return gv_nvml_mig_mode_set(c->mig_gpu, true, &act, NULL, err);
}
SITE(gi_profile_info)
{
        struct gv_mig_gi_profile p = { 0 };
        int r = gv_nvml_gi_profile_info(c->mig_gpu, NVML_GPU_INSTANCE_PROFILE_3_SLICE, &p, err);
        gv_nvml_gi_profile_done(&p);
        return r;
}
SITE(gi_profiles_placements)
{
        struct gv_mig_gi_profile *p = NULL;
        size_t n = 0;
        int r = gv_nvml_gi_profiles(c->mig_gpu, &p, &n, err);
        gv_nvml_gi_profiles_free(p, n);
        return r;
}
SITE(gi_placements)
{
        _cleanup_free_ struct gv_mig_placement *p = NULL;
        size_t n;
        return gv_nvml_gi_possible_placements(c->mig_gpu, 9, &p, &n, err);
}
SITE(gi_capacity)
{
        uint32_t n;
        return gv_nvml_gi_remaining_capacity(c->mig_gpu, 9, &n, err);
}
SITE(gi_create_at)
{
        struct gv_nvml_gi gi;
        const struct gv_mig_placement at = { 0, 4 };
        return gv_nvml_gi_create(c->mig_gpu, 9, &at, &gi, err);
}
SITE(gi_create)
{
        struct gv_nvml_gi gi;
        return gv_nvml_gi_create(c->mig_gpu, 19, NULL, &gi, err);
}
SITE(gi_destroy)
{
        return gv_nvml_gi_destroy(&c->gi, err);
}
SITE(gi_by_id)
{
        struct gv_nvml_gi gi;
        return gv_nvml_gi_by_id(c->mig_gpu, c->gi.id, &gi, err);
}
SITE(gi_info)
{
        struct gv_nvml_gi gi;
        return gv_nvml_gi_info(&c->gi, &gi, err);
}
SITE(gi_list)
{
        _cleanup_free_ struct gv_nvml_gi *l = NULL;
        size_t n;
        return gv_nvml_gi_list(c->mig_gpu, &l, &n, err);
}
SITE(gi_list_profile)
{
        _cleanup_free_ struct gv_nvml_gi *l = NULL;
        size_t n;
        return gv_nvml_gi_list_profile(c->mig_gpu, 9, &l, &n, err);
}
SITE(ci_profile_info)
{
        struct gv_mig_ci_profile p = { 0 };
        int r = gv_nvml_ci_profile_info(&c->gi, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, NULL, &p,
                                        err);
        gv_nvml_ci_profile_done(&p);
        return r;
}
SITE(ci_placements)
{
        _cleanup_free_ struct gv_mig_placement *p = NULL;
        size_t n;
        return gv_nvml_ci_possible_placements(&c->gi, c->ci_profile_id, &p, &n, err);
}
SITE(ci_capacity)
{
        uint32_t n;
        return gv_nvml_ci_remaining_capacity(&c->gi, c->ci_profile_id, &n, err);
}
SITE(ci_create)
{
        struct gv_nvml_ci ci;
        return gv_nvml_ci_create(&c->gi, c->ci_profile_id, NULL, &ci, err);
}
SITE(ci_create_at)
{
        struct gv_nvml_ci ci;
        const struct gv_mig_placement at = { 2, 1 };
        return gv_nvml_ci_create(&c->gi, c->ci_profile_id, &at, &ci, err);
}
SITE(ci_destroy)
{
        return gv_nvml_ci_destroy(&c->ci, err);
}
SITE(ci_by_id)
{
        struct gv_nvml_ci ci;
        return gv_nvml_ci_by_id(&c->gi, c->ci.id, &ci, err);
}
SITE(ci_info)
{
        struct gv_nvml_ci ci;
        return gv_nvml_ci_info(&c->ci, &ci, err);
}
SITE(ci_list)
{
        _cleanup_free_ struct gv_nvml_ci *l = NULL;
        size_t n;
        return gv_nvml_ci_list(&c->gi, &l, &n, err);
}
SITE(mig_max)
{
        unsigned n;
        return gv_nvml_mig_device_max_count(c->mig_gpu, &n, err);
}
SITE(mig_by_index)
{
        struct gv_nvml_device *d;
        return gv_nvml_mig_device_by_index(c->mig_gpu, 0, &d, err);
}
SITE(is_mig)
{
        bool b;
        return gv_nvml_device_is_mig(c->mig_dev, &b, err);
}
SITE(mig_gi_id)
{
        uint32_t id;
        return gv_nvml_mig_device_gi_id(c->mig_dev, &id, err);
}
SITE(mig_ci_id)
{
        uint32_t id;
        return gv_nvml_mig_device_ci_id(c->mig_dev, &id, err);
}
SITE(mig_parent)
{
        struct gv_nvml_device *d;
        return gv_nvml_mig_device_parent(c->mig_dev, &d, err);
}
SITE(virt_mode)
{
        enum gv_nvml_virt_mode m;
        return gv_nvml_virtualization_mode(c->vgpu_gpu, &m, err);
}
SITE(host_mode)
{
        bool b;
        return gv_nvml_host_vgpu_sriov(c->vgpu_gpu, &b, err);
}
SITE(supported)
{
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n;
        return gv_nvml_vgpu_supported_types(c->vgpu_gpu, &ids, &n, err);
}
SITE(creatable)
{
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n;
        return gv_nvml_vgpu_creatable_types(c->vgpu_gpu, &ids, &n, err);
}
SITE(active)
{
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n;
        return gv_nvml_vgpu_active_instances(c->vgpu_gpu, &ids, &n, err);
}
SITE(type_name)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_vgpu_type_name(c->vgpu_gpu, c->type_id, &s, err);
}
SITE(type_class)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_vgpu_type_class(c->vgpu_gpu, c->type_id, &s, err);
}
SITE(type_fb)
{
        uint64_t b;
        return gv_nvml_vgpu_type_framebuffer(c->vgpu_gpu, c->type_id, &b, err);
}
SITE(type_max)
{
        uint32_t n;
        return gv_nvml_vgpu_type_max_instances(c->vgpu_gpu, c->type_id, &n, err);
}
SITE(type_per_vm)
{
        uint32_t n;
        return gv_nvml_vgpu_type_max_instances_per_vm(c->vgpu_gpu, c->type_id, &n, err);
}
SITE(type_gi)
{
        uint32_t n;
        return gv_nvml_vgpu_type_gi_profile_id(c->vgpu_gpu, c->type_id, &n, err);
}
SITE(type_license)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_vgpu_type_license(c->vgpu_gpu, c->type_id, &s, err);
}
SITE(inst_uuid)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_vgpu_instance_uuid(c->vgpu_gpu, c->instance, &s, err);
}
SITE(inst_type)
{
        uint32_t t;
        return gv_nvml_vgpu_instance_type(c->vgpu_gpu, c->instance, &t, err);
}
SITE(inst_fb)
{
        uint64_t b;
        return gv_nvml_vgpu_instance_fb_usage(c->vgpu_gpu, c->instance, &b, err);
}
SITE(inst_vm)
{
        _cleanup_free_ char *s = NULL;
        return gv_nvml_vgpu_instance_vm_id(c->vgpu_gpu, c->instance, &s, NULL, err);
}
SITE(inst_gi)
{
        uint32_t id;
        return gv_nvml_vgpu_instance_gi_id(c->vgpu_gpu, c->instance, &id, err);
}
SITE(inst_placement)
{
        uint32_t id;
        return gv_nvml_vgpu_instance_placement_id(c->vgpu_gpu, c->instance, &id, err);
}
SITE(vgpu_util)
{
        _cleanup_free_ struct gv_nvml_vgpu_sample *s = NULL;
        size_t n;
        return gv_nvml_vgpu_utilization(c->vgpu_gpu, 0, &s, &n, err);
}
SITE(sched)
{
        struct gv_nvml_sched_state s;
        return gv_nvml_vgpu_scheduler_state(c->vgpu_gpu, &s, err);
}
SITE(het_get)
{
        bool b;
        return gv_nvml_vgpu_heterogeneous_mode(c->vgpu_gpu, &b, err);
}
SITE(het_set)
{
        return gv_nvml_vgpu_set_heterogeneous_mode(c->vgpu_gpu, true, err);
}
SITE(sup_place)
{
        struct gv_nvml_vgpu_placements p = { 0 };
        int r = gv_nvml_vgpu_supported_placements(c->vgpu_gpu, c->type_id, false, &p, err);
        gv_nvml_vgpu_placements_done(&p);
        return r;
}
SITE(cre_place)
{
        struct gv_nvml_vgpu_placements p = { 0 };
        int r = gv_nvml_vgpu_creatable_placements(c->vgpu_gpu, c->type_id, false, &p, err);
        gv_nvml_vgpu_placements_done(&p);
        return r;
}
SITE(dev_cap)
{
        uint32_t v;
        return gv_nvml_vgpu_device_capability(c->vgpu_gpu,
                                              GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES, &v,
                                              err);
}

struct site {
        const char *symbol;   /* the NVML export the wrapper calls ... */
        int cap;              /* ... unless the library has this capability (-1: none) ... */
        const char *symbol_v; /* ... then this one */
        int (*call)(struct ictx *c, struct gv_error **err);
        const char *wrapper;
        bool solo; /* calls other NVML symbols before this one: inject this symbol alone */
};

#define S(sym, fn) { sym, -1, NULL, site_##fn, #fn, false }
#define SV(sym, cap, sym_v, fn) { sym, cap, sym_v, site_##fn, #fn, false }
#define SOLO(sym, fn) { sym, -1, NULL, site_##fn, #fn, true }

static const struct site sites[] = {
        S("nvmlInit_v2", init),
        S("nvmlSystemGetDriverVersion", driver_version),
        S("nvmlSystemGetNVMLVersion", nvml_version),
        S("nvmlDeviceGetCount_v2", count),
        S("nvmlDeviceGetHandleByIndex_v2", by_index),
        S("nvmlDeviceGetHandleByPciBusId_v2", by_pci),
        S("nvmlDeviceGetHandleByUUID", by_uuid),
        S("nvmlDeviceGetName", name),
        S("nvmlDeviceGetUUID", uuid),
        S("nvmlDeviceGetPciInfo_v3", pci),
        SV("nvmlDeviceGetMemoryInfo", GV_NVML_CAP_MEMORY_V2, "nvmlDeviceGetMemoryInfo_v2", memory),
        S("nvmlDeviceGetUtilizationRates", utilization),
        SV("nvmlDeviceGetTemperature", GV_NVML_CAP_TEMPERATURE_V, "nvmlDeviceGetTemperatureV",
           temperature),
        S("nvmlDeviceGetPowerUsage", power),
        S("nvmlDeviceGetMigMode", mig_mode),
        S("nvmlDeviceSetMigMode", mig_mode_set),
        SV("nvmlDeviceGetGpuInstanceProfileInfo", GV_NVML_CAP_MIG_PROFILE_V,
           "nvmlDeviceGetGpuInstanceProfileInfoV", gi_profile_info),
        SOLO("nvmlDeviceGetGpuInstancePossiblePlacements_v2", gi_profiles_placements),
        S("nvmlDeviceGetGpuInstancePossiblePlacements_v2", gi_placements),
        S("nvmlDeviceGetGpuInstanceRemainingCapacity", gi_capacity),
        S("nvmlDeviceCreateGpuInstanceWithPlacement", gi_create_at),
        S("nvmlDeviceCreateGpuInstance", gi_create),
        S("nvmlGpuInstanceDestroy", gi_destroy),
        S("nvmlDeviceGetGpuInstanceById", gi_by_id),
        S("nvmlGpuInstanceGetInfo", gi_info),
        SOLO("nvmlDeviceGetGpuInstances", gi_list),
        S("nvmlDeviceGetGpuInstances", gi_list_profile),
        SV("nvmlGpuInstanceGetComputeInstanceProfileInfo", GV_NVML_CAP_MIG_PROFILE_V,
           "nvmlGpuInstanceGetComputeInstanceProfileInfoV", ci_profile_info),
        S("nvmlGpuInstanceGetComputeInstancePossiblePlacements", ci_placements),
        S("nvmlGpuInstanceGetComputeInstanceRemainingCapacity", ci_capacity),
        S("nvmlGpuInstanceCreateComputeInstance", ci_create),
        S("nvmlGpuInstanceCreateComputeInstanceWithPlacement", ci_create_at),
        S("nvmlComputeInstanceDestroy", ci_destroy),
        S("nvmlGpuInstanceGetComputeInstanceById", ci_by_id),
        S("nvmlComputeInstanceGetInfo_v2", ci_info),
        SOLO("nvmlGpuInstanceGetComputeInstances", ci_list),
        S("nvmlDeviceGetMaxMigDeviceCount", mig_max),
        S("nvmlDeviceGetMigDeviceHandleByIndex", mig_by_index),
        S("nvmlDeviceIsMigDeviceHandle", is_mig),
        S("nvmlDeviceGetGpuInstanceId", mig_gi_id),
        S("nvmlDeviceGetComputeInstanceId", mig_ci_id),
        S("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", mig_parent),
        S("nvmlDeviceGetVirtualizationMode", virt_mode),
        S("nvmlDeviceGetHostVgpuMode", host_mode),
        S("nvmlDeviceGetSupportedVgpus", supported),
        S("nvmlDeviceGetCreatableVgpus", creatable),
        S("nvmlDeviceGetActiveVgpus", active),
        S("nvmlVgpuTypeGetName", type_name),
        S("nvmlVgpuTypeGetClass", type_class),
        S("nvmlVgpuTypeGetFramebufferSize", type_fb),
        S("nvmlVgpuTypeGetMaxInstances", type_max),
        S("nvmlVgpuTypeGetMaxInstancesPerVm", type_per_vm),
        S("nvmlVgpuTypeGetGpuInstanceProfileId", type_gi),
        S("nvmlVgpuTypeGetLicense", type_license),
        S("nvmlVgpuInstanceGetUUID", inst_uuid),
        S("nvmlVgpuInstanceGetType", inst_type),
        S("nvmlVgpuInstanceGetFbUsage", inst_fb),
        S("nvmlVgpuInstanceGetVmID", inst_vm),
        S("nvmlVgpuInstanceGetGpuInstanceId", inst_gi),
        S("nvmlVgpuInstanceGetPlacementId", inst_placement),
        S("nvmlDeviceGetVgpuUtilization", vgpu_util),
        S("nvmlDeviceGetVgpuSchedulerState", sched),
        S("nvmlDeviceGetVgpuHeterogeneousMode", het_get),
        S("nvmlDeviceSetVgpuHeterogeneousMode", het_set),
        S("nvmlDeviceGetVgpuTypeSupportedPlacements", sup_place),
        S("nvmlDeviceGetVgpuTypeCreatablePlacements", cre_place),
        S("nvmlDeviceGetVgpuCapabilities", dev_cap),
};

static int setup(void **state)
{
        struct ictx *c = xnew0(struct ictx, 1);
        struct gv_mig_ci_profile cp = { 0 };
        const struct gv_mig_placement at4 = { 4, 4 };
        int act;

        simhost_make("dgx-h100", &c->host);
        OK(gv_nvml_open(c->host.nvml_path, &c->nvml, err_));
        OK(gv_nvml_device_by_index(c->nvml, 0, &c->mig_gpu, err_));
        OK(gv_nvml_device_by_index(c->nvml, 1, &c->vgpu_gpu, err_));

        OK(gv_nvml_mig_mode_set(c->mig_gpu, true, &act, NULL, err_));
        OK(gv_nvml_gi_create(c->mig_gpu, 9, &at4, &c->gi, err_));
        OK(gv_nvml_ci_profile_info(&c->gi, NVML_COMPUTE_INSTANCE_PROFILE_1_SLICE, NULL, &cp,
                                   err_));
        c->ci_profile_id = cp.id;
        gv_nvml_ci_profile_done(&cp);
        OK(gv_nvml_ci_create(&c->gi, c->ci_profile_id, NULL, &c->ci, err_));
        OK(gv_nvml_mig_device_by_index(c->mig_gpu, 0, &c->mig_dev, err_));

        c->type_id = 9502; /* H100XM-20C (data/gpus/H100-SXM5-80GB.json) */
        c->instance = simhost_add_vgpu(&c->host, 1, c->type_id,
                                       "0c9a4a70-5d0e-4f0c-8a3e-1f1e5b0b6a01");
        *state = c;
        return 0;
}

static int teardown(void **state)
{
        struct ictx *c = *state;

        gv_nvml_unref(c->nvml);
        simhost_done(&c->host);
        free(c);
        return 0;
}

static const char *site_symbol(const struct ictx *c, const struct site *s)
{
        return s->cap >= 0 && gv_nvml_has(c->nvml, s->cap) ? s->symbol_v : s->symbol;
}

static void check_site(struct ictx *c, const struct site *s, size_t k)
{
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        const char *symbol = site_symbol(c, s);
        char call[128];
        int r;

        snprintf(call, sizeof(call), "%s(", symbol);
        r = s->call(c, &err);
        if (r != -expected_errno[k].errnum)
                fail_msg("%s with %s injected into %s: returned %d (%s), expected -%s",
                         s->wrapper, expected_errno[k].name, symbol, r, gv_error_msg(err, r),
                         gv_errno_name(expected_errno[k].errnum));
        if (!err)
                fail_msg("%s with %s injected: no error message", s->wrapper,
                         expected_errno[k].name);
        if (err->code != expected_errno[k].errnum)
                fail_msg("%s: error object code %d, return %d", s->wrapper, err->code, r);
        if (!strstr(err->msg, call) || !strstr(err->msg, expected_errno[k].name))
                fail_msg("%s with %s injected into %s: message '%s' does not name the call and "
                         "the code", s->wrapper, expected_errno[k].name, symbol, err->msg);
}

/* Sites are run in batches: one state commit injects the code into every symbol of the batch
 * (each wrapper's first NVML call is its own symbol, so the others do not get in the way);
 * `solo` sites, which call other symbols first, get a batch of their own. */
#define BATCH 24

static void test_every_code_at_every_site(void **state)
{
        struct ictx *c = *state;
        size_t checked = 0;

        for (size_t k = 0; k < ELEMENTSOF(expected_errno); k++) {
                size_t i = 0;

                while (i < ELEMENTSOF(sites)) {
                        const char *syms[BATCH];
                        size_t first = i, n = 0;

                        if (sites[i].solo)
                                syms[n++] = site_symbol(c, &sites[i++]);
                        else
                                while (i < ELEMENTSOF(sites) && !sites[i].solo && n < BATCH)
                                        syms[n++] = site_symbol(c, &sites[i++]);
                        simhost_inject_many(&c->host, syms, n, expected_errno[k].code);
                        for (size_t j = first; j < i; j++, checked++)
                                check_site(c, &sites[j], k);
                }
        }
        simhost_inject_clear(&c->host);
        assert_int_equal(checked, ELEMENTSOF(sites) * ELEMENTSOF(expected_errno));

        /* nothing was created or destroyed by the failed calls: the fixture is intact */
        struct gv_nvml_gi *gis = NULL;
        size_t n = 0;
        OK(gv_nvml_gi_list(c->mig_gpu, &gis, &n, err_));
        assert_int_equal(n, 1);
        assert_int_equal(gis[0].id, c->gi.id);
        free(gis);
        struct gv_nvml_ci *cis = NULL;
        OK(gv_nvml_ci_list(&c->gi, &cis, &n, err_));
        assert_int_equal(n, 1);
        free(cis);
        bool het = true;
        OK(gv_nvml_vgpu_heterogeneous_mode(c->vgpu_gpu, &het, err_));
        assert_false(het);
}

/* Every NVML symbol the binding resolves has a row above (a new wrapper needs one), except
 * the two no wrapper fails on. */
static void test_sites_cover_symbols(void **state)
{
        (void)state;
        for (size_t i = 0; i < gv_nvml_symbol_table_size; i++) {
                const char *sym = gv_nvml_symbol_table[i].names[0];
                bool found = strcmp(sym, "nvmlShutdown") == 0 ||
                             strcmp(sym, "nvmlErrorString") == 0;

                for (size_t j = 0; j < ELEMENTSOF(sites) && !found; j++)
                        found = strcmp(sites[j].symbol, sym) == 0 ||
                                (sites[j].symbol_v && strcmp(sites[j].symbol_v, sym) == 0);
                if (!found)
                        fail_msg("no injection site calls '%s'", sym);
        }
}

/* nvml-abi.md §7.2: enumeration skips NOT_SUPPORTED and stops at INVALID_ARGUMENT; any other
 * code is an error. */
static void test_profile_enumeration_codes(void **state)
{
        struct ictx *c = *state;
        const char *sym = gv_nvml_has(c->nvml, GV_NVML_CAP_MIG_PROFILE_V) ?
                                  "nvmlDeviceGetGpuInstanceProfileInfoV" :
                                  "nvmlDeviceGetGpuInstanceProfileInfo";
        struct gv_mig_gi_profile *p = NULL;
        struct gv_nvml_gi *gis = NULL;
        size_t n = 99;

        OK(gv_nvml_gi_profiles(c->mig_gpu, &p, &n, err_));
        assert_int_equal(n, 7);
        gv_nvml_gi_profiles_free(p, n);

        simhost_inject(&c->host, sym, NVML_ERROR_NOT_SUPPORTED);
        OK(gv_nvml_gi_profiles(c->mig_gpu, &p, &n, err_));
        assert_int_equal(n, 0);
        gv_nvml_gi_profiles_free(p, n);
        OK(gv_nvml_gi_list(c->mig_gpu, &gis, &n, err_));
        assert_int_equal(n, 0);
        free(gis);

        simhost_inject(&c->host, sym, NVML_ERROR_INVALID_ARGUMENT);
        OK(gv_nvml_gi_profiles(c->mig_gpu, &p, &n, err_));
        assert_int_equal(n, 0);
        gv_nvml_gi_profiles_free(p, n);

        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        simhost_inject(&c->host, sym, NVML_ERROR_NO_PERMISSION);
        assert_int_equal(gv_nvml_gi_profiles(c->mig_gpu, &p, &n, &err), -EPERM);
        assert_non_null(strstr(err->msg, "profile index 0): NVML_ERROR_NO_PERMISSION"));
        err = gv_error_free(err);
        assert_int_equal(gv_nvml_gi_list(c->mig_gpu, &gis, &n, &err), -EPERM);
        simhost_inject_clear(&c->host);
}

/* The count protocol survives one INSUFFICIENT_SIZE (a list that grew between the calls). */
static void test_count_protocol_retry(void **state)
{
        struct ictx *c = *state;
        uint32_t *ids = NULL, *again = NULL;
        size_t n = 0, n_again = 0;

        OK(gv_nvml_vgpu_supported_types(c->vgpu_gpu, &ids, &n, err_));
        assert_true(n > 0);
        simhost_inject_once(&c->host, "nvmlDeviceGetSupportedVgpus",
                            NVML_ERROR_INSUFFICIENT_SIZE);
        OK(gv_nvml_vgpu_supported_types(c->vgpu_gpu, &again, &n_again, err_));
        assert_int_equal(n_again, n);
        assert_memory_equal(ids, again, n * sizeof(*ids));
        free(ids);
        free(again);

        struct gv_mig_placement *pl = NULL;
        simhost_inject_once(&c->host, "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
                            NVML_ERROR_INSUFFICIENT_SIZE);
        OK(gv_nvml_gi_possible_placements(c->mig_gpu, 19, &pl, &n, err_));
        assert_int_equal(n, 7);
        free(pl);
        simhost_inject_clear(&c->host);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sites_cover_symbols),
                cmocka_unit_test(test_every_code_at_every_site),
                cmocka_unit_test(test_profile_enumeration_codes),
                cmocka_unit_test(test_count_protocol_retry),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
