/* SPDX-License-Identifier: MIT */
/*
 * sched-internal.h — the cluster's private layout, shared by the engine's .c files (not by
 * policies: they see sched.h only).
 */
#pragma once

#include "sched/sched.h"

#define SCHED_MAX_POLICIES 8u
#define SCHED_MAX_PLACEMENTS 8u /* MIG placements per profile kept (8-slice GPUs have <= 7) */

/* Per-model precomputed MIG profile (mig.md §4: placements (start, size) as slice masks). */
struct sched_mig_profile {
        const struct gv_mig_gi_profile *gi; /* borrowed from the catalog */
        uint8_t slices;        /* compute slices */
        uint8_t memory_slices;
        uint8_t instances;     /* per GPU */
        uint8_t n_placements;
        bool media;            /* "+me": never chosen by need */
        uint16_t starts[SCHED_MAX_PLACEMENTS];
        uint32_t masks[SCHED_MAX_PLACEMENTS];
};

/* Per-model precomputed vGPU type (vgpu.md §7–8). */
struct sched_vgpu_type {
        const struct gv_vgpu_type *t; /* borrowed from the catalog */
        uint64_t fb_mib;
        uint16_t size;       /* placement size in 1 GiB units: ceil(fb / 1024) */
        uint16_t max_equal;  /* equal-size mode */
        uint16_t max_mixed;  /* mixed-size mode; 0 = not allowed there */
        int16_t gi;          /* MIG-backed: the GI profile index; -1 time-sliced */
};

struct sched_model {
        struct gv_sched_model pub;
        size_t n_mig;
        struct sched_mig_profile mig[GV_SCHED_MAX_MIG_PROFILES];
        size_t n_vgpu;
        struct sched_vgpu_type *vgpu; /* n_vgpu entries */
};

struct sched_policy_slot {
        const struct gv_sched_policy *p;
        void *state;
};

struct gv_sched_cluster {
        struct sched_model models[GV_SCHED_MAX_MODELS];
        size_t n_models;

        struct gv_sched_host *hosts;
        size_t n_hosts, cap_hosts;

        struct gv_sched_gpu *gpus;
        uint32_t *free_milli;
        size_t n_gpus, cap_gpus;

        char *labels[GV_SCHED_MAX_LABELS];
        size_t n_labels;

        /* anti-affinity groups: id 1..n_groups; bitmap of hosts holding a member */
        char **groups;        /* index id - 1 */
        uint64_t **group_hosts;
        size_t n_groups, cap_groups;
        size_t group_words;   /* uint64_t words per bitmap */

        struct sched_policy_slot policies[SCHED_MAX_POLICIES];
        size_t n_policies;

        uint64_t used_milli;
};

static inline const struct sched_model *sched_model_of(const struct gv_sched_cluster *c,
                                                       const struct gv_sched_gpu *g)
{
        return &c->models[g->model];
}

static inline bool sched_group_has(const struct gv_sched_cluster *c, uint32_t group,
                                   uint32_t host)
{
        if (group == 0 || group > c->n_groups)
                return false;
        return (c->group_hosts[group - 1][host / 64] >> (host % 64)) & 1;
}

/* The used_milli a GPU's state implies (sched.h, struct gv_sched_gpu). */
uint32_t sched_gpu_used_milli(const struct gv_sched_cluster *c, const struct gv_sched_gpu *g);
/* Recompute a host's GPU-derived aggregates from its GPUs (O(GPUs of the host)). */
void sched_host_refresh(struct gv_sched_cluster *c, uint32_t host);
/* Tell the attached policies a host changed. */
void sched_notify(struct gv_sched_cluster *c, uint32_t host);

/* Bits of placement units [start, start + size) in a 256-bit map. */
bool sched_units_free(const uint64_t *map, uint32_t start, uint32_t size);
void sched_units_set(uint64_t *map, uint32_t start, uint32_t size, bool on);
