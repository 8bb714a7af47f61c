/* SPDX-License-Identifier: MIT */
/*
 * frag.h — the typical-shape GPU fragmentation measure of FGD (Weng et al., USENIX ATC '23),
 * as ../shared/reference/scheduling.md §3 describes it ("origin" measure of the artefact's
 * pkg/utils/frag.go: NodeGpuShareFragAmount, GetTypicalPods).
 *
 * Units: a GPU has 1000 milli. For one host and one request shape m:
 *   - m needs no GPU                              -> every free GPU milli is fragment;
 *   - the host's GPU model is not allowed by m    -> every free GPU milli is fragment;
 *   - the host cannot hold m (fewer than num_gpu GPUs with free >= gpu_milli, or CPU short)
 *                                                 -> every free GPU milli is fragment;
 *   - otherwise the free milli of the GPUs too small for m (free < gpu_milli) is fragment.
 * Host fragmentation F = Σ_m p_m · frag(m) over the typical shapes (p_m normalised popularity).
 * Memory plays no part (the artefact's PodResource has no memory field).
 *
 * Pure computation: no I/O, no allocation except in gv_frag_typical_shapes() and the cache
 * constructor. The cache (struct gv_frag_host_cache) keeps, per host and shape, the two numbers
 * the measure needs (GPUs that fit, free milli on GPUs too small), so the change of F for a
 * tentative placement costs O(shapes) instead of O(shapes × GPUs).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define GV_FRAG_MILLI 1000u
#define GV_FRAG_MAX_GPUS 16u
#define GV_FRAG_MAX_SHAPES 256u

/* One request shape. model_mask: bit i set = GPU model i allowed; 0 = any model. */
struct gv_frag_shape {
        uint32_t cpu_milli;
        uint32_t num_gpu;   /* 0: needs no GPU */
        uint32_t gpu_milli; /* per GPU, 1..1000 when num_gpu > 0; 0 when num_gpu == 0 */
        uint64_t model_mask;
        double weight; /* input to gv_frag_typical_shapes: a count; output: normalised p_m */
};

/* The view of one host the measure needs. */
struct gv_frag_host {
        uint32_t cpu_free_milli;
        unsigned model; /* GPU model index (bit in model_mask), < 64 */
        unsigned n_gpus;
        const uint32_t *gpu_free_milli; /* n_gpus entries, each 0..1000 */
};

/* The typical set from a list of requests (weight of each entry = its count, usually 1): group
 * equal shapes, sort by count (largest first; equal counts: larger cpu, then gpu_milli, then
 * num_gpu first), take the most popular until they cover >= threshold_pct % of the total, then
 * normalise their weights to sum to 1. threshold_pct in 1..100. *ret is newly allocated. */
int gv_frag_typical_shapes(const struct gv_frag_shape *reqs, size_t n_reqs, unsigned threshold_pct,
                           struct gv_frag_shape **ret, size_t *ret_n, struct gv_error **err);

/* frag(m) for one shape, in milli. */
double gv_frag_host_shape(const struct gv_frag_shape *m, const struct gv_frag_host *h);

/* F = Σ p_m frag(m), in milli. */
double gv_frag_host_amount(const struct gv_frag_shape *shapes, size_t n_shapes,
                           const struct gv_frag_host *h);

/* Per-host cache for fast "F after a tentative placement". */
struct gv_frag_host_cache {
        double frag;          /* F of the host as cached */
        uint32_t cpu_free_milli;
        uint32_t free_total;  /* Σ free milli */
        unsigned model;
        unsigned n_gpus;
        uint8_t *fit;         /* per shape: GPUs with free >= gpu_milli */
        uint32_t *small;      /* per shape: Σ free over GPUs with free < gpu_milli */
};

/* A set of shapes plus one cache per host, sized at creation. */
struct gv_frag_table {
        struct gv_frag_shape *shapes;
        size_t n_shapes;
        size_t n_hosts;
        struct gv_frag_host_cache *hosts;
        uint8_t *fit_store;
        uint32_t *small_store;
};

/* Copies shapes (at most GV_FRAG_MAX_SHAPES). */
int gv_frag_table_new(const struct gv_frag_shape *shapes, size_t n_shapes, size_t n_hosts,
                      struct gv_frag_table **ret, struct gv_error **err);
struct gv_frag_table *gv_frag_table_free(struct gv_frag_table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_frag_table *, gv_frag_table_free);

/* Recompute host i's cache from its current view (call after every change of the host). */
void gv_frag_table_update(struct gv_frag_table *t, size_t i, const struct gv_frag_host *h);

/* F of host i after a tentative change: cpu_take milli of CPU, and for each of the n_changed
 * GPUs, gpu_old[k] -> gpu_new[k] free milli. The cache must be current. */
double gv_frag_table_after(const struct gv_frag_table *t, size_t i, uint32_t cpu_take,
                           const uint32_t *gpu_old, const uint32_t *gpu_new, size_t n_changed);

/* Σ over hosts of cached F. */
double gv_frag_table_total(const struct gv_frag_table *t);

/* ---- the `fgd` policy (policy-fgd.c, gv_sched_policy_fgd in sched.h) ----
 *
 * FGD needs the workload's typical shapes. Install them once after attaching the policy
 * (gv_sched_policy_attach) and before placing; model_mask bits are the cluster's model ids.
 * Until shapes are installed the policy learns them from the requests it is asked to place
 * (the typical set of the requests seen so far, rebuilt each time their count doubles). */
struct gv_sched_cluster;
int gv_sched_fgd_set_shapes(struct gv_sched_cluster *c, const struct gv_frag_shape *shapes,
                            size_t n_shapes, struct gv_error **err);
