/* SPDX-License-Identifier: MIT */
#include "host/host-json.h"

#include <stdio.h>

#include "util/strv.h"

static json_t *str_or_null(const char *s)
{
        return s ? json_string(s) : json_null();
}

static json_t *strv_json(char *const *l)
{
        json_t *a = json_array();
        STRV_FOREACH(s, l)
                json_array_append_new(a, json_string(*s));
        return a;
}

json_t *gv_json_gpu(const struct gv_gpu *g)
{
        json_t *o = json_object();
        json_object_set_new(o, "index", json_integer(g->index));
        json_object_set_new(o, "pci_address", json_string(g->bdf));
        char id[16];
        snprintf(id, sizeof(id), "%04x:%04x", g->vendor_id, g->device_id);
        json_object_set_new(o, "pci_id", json_string(id));
        snprintf(id, sizeof(id), "%04x:%04x", g->subsystem_vendor_id, g->subsystem_device_id);
        json_object_set_new(o, "pci_subsystem_id", json_string(id));
        json_object_set_new(o, "backend", str_or_null(g->backend));
        json_object_set_new(o, "model", str_or_null(g->model));
        json_object_set_new(o, "product_name", str_or_null(g->product_name));
        json_object_set_new(o, "driver", str_or_null(g->driver));
        json_object_set_new(o, "mode", json_string(gv_gpu_mode_to_string(g->mode)));
        json_object_set_new(o, "mode_unknown_reason", str_or_null(g->mode_reason));
        json_object_set_new(o, "health", json_string(g->unhealthy ? "unhealthy" : "ok"));
        json_object_set_new(o, "health_reason", str_or_null(g->unhealthy));
        json_object_set_new(o, "uuid", g->valid & GV_GPU_HAS_UUID ? json_string(g->uuid)
                                                                    : json_null());
        json_object_set_new(o, "numa_node", g->numa_node >= 0 ? json_integer(g->numa_node)
                                                               : json_null());
        json_object_set_new(o, "iommu_group", g->iommu_group >= 0 ? json_integer(g->iommu_group)
                                                                   : json_null());
        json_object_set_new(o, "reset_methods", strv_json(g->reset_methods));
        bool mem = g->valid & GV_GPU_HAS_MEMORY;
        json_object_set_new(o, "memory_total_mib", mem ? json_integer((json_int_t)g->memory_total_mib) : json_null());
        json_object_set_new(o, "memory_used_mib", mem ? json_integer((json_int_t)g->memory_used_mib) : json_null());
        bool util = g->valid & GV_GPU_HAS_UTIL;
        json_object_set_new(o, "utilization_gpu_pct", util ? json_integer(g->util_gpu_pct) : json_null());
        json_object_set_new(o, "utilization_memory_pct", util ? json_integer(g->util_mem_pct) : json_null());
        json_object_set_new(o, "power_mw", g->valid & GV_GPU_HAS_POWER ? json_integer(g->power_mw) : json_null());
        json_object_set_new(o, "temperature_c", g->valid & GV_GPU_HAS_TEMP ? json_integer(g->temperature_c) : json_null());
        /* Pass-through GPUs are invisible to the host driver: say so rather than show zero. */
        json_object_set_new(o, "metrics_unavailable_reason",
                            g->mode == GV_GPU_MODE_PASSTHROUGH
                                    ? json_string("passed through: the GPU is in the guest's hands")
                                    : json_null());

        json_t *mig = json_object();
        json_object_set_new(mig, "capable", json_boolean(g->mig_capable));
        json_object_set_new(mig, "enabled", g->mig_error ? json_null() : json_boolean(g->mig_enabled));
        json_object_set_new(mig, "error", str_or_null(g->mig_error));
        json_object_set_new(mig, "pending_enabled", json_boolean(g->mig_pending_enabled));
        json_object_set_new(mig, "memory_slices", json_integer(g->mig_memory_slices));
        json_t *gis = json_array();
        for (size_t i = 0; i < g->n_gis; i++) {
                const struct gv_mig_gi_info *gi = &g->gis[i];
                json_t *cis = json_array();
                for (size_t j = 0; j < gi->n_cis; j++)
                        json_array_append_new(cis, json_pack("{s:i, s:i, s:i, s:i}", "id",
                                                             gi->cis[j].id, "profile_id",
                                                             gi->cis[j].profile_id, "start",
                                                             gi->cis[j].start, "size",
                                                             gi->cis[j].size));
                json_array_append_new(gis, json_pack("{s:i, s:s, s:i, s:i, s:i, s:I, s:o, s:o}",
                                                     "id", gi->id, "profile", gi->profile_name,
                                                     "profile_id", gi->profile_id, "start",
                                                     gi->placement.start, "size",
                                                     gi->placement.size, "memory_mib",
                                                     (json_int_t)gi->memory_mib, "vgpu",
                                                     str_or_null(gi->vgpu_uuid),
                                                     "compute_instances", cis));
        }
        json_object_set_new(mig, "gpu_instances", gis);
        json_object_set_new(o, "mig", mig);

        json_t *vg = json_object();
        json_object_set_new(vg, "capable", json_boolean(g->vgpu_capable));
        json_object_set_new(vg, "interface", json_string(gv_vgpu_interface_to_string(g->vgpu_interface)));
        json_object_set_new(vg, "sriov_total_vfs", json_integer(g->sriov_total_vfs));
        json_object_set_new(vg, "sriov_num_vfs", json_integer(g->sriov_num_vfs));
        json_object_set_new(vg, "heterogeneous", json_boolean(g->vgpu_heterogeneous));
        json_t *inst = json_array();
        for (size_t i = 0; i < g->n_vgpus; i++) {
                const struct gv_vgpu_instance *v = &g->vgpus[i];
                json_array_append_new(inst, json_pack("{s:o, s:s, s:i, s:s, s:o, s:I, s:o}",
                        "uuid", v->uuid[0] ? json_string(v->uuid) : json_null(),
                        "type", v->type_name ? v->type_name : "?", "type_id", v->type_id,
                        "parent", v->parent_bdf, "vm", str_or_null(v->vm_id),
                        "framebuffer_mib", (json_int_t)v->framebuffer_mib,
                        "gpu_instance", v->gi_id == UINT32_MAX ? json_null() : json_integer(v->gi_id)));
        }
        json_object_set_new(vg, "instances", inst);
        json_object_set_new(o, "vgpu", vg);

        json_t *grp = json_array();
        for (size_t i = 0; i < g->n_group; i++) {
                char cls[12];
                snprintf(cls, sizeof(cls), "0x%06x", g->group[i].class_code);
                json_array_append_new(grp, json_pack("{s:s, s:s, s:o, s:b}", "pci_address",
                                                     g->group[i].bdf, "class", cls, "driver",
                                                     str_or_null(g->group[i].driver),
                                                     "same_device", g->group[i].same_device));
        }
        json_t *pt = json_object();
        json_object_set_new(pt, "possible", json_boolean(g->passthrough_blocker == NULL));
        json_object_set_new(pt, "blocker", str_or_null(g->passthrough_blocker));
        json_object_set_new(pt, "iommu_group_members", grp);
        json_object_set_new(o, "passthrough", pt);
        json_object_set_new(o, "problems", strv_json(g->problems));
        return o;
}

json_t *gv_json_host(const struct gv_host *h)
{
        json_t *o = json_object();
        json_object_set_new(o, "hostname", json_string(h->hostname));
        json_object_set_new(o, "sysfs_root", json_string(h->config.sysfs_root));
        json_object_set_new(o, "accel", json_string(h->accel));
        json_object_set_new(o, "driver_version", str_or_null(h->driver_version));
        json_object_set_new(o, "nvml_version", str_or_null(h->nvml_version));
        json_object_set_new(o, "nvml_error", str_or_null(h->nvml_error));
        json_t *gpus = json_array();
        for (size_t i = 0; i < h->n_gpus; i++)
                json_array_append_new(gpus, gv_json_gpu(&h->gpus[i]));
        json_object_set_new(o, "gpus", gpus);
        json_object_set_new(o, "problems", strv_json(h->problems));
        return o;
}

json_t *gv_json_vgpu_types(const struct gv_vgpu_type_info *t, size_t n)
{
        json_t *a = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, json_pack("{s:i, s:s, s:I, s:i, s:i, s:o, s:o}",
                        "type_id", t[i].type_id, "name", t[i].name,
                        "framebuffer_mib", (json_int_t)t[i].framebuffer_mib,
                        "max_instances", t[i].max_instances, "creatable", t[i].creatable,
                        "gi_profile", str_or_null(t[i].gi_profile),
                        "class", str_or_null(t[i].vgpu_class)));
        return a;
}

