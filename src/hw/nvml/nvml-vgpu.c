/* SPDX-License-Identifier: MIT */
/*
 * nvml-vgpu.c — vGPU: virtualization modes, supported / creatable / active lists (count
 * protocol, nvml-abi.md §7.1), per-type and per-instance queries, utilization samples,
 * scheduler state, heterogeneous (mixed-size) mode and placements (vgpu.md §8), device vGPU
 * capabilities (nvml-abi.md §3.2).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hw/nvml/nvml-internal.h"
#include "util/alloc.h"
#include "util/enum-table.h"

static const char *const virt_mode_table[_GV_NVML_VIRT_MAX] = {
        [GV_NVML_VIRT_NONE] = "none",
        [GV_NVML_VIRT_PASSTHROUGH] = "passthrough",
        [GV_NVML_VIRT_VGPU] = "vgpu",
        [GV_NVML_VIRT_HOST_VGPU] = "host-vgpu",
        [GV_NVML_VIRT_HOST_VSGA] = "host-vsga",
};
DEFINE_STRING_TABLE_LOOKUP(gv_nvml_virt_mode, enum gv_nvml_virt_mode, virt_mode_table);

static const char *const sched_policy_table[_GV_NVML_SCHED_MAX] = {
        [GV_NVML_SCHED_UNKNOWN] = "unknown",
        [GV_NVML_SCHED_BEST_EFFORT] = "best-effort",
        [GV_NVML_SCHED_EQUAL_SHARE] = "equal-share",
        [GV_NVML_SCHED_FIXED_SHARE] = "fixed-share",
};
DEFINE_STRING_TABLE_LOOKUP(gv_nvml_sched_policy, enum gv_nvml_sched_policy, sched_policy_table);

static const char *const vgpu_dev_cap_table[_GV_NVML_VGPU_CAP_MAX] = {
        [GV_NVML_VGPU_CAP_FRACTIONAL_MULTI_VGPU] = "fractional-multi-vgpu",
        [GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_PROFILES] = "heterogeneous-timeslice-profiles",
        [GV_NVML_VGPU_CAP_HETEROGENEOUS_TIMESLICE_SIZES] = "heterogeneous-timeslice-sizes",
        [GV_NVML_VGPU_CAP_READ_DEVICE_BUFFER_BW] = "read-device-buffer-bw",
        [GV_NVML_VGPU_CAP_WRITE_DEVICE_BUFFER_BW] = "write-device-buffer-bw",
        [GV_NVML_VGPU_CAP_DEVICE_STREAMING] = "device-streaming",
        [GV_NVML_VGPU_CAP_MINI_QUARTER_GPU] = "mini-quarter-gpu",
        [GV_NVML_VGPU_CAP_COMPUTE_MEDIA_ENGINE_GPU] = "compute-media-engine-gpu",
        [GV_NVML_VGPU_CAP_WARM_UPDATE] = "warm-update",
        [GV_NVML_VGPU_CAP_HOMOGENEOUS_PLACEMENTS] = "homogeneous-placements",
        [GV_NVML_VGPU_CAP_MIG_TIMESLICING_SUPPORTED] = "mig-timeslicing-supported",
        [GV_NVML_VGPU_CAP_MIG_TIMESLICING_ENABLED] = "mig-timeslicing-enabled",
};
DEFINE_STRING_TABLE_LOOKUP(gv_nvml_vgpu_dev_cap, enum gv_nvml_vgpu_dev_cap, vgpu_dev_cap_table);

/* Our enum mirrors NVML's value for value. */
_Static_assert((int)GV_NVML_VGPU_CAP_MIG_TIMESLICING_ENABLED ==
                       (int)NVML_DEVICE_VGPU_CAP_MIG_TIMESLICING_ENABLED &&
               (int)_GV_NVML_VGPU_CAP_MAX == (int)NVML_DEVICE_VGPU_CAP_COUNT,
               "gv_nvml_vgpu_dev_cap differs from nvmlDeviceVgpuCapability_t");
_Static_assert((int)GV_NVML_VIRT_HOST_VSGA == (int)NVML_GPU_VIRTUALIZATION_MODE_HOST_VSGA,
               "gv_nvml_virt_mode differs from nvmlGpuVirtualizationMode_t");
_Static_assert((int)GV_NVML_SCHED_FIXED_SHARE == NVML_VGPU_SCHEDULER_POLICY_FIXED_SHARE,
               "gv_nvml_sched_policy differs from NVML_VGPU_SCHEDULER_POLICY_*");

int gv_nvml_virtualization_mode(struct gv_nvml_device *d, enum gv_nvml_virt_mode *ret,
                                struct gv_error **err)
{
        nvmlGpuVirtualizationMode_t m = NVML_GPU_VIRTUALIZATION_MODE_NONE;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetVirtualizationMode, err);
        rc = d->nvml->sym.nvmlDeviceGetVirtualizationMode(d->handle, &m);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetVirtualizationMode", "%s",
                                 d->label);
        if ((int)m < 0 || (int)m >= _GV_NVML_VIRT_MAX)
                return gv_error_set(err, EPROTO,
                                    "nvmlDeviceGetVirtualizationMode(%s) returned the unknown "
                                    "mode %d; valid modes are 0 to %d.",
                                    d->label, (int)m, _GV_NVML_VIRT_MAX - 1);
        *ret = (enum gv_nvml_virt_mode)m;
        return 0;
}

int gv_nvml_host_vgpu_sriov(struct gv_nvml_device *d, bool *ret, struct gv_error **err)
{
        nvmlHostVgpuMode_t m = NVML_HOST_VGPU_MODE_NON_SRIOV;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetHostVgpuMode, err);
        rc = d->nvml->sym.nvmlDeviceGetHostVgpuMode(d->handle, &m);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetHostVgpuMode", "%s", d->label);
        *ret = m == NVML_HOST_VGPU_MODE_SRIOV;
        return 0;
}

/* ---- id lists: the count protocol ---- */

typedef nvmlReturn_t (*id_list_fn)(nvmlDevice_t device, unsigned *count, unsigned *ids);

/* Call with count 0 / NULL; INSUFFICIENT_SIZE gives the count; allocate and call again; if the
 * list grew between the calls, retry (bounded). */
static int id_list(struct gv_nvml_device *d, id_list_fn fn, const char *call, uint32_t **ret,
                   size_t *ret_n, struct gv_error **err)
{
        _cleanup_free_ unsigned *ids = NULL;
        unsigned want = 0;
        nvmlReturn_t rc = NVML_ERROR_INSUFFICIENT_SIZE;

        for (int attempt = 0; attempt < NVML_COUNT_RETRIES; attempt++) {
                unsigned count = want;

                rc = fn(d->handle, &count, want ? ids : NULL);
                if (rc == NVML_SUCCESS && count <= want) {
                        uint32_t *out = count ? xnew0(uint32_t, count) : NULL;

                        for (unsigned i = 0; i < count; i++)
                                out[i] = ids[i];
                        *ret = out;
                        *ret_n = count;
                        return 0;
                }
                if (rc != NVML_SUCCESS && rc != NVML_ERROR_INSUFFICIENT_SIZE)
                        break;
                want = MAX(count, want + 1);
                ids = xreallocarray(ids, want, sizeof(*ids));
        }
        if (rc == NVML_SUCCESS)
                rc = NVML_ERROR_INSUFFICIENT_SIZE;
        return nvml_fail(d->nvml, rc, err, call, "%s", d->label);
}

int gv_nvml_vgpu_supported_types(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                 struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetSupportedVgpus, err);
        return id_list(d, d->nvml->sym.nvmlDeviceGetSupportedVgpus, "nvmlDeviceGetSupportedVgpus",
                       ret, ret_n, err);
}

int gv_nvml_vgpu_creatable_types(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                 struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetCreatableVgpus, err);
        return id_list(d, d->nvml->sym.nvmlDeviceGetCreatableVgpus, "nvmlDeviceGetCreatableVgpus",
                       ret, ret_n, err);
}

int gv_nvml_vgpu_active_instances(struct gv_nvml_device *d, uint32_t **ret, size_t *ret_n,
                                  struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetActiveVgpus, err);
        return id_list(d, d->nvml->sym.nvmlDeviceGetActiveVgpus, "nvmlDeviceGetActiveVgpus", ret,
                       ret_n, err);
}

/* ---- per type ---- */

int gv_nvml_vgpu_type_name(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                           struct gv_error **err)
{
        char buf[NVML_VGPU_NAME_BUFFER_SIZE] = { 0 };
        unsigned size = sizeof(buf);
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetName, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetName(type_id, buf, &size);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetName", "%s, vGPU type %u",
                                 d->label, type_id);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_vgpu_type_class(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                            struct gv_error **err)
{
        char buf[NVML_VGPU_NAME_BUFFER_SIZE] = { 0 };
        unsigned size = sizeof(buf);
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetClass, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetClass(type_id, buf, &size);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetClass", "%s, vGPU type %u",
                                 d->label, type_id);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_vgpu_type_framebuffer(struct gv_nvml_device *d, uint32_t type_id,
                                  uint64_t *ret_bytes, struct gv_error **err)
{
        unsigned long long fb = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetFramebufferSize, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetFramebufferSize(type_id, &fb);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetFramebufferSize",
                                 "%s, vGPU type %u", d->label, type_id);
        *ret_bytes = fb;
        return 0;
}

int gv_nvml_vgpu_type_max_instances(struct gv_nvml_device *d, uint32_t type_id, uint32_t *ret,
                                    struct gv_error **err)
{
        unsigned count = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetMaxInstances, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetMaxInstances(d->handle, type_id, &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetMaxInstances",
                                 "%s, vGPU type %u", d->label, type_id);
        *ret = count;
        return 0;
}

int gv_nvml_vgpu_type_max_instances_per_vm(struct gv_nvml_device *d, uint32_t type_id,
                                           uint32_t *ret, struct gv_error **err)
{
        unsigned count = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetMaxInstancesPerVm, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetMaxInstancesPerVm(type_id, &count);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetMaxInstancesPerVm",
                                 "%s, vGPU type %u", d->label, type_id);
        *ret = count;
        return 0;
}

int gv_nvml_vgpu_type_gi_profile_id(struct gv_nvml_device *d, uint32_t type_id, uint32_t *ret,
                                    struct gv_error **err)
{
        unsigned id = INVALID_GPU_INSTANCE_PROFILE_ID;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetGpuInstanceProfileId, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetGpuInstanceProfileId(type_id, &id);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetGpuInstanceProfileId",
                                 "%s, vGPU type %u", d->label, type_id);
        /* INVALID_GPU_INSTANCE_PROFILE_ID for a time-sliced type (nvml-abi.md §7.5) */
        *ret = id == INVALID_GPU_INSTANCE_PROFILE_ID ? GV_NVML_NO_GI_PROFILE : id;
        return 0;
}

int gv_nvml_vgpu_type_license(struct gv_nvml_device *d, uint32_t type_id, char **ret,
                              struct gv_error **err)
{
        char buf[NVML_GRID_LICENSE_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuTypeGetLicense, err);
        rc = d->nvml->sym.nvmlVgpuTypeGetLicense(type_id, buf, sizeof(buf));
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuTypeGetLicense", "%s, vGPU type %u",
                                 d->label, type_id);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

void gv_nvml_vgpu_type_done(struct gv_nvml_vgpu_type *t)
{
        if (!t)
                return;
        free(t->name);
        free(t->vgpu_class);
        free(t->license);
        *t = (struct gv_nvml_vgpu_type){ 0 };
}

int gv_nvml_vgpu_type_info(struct gv_nvml_device *d, uint32_t type_id,
                           struct gv_nvml_vgpu_type *ret, struct gv_error **err)
{
        struct gv_nvml_vgpu_type t = { .type_id = type_id };
        int r;

        r = gv_nvml_vgpu_type_name(d, type_id, &t.name, err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_class(d, type_id, &t.vgpu_class, err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_license(d, type_id, &t.license, err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_framebuffer(d, type_id, &t.framebuffer_bytes, err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_max_instances(d, type_id, &t.max_instances, err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_max_instances_per_vm(d, type_id, &t.max_instances_per_vm,
                                                           err);
        if (r >= 0)
                r = gv_nvml_vgpu_type_gi_profile_id(d, type_id, &t.gi_profile_id, err);
        if (r < 0) {
                gv_nvml_vgpu_type_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

/* ---- per instance ---- */

int gv_nvml_vgpu_instance_uuid(struct gv_nvml_device *d, uint32_t instance, char **ret,
                               struct gv_error **err)
{
        char buf[NVML_DEVICE_UUID_BUFFER_SIZE] = { 0 };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetUUID, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetUUID(instance, buf, sizeof(buf));
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetUUID",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret = xstrndup(buf, sizeof(buf));
        return 0;
}

int gv_nvml_vgpu_instance_type(struct gv_nvml_device *d, uint32_t instance, uint32_t *ret,
                               struct gv_error **err)
{
        nvmlVgpuTypeId_t type = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetType, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetType(instance, &type);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetType",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret = type;
        return 0;
}

int gv_nvml_vgpu_instance_fb_usage(struct gv_nvml_device *d, uint32_t instance,
                                   uint64_t *ret_bytes, struct gv_error **err)
{
        unsigned long long fb = 0;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetFbUsage, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetFbUsage(instance, &fb);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetFbUsage",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret_bytes = fb;
        return 0;
}

int gv_nvml_vgpu_instance_vm_id(struct gv_nvml_device *d, uint32_t instance, char **ret,
                                bool *ret_is_uuid, struct gv_error **err)
{
        char buf[NVML_DEVICE_UUID_BUFFER_SIZE] = { 0 };
        nvmlVgpuVmIdType_t type = NVML_VGPU_VM_ID_DOMAIN_ID;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetVmID, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetVmID(instance, buf, sizeof(buf), &type);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetVmID",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret = xstrndup(buf, sizeof(buf));
        if (ret_is_uuid)
                *ret_is_uuid = type == NVML_VGPU_VM_ID_UUID;
        return 0;
}

int gv_nvml_vgpu_instance_gi_id(struct gv_nvml_device *d, uint32_t instance, uint32_t *ret,
                                struct gv_error **err)
{
        unsigned id = INVALID_GPU_INSTANCE_ID;
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetGpuInstanceId, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetGpuInstanceId(instance, &id);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetGpuInstanceId",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret = id == INVALID_GPU_INSTANCE_ID ? GV_NVML_NO_GI : id;
        return 0;
}

int gv_nvml_vgpu_instance_placement_id(struct gv_nvml_device *d, uint32_t instance,
                                       uint32_t *ret, struct gv_error **err)
{
        nvmlVgpuPlacementId_t p = { .version = nvmlVgpuPlacementId_v1,
                                    .placementId = NVML_INVALID_VGPU_PLACEMENT_ID };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlVgpuInstanceGetPlacementId, err);
        rc = d->nvml->sym.nvmlVgpuInstanceGetPlacementId(instance, &p);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlVgpuInstanceGetPlacementId",
                                 "%s, vGPU instance %u", d->label, instance);
        *ret = p.placementId == NVML_INVALID_VGPU_PLACEMENT_ID ? GV_NVML_NO_PLACEMENT :
                                                                 p.placementId;
        return 0;
}

/* ---- utilization samples ---- */

/* Percent from an nvmlValue_t of the given type (samples arrive as UNSIGNED_INT, §7.1). */
static uint32_t value_pct(nvmlValueType_t type, nvmlValue_t v)
{
        unsigned long long u;

        switch (type) {
        case NVML_VALUE_TYPE_DOUBLE:
                return v.dVal <= 0 ? 0 : v.dVal >= 100 ? 100 : (uint32_t)(v.dVal + 0.5);
        case NVML_VALUE_TYPE_UNSIGNED_LONG:
                u = v.ulVal;
                break;
        case NVML_VALUE_TYPE_UNSIGNED_LONG_LONG:
                u = v.ullVal;
                break;
        case NVML_VALUE_TYPE_SIGNED_LONG_LONG:
                u = v.sllVal < 0 ? 0 : (unsigned long long)v.sllVal;
                break;
        case NVML_VALUE_TYPE_SIGNED_INT:
                u = v.siVal < 0 ? 0 : (unsigned long long)v.siVal;
                break;
        case NVML_VALUE_TYPE_UNSIGNED_SHORT:
                u = v.usVal;
                break;
        case NVML_VALUE_TYPE_UNSIGNED_INT:
        default:
                u = v.uiVal;
                break;
        }
        return u > 100 ? 100 : (uint32_t)u;
}

int gv_nvml_vgpu_utilization(struct gv_nvml_device *d, uint64_t last_seen_us,
                             struct gv_nvml_vgpu_sample **ret, size_t *ret_n,
                             struct gv_error **err)
{
        struct gv_nvml *n = d->nvml;
        _cleanup_free_ nvmlVgpuInstanceUtilizationSample_t *buf = NULL;
        nvmlValueType_t type = NVML_VALUE_TYPE_UNSIGNED_INT;
        unsigned want = 0;
        nvmlReturn_t rc = NVML_ERROR_INSUFFICIENT_SIZE;

        NVML_NEED(n, nvmlDeviceGetVgpuUtilization, err);
        for (int attempt = 0; attempt < NVML_COUNT_RETRIES; attempt++) {
                unsigned count = want;

                rc = n->sym.nvmlDeviceGetVgpuUtilization(d->handle, last_seen_us, &type, &count,
                                                         want ? buf : NULL);
                if (rc == NVML_SUCCESS && count <= want) {
                        struct gv_nvml_vgpu_sample *out =
                                count ? xnew0(struct gv_nvml_vgpu_sample, count) : NULL;

                        for (unsigned i = 0; i < count; i++)
                                out[i] = (struct gv_nvml_vgpu_sample){
                                        .instance = buf[i].vgpuInstance,
                                        .timestamp_us = buf[i].timeStamp,
                                        .sm_pct = value_pct(type, buf[i].smUtil),
                                        .mem_pct = value_pct(type, buf[i].memUtil),
                                        .enc_pct = value_pct(type, buf[i].encUtil),
                                        .dec_pct = value_pct(type, buf[i].decUtil),
                                };
                        *ret = out;
                        *ret_n = count;
                        return 0;
                }
                if (rc != NVML_SUCCESS && rc != NVML_ERROR_INSUFFICIENT_SIZE)
                        break;
                want = MAX(count, want + 1);
                buf = xreallocarray(buf, want, sizeof(*buf));
                memset(buf, 0, want * sizeof(*buf));
        }
        if (rc == NVML_SUCCESS)
                rc = NVML_ERROR_INSUFFICIENT_SIZE;
        return nvml_fail(n, rc, err, "nvmlDeviceGetVgpuUtilization", "%s, since %llu us",
                         d->label, (unsigned long long)last_seen_us);
}

/* ---- scheduler, heterogeneous mode, placements, capabilities ---- */

int gv_nvml_vgpu_scheduler_state(struct gv_nvml_device *d, struct gv_nvml_sched_state *ret,
                                 struct gv_error **err)
{
        nvmlVgpuSchedulerGetState_t s = { 0 };
        struct gv_nvml_sched_state out = { 0 };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetVgpuSchedulerState, err);
        rc = d->nvml->sym.nvmlDeviceGetVgpuSchedulerState(d->handle, &s);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetVgpuSchedulerState", "%s",
                                 d->label);

        out.policy = s.schedulerPolicy < _GV_NVML_SCHED_MAX ?
                             (enum gv_nvml_sched_policy)s.schedulerPolicy :
                             GV_NVML_SCHED_UNKNOWN;
        out.arr = s.arrMode == NVML_VGPU_SCHEDULER_ARR_ENABLE;
        if (out.arr) {
                out.avg_factor = s.schedulerParams.vgpuSchedDataWithARR.avgFactor;
                out.timeslice_ns = s.schedulerParams.vgpuSchedDataWithARR.timeslice;
        } else
                out.timeslice_ns = s.schedulerParams.vgpuSchedData.timeslice;
        *ret = out;
        return 0;
}

int gv_nvml_vgpu_heterogeneous_mode(struct gv_nvml_device *d, bool *ret, struct gv_error **err)
{
        nvmlVgpuHeterogeneousMode_t m = { .version = nvmlVgpuHeterogeneousMode_v1 };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceGetVgpuHeterogeneousMode, err);
        rc = d->nvml->sym.nvmlDeviceGetVgpuHeterogeneousMode(d->handle, &m);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetVgpuHeterogeneousMode", "%s",
                                 d->label);
        *ret = m.mode == NVML_VGPU_PGPU_HETEROGENEOUS_MODE;
        return 0;
}

int gv_nvml_vgpu_set_heterogeneous_mode(struct gv_nvml_device *d, bool heterogeneous,
                                        struct gv_error **err)
{
        const nvmlVgpuHeterogeneousMode_t m = {
                .version = nvmlVgpuHeterogeneousMode_v1,
                .mode = heterogeneous ? NVML_VGPU_PGPU_HETEROGENEOUS_MODE :
                                        NVML_VGPU_PGPU_HOMOGENEOUS_MODE,
        };
        nvmlReturn_t rc;

        NVML_NEED(d->nvml, nvmlDeviceSetVgpuHeterogeneousMode, err);
        rc = d->nvml->sym.nvmlDeviceSetVgpuHeterogeneousMode(d->handle, &m);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceSetVgpuHeterogeneousMode",
                                 "%s, %s", d->label,
                                 heterogeneous ? "heterogeneous" : "homogeneous");
        return 0;
}

void gv_nvml_vgpu_placements_done(struct gv_nvml_vgpu_placements *p)
{
        if (!p)
                return;
        free(p->ids);
        *p = (struct gv_nvml_vgpu_placements){ 0 };
}

typedef nvmlReturn_t (*placement_fn)(nvmlDevice_t device, nvmlVgpuTypeId_t type,
                                     nvmlVgpuPlacementList_t *list);

/* The list struct carries its version word (nvml-abi.md §4): v2 (12.8+, with `mode`) first; a
 * library that answers ARGUMENT_VERSION_MISMATCH gets the v1 prefix of the same struct. count is
 * IN/OUT: the count protocol as for the id lists. */
static int placements(struct gv_nvml_device *d, placement_fn fn, const char *call,
                      uint32_t type_id, bool heterogeneous, struct gv_nvml_vgpu_placements *ret,
                      struct gv_error **err)
{
        _cleanup_free_ unsigned *ids = NULL;
        unsigned version = nvmlVgpuPlacementList_v2, want = 0;
        nvmlReturn_t rc = NVML_ERROR_INSUFFICIENT_SIZE;
        const char *mode = heterogeneous ? "heterogeneous" : "homogeneous";

        for (int attempt = 0; attempt < NVML_COUNT_RETRIES; attempt++) {
                nvmlVgpuPlacementList_t l = {
                        .version = version, .count = want, .placementIds = want ? ids : NULL,
                        .mode = heterogeneous ? NVML_VGPU_PGPU_HETEROGENEOUS_MODE :
                                                NVML_VGPU_PGPU_HOMOGENEOUS_MODE,
                };

                rc = fn(d->handle, type_id, &l);
                if (rc == NVML_ERROR_ARGUMENT_VERSION_MISMATCH &&
                    version == nvmlVgpuPlacementList_v2) {
                        version = nvmlVgpuPlacementList_v1;
                        continue;
                }
                if (rc == NVML_SUCCESS && l.count <= want) {
                        ret->placement_size = l.placementSize;
                        ret->ids = l.count ? xnew0(uint32_t, l.count) : NULL;
                        for (unsigned i = 0; i < l.count; i++)
                                ret->ids[i] = ids[i];
                        ret->n_ids = l.count;
                        return 0;
                }
                if (rc != NVML_SUCCESS && rc != NVML_ERROR_INSUFFICIENT_SIZE)
                        break;
                want = MAX(l.count, want + 1);
                ids = xreallocarray(ids, want, sizeof(*ids));
        }
        if (rc == NVML_SUCCESS)
                rc = NVML_ERROR_INSUFFICIENT_SIZE;
        return nvml_fail(d->nvml, rc, err, call, "%s, vGPU type %u, %s mode, struct v%u",
                         d->label, type_id, mode, version >> 24);
}

int gv_nvml_vgpu_supported_placements(struct gv_nvml_device *d, uint32_t type_id,
                                      bool heterogeneous, struct gv_nvml_vgpu_placements *ret,
                                      struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetVgpuTypeSupportedPlacements, err);
        return placements(d, d->nvml->sym.nvmlDeviceGetVgpuTypeSupportedPlacements,
                          "nvmlDeviceGetVgpuTypeSupportedPlacements", type_id, heterogeneous,
                          ret, err);
}

int gv_nvml_vgpu_creatable_placements(struct gv_nvml_device *d, uint32_t type_id,
                                      bool heterogeneous, struct gv_nvml_vgpu_placements *ret,
                                      struct gv_error **err)
{
        NVML_NEED(d->nvml, nvmlDeviceGetVgpuTypeCreatablePlacements, err);
        return placements(d, d->nvml->sym.nvmlDeviceGetVgpuTypeCreatablePlacements,
                          "nvmlDeviceGetVgpuTypeCreatablePlacements", type_id, heterogeneous,
                          ret, err);
}

int gv_nvml_vgpu_device_capability(struct gv_nvml_device *d, enum gv_nvml_vgpu_dev_cap cap,
                                   uint32_t *ret, struct gv_error **err)
{
        unsigned result = 0;
        nvmlReturn_t rc;

        if ((int)cap < 0 || cap >= _GV_NVML_VGPU_CAP_MAX) {
                _cleanup_free_ char *valid = STRING_TABLE_JOIN(vgpu_dev_cap_table, ", ");
                return gv_error_set(err, EINVAL,
                                    "Unknown vGPU device capability %d; valid capabilities: %s.",
                                    (int)cap, valid);
        }
        NVML_NEED(d->nvml, nvmlDeviceGetVgpuCapabilities, err);
        rc = d->nvml->sym.nvmlDeviceGetVgpuCapabilities(d->handle,
                                                        (nvmlDeviceVgpuCapability_t)cap, &result);
        if (rc != NVML_SUCCESS)
                return nvml_fail(d->nvml, rc, err, "nvmlDeviceGetVgpuCapabilities", "%s, %s",
                                 d->label, gv_nvml_vgpu_dev_cap_to_string(cap));
        *ret = result;
        return 0;
}
