/* SPDX-License-Identifier: MIT */
/*
 * openb.h — strict reader of the Alibaba openb trace CSVs (cluster-trace-gpu-v2023; columns in
 * ../shared/reference/scheduling.md §1.2) and the FGD artefact's workload protocol (§2).
 *
 * Node list: sn,cpu_milli,memory_mib,gpu,model. Pod list: name,cpu_milli,memory_mib,num_gpu,
 * gpu_milli[,gpu_spec,...]. Columns are found by header name; extra columns are ignored; a
 * missing required column, a row with the wrong number of fields, a value that does not parse
 * and a GPU model in gpu_spec that no node has are errors naming file, row and column.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

#define OPENB_MAX_MODELS 64
#define OPENB_MAX_GPUS_PER_NODE 16

struct openb_node {
        char *name;
        uint32_t cpu_milli;
        uint64_t memory_mib;
        uint32_t gpus;
        unsigned model; /* index into openb_cluster.models */
};

struct openb_cluster {
        struct openb_node *nodes;
        size_t n_nodes;
        char *models[OPENB_MAX_MODELS]; /* in order of first appearance */
        size_t n_models;
        uint64_t total_gpus;
};

struct openb_pod {
        char *name;
        uint32_t cpu_milli;
        uint64_t memory_mib;
        uint32_t num_gpu;   /* 0..8 */
        uint32_t gpu_milli; /* per GPU; 0 when num_gpu == 0 */
        uint64_t model_mask; /* bit i = cluster model i allowed; 0 = any */
};

struct openb_pods {
        struct openb_pod *pods;
        size_t n_pods;
};

int openb_cluster_load(const char *path, struct openb_cluster *ret, struct gv_error **err);
void openb_cluster_done(struct openb_cluster *c);

/* Parse from memory (what the loaders use; `file` names the source in messages). */
int openb_cluster_parse(const char *file, char *text, struct openb_cluster *ret,
                        struct gv_error **err);
int openb_pods_parse(const char *file, char *text, const struct openb_cluster *c,
                     struct openb_pods *ret, struct gv_error **err);

/* Pods are checked against the cluster's models (gpu_spec). */
int openb_pods_load(const char *path, const struct openb_cluster *c, struct openb_pods *ret,
                    struct gv_error **err);
void openb_pods_done(struct openb_pods *p);

static inline uint64_t openb_pod_total_milli(const struct openb_pod *p)
{
        return (uint64_t)p->num_gpu * p->gpu_milli;
}

/* Deterministic PRNG (splitmix64 seeding xoshiro256**); the artefact uses Go's math/rand, whose
 * streams we do not reproduce: a seed here gives a different but equally random order. */
struct openb_rng {
        uint64_t s[4];
};
void openb_rng_seed(struct openb_rng *r, uint64_t seed);
uint64_t openb_rng_next(struct openb_rng *r);
/* Uniform in [0, n), n > 0, without modulo bias. */
uint64_t openb_rng_below(struct openb_rng *r, uint64_t n);

/* The workload of one run, as the artefact builds it (simulator.go / core.go, §2):
 *   1. the trace's pods sorted by name, then shuffled with the seed (--shuffle-pod);
 *   2. tuneUpPods: pods drawn uniformly with replacement from the trace (sorted by name) are
 *      appended, in the order drawn, while the running total GPU demand plus the drawn pod's
 *      per-GPU share stays <= ratio x capacity; the first draw that would exceed it stops the
 *      loop (so the drawn multi-GPU pod's check uses gpu_milli, not num_gpu x gpu_milli, as
 *      the artefact does). If the trace already exceeds the target, random pods are removed
 *      (tuneDownPods) until it does not.
 * The appended pods are not shuffled again. ret->pods point into `trace` (no copies). */
struct openb_workload {
        const struct openb_pod **seq;
        size_t n;
        size_t n_trace; /* how many of seq come from step 1 */
};
int openb_workload_build(const struct openb_pods *trace, uint64_t capacity_milli, double ratio,
                         uint64_t seed, struct openb_workload *ret, struct gv_error **err);
void openb_workload_done(struct openb_workload *w);
