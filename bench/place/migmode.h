/* SPDX-License-Identifier: MIT */
/*
 * migmode.h — the MIG/vGPU mode of the openb placement benchmark (issue 3; the rule and its
 * reasons: docs/placement-mig-mode.md).
 *
 * Each openb pod is mapped to a request an H100 SXM5 80 GB can serve, by one documented rule:
 *   - CPU-only pod (num_gpu 0)                -> CPU and memory only;
 *   - whole GPUs (gpu_milli 1000, num_gpu N)  -> N whole GPUs, pass-through, in every mode;
 *   - a share s = gpu_milli / 1000 of one GPU ->
 *       mig:   the MIG GI profile (never "+me") with the fewest memory slices, then the fewest
 *              compute slices, whose compute fraction g/7 and memory fraction (memory slices)/8
 *              both cover s (mig.md §1: 7 compute and 8 memory slices);
 *       vgpu:  the time-sliced C-series vGPU type with the smallest framebuffer F such that
 *              F / GPU memory covers s (vgpu.md §7.1); equal-size mode per GPU (vgpu.md §8);
 *       vgpu-mixed-size: the same types, GPUs in mixed-size mode (placement ids, vgpu.md §8);
 *       mixed: by the pod's QoS: LS and Guaranteed -> the mig rule (hardware isolation),
 *              BE and Burstable -> the vgpu rule (time-sliced).
 * The mapped request's demand, in milli-GPU (the allocation-ratio unit of the engine,
 * scheduling.md §7 M1): pass-through 1000 per GPU; MIG 1000 · g / compute slices; vGPU
 * min(1000, 1000 · F / GPU memory).
 *
 * The run follows the harness's protocol (openb.h): the pods sorted by name and shuffled with
 * the seed, then tuned to --tune x capacity by drawing with replacement, where a pod's GPU
 * demand is that of its *mapped* request; no departures, no retries, arrival counted before the
 * attempt.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "openb.h"
#include "sched/sched.h"
#include "util/error.h"

enum migmode_mode {
        MIGMODE_MIG,
        MIGMODE_VGPU,
        MIGMODE_VGPU_MIXED_SIZE,
        MIGMODE_MIXED,
        _MIGMODE_MAX,
        _MIGMODE_INVALID = -EINVAL,
};
const char *migmode_mode_to_string(enum migmode_mode m);
enum migmode_mode migmode_mode_from_string(const char *s);

/* The openb trace's qos column (scheduling.md §1.2). */
enum migmode_qos {
        MIGMODE_QOS_LS,
        MIGMODE_QOS_BE,
        MIGMODE_QOS_BURSTABLE,
        MIGMODE_QOS_GUARANTEED,
        _MIGMODE_QOS_MAX,
        _MIGMODE_QOS_INVALID = -EINVAL,
};
const char *migmode_qos_to_string(enum migmode_qos q);
enum migmode_qos migmode_qos_from_string(const char *s);

/* The model every host of the MIG/vGPU cluster has (8 per host). */
#define MIGMODE_MODEL "H100-SXM5-80GB"
#define MIGMODE_HOST_GPUS 8u

/* CPU and memory of a host: the shape of one of openb's 8-GPU nodes (scheduling.md §1.3,
 * openb_node_list_gpu_node.csv): "G2" (549 nodes: 96 cores, 384 GiB; 12 cores and 48 GiB per
 * GPU; the default) or "G3" (39 nodes: 128 cores, 768 GiB; 16 cores and 96 GiB per GPU).
 * -EINVAL with the valid names for another. */
int migmode_host_shape(const char *name, uint64_t *ret_cpu_milli, uint64_t *ret_memory_mib,
                       struct gv_error **err);

/* Index of the MIG GI profile of m that the rule picks for a share of `milli` (1..1000) of one
 * GPU; -ENOENT when m has no MIG or no profile covers it. */
int migmode_mig_profile_for(const struct gv_gpu_model *m, uint32_t milli);
/* Index of the time-sliced C-series vGPU type of m that the rule picks for `milli`; mixed_size:
 * only types allowed in mixed-size mode (max_instances_mixed > 0). -ENOENT when none covers. */
int migmode_vgpu_type_for(const struct gv_gpu_model *m, uint32_t milli, bool mixed_size);

/* One pod's mapped request. */
struct migmode_map {
        enum gv_sched_kind kind; /* NONE, WHOLE, MIG or VGPU */
        uint32_t num_gpu;        /* WHOLE: GPUs */
        int index;               /* MIG: GI profile index; VGPU: vGPU type index; else -1 */
        const char *name;        /* its name (borrowed from the catalog model); NULL */
        double demand_milli;     /* GPU-equivalents x 1000 */
};

/* Map one pod (num_gpu, gpu_milli as in the trace; qos used by MIGMODE_MIXED only). -EINVAL
 * for a pod the openb format does not allow (a share on several GPUs), -ENOENT when m offers
 * nothing that covers the share; the error names the pod. */
int migmode_map_pod(const struct gv_gpu_model *m, enum migmode_mode mode,
                    const struct openb_pod *p, enum migmode_qos qos, struct migmode_map *ret,
                    struct gv_error **err);

/* The qos column of a pod list, per pod of `trace` (same rows, in order; each row's name is
 * checked against the pod's). -EINVAL naming file, row and the valid values for a missing
 * column or an unknown value. `text` is modified. */
int migmode_qos_parse(const char *file, char *text, const struct openb_pods *trace,
                      enum migmode_qos **ret, struct gv_error **err);
int migmode_qos_load(const char *path, const struct openb_pods *trace, enum migmode_qos **ret,
                     struct gv_error **err);

/* Ties between hosts of equal score (bench-place --ties). */
enum migmode_ties { MIGMODE_TIES_RUN, MIGMODE_TIES_DECISION, MIGMODE_TIES_HOST_ID };

struct migmode_options {
        enum migmode_mode mode;
        uint32_t hosts;                  /* 8 x H100 hosts */
        const char *host_shape;          /* "G2" (NULL) or "G3": migmode_host_shape() */
        const char *trace_name;          /* for the output */
        const char *pods_path;           /* the pod list (read again for the qos column) */
        const char *const *policies;     /* policy names */
        size_t n_policies;
        const uint64_t *seeds;
        size_t n_seeds;
        double tune;                     /* 1.3 */
        size_t limit;                    /* first N arrivals only; 0 = all */
        enum migmode_ties ties;
        const char *out;                 /* directory for migmode-*.csv; NULL = none */
};

/* Policies whose scores mean something for MIG and vGPU requests. fgd's measure is the openb
 * share world's only (docs/placement.md, FGD): asking for it is an error that says so. */
int migmode_check_policy(const char *name, struct gv_error **err);

/* Run every policy x seed and print the results (stdout) and CSVs (o->out). */
int migmode_run(const struct openb_pods *trace, const struct migmode_options *o,
                struct gv_error **err);
