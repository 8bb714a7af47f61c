/* SPDX-License-Identifier: MIT */
/*
 * nvml-vgpu.c — vGPU reporting (vgpu.md, nvml-abi.md §3.2, §7.1). vGPU instances are created
 * by the kernel side (mdev create, current_vgpu_type) through sim_vgpu_add(); NVML reports
 * them, and the creatable lists apply the same rules (sim_vgpu_creatable).
 */
#include <stdio.h>
#include <string.h>

#include "nvml-sim.h"
#include "util/parse.h"

static nvmlReturn_t need_vgpu_host(const struct nvsim_call *c)
{
        return c->s->vgpu_interface == SIM_VGPU_NONE ? NVML_ERROR_NOT_SUPPORTED : NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t device,
                                             nvmlGpuVirtualizationMode_t *pVirtualMode)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pVirtualMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        *pVirtualMode = c.s->vgpu_interface == SIM_VGPU_NONE ? NVML_GPU_VIRTUALIZATION_MODE_NONE
                                                             : NVML_GPU_VIRTUALIZATION_MODE_HOST_VGPU;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHostVgpuMode(nvmlDevice_t device, nvmlHostVgpuMode_t *pHostVgpuMode)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pHostVgpuMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        *pHostVgpuMode = g->model->sriov_total_vfs > 0 ? NVML_HOST_VGPU_MODE_SRIOV
                                                       : NVML_HOST_VGPU_MODE_NON_SRIOV;
        return NVML_SUCCESS;
}

/* The count protocol (nvml-abi.md §7.1): *count too small (e.g. 0) → INSUFFICIENT_SIZE with
 * the count; none → SUCCESS with 0. */
static nvmlReturn_t put_ids(const unsigned *ids, unsigned n, unsigned int *count, unsigned *out)
{
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (*count < n) {
                *count = n;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        if (n && !out)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (n)
                memcpy(out, ids, n * sizeof(ids[0]));
        *count = n;
        return NVML_SUCCESS;
}

static nvmlReturn_t vgpu_types(const char *name, nvmlDevice_t device, bool creatable,
                               unsigned int *vgpuCount, nvmlVgpuTypeId_t *vgpuTypeIds)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, name, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!vgpuCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        unsigned ids[256], n = 0;
        for (size_t i = 0; i < g->model->n_vgpu_types && n < ELEMENTSOF(ids); i++) {
                uint32_t id = g->model->vgpu_types[i].type_id;
                if (!creatable || sim_vgpu_creatable(c.s, g, id) > 0)
                        ids[n++] = id;
        }
        return put_ids(ids, n, vgpuCount, vgpuTypeIds);
}

nvmlReturn_t nvmlDeviceGetSupportedVgpus(nvmlDevice_t device, unsigned int *vgpuCount,
                                         nvmlVgpuTypeId_t *vgpuTypeIds)
{
        return vgpu_types(__func__, device, false, vgpuCount, vgpuTypeIds);
}

/* "if only one vGPU type is allowed at a time on a device, then the creatable list will be
 * restricted to whatever vGPU type is already running" (nvml-abi.md §7.5). */
nvmlReturn_t nvmlDeviceGetCreatableVgpus(nvmlDevice_t device, unsigned int *vgpuCount,
                                         nvmlVgpuTypeId_t *vgpuTypeIds)
{
        return vgpu_types(__func__, device, true, vgpuCount, vgpuTypeIds);
}

static nvmlReturn_t type_begin(struct nvsim_call *c, const char *name, nvmlVgpuTypeId_t id,
                               const struct gv_vgpu_type **ret)
{
        nvmlReturn_t r = nvsim_begin(c, name, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        const struct gv_vgpu_type *t = nvsim_vgpu_type(c->s, id);
        if (!t)
                return NVML_ERROR_INVALID_ARGUMENT;
        *ret = t;
        return NVML_SUCCESS;
}

/* size is in/out: too small → INSUFFICIENT_SIZE with the size needed. */
static nvmlReturn_t put_sized(const char *src, char *dst, unsigned int *size)
{
        if (!size)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned need = (unsigned)strlen(src) + 1;
        if (*size < need) {
                *size = need;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        if (!dst)
                return NVML_ERROR_INVALID_ARGUMENT;
        memcpy(dst, src, need);
        *size = need;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuTypeGetName(nvmlVgpuTypeId_t vgpuTypeId, char *vgpuTypeName,
                                 unsigned int *size)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        /* The name with the "NVIDIA " prefix newer drivers print (vgpu.md §3, §4). */
        char buf[NVML_VGPU_NAME_BUFFER_SIZE];
        snprintf(buf, sizeof(buf), "NVIDIA %s", t->name);
        return put_sized(buf, vgpuTypeName, size);
}

nvmlReturn_t nvmlVgpuTypeGetClass(nvmlVgpuTypeId_t vgpuTypeId, char *vgpuTypeClass,
                                  unsigned int *size)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        return put_sized(t->vgpu_class ? t->vgpu_class : "", vgpuTypeClass, size);
}

nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(nvmlVgpuTypeId_t vgpuTypeId,
                                            unsigned long long *fbSize)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        if (!fbSize)
                return NVML_ERROR_INVALID_ARGUMENT;
        *fbSize = t->framebuffer_mib * 1024ull * 1024ull;
        return NVML_SUCCESS;
}

/* The maximum of the GPU's current mode: equal-size, or mixed-size (vgpu.md §7.1, §8). */
nvmlReturn_t nvmlVgpuTypeGetMaxInstances(nvmlDevice_t device, nvmlVgpuTypeId_t vgpuTypeId,
                                         unsigned int *vgpuInstanceCount)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        const struct gv_vgpu_type *t = sim_gpu_vgpu_type(g, vgpuTypeId);
        if (!t || !vgpuInstanceCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        *vgpuInstanceCount = g->vgpu_heterogeneous && !t->gi ? t->max_instances_mixed
                                                             : t->max_instances;
        return NVML_SUCCESS;
}

/* [I] one vGPU of a type per VM; the reference gives no per-type figure (vgpu.md §8). */
nvmlReturn_t nvmlVgpuTypeGetMaxInstancesPerVm(nvmlVgpuTypeId_t vgpuTypeId,
                                              unsigned int *vgpuInstanceCountPerVm)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        if (!vgpuInstanceCountPerVm)
                return NVML_ERROR_INVALID_ARGUMENT;
        *vgpuInstanceCountPerVm = 1;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuTypeGetGpuInstanceProfileId(nvmlVgpuTypeId_t vgpuTypeId,
                                                 unsigned int *gpuInstanceProfileId)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstanceProfileId)
                return NVML_ERROR_INVALID_ARGUMENT;
        *gpuInstanceProfileId = t->gi ? t->gi->id : INVALID_GPU_INSTANCE_PROFILE_ID;
        return NVML_SUCCESS;
}

/* [I] The licence edition of the type's series (vgpu.md §6); the exact string real NVML
 * returns is not in the reference. */
nvmlReturn_t nvmlVgpuTypeGetLicense(nvmlVgpuTypeId_t vgpuTypeId, char *vgpuTypeLicenseString,
                                    unsigned int size)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        const struct gv_vgpu_type *t;
        nvmlReturn_t r = type_begin(&c, __func__, vgpuTypeId, &t);
        if (r != NVML_SUCCESS)
                return r;
        static const char *const edition[_GV_VGPU_SERIES_MAX] = {
                [GV_VGPU_SERIES_A] = "vApps",
                [GV_VGPU_SERIES_B] = "vPC",
                [GV_VGPU_SERIES_C] = "vCS",
                [GV_VGPU_SERIES_Q] = "vWS",
        };
        const char *e = (int)t->series >= 0 && t->series < _GV_VGPU_SERIES_MAX ? edition[t->series]
                                                                              : "";
        return nvsim_put_string(e, vgpuTypeLicenseString, size);
}

nvmlReturn_t nvmlDeviceGetActiveVgpus(nvmlDevice_t device, unsigned int *vgpuCount,
                                      nvmlVgpuInstance_t *vgpuInstances)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!vgpuCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        unsigned ids[SIM_MAX_VGPUS], n = 0;
        for (size_t i = 0; i < c.s->n_vgpus; i++)
                if (c.s->vgpus[i].gpu == g->index)
                        ids[n++] = c.s->vgpus[i].instance;
        return put_ids(ids, n, vgpuCount, vgpuInstances);
}

/* A vGPU instance call: 0 → INVALID_ARGUMENT, unknown → NOT_FOUND. */
static nvmlReturn_t inst_begin(struct nvsim_call *c, const char *name, nvmlVgpuInstance_t inst,
                               struct sim_vgpu **ret_v, struct sim_gpu **ret_g)
{
        /* Injection matches these calls with gpu -1 (any GPU): the instance names no GPU. */
        nvmlReturn_t r = nvsim_begin(c, name, -1, false);
        if (r != NVML_SUCCESS)
                return r;
        if (inst == 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_vgpu *v = sim_vgpu_by_instance(c->s, inst);
        if (!v)
                return NVML_ERROR_NOT_FOUND;
        struct sim_gpu *g = sim_gpu_by_index(c->s, v->gpu);
        if (!g)
                return NVML_ERROR_NOT_FOUND;
        if (g->lost || !nvsim_gpu_visible(c->s, g))
                return NVML_ERROR_GPU_IS_LOST;
        *ret_v = v;
        *ret_g = g;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuInstanceGetUUID(nvmlVgpuInstance_t vgpuInstance, char *uuid,
                                     unsigned int size)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        return nvsim_put_string(v->uuid, uuid, size);
}

nvmlReturn_t nvmlVgpuInstanceGetType(nvmlVgpuInstance_t vgpuInstance,
                                     nvmlVgpuTypeId_t *vgpuTypeId)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!vgpuTypeId)
                return NVML_ERROR_INVALID_ARGUMENT;
        *vgpuTypeId = v->type_id;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuInstanceGetFbUsage(nvmlVgpuInstance_t vgpuInstance,
                                        unsigned long long *fbUsage)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!fbUsage)
                return NVML_ERROR_INVALID_ARGUMENT;
        struct sim_vgpu_load l;
        sim_vgpu_load(c.s, v, nvsim_now(), &l);
        *fbUsage = l.fb_used_mib * 1024ull * 1024ull;
        return NVML_SUCCESS;
}

/* The VM id is a UUID when the kernel side recorded one, else a domain id; "" before a VM
 * has opened the vGPU. */
nvmlReturn_t nvmlVgpuInstanceGetVmID(nvmlVgpuInstance_t vgpuInstance, char *vmId,
                                     unsigned int size, nvmlVgpuVmIdType_t *vmIdType)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        struct gv_uuid u;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!vmIdType)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = nvsim_put_string(v->vm_id, vmId, size)) != NVML_SUCCESS)
                return r;
        *vmIdType = gv_parse_uuid(v->vm_id, &u) >= 0 ? NVML_VGPU_VM_ID_UUID
                                                     : NVML_VGPU_VM_ID_DOMAIN_ID;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuInstanceGetGpuInstanceId(nvmlVgpuInstance_t vgpuInstance,
                                              unsigned int *gpuInstanceId)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!gpuInstanceId)
                return NVML_ERROR_INVALID_ARGUMENT;
        *gpuInstanceId = v->gi_id;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlVgpuInstanceGetPlacementId(nvmlVgpuInstance_t vgpuInstance,
                                            nvmlVgpuPlacementId_t *pPlacement)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_vgpu *v;
        struct sim_gpu *g;
        nvmlReturn_t r = inst_begin(&c, __func__, vgpuInstance, &v, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pPlacement)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (pPlacement->version != nvmlVgpuPlacementId_v1)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        pPlacement->placementId = v->placement_id;
        return NVML_SUCCESS;
}

/* One sample per time-sliced vGPU whose sample time (the current second) is newer than
 * lastSeenTimeStamp; values as UNSIGNED_INT percent (nvml-abi.md §7.1). utilizationSamples NULL
 * or *count too small → INSUFFICIENT_SIZE with the count. MIG-backed vGPUs get no sample:
 * utilization is not attributed to MIG devices (nvml-abi.md §7.4) [I]. */
nvmlReturn_t nvmlDeviceGetVgpuUtilization(nvmlDevice_t device, unsigned long long lastSeenTimeStamp,
                                          nvmlValueType_t *sampleValType,
                                          unsigned int *vgpuInstanceSamplesCount,
                                          nvmlVgpuInstanceUtilizationSample_t *utilizationSamples)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!sampleValType || !vgpuInstanceSamplesCount)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        double now = nvsim_now();
        unsigned long long ts = (unsigned long long)now * 1000000ull;
        unsigned n = 0;
        if (ts > lastSeenTimeStamp)
                for (size_t i = 0; i < c.s->n_vgpus; i++)
                        n += c.s->vgpus[i].gpu == g->index &&
                             c.s->vgpus[i].gi_id == INVALID_GPU_INSTANCE_ID;
        *sampleValType = NVML_VALUE_TYPE_UNSIGNED_INT;
        if (!utilizationSamples || *vgpuInstanceSamplesCount < n) {
                *vgpuInstanceSamplesCount = n;
                return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
        }
        unsigned k = 0;
        for (size_t i = 0; i < c.s->n_vgpus && k < n; i++) {
                const struct sim_vgpu *v = &c.s->vgpus[i];
                if (v->gpu != g->index || v->gi_id != INVALID_GPU_INSTANCE_ID)
                        continue;
                struct sim_vgpu_load l;
                sim_vgpu_load(c.s, v, (double)(ts / 1000000ull), &l);
                nvmlVgpuInstanceUtilizationSample_t *smp = &utilizationSamples[k++];
                memset(smp, 0, sizeof(*smp));
                smp->vgpuInstance = v->instance;
                smp->timeStamp = ts;
                smp->smUtil.uiVal = l.sm;
                smp->memUtil.uiVal = l.mem;
                smp->encUtil.uiVal = l.enc;
                smp->decUtil.uiVal = l.dec;
        }
        *vgpuInstanceSamplesCount = k;
        return NVML_SUCCESS;
}

/* Best effort, the default policy (vgpu.md §10); not used in MIG mode. */
nvmlReturn_t nvmlDeviceGetVgpuSchedulerState(nvmlDevice_t device,
                                             nvmlVgpuSchedulerGetState_t *pSchedulerState)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pSchedulerState)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        if (g->mig_current == NVML_DEVICE_MIG_ENABLE)
                return NVML_ERROR_NOT_SUPPORTED;
        memset(pSchedulerState, 0, sizeof(*pSchedulerState));
        pSchedulerState->schedulerPolicy = NVML_VGPU_SCHEDULER_POLICY_BEST_EFFORT;
        pSchedulerState->arrMode = NVML_VGPU_SCHEDULER_ARR_DEFAULT;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVgpuHeterogeneousMode(nvmlDevice_t device,
                                                nvmlVgpuHeterogeneousMode_t *pHeterogeneousMode)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pHeterogeneousMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (pHeterogeneousMode->version != nvmlVgpuHeterogeneousMode_v1)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        pHeterogeneousMode->mode = g->vgpu_heterogeneous ? NVML_VGPU_PGPU_HETEROGENEOUS_MODE
                                                         : NVML_VGPU_PGPU_HOMOGENEOUS_MODE;
        return NVML_SUCCESS;
}

/* Refused (IN_USE) while vGPUs exist: "no vGPUs running and the GPU idle" (vgpu.md §8). */
nvmlReturn_t nvmlDeviceSetVgpuHeterogeneousMode(
        nvmlDevice_t device, const nvmlVgpuHeterogeneousMode_t *pHeterogeneousMode)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, true, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!pHeterogeneousMode)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (pHeterogeneousMode->version != nvmlVgpuHeterogeneousMode_v1)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        unsigned mode = pHeterogeneousMode->mode;
        if (mode != NVML_VGPU_PGPU_HETEROGENEOUS_MODE && mode != NVML_VGPU_PGPU_HOMOGENEOUS_MODE)
                return NVML_ERROR_INVALID_ARGUMENT;
        int k = sim_vgpu_set_heterogeneous(c.s, g, mode == NVML_VGPU_PGPU_HETEROGENEOUS_MODE,
                                           NULL);
        if (k == -EBUSY)
                return NVML_ERROR_IN_USE;
        if (k < 0)
                return NVML_ERROR_NOT_SUPPORTED;
        return nvsim_commit(&c);
}

static nvmlReturn_t placements(const char *name, nvmlDevice_t device, nvmlVgpuTypeId_t vgpuTypeId,
                               nvmlVgpuPlacementList_t *list, bool creatable)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, name, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!list)
                return NVML_ERROR_INVALID_ARGUMENT;
        /* The version word says which struct the caller passed: v1 (12.4) has no mode and
         * asks about the current mode; v2 asks about the mode it names (nvml-abi.md §4). */
        bool het;
        if (list->version == nvmlVgpuPlacementList_v1)
                het = g->vgpu_heterogeneous;
        else if (list->version == nvmlVgpuPlacementList_v2) {
                if (list->mode != NVML_VGPU_PGPU_HETEROGENEOUS_MODE &&
                    list->mode != NVML_VGPU_PGPU_HOMOGENEOUS_MODE)
                        return NVML_ERROR_INVALID_ARGUMENT;
                het = list->mode == NVML_VGPU_PGPU_HETEROGENEOUS_MODE;
        } else
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        const struct gv_vgpu_type *t = sim_gpu_vgpu_type(g, vgpuTypeId);
        if (!t)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (t->gi)
                return NVML_ERROR_NOT_SUPPORTED;
        uint32_t ids[64], size;
        unsigned n = (unsigned)sim_vgpu_placements(c.s, g, t, het, creatable, ids,
                                                   ELEMENTSOF(ids), &size);
        list->placementSize = size;
        if (!list->placementIds || list->count < n) {
                list->count = n;
                return n ? NVML_ERROR_INSUFFICIENT_SIZE : NVML_SUCCESS;
        }
        if (n)
                memcpy(list->placementIds, ids, n * sizeof(ids[0]));
        list->count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVgpuTypeSupportedPlacements(nvmlDevice_t device,
                                                      nvmlVgpuTypeId_t vgpuTypeId,
                                                      nvmlVgpuPlacementList_t *pPlacementList)
{
        return placements(__func__, device, vgpuTypeId, pPlacementList, false);
}

nvmlReturn_t nvmlDeviceGetVgpuTypeCreatablePlacements(nvmlDevice_t device,
                                                      nvmlVgpuTypeId_t vgpuTypeId,
                                                      nvmlVgpuPlacementList_t *pPlacementList)
{
        return placements(__func__, device, vgpuTypeId, pPlacementList, true);
}

nvmlReturn_t nvmlDeviceGetVgpuCapabilities(nvmlDevice_t device,
                                           nvmlDeviceVgpuCapability_t capability,
                                           unsigned int *capResult)
{
        _cleanup_call_ struct nvsim_call c = { 0 };
        struct sim_gpu *g;
        nvmlReturn_t r = nvsim_dev_begin(&c, __func__, device, false, false, &g);
        if (r != NVML_SUCCESS)
                return r;
        if (!capResult || (unsigned)capability >= NVML_DEVICE_VGPU_CAP_COUNT)
                return NVML_ERROR_INVALID_ARGUMENT;
        if ((r = need_vgpu_host(&c)) != NVML_SUCCESS)
                return r;
        switch (capability) {
        case NVML_DEVICE_VGPU_CAP_FRACTIONAL_MULTI_VGPU:
                *capResult = 1;
                break;
        case NVML_DEVICE_VGPU_CAP_HETEROGENEOUS_TIMESLICE_PROFILES:
        case NVML_DEVICE_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES:
                *capResult = g->model->vgpu_heterogeneous_capable;
                break;
        default:
                *capResult = 0;
                break;
        }
        return NVML_SUCCESS;
}
