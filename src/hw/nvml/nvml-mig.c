/* SPDX-License-Identifier: MIT */
/*
 * nvml-mig.c — MIG: mode, GPU-instance and compute-instance profiles, placements, capacity,
 * create / destroy / list, MIG device handles.
 *
 * The trap (nvml-abi.md §7.3, mig.md §2): NVML_GPU_INSTANCE_PROFILE_* are INDICES given to
 * ...GetGpuInstanceProfileInfo[V]; the returned info.id is the device-specific profile ID that
 * every other call takes. The public API says "index" or "profile_id" accordingly.
 * Profile names are derived with the go-nvlib rule (mig.md §7), in our own code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/nvml/nvml-internal.h"
#include "util/alloc.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024ull * MIB)

/* ---- names (mig.md §7) ---- */

/* GB in a MIG profile name: frac = ceil(memory / total · 8) / 8, GB = round(frac · ceil(total /
 * GiB)). Integer arithmetic: eighths = ceil(mem_bytes · 8 / total). */
static uint64_t mig_gb(uint64_t memory_mib, uint64_t total_bytes)
{
        if (total_bytes == 0)
                return (memory_mib + 512) / 1024; /* no total: plain rounding of GiB */

        uint64_t eighths = (memory_mib * MIB * 8 + total_bytes - 1) / total_bytes;
        uint64_t total_gib = (total_bytes + GIB - 1) / GIB;
        return (eighths * total_gib + 4) / 8;
}

/* Attribute suffix of a GI profile index (mig.md §7; indices nvml-abi.md §3.1). */
static const char *gi_suffix(uint32_t index)
{
        switch (index) {
        case NVML_GPU_INSTANCE_PROFILE_1_SLICE_REV1:
        case NVML_GPU_INSTANCE_PROFILE_2_SLICE_REV1:
                return "+me";
        case NVML_GPU_INSTANCE_PROFILE_1_SLICE_ALL_ME:
        case NVML_GPU_INSTANCE_PROFILE_2_SLICE_ALL_ME:
                return "+me.all";
        case NVML_GPU_INSTANCE_PROFILE_1_SLICE_GFX:
        case NVML_GPU_INSTANCE_PROFILE_2_SLICE_GFX:
        case NVML_GPU_INSTANCE_PROFILE_3_SLICE_GFX:
        case NVML_GPU_INSTANCE_PROFILE_4_SLICE_GFX:
                return "+gfx";
        case NVML_GPU_INSTANCE_PROFILE_1_SLICE_NO_ME:
        case NVML_GPU_INSTANCE_PROFILE_2_SLICE_NO_ME:
                return "-me";
        default: /* REV2 (double memory) has no suffix: its GB tells it apart */
                return "";
        }
}

/* ---- profiles ---- */

void gv_nvml_gi_profile_done(struct gv_mig_gi_profile *p)
{
        if (!p)
                return;
        for (size_t i = 0; i < p->n_ci_profiles; i++)
                gv_nvml_ci_profile_done(&p->ci_profiles[i]);
        free(p->ci_profiles);
        free(p->placements);
        free(p->name);
        free(p->src.source);
        *p = (struct gv_mig_gi_profile){ 0 };
}

void gv_nvml_ci_profile_done(struct gv_mig_ci_profile *p)
{
        if (!p)
                return;
        free(p->name);
        free(p->src.source);
        *p = (struct gv_mig_ci_profile){ 0 };
}

void gv_nvml_gi_profiles_free(struct gv_mig_gi_profile *p, size_t n)
{
        for (size_t i = 0; p && i < n; i++)
                gv_nvml_gi_profile_done(&p[i]);
        free(p);
}

/* One GI profile, numbers only (no name); returns NVML's code so callers can skip/stop. */
static nvmlReturn_t gi_profile_raw(struct gv_nvml_device *d, uint32_t index,
                                   struct gv_mig_gi_profile *ret, const char **ret_call)
{
        struct gv_nvml *n = d->nvml;
        nvmlReturn_t rc;

        if (n->sym.nvmlDeviceGetGpuInstanceProfileInfoV) {
                nvmlGpuInstanceProfileInfo_v2_t v = { .version = nvmlGpuInstanceProfileInfo_v2 };

                *ret_call = "nvmlDeviceGetGpuInstanceProfileInfoV";
                rc = n->sym.nvmlDeviceGetGpuInstanceProfileInfoV(d->handle, index, &v);
                if (rc != NVML_SUCCESS)
                        return rc;
                *ret = (struct gv_mig_gi_profile){
                        .nvml_index = index, .id = v.id, .slices = v.sliceCount,
                        .memory_mib = v.memorySizeMB, .instances = v.instanceCount,
                        .sms = v.multiprocessorCount, .copy_engines = v.copyEngineCount,
                        .decoders = v.decoderCount, .encoders = v.encoderCount,
                        .jpegs = v.jpegCount, .ofas = v.ofaCount,
                };
        } else {
                nvmlGpuInstanceProfileInfo_t v = { 0 };

                *ret_call = "nvmlDeviceGetGpuInstanceProfileInfo";
                rc = n->sym.nvmlDeviceGetGpuInstanceProfileInfo(d->handle, index, &v);
                if (rc != NVML_SUCCESS)
                        return rc;
                *ret = (struct gv_mig_gi_profile){
                        .nvml_index = index, .id = v.id, .slices = v.sliceCount,
                        .memory_mib = v.memorySizeMB, .instances = v.instanceCount,
                        .sms = v.multiprocessorCount, .copy_engines = v.copyEngineCount,
                        .decoders = v.decoderCount, .encoders = v.encoderCount,
                        .jpegs = v.jpegCount, .ofas = v.ofaCount,
                };
        }
        ret->media_extensions = strcmp(gi_suffix(index), "+me") == 0 ||
                                strcmp(gi_suffix(index), "+me.all") == 0;
        ret->src.source = xstrdup("NVML");
        return NVML_SUCCESS;
}

static void gi_profile_name(struct gv_mig_gi_profile *p, uint64_t total_bytes)
{
        p->name = xasprintf("%ug.%llugb%s", p->slices,
                            (unsigned long long)mig_gb(p->memory_mib, total_bytes),
                            gi_suffix(p->nvml_index));
}

static int need_mig(struct gv_nvml *n, struct gv_error **err)
{
        if (!n->sym.nvmlDeviceGetGpuInstanceProfileInfoV)
                NVML_NEED(n, nvmlDeviceGetGpuInstanceProfileInfo, err);
        return 0;
}

int gv_nvml_gi_profile_info(struct gv_nvml_device *d, uint32_t index,
                            struct gv_mig_gi_profile *ret, struct gv_error **err)
{
        struct gv_mig_gi_profile p = { 0 };
        struct gv_nvml_memory mem;
        const char *call = NULL;
        nvmlReturn_t rc;
        int r;

        r = need_mig(d->nvml, err);
        if (r < 0)
                return r;
        rc = gi_profile_raw(d, index, &p, &call);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, call, "%s, profile index %u", d->label, index);

        r = gv_nvml_device_memory(d, &mem, err);
        if (r < 0) {
                gv_nvml_gi_profile_done(&p);
                return gv_error_wrap(err, r, "naming MIG profile index %u of %s", index,
                                     d->label);
        }
        gi_profile_name(&p, mem.total);
        *ret = p;
        return 0;
}

/* Count protocol for the two possible-placements calls: NULL array → count, then fill
 * (nvml-abi.md §7.1). fill() returns NVML's code. */
struct placement_call {
        struct gv_nvml *n;
        const char *call;
        const char *label;
        uint32_t profile_id;
        nvmlReturn_t (*fill)(const struct placement_call *c, struct gv_mig_placement *buf,
                             unsigned *count);
        void *handle;
};

static nvmlReturn_t fill_gi_placements(const struct placement_call *c,
                                       struct gv_mig_placement *buf, unsigned *count)
{
        _cleanup_free_ nvmlGpuInstancePlacement_t *p = NULL;
        nvmlReturn_t rc;

        if (buf && *count)
                p = xnew0(nvmlGpuInstancePlacement_t, *count);
        rc = c->n->sym.nvmlDeviceGetGpuInstancePossiblePlacements_v2(c->handle, c->profile_id, p,
                                                                     count);
        if (rc == NVML_SUCCESS && p)
                for (unsigned i = 0; i < *count; i++)
                        buf[i] = (struct gv_mig_placement){ p[i].start, p[i].size };
        return rc;
}

static nvmlReturn_t fill_ci_placements(const struct placement_call *c,
                                       struct gv_mig_placement *buf, unsigned *count)
{
        _cleanup_free_ nvmlComputeInstancePlacement_t *p = NULL;
        nvmlReturn_t rc;

        if (buf && *count)
                p = xnew0(nvmlComputeInstancePlacement_t, *count);
        rc = c->n->sym.nvmlGpuInstanceGetComputeInstancePossiblePlacements(c->handle,
                                                                           c->profile_id, p,
                                                                           count);
        if (rc == NVML_SUCCESS && p)
                for (unsigned i = 0; i < *count; i++)
                        buf[i] = (struct gv_mig_placement){ p[i].start, p[i].size };
        return rc;
}

static int placements_get(const struct placement_call *c, struct gv_mig_placement **ret,
                          size_t *ret_n, struct gv_error **err)
{
        _cleanup_free_ struct gv_mig_placement *buf = NULL;
        unsigned want = 0;
        nvmlReturn_t rc = NVML_ERROR_INSUFFICIENT_SIZE;

        for (int attempt = 0; attempt < NVML_COUNT_RETRIES; attempt++) {
                unsigned count = want;

                rc = c->fill(c, want ? buf : NULL, &count);
                if (rc == NVML_SUCCESS && count <= want) {
                        *ret = TAKE_PTR(buf);
                        *ret_n = count;
                        return 0;
                }
                /* INSUFFICIENT_SIZE, or a NULL query answered with the count: grow, retry */
                if (rc != NVML_SUCCESS && rc != NVML_ERROR_INSUFFICIENT_SIZE)
                        break;
                want = MAX(count, want + 1);
                buf = xreallocarray(buf, want, sizeof(*buf));
        }
        if (rc == NVML_SUCCESS) /* the count kept growing */
                rc = NVML_ERROR_INSUFFICIENT_SIZE;
        return nvml_fail(c->n, rc, err, c->call, "%s, profile id %u", c->label, c->profile_id);
}

int gv_nvml_gi_possible_placements(struct gv_nvml_device *d, uint32_t profile_id,
                                   struct gv_mig_placement **ret, size_t *ret_n,
                                   struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetGpuInstancePossiblePlacements_v2, err);
        struct placement_call c = {
                .n = d->nvml, .call = "nvmlDeviceGetGpuInstancePossiblePlacements_v2",
                .label = d->label, .profile_id = profile_id, .fill = fill_gi_placements,
                .handle = d->handle,
        };
        return placements_get(&c, ret, ret_n, err);
}

int gv_nvml_gi_profiles(struct gv_nvml_device *d, struct gv_mig_gi_profile **ret,
                        size_t *ret_n, struct gv_error **err)
{
        struct gv_mig_gi_profile *list = NULL;
        size_t n_list = 0;
        struct gv_nvml_memory mem;
        int r;

        r = need_mig(d->nvml, err);
        if (r < 0)
                return r;
        r = gv_nvml_device_memory(d, &mem, err);
        if (r < 0)
                return gv_error_wrap(err, r, "naming the MIG profiles of %s", d->label);

        /* nvml-abi.md §7.2: from index 0 until INVALID_ARGUMENT; NOT_SUPPORTED marks an index
         * this GPU lacks. The bound guards against a library that never says INVALID_ARGUMENT. */
        for (uint32_t index = 0; index < 64; index++) {
                struct gv_mig_gi_profile p = { 0 };
                const char *call = NULL;
                nvmlReturn_t rc = gi_profile_raw(d, index, &p, &call);

                if (rc == NVML_ERROR_INVALID_ARGUMENT)
                        break;
                if (rc == NVML_ERROR_NOT_SUPPORTED)
                        continue;
                if (rc != NVML_SUCCESS) {
                        r = nvml_fail(d->nvml, rc, err, call, "%s, profile index %u", d->label,
                                      index);
                        goto fail;
                }
                gi_profile_name(&p, mem.total);

                r = gv_nvml_gi_possible_placements(d, p.id, &p.placements, &p.n_placements, err);
                if (r < 0) {
                        gv_nvml_gi_profile_done(&p);
                        goto fail;
                }
                if (p.n_placements > 0)
                        p.memory_slices = p.placements[0].size;

                list = xreallocarray(list, n_list + 1, sizeof(*list));
                list[n_list++] = p;
        }

        *ret = list;
        *ret_n = n_list;
        return 0;
fail:
        gv_nvml_gi_profiles_free(list, n_list);
        return r;
}

int gv_nvml_gi_remaining_capacity(struct gv_nvml_device *d, uint32_t profile_id,
                                  uint32_t *ret, struct gv_error **err)
{
        unsigned count = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetGpuInstanceRemainingCapacity, err);
        rc = d->nvml->sym.nvmlDeviceGetGpuInstanceRemainingCapacity(d->handle, profile_id,
                                                                    &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetGpuInstanceRemainingCapacity",
                                 "%s, profile id %u", d->label, profile_id);
        *ret = count;
        return 0;
}

/* ---- mode ---- */

int gv_nvml_mig_mode(struct gv_nvml_device *d, bool *ret_current, bool *ret_pending,
                     struct gv_error **err)
{
        unsigned current = 0, pending = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetMigMode, err);
        rc = d->nvml->sym.nvmlDeviceGetMigMode(d->handle, &current, &pending);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetMigMode", "%s", d->label);
        if (ret_current)
                *ret_current = current == NVML_DEVICE_MIG_ENABLE;
        if (ret_pending)
                *ret_pending = pending == NVML_DEVICE_MIG_ENABLE;
        return 0;
}

int gv_nvml_mig_mode_set(struct gv_nvml_device *d, bool enable, int *ret_activation,
                         char **ret_activation_msg, struct gv_error **err)
{
        nvmlReturn_t activation = NVML_SUCCESS, rc;
        const char *mode = enable ? "enable" : "disable";

        NVML_NEED(d->nvml, nvmlDeviceSetMigMode, err);
        rc = d->nvml->sym.nvmlDeviceSetMigMode(
                d->handle, enable ? NVML_DEVICE_MIG_ENABLE : NVML_DEVICE_MIG_DISABLE, &activation);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceSetMigMode", "%s, %s", d->label,
                                 mode);

        /* The mode is set (pending); activationStatus says whether it took effect now
         * (nvml-abi.md §9): RESET_REQUIRED / IN_USE leave it pending. */
        if (ret_activation_msg) {
                *ret_activation_msg = NULL;
                if (activation != NVML_SUCCESS) {
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

                        (void)nvml_fail(d->nvml, activation, &e, "nvmlDeviceSetMigMode",
                                        "%s, %s: activation", d->label, mode);
                        *ret_activation_msg = TAKE_PTR(e->msg);
                }
        }
        if (ret_activation)
                *ret_activation = activation == NVML_SUCCESS ?
                                          0 : -gv_nvml_return_to_errno((int)activation);
        return 0;
}

/* ---- GPU instances ---- */

static int gi_from_handle(struct gv_nvml_device *d, nvmlGpuInstance_t h, const char *what,
                          struct gv_nvml_gi *ret, struct gv_error **err)
{
        nvmlGpuInstanceInfo_t info = { 0 };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlGpuInstanceGetInfo, err);
        rc = d->nvml->sym.nvmlGpuInstanceGetInfo(h, &info);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlGpuInstanceGetInfo", "%s, %s", d->label,
                                 what);
        *ret = (struct gv_nvml_gi){
                .device = d, .handle = h, .id = info.id, .profile_id = info.profileId,
                .placement = { info.placement.start, info.placement.size },
        };
        return 0;
}

int gv_nvml_gi_create(struct gv_nvml_device *d, uint32_t profile_id,
                      const struct gv_mig_placement *placement, struct gv_nvml_gi *ret,
                      struct gv_error **err)
{
        struct gv_nvml *n = d->nvml;
        nvmlGpuInstance_t h = NULL;
        char what[64];
        nvmlReturn_t rc;

        if (placement) {
                nvmlGpuInstancePlacement_t p = { placement->start, placement->size };

                NVML_NEED(n, nvmlDeviceCreateGpuInstanceWithPlacement, err);
                rc = n->sym.nvmlDeviceCreateGpuInstanceWithPlacement(d->handle, profile_id, &p,
                                                                     &h);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlDeviceCreateGpuInstanceWithPlacement",
                                         "%s, profile id %u, placement %u:%u", d->label,
                                         profile_id, placement->start, placement->size);
        } else {
                NVML_NEED(n, nvmlDeviceCreateGpuInstance, err);
                rc = n->sym.nvmlDeviceCreateGpuInstance(d->handle, profile_id, &h);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlDeviceCreateGpuInstance",
                                         "%s, profile id %u", d->label, profile_id);
        }

        (void)snprintf(what, sizeof(what), "new GI of profile id %u", profile_id);
        int r = gi_from_handle(d, h, what, ret, err);
        if (r < 0) {
                /* reliability.md F3: an instance nobody can name is an instance nobody owns.
                 * Destroy it through the handle the create gave. */
                rc = n->sym.nvmlGpuInstanceDestroy ? n->sym.nvmlGpuInstanceDestroy(h)
                                                   : NVML_ERROR_FUNCTION_NOT_FOUND;
                return gv_error_wrap(err, r, rc == NVML_SUCCESS
                                     ? "the GPU instance just created on %s could not be read, "
                                       "so it was destroyed again"
                                     : "the GPU instance just created on %s could not be read "
                                       "nor destroyed: 'gpuvirt mig apply' or a reconcile "
                                       "removes it", d->label);
        }
        return 0;
}

int gv_nvml_gi_destroy(const struct gv_nvml_gi *gi, struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        nvmlReturn_t rc;

        NVML_NEED(n, nvmlGpuInstanceDestroy, err);
        rc = n->sym.nvmlGpuInstanceDestroy(gi->handle);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlGpuInstanceDestroy", "%s, GI %u",
                                 gi->device->label, gi->id);
        return 0;
}

int gv_nvml_gi_by_id(struct gv_nvml_device *d, uint32_t id, struct gv_nvml_gi *ret,
                     struct gv_error **err)
{
        nvmlGpuInstance_t h = NULL;
        char what[32];
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetGpuInstanceById, err);
        rc = d->nvml->sym.nvmlDeviceGetGpuInstanceById(d->handle, id, &h);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetGpuInstanceById", "%s, GI %u",
                                 d->label, id);
        (void)snprintf(what, sizeof(what), "GI %u", id);
        return gi_from_handle(d, h, what, ret, err);
}

int gv_nvml_gi_info(const struct gv_nvml_gi *gi, struct gv_nvml_gi *ret, struct gv_error **err)
{
        char what[32];

        (void)snprintf(what, sizeof(what), "GI %u", gi->id);
        return gi_from_handle(gi->device, gi->handle, what, ret, err);
}

static int gi_cmp(const void *a, const void *b)
{
        const struct gv_nvml_gi *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

/* Append the GIs of one profile to *list. */
static int gi_list_append(struct gv_nvml_device *d, uint32_t profile_id, struct gv_nvml_gi **list,
                          size_t *n_list, struct gv_error **err)
{
        nvmlGpuInstance_t h[NVML_MAX_INSTANCES] = { 0 };
        unsigned count = NVML_MAX_INSTANCES;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetGpuInstances, err);
        rc = d->nvml->sym.nvmlDeviceGetGpuInstances(d->handle, profile_id, h, &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetGpuInstances",
                                 "%s, profile id %u", d->label, profile_id);
        if (count > NVML_MAX_INSTANCES)
                return gv_error_set(err, EPROTO,
                                    "nvmlDeviceGetGpuInstances(%s, profile id %u) reported %u "
                                    "GPU instances, more than the %u a GPU can hold; the NVML "
                                    "library is broken.",
                                    d->label, profile_id, count, NVML_MAX_INSTANCES);

        for (unsigned i = 0; i < count; i++) {
                struct gv_nvml_gi gi;
                char what[48];
                int r;

                (void)snprintf(what, sizeof(what), "GI %u of profile id %u", i, profile_id);
                r = gi_from_handle(d, h[i], what, &gi, err);
                if (r < 0)
                        return r;
                *list = xreallocarray(*list, *n_list + 1, sizeof(**list));
                (*list)[(*n_list)++] = gi;
        }
        return 0;
}

int gv_nvml_gi_list_profile(struct gv_nvml_device *d, uint32_t profile_id,
                            struct gv_nvml_gi **ret, size_t *ret_n, struct gv_error **err)
{
        _cleanup_free_ struct gv_nvml_gi *list = NULL;
        size_t n_list = 0;
        int r;

        r = gi_list_append(d, profile_id, &list, &n_list, err);
        if (r < 0)
                return r;
        if (n_list > 1)
                qsort(list, n_list, sizeof(*list), gi_cmp);
        *ret = TAKE_PTR(list);
        *ret_n = n_list;
        return 0;
}

int gv_nvml_gi_list(struct gv_nvml_device *d, struct gv_nvml_gi **ret, size_t *ret_n,
                    struct gv_error **err)
{
        _cleanup_free_ struct gv_nvml_gi *list = NULL;
        size_t n_list = 0;
        int r;

        r = need_mig(d->nvml, err);
        if (r < 0)
                return r;
        for (uint32_t index = 0; index < 64; index++) {
                struct gv_mig_gi_profile p = { 0 };
                const char *call = NULL;
                nvmlReturn_t rc = gi_profile_raw(d, index, &p, &call);

                if (rc == NVML_ERROR_INVALID_ARGUMENT)
                        break;
                if (rc == NVML_ERROR_NOT_SUPPORTED)
                        continue;
                if (rc != NVML_SUCCESS)
                        return nvml_fail(d->nvml, rc, err, call, "%s, profile index %u",
                                         d->label, index);
                r = gi_list_append(d, p.id, &list, &n_list, err);
                gv_nvml_gi_profile_done(&p);
                if (r < 0)
                        return r;
        }
        if (n_list > 1)
                qsort(list, n_list, sizeof(*list), gi_cmp);
        *ret = TAKE_PTR(list);
        *ret_n = n_list;
        return 0;
}

/* ---- compute instances ---- */

static nvmlReturn_t ci_profile_raw(const struct gv_nvml_gi *gi, uint32_t index,
                                   struct gv_mig_ci_profile *ret, char **ret_nvml_name,
                                   const char **ret_call)
{
        struct gv_nvml *n = gi->device->nvml;
        nvmlReturn_t rc;

        *ret_nvml_name = NULL;
        if (n->sym.nvmlGpuInstanceGetComputeInstanceProfileInfoV) {
                nvmlComputeInstanceProfileInfo_v2_t v = {
                        .version = nvmlComputeInstanceProfileInfo_v2
                };

                *ret_call = "nvmlGpuInstanceGetComputeInstanceProfileInfoV";
                rc = n->sym.nvmlGpuInstanceGetComputeInstanceProfileInfoV(
                        gi->handle, index, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &v);
                if (rc != NVML_SUCCESS)
                        return rc;
                *ret = (struct gv_mig_ci_profile){
                        .nvml_index = index, .id = v.id, .slices = v.sliceCount,
                        .instances = v.instanceCount, .sms = v.multiprocessorCount,
                };
                if (v.name[0])
                        *ret_nvml_name = xstrndup(v.name, sizeof(v.name));
        } else {
                nvmlComputeInstanceProfileInfo_t v = { 0 };

                *ret_call = "nvmlGpuInstanceGetComputeInstanceProfileInfo";
                rc = n->sym.nvmlGpuInstanceGetComputeInstanceProfileInfo(
                        gi->handle, index, NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED, &v);
                if (rc != NVML_SUCCESS)
                        return rc;
                *ret = (struct gv_mig_ci_profile){
                        .nvml_index = index, .id = v.id, .slices = v.sliceCount,
                        .instances = v.instanceCount, .sms = v.multiprocessorCount,
                };
        }
        ret->src.source = xstrdup("NVML");
        return NVML_SUCCESS;
}

static int need_ci_profile(struct gv_nvml *n, struct gv_error **err)
{
        if (!n->sym.nvmlGpuInstanceGetComputeInstanceProfileInfoV)
                NVML_NEED(n, nvmlGpuInstanceGetComputeInstanceProfileInfo, err);
        return 0;
}

int gv_nvml_ci_profile_info(const struct gv_nvml_gi *gi, uint32_t index,
                            const struct gv_mig_gi_profile *gi_profile,
                            struct gv_mig_ci_profile *ret, struct gv_error **err)
{
        struct gv_mig_ci_profile p = { 0 };
        _cleanup_free_ char *nvml_name = NULL;
        const char *call = NULL;
        nvmlReturn_t rc;
        int r;

        r = need_ci_profile(gi->device->nvml, err);
        if (r < 0)
                return r;
        rc = ci_profile_raw(gi, index, &p, &nvml_name, &call);
        if (rc != NVML_SUCCESS)
                return nvml_fail(gi->device->nvml, rc, err, call, "%s, GI %u, profile index %u",
                                 gi->device->label, gi->id, index);

        /* mig.md §7: the GI's name when the CI spans the GI, else "<C>c.<GI name>". */
        if (gi_profile && gi_profile->name)
                p.name = p.slices == gi_profile->slices ?
                                 xstrdup(gi_profile->name) :
                                 xasprintf("%uc.%s", p.slices, gi_profile->name);
        else if (nvml_name)
                p.name = xstrdup(gv_startswith(nvml_name, "MIG ") ? nvml_name + 4 : nvml_name);
        *ret = p;
        return 0;
}

int gv_nvml_ci_possible_placements(const struct gv_nvml_gi *gi, uint32_t profile_id,
                                   struct gv_mig_placement **ret, size_t *ret_n,
                                   struct gv_error **err)
{
        char label[128];

        NVML_NEED(gi->device->nvml, nvmlGpuInstanceGetComputeInstancePossiblePlacements, err);
        (void)snprintf(label, sizeof(label), "%s, GI %u", gi->device->label, gi->id);
        struct placement_call c = {
                .n = gi->device->nvml,
                .call = "nvmlGpuInstanceGetComputeInstancePossiblePlacements",
                .label = label, .profile_id = profile_id, .fill = fill_ci_placements,
                .handle = gi->handle,
        };
        return placements_get(&c, ret, ret_n, err);
}

int gv_nvml_ci_remaining_capacity(const struct gv_nvml_gi *gi, uint32_t profile_id,
                                  uint32_t *ret, struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        unsigned count = 0;
        nvmlReturn_t rc;

        NVML_NEED(n, nvmlGpuInstanceGetComputeInstanceRemainingCapacity, err);
        rc = n->sym.nvmlGpuInstanceGetComputeInstanceRemainingCapacity(gi->handle, profile_id,
                                                                       &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlGpuInstanceGetComputeInstanceRemainingCapacity",
                                 "%s, GI %u, profile id %u", gi->device->label, gi->id,
                                 profile_id);
        *ret = count;
        return 0;
}

static int ci_from_handle(const struct gv_nvml_gi *gi, nvmlComputeInstance_t h, const char *what,
                          struct gv_nvml_ci *ret, struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        nvmlComputeInstanceInfo_t info = { 0 };
        nvmlReturn_t rc;

        NVML_NEED(n, nvmlComputeInstanceGetInfo_v2, err);
        rc = n->sym.nvmlComputeInstanceGetInfo_v2(h, &info);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlComputeInstanceGetInfo_v2", "%s, GI %u, %s",
                                 gi->device->label, gi->id, what);
        *ret = (struct gv_nvml_ci){
                .device = gi->device, .gi_handle = gi->handle, .gi_id = gi->id, .handle = h,
                .id = info.id, .profile_id = info.profileId,
                .placement = { info.placement.start, info.placement.size },
        };
        return 0;
}

int gv_nvml_ci_create(const struct gv_nvml_gi *gi, uint32_t profile_id,
                      const struct gv_mig_placement *placement, struct gv_nvml_ci *ret,
                      struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        nvmlComputeInstance_t h = NULL;
        char what[64];
        nvmlReturn_t rc;

        if (placement) {
                nvmlComputeInstancePlacement_t p = { placement->start, placement->size };

                NVML_NEED(n, nvmlGpuInstanceCreateComputeInstanceWithPlacement, err);
                rc = n->sym.nvmlGpuInstanceCreateComputeInstanceWithPlacement(gi->handle,
                                                                              profile_id, &p, &h);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err,
                                         "nvmlGpuInstanceCreateComputeInstanceWithPlacement",
                                         "%s, GI %u, profile id %u, placement %u:%u",
                                         gi->device->label, gi->id, profile_id, placement->start,
                                         placement->size);
        } else {
                NVML_NEED(n, nvmlGpuInstanceCreateComputeInstance, err);
                rc = n->sym.nvmlGpuInstanceCreateComputeInstance(gi->handle, profile_id, &h);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlGpuInstanceCreateComputeInstance",
                                         "%s, GI %u, profile id %u", gi->device->label, gi->id,
                                         profile_id);
        }
        (void)snprintf(what, sizeof(what), "new CI of profile id %u", profile_id);
        int r = ci_from_handle(gi, h, what, ret, err);
        if (r < 0) {
                /* As for a GPU instance (gv_nvml_gi_create): no compute instance left unnamed. */
                rc = n->sym.nvmlComputeInstanceDestroy ? n->sym.nvmlComputeInstanceDestroy(h)
                                                       : NVML_ERROR_FUNCTION_NOT_FOUND;
                return gv_error_wrap(err, r, rc == NVML_SUCCESS
                                     ? "the compute instance just created in GI %u on %s could "
                                       "not be read, so it was destroyed again"
                                     : "the compute instance just created in GI %u on %s could "
                                       "not be read nor destroyed", gi->id, gi->device->label);
        }
        return 0;
}

int gv_nvml_ci_destroy(const struct gv_nvml_ci *ci, struct gv_error **err)
{
        struct gv_nvml *n = ci->device->nvml;
        nvmlReturn_t rc;

        NVML_NEED(n, nvmlComputeInstanceDestroy, err);
        rc = n->sym.nvmlComputeInstanceDestroy(ci->handle);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlComputeInstanceDestroy", "%s, GI %u, CI %u",
                                 ci->device->label, ci->gi_id, ci->id);
        return 0;
}

int gv_nvml_ci_by_id(const struct gv_nvml_gi *gi, uint32_t id, struct gv_nvml_ci *ret,
                     struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        nvmlComputeInstance_t h = NULL;
        char what[32];
        nvmlReturn_t rc;

        NVML_NEED(n, nvmlGpuInstanceGetComputeInstanceById, err);
        rc = n->sym.nvmlGpuInstanceGetComputeInstanceById(gi->handle, id, &h);
        if (rc != NVML_SUCCESS)
                return nvml_fail(n, rc, err, "nvmlGpuInstanceGetComputeInstanceById",
                                 "%s, GI %u, CI %u", gi->device->label, gi->id, id);
        (void)snprintf(what, sizeof(what), "CI %u", id);
        return ci_from_handle(gi, h, what, ret, err);
}

int gv_nvml_ci_info(const struct gv_nvml_ci *ci, struct gv_nvml_ci *ret, struct gv_error **err)
{
        struct gv_nvml_gi gi = { .device = ci->device, .handle = ci->gi_handle, .id = ci->gi_id };
        char what[32];

        (void)snprintf(what, sizeof(what), "CI %u", ci->id);
        return ci_from_handle(&gi, ci->handle, what, ret, err);
}

static int ci_cmp(const void *a, const void *b)
{
        const struct gv_nvml_ci *x = a, *y = b;
        return x->id < y->id ? -1 : x->id > y->id;
}

int gv_nvml_ci_list(const struct gv_nvml_gi *gi, struct gv_nvml_ci **ret, size_t *ret_n,
                    struct gv_error **err)
{
        struct gv_nvml *n = gi->device->nvml;
        _cleanup_free_ struct gv_nvml_ci *list = NULL;
        size_t n_list = 0;
        int r;

        r = need_ci_profile(n, err);
        if (r < 0)
                return r;
        NVML_NEED(n, nvmlGpuInstanceGetComputeInstances, err);

        for (uint32_t index = 0; index < 64; index++) {
                struct gv_mig_ci_profile p = { 0 };
                _cleanup_free_ char *nvml_name = NULL;
                nvmlComputeInstance_t h[NVML_MAX_INSTANCES] = { 0 };
                unsigned count = NVML_MAX_INSTANCES;
                const char *call = NULL;
                nvmlReturn_t rc = ci_profile_raw(gi, index, &p, &nvml_name, &call);

                if (rc == NVML_ERROR_INVALID_ARGUMENT)
                        break;
                if (rc == NVML_ERROR_NOT_SUPPORTED)
                        continue;
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, call, "%s, GI %u, profile index %u",
                                         gi->device->label, gi->id, index);
                uint32_t profile_id = p.id;
                gv_nvml_ci_profile_done(&p);

                rc = n->sym.nvmlGpuInstanceGetComputeInstances(gi->handle, profile_id, h, &count);
                if (rc != NVML_SUCCESS)
                        return nvml_fail(n, rc, err, "nvmlGpuInstanceGetComputeInstances",
                                         "%s, GI %u, profile id %u", gi->device->label, gi->id,
                                         profile_id);
                if (count > NVML_MAX_INSTANCES)
                        return gv_error_set(err, EPROTO,
                                            "nvmlGpuInstanceGetComputeInstances(%s, GI %u, "
                                            "profile id %u) reported %u compute instances, more "
                                            "than a GI can hold; the NVML library is broken.",
                                            gi->device->label, gi->id, profile_id, count);
                for (unsigned i = 0; i < count; i++) {
                        struct gv_nvml_ci ci;
                        char what[48];

                        (void)snprintf(what, sizeof(what), "CI %u of profile id %u", i,
                                       profile_id);
                        r = ci_from_handle(gi, h[i], what, &ci, err);
                        if (r < 0)
                                return r;
                        list = xreallocarray(list, n_list + 1, sizeof(*list));
                        list[n_list++] = ci;
                }
        }
        if (n_list > 1)
                qsort(list, n_list, sizeof(*list), ci_cmp);
        *ret = TAKE_PTR(list);
        *ret_n = n_list;
        return 0;
}

/* ---- MIG device handles ---- */

int gv_nvml_mig_device_max_count(struct gv_nvml_device *d, unsigned *ret, struct gv_error **err)
{
        unsigned count = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetMaxMigDeviceCount, err);
        rc = d->nvml->sym.nvmlDeviceGetMaxMigDeviceCount(d->handle, &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetMaxMigDeviceCount", "%s",
                                 d->label);
        *ret = count;
        return 0;
}

int gv_nvml_mig_device_by_index(struct gv_nvml_device *d, unsigned index,
                                struct gv_nvml_device **ret, struct gv_error **err)
{
        nvmlDevice_t h = NULL;
        char label[sizeof(d->label)];
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetMigDeviceHandleByIndex, err);
        rc = d->nvml->sym.nvmlDeviceGetMigDeviceHandleByIndex(d->handle, index, &h);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetMigDeviceHandleByIndex",
                                 "%s, index %u", d->label, index);
        (void)snprintf(label, sizeof(label), "MIG device %u of %.70s", index, d->label);
        *ret = nvml_device_get(d->nvml, h, true, label);
        return 0;
}

int gv_nvml_device_is_mig(struct gv_nvml_device *d, bool *ret, struct gv_error **err)
{
        unsigned is_mig = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceIsMigDeviceHandle, err);
        rc = d->nvml->sym.nvmlDeviceIsMigDeviceHandle(d->handle, &is_mig);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceIsMigDeviceHandle", "%s",
                                 d->label);
        *ret = is_mig != 0;
        return 0;
}

int gv_nvml_mig_device_gi_id(struct gv_nvml_device *mig, uint32_t *ret, struct gv_error **err)
{
        unsigned id = 0;
        nvmlReturn_t rc;

        NVML_NEED(mig->nvml, nvmlDeviceGetGpuInstanceId, err);
        rc = mig->nvml->sym.nvmlDeviceGetGpuInstanceId(mig->handle, &id);
        if (rc != NVML_SUCCESS)
                return nvml_fail(mig->nvml, rc, err, "nvmlDeviceGetGpuInstanceId", "%s",
                                 mig->label);
        *ret = id;
        return 0;
}

int gv_nvml_mig_device_ci_id(struct gv_nvml_device *mig, uint32_t *ret, struct gv_error **err)
{
        unsigned id = 0;
        nvmlReturn_t rc;

        NVML_NEED(mig->nvml, nvmlDeviceGetComputeInstanceId, err);
        rc = mig->nvml->sym.nvmlDeviceGetComputeInstanceId(mig->handle, &id);
        if (rc != NVML_SUCCESS)
                return nvml_fail(mig->nvml, rc, err, "nvmlDeviceGetComputeInstanceId", "%s",
                                 mig->label);
        *ret = id;
        return 0;
}

int gv_nvml_mig_device_parent(struct gv_nvml_device *mig, struct gv_nvml_device **ret,
                              struct gv_error **err)
{
        nvmlDevice_t h = NULL;
        nvmlReturn_t rc;

        NVML_NEED(mig->nvml, nvmlDeviceGetDeviceHandleFromMigDeviceHandle, err);
        rc = mig->nvml->sym.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig->handle, &h);
        if (rc != NVML_SUCCESS)
                return nvml_fail(mig->nvml, rc, err,
                                 "nvmlDeviceGetDeviceHandleFromMigDeviceHandle", "%s",
                                 mig->label);
        for (size_t i = 0; i < mig->nvml->n_devices; i++)
                if (mig->nvml->devices[i]->handle == h) {
                        *ret = mig->nvml->devices[i];
                        return 0;
                }
        *ret = nvml_device_get(mig->nvml, h, false, "GPU (parent of a MIG device)");
        return 0;
}
