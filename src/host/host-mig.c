/* SPDX-License-Identifier: MIT */
/*
 * host-mig.c — declarative MIG layouts on one GPU (`gpuvirt mig apply`), vendor-neutral: the
 * profiles come from the backend (NVML on NVIDIA hosts), the geometry from catalog/mig-layout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/mig-layout.h"
#include "host/backend.h"
#include "host/host-internal.h"
#include "util/alloc.h"
#include "util/strv.h"

void gv_mig_gi_profiles_free(struct gv_mig_gi_profile *p, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(p[i].name);
                free(p[i].placements);
                for (size_t j = 0; j < p[i].n_ci_profiles; j++)
                        free(p[i].ci_profiles[j].name);
                free(p[i].ci_profiles);
                free(p[i].src.source);
        }
        free(p);
}

int gv_gpu_mig_check(const struct gv_gpu *g, struct gv_error **err)
{
        if (!g->mig_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU %s (%s) does not support MIG", g->bdf,
                                    g->model ? g->model : "unknown model");
        if (g->mig_error)
                return gv_error_set(err, g->mig_errno ? g->mig_errno : EIO, "%s", g->mig_error);
        if (g->mode == GV_GPU_MODE_PASSTHROUGH)
                return gv_error_set(err, EBUSY, "GPU %s is passed through (vfio-pci): its MIG "
                                    "state belongs to the guest", g->bdf);
        return 0;
}

int gv_gpu_mig_profiles(struct gv_host *h, struct gv_gpu *g, struct gv_mig_gi_profile **ret,
                        size_t *ret_n, struct gv_error **err)
{
        int r = gv_gpu_mig_check(g, err);
        if (r < 0)
                return r;
        if (!h->ops->mig_profiles)
                return gv_error_set(err, EOPNOTSUPP, "the %s backend has no MIG support",
                                    h->ops->name);
        return h->ops->mig_profiles(h->backend_ctx, g, ret, ret_n, err);
}

/* Memory slices, compute slices and instance limit, derived from the profiles themselves so a
 * real host needs nothing but what NVML reports: the widest placement ends at the last memory
 * slice, the widest profile has every compute slice, the smallest profile's count is the
 * GPU-wide instance limit (mig.md §1: 7 on A100/H100/H200, 4 on A30). */
static void geometry_from_profiles(const struct gv_mig_gi_profile *p, size_t n,
                                   struct gv_mig_geometry *ret)
{
        struct gv_mig_geometry geo = { .profiles = p, .n_profiles = n };
        for (size_t i = 0; i < n; i++) {
                geo.compute_slices = MAX(geo.compute_slices, p[i].slices);
                geo.max_instances = MAX(geo.max_instances, p[i].instances);
                for (size_t j = 0; j < p[i].n_placements; j++)
                        geo.memory_slices = MAX(geo.memory_slices,
                                                p[i].placements[j].start + p[i].placements[j].size);
        }
        *ret = geo;
}

static const struct gv_mig_gi_profile *find_profile(const struct gv_mig_gi_profile *p, size_t n,
                                                    const char *name)
{
        for (size_t i = 0; i < n; i++)
                if (p[i].name && strcasecmp(p[i].name, name) == 0)
                        return &p[i];
        return NULL;
}

static char *profile_names(const struct gv_mig_gi_profile *p, size_t n)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < n; i++)
                if (p[i].name)
                        strv_extend(&l, p[i].name);
        return strv_join(l, ", ");
}

int gv_gpu_mig_apply(struct gv_host *h, struct gv_gpu *g, char *const *profiles, bool dry_run,
                     char **ret_layout, struct gv_error **err)
{
        int r = gv_gpu_mig_check(g, err);
        if (r < 0)
                return r;
        if (g->mode != GV_GPU_MODE_MIG)
                return gv_error_set(err, EBUSY, "GPU %s is in mode '%s', not 'mig': run "
                                    "'gpuvirt gpu set-mode %s mig' first", g->bdf,
                                    gv_gpu_mode_to_string(g->mode), g->bdf);
        struct gv_mig_gi_profile *prof = NULL;
        size_t n_prof = 0;
        r = gv_gpu_mig_profiles(h, g, &prof, &n_prof, err);
        if (r < 0)
                return r;

        size_t n_want = strv_length(profiles);
        _cleanup_free_ const struct gv_mig_gi_profile **want = xnew0(const struct gv_mig_gi_profile *, n_want + 1);
        _cleanup_free_ bool *want_kept = xnew0(bool, n_want + 1);
        _cleanup_free_ struct gv_mig_instance *keep = xnew0(struct gv_mig_instance, g->n_gis + 1);
        _cleanup_free_ uint32_t *destroy = xnew0(uint32_t, g->n_gis + 1);
        _cleanup_free_ const struct gv_mig_gi_profile **todo = xnew0(const struct gv_mig_gi_profile *, n_want + 1);
        _cleanup_free_ struct gv_mig_placement *placed = xnew0(struct gv_mig_placement, n_want + 1);
        _cleanup_free_ uint32_t *created = xnew0(uint32_t, n_want + 1);
        size_t n_keep = 0, n_destroy = 0, n_todo = 0, n_created = 0;

        for (size_t i = 0; i < n_want; i++) {
                want[i] = find_profile(prof, n_prof, profiles[i]);
                if (!want[i]) {
                        _cleanup_free_ char *names = profile_names(prof, n_prof);
                        r = gv_error_set(err, EINVAL, "unknown MIG profile '%s' for GPU %s (%s); "
                                         "valid profiles: %s", profiles[i], g->bdf,
                                         g->model ? g->model : "?", names);
                        goto finish;
                }
        }
        /* Keep an existing GI when the wanted list still asks for its profile. */
        for (size_t i = 0; i < g->n_gis; i++) {
                const struct gv_mig_gi_info *gi = &g->gis[i];
                bool kept = false;
                for (size_t j = 0; j < n_want && !kept; j++)
                        if (!want_kept[j] && want[j]->id == gi->profile_id) {
                                want_kept[j] = kept = true;
                                keep[n_keep++] = (struct gv_mig_instance){
                                        .profile = want[j], .placement = gi->placement };
                        }
                if (kept)
                        continue;
                if (gi->vgpu_uuid) {
                        r = gv_error_set(err, EBUSY, "cannot apply the layout on GPU %s: it "
                                         "removes GPU instance %u (%s at slices %u-%u), which "
                                         "vGPU %s uses; destroy the vGPU first or keep %s in "
                                         "the layout", g->bdf, gi->id, gi->profile_name,
                                         gi->placement.start,
                                         gi->placement.start + gi->placement.size - 1,
                                         gi->vgpu_uuid, gi->profile_name);
                        goto finish;
                }
                destroy[n_destroy++] = gi->id;
        }
        for (size_t j = 0; j < n_want; j++)
                if (!want_kept[j])
                        todo[n_todo++] = want[j];

        struct gv_mig_geometry geo;
        geometry_from_profiles(prof, n_prof, &geo);
        r = gv_mig_plan(&geo, keep, n_keep, todo, n_todo, placed, err);
        if (r < 0) {
                r = gv_error_wrap(err, r, "cannot apply MIG layout on GPU %s (nothing changed)",
                                  g->bdf);
                goto finish;
        }
        if (ret_layout) {
                _cleanup_free_ struct gv_mig_instance *after =
                        xnew0(struct gv_mig_instance, n_keep + n_todo + 1);
                memcpy(after, keep, n_keep * sizeof(*keep));
                for (size_t i = 0; i < n_todo; i++)
                        after[n_keep + i] = (struct gv_mig_instance){ .profile = todo[i],
                                                                      .placement = placed[i] };
                *ret_layout = gv_mig_layout_format(&geo, after, n_keep + n_todo);
        }
        if (dry_run)
                goto finish;

        for (size_t i = 0; i < n_destroy; i++) {
                r = h->ops->mig_destroy(h->backend_ctx, g, destroy[i], err);
                if (r < 0) {
                        r = gv_error_wrap(err, r, "cannot apply MIG layout on GPU %s", g->bdf);
                        goto finish;
                }
        }
        for (size_t i = 0; i < n_todo; i++) {
                uint32_t id;
                r = h->ops->mig_create(h->backend_ctx, g, todo[i]->id, &placed[i], &id, err);
                if (r < 0) {
                        /* Roll back what this call created; the error keeps the first cause. */
                        for (size_t k = 0; k < n_created; k++)
                                (void)h->ops->mig_destroy(h->backend_ctx, g, created[k], NULL);
                        char p[24];
                        r = gv_error_wrap(err, r, "cannot create %s at slices %s on GPU %s (the "
                                          "instances created by this command were removed)",
                                          todo[i]->name, gv_mig_placement_format(&placed[i], p,
                                                                                 sizeof(p)),
                                          g->bdf);
                        goto finish;
                }
                created[n_created++] = id;
        }
        r = gv_host_refresh_gpu(h, g, err);
finish:
        gv_mig_gi_profiles_free(prof, n_prof);
        return r;
}

int gv_gpu_mig_destroy(struct gv_host *h, struct gv_gpu *g, uint32_t gi_id, struct gv_error **err)
{
        int r = gv_gpu_mig_check(g, err);
        if (r < 0)
                return r;
        const struct gv_mig_gi_info *gi = NULL;
        for (size_t i = 0; i < g->n_gis; i++)
                if (g->gis[i].id == gi_id)
                        gi = &g->gis[i];
        if (!gi) {
                _cleanup_strv_free_ char **l = NULL;
                for (size_t i = 0; i < g->n_gis; i++)
                        strv_consume(&l, xasprintf("%u (%s)", g->gis[i].id,
                                                   g->gis[i].profile_name));
                _cleanup_free_ char *s = l ? strv_join(l, ", ") : xstrdup("none");
                return gv_error_set(err, ENOENT, "GPU %s has no GPU instance %u; it has: %s",
                                    g->bdf, gi_id, s);
        }
        if (gi->vgpu_uuid)
                return gv_error_set(err, EBUSY, "GPU instance %u (%s) on GPU %s is used by vGPU "
                                    "%s: destroy the vGPU first", gi_id, gi->profile_name,
                                    g->bdf, gi->vgpu_uuid);
        r = h->ops->mig_destroy(h->backend_ctx, g, gi_id, err);
        if (r < 0)
                return r;
        return gv_host_refresh_gpu(h, g, err);
}
