/* SPDX-License-Identifier: MIT */
/*
 * policy.c — the built-in placement policies (first-fit, spread, best-fit, gpuvirt) and the
 * policy table. A policy only scores candidates the engine found feasible (sched.h); see
 * docs/placement.md for what each one prefers and why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched-internal.h"
#include "util/alloc.h"

/* The openb artefact's normalisation constants for best-fit (scheduling.md §3; the artefact's
 * pkg/type/open-gpu-share/utils/const.go: MaxSpecCpu = 128000 milli-CPU, MaxSpecGpu = 8000
 * milli-GPU) and its weights w = (0.5, 0.5) over (CPU, GPU). */
#define BF_MAX_SPEC_CPU 128000.0
#define BF_MAX_SPEC_GPU 8000.0
#define BF_W_CPU 0.5
#define BF_W_GPU 0.5

/* A mode switch costs more than any GPU-choice preference (secondary scores stay below it). */
#define SWITCH_PENALTY 1e12

static uint32_t cand_gpu_milli(const struct gv_sched_placement *cand)
{
        uint32_t m = 0;
        for (uint32_t i = 0; i < cand->n_slots; i++)
                m += cand->slots[i].milli;
        return m;
}

/* Free milli of the first GPU of a candidate before it (0 without GPU). */
static uint32_t cand_gpu_free(const struct gv_sched_cluster *c,
                              const struct gv_sched_placement *cand)
{
        if (cand->n_slots == 0)
                return 0;
        return gv_sched_cluster_free_milli(c)[cand->slots[0].gpu];
}

static double host_gpu_free(const struct gv_sched_host *h)
{
        return (double)h->n_gpus * GV_SCHED_MILLI - h->used_milli;
}

/* Σ w_i (free_i − req_i) / maxSpec_i over (CPU, GPU): the best-fit leftover, lower = tighter. */
static double bf_leftover(const struct gv_sched_cluster *c, const struct gv_sched_request *r,
                          const struct gv_sched_placement *cand)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, cand->host);
        double cpu = ((double)h->cpu_free - (double)r->cpu_milli) / BF_MAX_SPEC_CPU;
        double gpu = (host_gpu_free(h) - cand_gpu_milli(cand)) / BF_MAX_SPEC_GPU;
        return BF_W_CPU * cpu + BF_W_GPU * gpu;
}

/* ---- first-fit: the lowest host id, the first candidate on it ---- */

static void first_fit_score(const struct gv_sched_cluster *c, void *state,
                            const struct gv_sched_request *r,
                            const struct gv_sched_placement *cand, struct gv_sched_score *ret)
{
        (void)c, (void)state, (void)r;
        ret->primary = -(double)cand->host;
        ret->secondary = cand->switches_mode ? -SWITCH_PENALTY : 0;
}

const struct gv_sched_policy gv_sched_policy_first_fit = {
        .name = "first-fit",
        .summary = "the first host (lowest id) that fits, the first GPU and slice on it",
        .score = first_fit_score,
        .first_host_wins = true,
};

/* ---- spread: least allocated host after the placement ---- */

static void spread_score(const struct gv_sched_cluster *c, void *state,
                         const struct gv_sched_request *r, const struct gv_sched_placement *cand,
                         struct gv_sched_score *ret)
{
        const struct gv_sched_host *h = gv_sched_cluster_host(c, cand->host);
        double sum = 0;
        int n = 0;

        (void)state;
        if (h->cpu_milli) {
                sum += ((double)h->cpu_free - (double)r->cpu_milli) / (double)h->cpu_milli;
                n++;
        }
        if (h->memory_mib) {
                sum += ((double)h->memory_free - (double)r->memory_mib) / (double)h->memory_mib;
                n++;
        }
        if (h->n_gpus) {
                sum += (host_gpu_free(h) - cand_gpu_milli(cand)) /
                       ((double)h->n_gpus * GV_SCHED_MILLI);
                n++;
        }
        ret->primary = n ? sum / n : 0;
        /* Within the host: the emptiest GPU. */
        ret->secondary = (double)cand_gpu_free(c, cand) -
                         (cand->switches_mode ? SWITCH_PENALTY : 0);
}

const struct gv_sched_policy gv_sched_policy_spread = {
        .name = "spread",
        .summary = "the least allocated host (mean free share of CPU, memory and GPU after), "
                   "the emptiest GPU on it",
        .score = spread_score,
};

/* ---- best-fit: the openb artefact's, faithfully ---- */

/* Score = int64((1 − leftover) · 100) (the artefact truncates to kube-scheduler's 0..100
 * integer scores, so hosts within one point tie; the request's tie_seed then picks among them
 * as kube-scheduler's random choice does). Within a host the artefact takes the GPU with the
 * least free milli that fits, the first on ties. */
static void best_fit_score(const struct gv_sched_cluster *c, void *state,
                           const struct gv_sched_request *r,
                           const struct gv_sched_placement *cand, struct gv_sched_score *ret)
{
        (void)state;
        ret->primary = (double)(int64_t)((1.0 - bf_leftover(c, r, cand)) * 100.0);
        ret->secondary = -(double)cand_gpu_free(c, cand) -
                         (cand->switches_mode ? SWITCH_PENALTY : 0);
}

const struct gv_sched_policy gv_sched_policy_best_fit = {
        .name = "best-fit",
        .summary = "least leftover CPU and GPU (the FGD artefact's best-fit: 1 - sum of "
                   "w_i (free_i - req_i) / maxSpec_i, integer score), the fullest GPU that fits",
        .score = best_fit_score,
};

/* ---- gpuvirt: ours ---- */

/* Future capacity of a MIG GPU after the candidate's instance: for every profile that is not
 * "+me", the free placements that stay usable, weighted by the profile's size, so the choice
 * keeps large ranges open (mig.md §4: 7g needs slices 0-7, 4g needs 0-3, 3g 0-3 or 4-7). */
static double mig_future(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, s->gpu);
        const struct sched_model *m = &c->models[g->model];
        int p = s->alloc == GV_SCHED_ALLOC_MIG ? s->index : m->vgpu[s->index].gi;
        uint32_t occ = g->n_alloc ? g->mig_occupied : 0;
        double f = 0;

        for (uint32_t k = 0; k < m->mig[p].n_placements; k++)
                if (m->mig[p].starts[k] == s->start)
                        occ |= m->mig[p].masks[k];
        for (size_t q = 0; q < m->n_mig; q++) {
                const struct sched_mig_profile *mp = &m->mig[q];
                if (mp->media)
                        continue;
                uint32_t n = 0;
                for (uint32_t k = 0; k < mp->n_placements; k++)
                        if (!(mp->masks[k] & occ))
                                n++;
                f += (double)n * mp->memory_slices * mp->memory_slices;
        }
        return f;
}

/* The same for mixed-size vGPU placement ids: free ids of every time-sliced type after. */
static double vgpu_future(const struct gv_sched_cluster *c, const struct gv_sched_slot *s)
{
        const struct gv_sched_gpu *g = gv_sched_cluster_gpu(c, s->gpu);
        const struct sched_model *m = &c->models[g->model];
        uint64_t map[GV_SCHED_VGPU_UNITS / 64];
        double f = 0;

        if (!g->mixed_size)
                return 0;
        memcpy(map, g->vgpu_units, sizeof(map));
        if (g->n_alloc == 0)
                memset(map, 0, sizeof(map));
        sched_units_set(map, s->start, m->vgpu[s->index].size, true);
        for (size_t t = 0; t < m->n_vgpu; t++) {
                const struct sched_vgpu_type *vt = &m->vgpu[t];
                if (vt->gi >= 0 || vt->max_mixed == 0)
                        continue;
                uint32_t n = 0;
                for (uint32_t k = 0; k < vt->max_mixed; k++)
                        if (sched_units_free(map, k * vt->size, vt->size))
                                n++;
                f += (double)n * vt->size;
        }
        return f;
}

static void gpuvirt_score(const struct gv_sched_cluster *c, void *state,
                          const struct gv_sched_request *r, const struct gv_sched_placement *cand,
                          struct gv_sched_score *ret)
{
        double geometry = 0;

        (void)state;
        ret->primary = 1.0 - bf_leftover(c, r, cand);
        if (cand->n_slots == 1) {
                const struct gv_sched_slot *s = &cand->slots[0];
                if (s->alloc == GV_SCHED_ALLOC_MIG || s->alloc == GV_SCHED_ALLOC_MIG_VGPU)
                        geometry = mig_future(c, s);
                else if (s->alloc == GV_SCHED_ALLOC_VGPU)
                        geometry = vgpu_future(c, s);
        }
        /* Within the host: no mode switch, then the fullest GPU that fits (packing), then the
         * slice that keeps the most future capacity (geometry < 1e6 by construction). */
        ret->secondary = -(cand->switches_mode ? SWITCH_PENALTY : 0) +
                         (double)(GV_SCHED_MILLI - cand_gpu_free(c, cand)) * 1e6 + geometry;
}

const struct gv_sched_policy gv_sched_policy_gpuvirt = {
        .name = "gpuvirt",
        .summary = "best-fit with continuous scores, no needless mode switches, and MIG slice "
                   "and vGPU placement-id choice that keeps the most future capacity",
        .score = gpuvirt_score,
};

/* ---- the table ---- */

static const struct gv_sched_policy *const policies[] = {
        &gv_sched_policy_gpuvirt,
        &gv_sched_policy_first_fit,
        &gv_sched_policy_spread,
        &gv_sched_policy_best_fit,
#ifdef GV_SCHED_HAVE_FGD
        &gv_sched_policy_fgd,
#endif
        NULL,
};

const struct gv_sched_policy *const *gv_sched_policies(void)
{
        return policies;
}

const struct gv_sched_policy *gv_sched_policy_default(void)
{
        return &gv_sched_policy_gpuvirt;
}

int gv_sched_policy_find(const char *name, const struct gv_sched_policy **ret,
                         struct gv_error **err)
{
        char names[256] = "";
        size_t len = 0;

        for (size_t i = 0; policies[i]; i++)
                if (name && strcmp(policies[i]->name, name) == 0) {
                        *ret = policies[i];
                        return 0;
                }
        for (size_t i = 0; policies[i]; i++)
                len += (size_t)snprintf(names + len, sizeof(names) - MIN(len, sizeof(names)),
                                        "%s%s", i ? ", " : "", policies[i]->name);
        return gv_error_set(err, EINVAL, "Unknown placement policy '%s'; use one of: %s.",
                            name ? name : "", names);
}
