/* SPDX-License-Identifier: MIT */
#include "cli/format.h"

#include <stdio.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strv.h"

char *gv_fmt_mib(uint64_t mib)
{
        if (mib >= 1024 && mib % 1024 == 0)
                return xasprintf("%llu GiB", (unsigned long long)(mib / 1024));
        if (mib >= 1024)
                return xasprintf("%.1f GiB", (double)mib / 1024.0);
        return xasprintf("%llu MiB", (unsigned long long)mib);
}

char *gv_fmt_gpu_use(const struct gv_gpu *g)
{
        _cleanup_strv_free_ char **l = NULL;
        switch (g->mode) {
        case GV_GPU_MODE_PASSTHROUGH:
                return xstrdup("whole GPU on vfio-pci");
        case GV_GPU_MODE_MIG: {
                uint32_t used = 0;
                for (size_t i = 0; i < g->n_gis; i++) {
                        const struct gv_mig_gi_info *gi = &g->gis[i];
                        used += gi->placement.size;
                        strv_consume(&l, xasprintf("%s%s", gi->profile_name,
                                                   gi->vgpu_uuid ? "(vgpu)" : ""));
                }
                if (g->mig_memory_slices > used)
                        strv_consume(&l, xasprintf("%u slices free", g->mig_memory_slices - used));
                if (g->n_gis == 0 && !l)
                        return xstrdup("no instances");
                break;
        }
        case GV_GPU_MODE_VGPU: {
                if (g->n_vgpus == 0)
                        return g->sriov_num_vfs ? xasprintf("0 vGPUs (%u VFs)", g->sriov_num_vfs)
                                                : xstrdup("0 vGPUs");
                /* group by type: "H100XM-20C ×3" */
                for (size_t i = 0; i < g->n_vgpus; i++) {
                        const char *t = g->vgpus[i].type_name ? g->vgpus[i].type_name : "?";
                        bool seen = false;
                        for (size_t j = 0; j < i; j++)
                                if (g->vgpus[j].type_name && strcmp(g->vgpus[j].type_name, t) == 0)
                                        seen = true;
                        if (seen)
                                continue;
                        size_t n = 0;
                        for (size_t j = 0; j < g->n_vgpus; j++)
                                if (g->vgpus[j].type_name && strcmp(g->vgpus[j].type_name, t) == 0)
                                        n++;
                        strv_consume(&l, xasprintf("%s ×%zu", t, n));
                }
                break;
        }
        default:
                return xstrdup("—");
        }
        return strv_join(l, " · ");
}

char *gv_fmt_gpu_memory(const struct gv_gpu *g)
{
        if (g->mode == GV_GPU_MODE_PASSTHROUGH)
                return xstrdup("n/a (in guest)");
        if (!(g->valid & GV_GPU_HAS_MEMORY))
                return xstrdup("—");
        return xasprintf("%llu/%llu GiB", (unsigned long long)((g->memory_used_mib + 512) / 1024),
                         (unsigned long long)((g->memory_total_mib + 512) / 1024));
}

char *gv_fmt_gpu_util(const struct gv_gpu *g)
{
        if (g->mode == GV_GPU_MODE_PASSTHROUGH)
                return xstrdup("n/a");
        if (!(g->valid & GV_GPU_HAS_UTIL))
                return xstrdup("—");
        return xasprintf("%u%%", g->util_gpu_pct);
}

void gv_json_print(json_t *j)
{
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(j);
}
