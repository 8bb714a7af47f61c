/* SPDX-License-Identifier: MIT */
/*
 * host-vgpu.c — vGPU instances on one GPU, vendor-neutral: type lookup with a list of the valid
 * names, the mode a type needs, and a reason when no more can be made; the backend does the
 * kernel work (mdev or vendor-VFIO).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/backend.h"
#include "host/host-internal.h"
#include "hw/mdev.h"
#include "util/alloc.h"
#include "util/strv.h"

void gv_vgpu_type_info_free_array(struct gv_vgpu_type_info *t, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(t[i].name);
                free(t[i].gi_profile);
                free(t[i].vgpu_class);
        }
        free(t);
}

int gv_gpu_vgpu_types(struct gv_host *h, struct gv_gpu *g, struct gv_vgpu_type_info **ret,
                      size_t *ret_n, struct gv_error **err)
{
        if (!h->ops->vgpu_types)
                return gv_error_set(err, EOPNOTSUPP, "the %s backend has no vGPU support",
                                    h->ops->name);
        if (g->mode == GV_GPU_MODE_PASSTHROUGH)
                return gv_error_set(err, EBUSY, "GPU %s is passed through (vfio-pci): vGPU types "
                                    "are offered only in mode 'vgpu' or 'mig'", g->bdf);
        return h->ops->vgpu_types(h->backend_ctx, h, g, ret, ret_n, err);
}

/* Why no instance of t can be made now (t->creatable == 0). */
static char *why_not_creatable(const struct gv_gpu *g, const struct gv_vgpu_type_info *t)
{
        if (g->sriov_total_vfs > 0 && g->sriov_num_vfs == 0)
                return xasprintf("its SR-IOV VFs are off (vGPUs live on VFs); run 'gpuvirt gpu "
                                 "set-mode %s %s' to turn them on", g->bdf,
                                 gv_gpu_mode_to_string(g->mode));
        if (t->gi_profile) {
                size_t free_gis = 0;
                for (size_t i = 0; i < g->n_gis; i++)
                        if (g->gis[i].profile_name && !g->gis[i].vgpu_uuid &&
                            strcasecmp(g->gis[i].profile_name, t->gi_profile) == 0)
                                free_gis++;
                if (free_gis == 0)
                        return xasprintf("it needs a free GPU instance of profile %s; create "
                                         "one with 'gpuvirt mig apply %s ...'", t->gi_profile,
                                         g->bdf);
        }
        size_t same = 0;
        const char *other = NULL;
        for (size_t i = 0; i < g->n_vgpus; i++) {
                if (g->vgpus[i].type_id == t->type_id)
                        same++;
                else if (!t->gi_profile && !other)
                        other = g->vgpus[i].type_name;
        }
        if (other && !g->vgpu_heterogeneous)
                return xasprintf("the GPU already runs %s vGPUs and is in equal-size mode (one "
                                 "vGPU size per GPU)", other);
        if (t->max_instances && same >= t->max_instances)
                return xasprintf("all %u instances %s allows exist", t->max_instances, t->name);
        return xstrdup("the GPU has no free capacity for it");
}

int gv_gpu_vgpu_create(struct gv_host *h, struct gv_gpu *g, const char *type_name,
                       char ret_uuid[GV_UUID_STR_LEN + 1], struct gv_error **err)
{
        struct gv_vgpu_type_info *types = NULL;
        size_t n = 0;
        int r = gv_gpu_vgpu_types(h, g, &types, &n, err);
        if (r < 0)
                return r;
        const struct gv_vgpu_type_info *t = NULL;
        for (size_t i = 0; i < n && !t; i++)
                if (gv_vgpu_name_matches(types[i].name, type_name))
                        t = &types[i];
        if (!t) {
                _cleanup_strv_free_ char **l = NULL;
                for (size_t i = 0; i < n; i++)
                        strv_extend(&l, types[i].name);
                _cleanup_free_ char *names = l ? strv_join(l, ", ") : xstrdup("none");
                r = gv_error_set(err, EINVAL, "unknown vGPU type '%s' for GPU %s (%s); valid "
                                 "types: %s", type_name, g->bdf, g->model ? g->model : "?", names);
                goto finish;
        }
        enum gv_gpu_mode need = t->gi_profile ? GV_GPU_MODE_MIG : GV_GPU_MODE_VGPU;
        if (g->mode != need) {
                r = gv_error_set(err, EBUSY, "vGPU type %s is %s and needs GPU %s in mode '%s' "
                                 "(it is in mode '%s'): run 'gpuvirt gpu set-mode %s %s' first",
                                 t->name, t->gi_profile ? "MIG-backed" : "time-sliced", g->bdf,
                                 gv_gpu_mode_to_string(need), gv_gpu_mode_to_string(g->mode),
                                 g->bdf, gv_gpu_mode_to_string(need));
                goto finish;
        }
        if (t->creatable == 0) {
                _cleanup_free_ char *why = why_not_creatable(g, t);
                r = gv_error_set(err, ENOSPC, "GPU %s cannot take another %s vGPU: %s", g->bdf,
                                 t->name, why);
                goto finish;
        }
        r = h->ops->vgpu_create(h->backend_ctx, h, g, t, ret_uuid, err);
        if (r >= 0)
                r = gv_host_refresh_gpu(h, g, err);
finish:
        gv_vgpu_type_info_free_array(types, n);
        return r;
}

int gv_host_vgpu_destroy(struct gv_host *h, const char *id, struct gv_error **err)
{
        for (size_t i = 0; i < h->n_gpus; i++) {
                struct gv_gpu *g = &h->gpus[i];
                for (size_t j = 0; j < g->n_vgpus; j++) {
                        const struct gv_vgpu_instance *v = &g->vgpus[j];
                        if (strcasecmp(v->uuid, id) != 0 && strcasecmp(v->parent_bdf, id) != 0)
                                continue;
                        if (v->vm_id)
                                return gv_error_set(err, EBUSY, "vGPU %s is held by VM '%s': "
                                                    "stop the VM first", id, v->vm_id);
                        int r = h->ops->vgpu_destroy(h->backend_ctx, h, g, v, err);
                        if (r < 0)
                                return r;
                        return gv_host_refresh_gpu(h, g, err);
                }
        }
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < h->n_gpus; i++)
                for (size_t j = 0; j < h->gpus[i].n_vgpus; j++) {
                        const struct gv_vgpu_instance *v = &h->gpus[i].vgpus[j];
                        strv_extend(&l, v->uuid[0] ? v->uuid : v->parent_bdf);
                }
        _cleanup_free_ char *s = l ? strv_join(l, ", ") : xstrdup("none");
        return gv_error_set(err, ENOENT, "no vGPU '%s' on this host; vGPUs: %s", id, s);
}
