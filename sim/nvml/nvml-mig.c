/* SPDX-License-Identifier: MIT */
/*
 * nvml-mig.c — MIG: mode, GPU-instance and compute-instance profiles, placements, instances
 * and MIG device handles (nvml-abi.md §7.2-§9, mig.md).
 *
 * Profile INDEX vs ID (nvml-abi.md §7.3): ...GetGpuInstanceProfileInfo[V] takes the
 * NVML_GPU_INSTANCE_PROFILE_* index and returns the device-specific id; every other call takes
 * the id. An index past NVML_GPU_INSTANCE_PROFILE_COUNT is INVALID_ARGUMENT, one the GPU lacks
 * NOT_SUPPORTED (§7.2). MIG calls other than the mode and possible placements need MIG
 * enabled (current mode), else NOT_SUPPORTED, as the header documents for them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nvml-sim.h"

static nvmlReturn_t errno_to_nvml(int r)
{
        switch (-r) {
        case 0: return NVML_SUCCESS;
        case EINVAL: return NVML_ERROR_INVALID_ARGUMENT;
        case EOPNOTSUPP: return NVML_ERROR_NOT_SUPPORTED;
        case ENOSPC: return NVML_ERROR_INSUFFICIENT_RESOURCES;
        case EBUSY: return NVML_ERROR_IN_USE;
        case ENOENT: return NVML_ERROR_NOT_FOUND;
        default: return NVML_ERROR_UNKNOWN;
        }
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode,
                                  unsigned int *pendingMode)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!currentMode || !pendingMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        *currentMode = g->mig_current;
        *pendingMode = g->mig_pending;
        return NVML_SUCCESS;
}

/* Hopper and later apply at once (activationStatus SUCCESS). On Ampere the driver tries a GPU
 * reset (mig.md §8), which succeeds on an idle GPU; an injected "nvmlDeviceSetMigMode:activation"
 * failure (e.g. RESET_REQUIRED as in a pass-through VM, or IN_USE for a client holding the GPU,
 * nvml-abi.md §9) leaves the mode pending until sim_gpu_reset() (driver unbind/bind in the
 * kernel mock). Refused with IN_USE while vGPUs exist on the GPU. */
nvmlReturn_t nvmlDeviceSetMigMode(nvmlDevice_t device, unsigned int mode,
                                  nvmlReturn_t *activationStatus)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, true, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!activationStatus ||
            (mode != NVML_DEVICE_MIG_ENABLE && mode != NVML_DEVICE_MIG_DISABLE))
                return NVML_ERROR_INVALID_ARGUMENT;
        int act = sim_inject_take(c.s, "nvmlDeviceSetMigMode:activation", (int)g->index, NULL);
        int k = sim_mig_set_mode(c.s, g, mode == NVML_DEVICE_MIG_ENABLE, act != 0, NULL);
        if (k < 0)
                return errno_to_nvml(k);
        if ((r = nvsim_commit(&c)) != NVML_SUCCESS)
                return r;
        *activationStatus = k == 1 ? (nvmlReturn_t)act : NVML_SUCCESS;
        return NVML_SUCCESS;
}

/* ---- GPU-instance profiles ------------------------------------------------------------------ */

static nvmlReturn_t gi_profile_by_index(struct sim_gpu *g, unsigned int index,
                                        const struct gv_mig_gi_profile **ret)
{
        if (index >= NVML_GPU_INSTANCE_PROFILE_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable || g->mig_current != NVML_DEVICE_MIG_ENABLE)
                return NVML_ERROR_NOT_SUPPORTED;
        for (size_t i = 0; i < g->model->n_gi_profiles; i++)
                if (g->model->gi_profiles[i].nvml_index == index) {
                        *ret = &g->model->gi_profiles[i];
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfo(nvmlDevice_t device, unsigned int profile,
                                                 nvmlGpuInstanceProfileInfo_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        const struct gv_mig_gi_profile *p;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = gi_profile_by_index(g, profile, &p)) != NVML_SUCCESS)
                return r;
        *info = (nvmlGpuInstanceProfileInfo_t){
                .id = p->id,
                .isP2pSupported = 0,
                .sliceCount = p->slices,
                .instanceCount = p->instances,
                .multiprocessorCount = p->sms,
                .copyEngineCount = p->copy_engines,
                .decoderCount = p->decoders,
                .encoderCount = p->encoders,
                .jpegCount = p->jpegs,
                .ofaCount = p->ofas,
                .memorySizeMB = p->memory_mib,
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceProfileInfoV(nvmlDevice_t device, unsigned int profile,
                                                  nvmlGpuInstanceProfileInfo_v2_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        const struct gv_mig_gi_profile *p;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned int version = info->version;
        if (version != nvmlGpuInstanceProfileInfo_v2 && version != nvmlGpuInstanceProfileInfo_v3)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        if ((r = gi_profile_by_index(g, profile, &p)) != NVML_SUCCESS)
                return r;
        /* [O] nvidia-smi prefixes profile names with "MIG " (mig.md §7); the NVML name string
         * itself was not observed (nvml-abi.md §12). */
        char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
        snprintf(name, sizeof(name), "MIG %s", p->name);
        if (version == nvmlGpuInstanceProfileInfo_v3) {
                /* v3 drops isP2pSupported and adds capabilities (nvml-abi.md §5). */
                nvmlGpuInstanceProfileInfo_v3_t *v3 = (nvmlGpuInstanceProfileInfo_v3_t *)info;
                *v3 = (nvmlGpuInstanceProfileInfo_v3_t){
                        .version = version,
                        .id = p->id,
                        .sliceCount = p->slices,
                        .instanceCount = p->instances,
                        .multiprocessorCount = p->sms,
                        .copyEngineCount = p->copy_engines,
                        .decoderCount = p->decoders,
                        .encoderCount = p->encoders,
                        .jpegCount = p->jpegs,
                        .ofaCount = p->ofas,
                        .memorySizeMB = p->memory_mib,
                        .capabilities = strstr(p->name, "+gfx") ? NVML_GPU_INSTANCE_PROFILE_CAPS_GFX
                                                                 : 0,
                };
                memcpy(v3->name, name, sizeof(name));
                return NVML_SUCCESS;
        }
        *info = (nvmlGpuInstanceProfileInfo_v2_t){
                .version = version,
                .id = p->id,
                .isP2pSupported = 0,
                .sliceCount = p->slices,
                .instanceCount = p->instances,
                .multiprocessorCount = p->sms,
                .copyEngineCount = p->copy_engines,
                .decoderCount = p->decoders,
                .encoderCount = p->encoders,
                .jpegCount = p->jpegs,
                .ofaCount = p->ofas,
                .memorySizeMB = p->memory_mib,
        };
        memcpy(info->name, name, sizeof(name));
        return NVML_SUCCESS;
}

/* "returns all the possible placements for the given profile regardless of whether MIG is
 * enabled or not"; placements NULL returns the count (mig.md §4). */
nvmlReturn_t nvmlDeviceGetGpuInstancePossiblePlacements_v2(nvmlDevice_t device,
                                                           unsigned int profileId,
                                                           nvmlGpuInstancePlacement_t *placements,
                                                           unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!g->mig_capable)
                return NVML_ERROR_NOT_SUPPORTED;
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, profileId);
        if (!p)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned n = (unsigned)p->n_placements;
        if (!placements) {
                *count = n;
                return NVML_SUCCESS;
        }
        if (*count < n) {
                *count = n;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        for (unsigned i = 0; i < n; i++) {
                placements[i].start = p->placements[i].start;
                placements[i].size = p->placements[i].size;
        }
        *count = n;
        return NVML_SUCCESS;
}

static nvmlReturn_t need_mig(const struct sim_gpu *g)
{
        return g->mig_capable && g->mig_current == NVML_DEVICE_MIG_ENABLE
                       ? NVML_SUCCESS
                       : NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceRemainingCapacity(nvmlDevice_t device, unsigned int profileId,
                                                       unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_mig(g)) != NVML_SUCCESS)
                return r;
        if (!sim_gi_profile(g, profileId))
                return NVML_ERROR_INVALID_ARGUMENT;
        *count = sim_gi_remaining(g, profileId);
        return NVML_SUCCESS;
}

static nvmlReturn_t gi_create(const char *name, nvmlDevice_t device, unsigned int profileId,
                              const nvmlGpuInstancePlacement_t *placement,
                              nvmlGpuInstance_t *gpuInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_dev_begin(&c, name, device, true, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstance)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_mig(g)) != NVML_SUCCESS)
                return r;
        if (!sim_gi_profile(g, profileId))
                return NVML_ERROR_INVALID_ARGUMENT;
        struct gv_mig_placement pl;
        if (placement)
                pl = (struct gv_mig_placement){ .start = placement->start,
                                                .size = placement->size };
        int k = sim_gi_create(c.s, g, profileId, placement ? &pl : NULL, &gi, NULL);
        if (k < 0)
                return errno_to_nvml(k);
        nvmlGpuInstance_t h = nvsim_gi_handle(g->index, gi->id);
        if (!h)
                return NVML_ERROR_INSUFFICIENT_RESOURCES;
        if ((r = nvsim_commit(&c)) != NVML_SUCCESS)
                return r;
        *gpuInstance = h;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceCreateGpuInstance(nvmlDevice_t device, unsigned int profileId,
                                         nvmlGpuInstance_t *gpuInstance)
{
        return gi_create(__func__, device, profileId, NULL, gpuInstance);
}

nvmlReturn_t nvmlDeviceCreateGpuInstanceWithPlacement(nvmlDevice_t device, unsigned int profileId,
                                                      const nvmlGpuInstancePlacement_t *placement,
                                                      nvmlGpuInstance_t *gpuInstance)
{
        if (!placement) {
                /* Still the injection and init checks first. */
                _cleanup_call_ struct nvsim_call c = { 0 };
                struct sim_gpu *g;
                nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
                return r != NVML_SUCCESS ? r : NVML_ERROR_INVALID_ARGUMENT;
        }
        return gi_create(__func__, device, profileId, placement, gpuInstance);
}

nvmlReturn_t nvmlGpuInstanceDestroy(nvmlGpuInstance_t gpuInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, true, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        /* IN_USE "if processes ... or compute instances are active" (nvml-abi.md §7.5). */
        int k = sim_gi_destroy(c.s, g, gi->id, NULL);
        if (k < 0)
                return errno_to_nvml(k);
        return nvsim_commit(&c);
}

nvmlReturn_t nvmlDeviceGetGpuInstances(nvmlDevice_t device, unsigned int profileId,
                                       nvmlGpuInstance_t *gpuInstances, unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_mig(g)) != NVML_SUCCESS)
                return r;
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, profileId);
        if (!p)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* The array holds the profile's instanceCount entries, as NVML documents; NULL asks
         * for the count only. */
        unsigned n = 0;
        for (size_t i = 0; i < g->n_gis; i++) {
                if (g->gis[i].profile_id != profileId)
                        continue;
                if (gpuInstances)
                        gpuInstances[n] = nvsim_gi_handle(g->index, g->gis[i].id);
                n++;
        }
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceById(nvmlDevice_t device, unsigned int id,
                                          nvmlGpuInstance_t *gpuInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstance)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_mig(g)) != NVML_SUCCESS)
                return r;
        if (!sim_gi_by_id(g, id) || !nvsim_gi_handle(g->index, id))
                return NVML_ERROR_NOT_FOUND;
        *gpuInstance = nvsim_gi_handle(g->index, id);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetInfo(nvmlGpuInstance_t gpuInstance, nvmlGpuInstanceInfo_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        info->device = nvsim_dev_handle(g->index);
        info->id = gi->id;
        info->profileId = gi->profile_id;
        info->placement.start = gi->start;
        info->placement.size = gi->size;
        return NVML_SUCCESS;
}

/* ---- compute instances ---------------------------------------------------------------------- */

static nvmlReturn_t ci_profile_by_index(struct sim_gpu *g, struct sim_gi *gi, unsigned int index,
                                        unsigned int engProfile,
                                        const struct gv_mig_ci_profile **ret)
{
        if (index >= NVML_COMPUTE_INSTANCE_PROFILE_COUNT ||
            engProfile != NVML_COMPUTE_INSTANCE_ENGINE_PROFILE_SHARED)
                return NVML_ERROR_INVALID_ARGUMENT;
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        for (size_t i = 0; p && i < p->n_ci_profiles; i++)
                if (p->ci_profiles[i].nvml_index == index) {
                        *ret = &p->ci_profiles[i];
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfo(nvmlGpuInstance_t gpuInstance,
                                                          unsigned int profile,
                                                          unsigned int engProfile,
                                                          nvmlComputeInstanceProfileInfo_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        const struct gv_mig_ci_profile *cp;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = ci_profile_by_index(g, gi, profile, engProfile, &cp)) != NVML_SUCCESS)
                return r;
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        /* The shared engine counts are the GI's (mig.md §6). */
        *info = (nvmlComputeInstanceProfileInfo_t){
                .id = cp->id,
                .sliceCount = cp->slices,
                .instanceCount = cp->instances,
                .multiprocessorCount = cp->sms,
                .sharedCopyEngineCount = p->copy_engines,
                .sharedDecoderCount = p->decoders,
                .sharedEncoderCount = p->encoders,
                .sharedJpegCount = p->jpegs,
                .sharedOfaCount = p->ofas,
        };
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceProfileInfoV(
        nvmlGpuInstance_t gpuInstance, unsigned int profile, unsigned int engProfile,
        nvmlComputeInstanceProfileInfo_v2_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        const struct gv_mig_ci_profile *cp;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (info->version != nvmlComputeInstanceProfileInfo_v2)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        if ((r = ci_profile_by_index(g, gi, profile, engProfile, &cp)) != NVML_SUCCESS)
                return r;
        const struct gv_mig_gi_profile *p = sim_gi_profile(g, gi->profile_id);
        *info = (nvmlComputeInstanceProfileInfo_v2_t){
                .version = nvmlComputeInstanceProfileInfo_v2,
                .id = cp->id,
                .sliceCount = cp->slices,
                .instanceCount = cp->instances,
                .multiprocessorCount = cp->sms,
                .sharedCopyEngineCount = p->copy_engines,
                .sharedDecoderCount = p->decoders,
                .sharedEncoderCount = p->encoders,
                .sharedJpegCount = p->jpegs,
                .sharedOfaCount = p->ofas,
        };
        snprintf(info->name, sizeof(info->name), "MIG %s", cp->name);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceRemainingCapacity(nvmlGpuInstance_t gpuInstance,
                                                                unsigned int profileId,
                                                                unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!count || !sim_ci_profile(g, gi, profileId))
                return NVML_ERROR_INVALID_ARGUMENT;
        *count = sim_ci_remaining(g, gi, profileId);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstancePossiblePlacements(
        nvmlGpuInstance_t gpuInstance, unsigned int profileId,
        nvmlComputeInstancePlacement_t *placements, unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        struct gv_mig_placement pl[16];
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        const struct gv_mig_ci_profile *cp = sim_ci_profile(g, gi, profileId);
        if (!count || !cp)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned n = (unsigned)MIN(sim_ci_placements(g, gi, cp, pl, ELEMENTSOF(pl)),
                                   ELEMENTSOF(pl));
        if (!placements) {
                *count = n;
                return NVML_SUCCESS;
        }
        if (*count < n) {
                *count = n;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        for (unsigned i = 0; i < n; i++) {
                placements[i].start = pl[i].start;
                placements[i].size = pl[i].size;
        }
        *count = n;
        return NVML_SUCCESS;
}

static nvmlReturn_t ci_create(const char *name, nvmlGpuInstance_t gpuInstance,
                              unsigned int profileId,
                              const nvmlComputeInstancePlacement_t *placement,
                              nvmlComputeInstance_t *computeInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        struct sim_ci *ci;
        nvmlReturn_t r = nvsim_gi_begin(&c, name, gpuInstance, true, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!computeInstance || !sim_ci_profile(g, gi, profileId))
                return NVML_ERROR_INVALID_ARGUMENT;
        struct gv_mig_placement pl;
        if (placement)
                pl = (struct gv_mig_placement){ .start = placement->start,
                                                .size = placement->size };
        int k = sim_ci_create(g, gi, profileId, placement ? &pl : NULL, &ci, NULL);
        if (k < 0)
                return errno_to_nvml(k);
        nvmlComputeInstance_t h = nvsim_ci_handle(g->index, gi->id, ci->id);
        if (!h)
                return NVML_ERROR_INSUFFICIENT_RESOURCES;
        if ((r = nvsim_commit(&c)) != NVML_SUCCESS)
                return r;
        *computeInstance = h;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceCreateComputeInstance(nvmlGpuInstance_t gpuInstance,
                                                  unsigned int profileId,
                                                  nvmlComputeInstance_t *computeInstance)
{
        return ci_create(__func__, gpuInstance, profileId, NULL, computeInstance);
}

nvmlReturn_t nvmlGpuInstanceCreateComputeInstanceWithPlacement(
        nvmlGpuInstance_t gpuInstance, unsigned int profileId,
        const nvmlComputeInstancePlacement_t *placement, nvmlComputeInstance_t *computeInstance)
{
        if (!placement) {
                _cleanup_call_ struct nvsim_call c = { 0 };
                struct sim_gpu *g;
                struct sim_gi *gi;
                nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
                return r != NVML_SUCCESS ? r : NVML_ERROR_INVALID_ARGUMENT;
        }
        return ci_create(__func__, gpuInstance, profileId, placement, computeInstance);
}

nvmlReturn_t nvmlComputeInstanceDestroy(nvmlComputeInstance_t computeInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        struct sim_ci *ci;
        nvmlReturn_t r = nvsim_ci_begin(&c, __func__, computeInstance, true, &g, &gi, &ci);
        if (r != NVML_SUCCESS)
                return r;
        int k = sim_ci_destroy(gi, ci->id);
        if (k < 0)
                return errno_to_nvml(k);
        return nvsim_commit(&c);
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstances(nvmlGpuInstance_t gpuInstance,
                                                unsigned int profileId,
                                                nvmlComputeInstance_t *computeInstances,
                                                unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!count || !sim_ci_profile(g, gi, profileId))
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned n = 0;
        for (size_t i = 0; i < gi->n_cis; i++) {
                if (gi->cis[i].profile_id != profileId)
                        continue;
                if (computeInstances)
                        computeInstances[n] = nvsim_ci_handle(g->index, gi->id, gi->cis[i].id);
                n++;
        }
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGpuInstanceGetComputeInstanceById(nvmlGpuInstance_t gpuInstance, unsigned int id,
                                                   nvmlComputeInstance_t *computeInstance)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        nvmlReturn_t r = nvsim_gi_begin(&c, __func__, gpuInstance, false, &g, &gi);
        if (r != NVML_SUCCESS)
                return r;
        if (!computeInstance)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!sim_ci_by_id(gi, id) || !nvsim_ci_handle(g->index, gi->id, id))
                return NVML_ERROR_NOT_FOUND;
        *computeInstance = nvsim_ci_handle(g->index, gi->id, id);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlComputeInstanceGetInfo_v2(nvmlComputeInstance_t computeInstance,
                                           nvmlComputeInstanceInfo_t *info)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        struct sim_gi *gi;
        struct sim_ci *ci;
        nvmlReturn_t r = nvsim_ci_begin(&c, __func__, computeInstance, false, &g, &gi, &ci);
        if (r != NVML_SUCCESS)
                return r;
        if (!info)
                return NVML_ERROR_INVALID_ARGUMENT;
        info->device = nvsim_dev_handle(g->index);
        info->gpuInstance = nvsim_gi_handle(g->index, gi->id);
        info->id = ci->id;
        info->profileId = ci->profile_id;
        info->placement.start = ci->start;
        info->placement.size = ci->size;
        return NVML_SUCCESS;
}

/* ---- MIG device handles (one per compute instance, nvml-abi.md §7.4) ------------------------- */

nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!isMigDevice)
                return NVML_ERROR_INVALID_ARGUMENT;
        *isMigDevice = device->kind == NVSIM_MIG_DEV;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!id)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->kind != NVSIM_MIG_DEV)
                return NVML_ERROR_NOT_SUPPORTED;
        *id = device->gi;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!id)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (device->kind != NVSIM_MIG_DEV)
                return NVML_ERROR_NOT_SUPPORTED;
        *id = device->ci;
        return NVML_SUCCESS;
}

/* "Returns zero if MIG is not supported or enabled" (nvml-abi.md §7.4). */
nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        *count = need_mig(g) == NVML_SUCCESS ? g->model->mig_max_instances : 0;
        return NVML_SUCCESS;
}

/* MIG devices in order of GI id, then CI id. */
nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                 nvmlDevice_t *migDevice)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!migDevice)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_mig(g)) != NVML_SUCCESS)
                return r;
        if (index >= g->model->mig_max_instances)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned k = 0;
        for (uint32_t gid = 0; gid < NVSIM_GI_IDS; gid++) {
                struct sim_gi *gi = sim_gi_by_id(g, gid);
                if (!gi)
                        continue;
                for (uint32_t cid = 0; cid < NVSIM_CI_IDS; cid++) {
                        if (!sim_ci_by_id(gi, cid))
                                continue;
                        if (k++ == index) {
                                *migDevice = nvsim_mig_handle(g->index, gid, cid);
                                return NVML_SUCCESS;
                        }
                }
        }
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice,
                                                          nvmlDevice_t *device)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, migDevice, false, true, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!device)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (migDevice->kind != NVSIM_MIG_DEV)
                return NVML_ERROR_NOT_SUPPORTED;
        *device = nvsim_dev_handle(g->index);
        return NVML_SUCCESS;
}
