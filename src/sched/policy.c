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

/* ---- the table ---- */

static const struct gv_sched_policy *const policies[] = {
        &gv_sched_policy_gpuvirt,
        &gv_sched_policy_first_fit,
        &gv_sched_policy_spread,
        &gv_sched_policy_best_fit,
        &gv_sched_policy_fgd,
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
