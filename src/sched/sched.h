/* SPDX-License-Identifier: MIT */
/*
 * sched.h — the placement engine: a pure, in-memory model of a GPU cluster and the decision
 * "which host, which GPU(s), which slice" for one request (issue 3, docs/placement.md).
 *
 * No I/O, no logging, no allocation in the decision path: gv_sched_place(), gv_sched_reserve()
 * and gv_sched_release() work on flat arrays the cluster owns (hosts, GPUs, models, all named by
 * small integer ids). Per-host aggregates (free CPU, free memory, empty GPUs, free share milli,
 * largest free share on one GPU) are kept current by reserve/release so the decision rejects an
 * infeasible host in O(1) before it looks at a GPU.
 *
 * Facts the rules rely on (cited where they are used in the .c files):
 *   - MIG: ../shared/reference/mig.md §4–5 — a GPU instance occupies the memory slices of one
 *     of its profile's placements (start, size); no two instances share a slice; per-profile
 *     instance counts, the GPU's instance limit and its compute slices bound the layout. The
 *     geometry helpers are src/catalog/mig-layout.h.
 *   - vGPU: ../shared/reference/vgpu.md §7–8 — time-sliced types: equal-size mode admits only
 *     the type already running, up to max_instances; mixed-size mode admits any types up to
 *     max_instances_mixed each, each vGPU at a placement id k·size (size = framebuffer in GiB,
 *     rounded up) whose range overlaps no other vGPU; MIG-backed types: one vGPU per GPU
 *     instance of the type's GI profile.
 *   - The generic share (milli-GPU) is the openb trace's: ../shared/reference/scheduling.md §1–3.
 *   - An empty GPU may switch mode; a GPU in use keeps its mode (issue 3).
 *
 * Ownership: a gv_sched_cluster owns its hosts, GPUs, names and the state of the policies
 * attached to it. Catalog models passed to it are borrowed and must outlive it. Accessors
 * return borrowed const pointers, valid until the next gv_sched_cluster_add_*() or free.
 *
 * Concurrency: none inside. gv_sched_place() only reads the cluster (several threads may place
 * at once on one cluster if nothing reserves meanwhile and the policy's state allows it);
 * reserve/release/add need exclusive access.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "util/error.h"

/* Limits (flat fixed-size arrays; checked when models, hosts and requests come in). */
#define GV_SCHED_MILLI 1000u              /* milli-units per GPU (scheduling.md §3) */
#define GV_SCHED_MAX_MODELS 64u           /* GPU models per cluster: a uint64_t mask */
#define GV_SCHED_MAX_LABELS 64u           /* distinct host labels per cluster: a uint64_t mask */
#define GV_SCHED_MAX_HOST_GPUS 16u        /* GPUs per host */
#define GV_SCHED_MAX_REQ_GPUS 8u          /* GPUs per request (openb num_gpu 0..8) */
#define GV_SCHED_MAX_MIG_PROFILES 16u     /* GI profiles per model */
#define GV_SCHED_MAX_VGPU_TYPES 64u       /* vGPU types per model */
#define GV_SCHED_VGPU_UNITS 256u          /* mixed-size placement units (1 GiB) per GPU */

/* ---- enums (each with a string table; *_from_string() is -EINVAL for unknown input) ---- */

enum gv_sched_host_state {
        GV_SCHED_HOST_UP,
        GV_SCHED_HOST_MAINTENANCE, /* keeps what it has, takes nothing new */
        GV_SCHED_HOST_DOWN,
        _GV_SCHED_HOST_STATE_MAX,
        _GV_SCHED_HOST_STATE_INVALID = -EINVAL,
};
const char *gv_sched_host_state_to_string(enum gv_sched_host_state s);
enum gv_sched_host_state gv_sched_host_state_from_string(const char *s);

/* A GPU's mode. Each GPU has a configured mode (its spec's); while empty it shows that mode
 * as a preference only: any request may take it and switch it; when it empties again it
 * returns to its configured mode (so reserve and release are inverses in any order). */
enum gv_sched_gpu_mode {
        GV_SCHED_MODE_UNASSIGNED,
        GV_SCHED_MODE_PASSTHROUGH,
        GV_SCHED_MODE_VGPU,  /* time-sliced vGPU */
        GV_SCHED_MODE_MIG,   /* MIG enabled: GPU instances, bare or MIG-backed vGPU */
        GV_SCHED_MODE_SHARE, /* generic milli-GPU share (trace comparison) */
        _GV_SCHED_MODE_MAX,
        _GV_SCHED_MODE_INVALID = -EINVAL,
};
const char *gv_sched_gpu_mode_to_string(enum gv_sched_gpu_mode m);
enum gv_sched_gpu_mode gv_sched_gpu_mode_from_string(const char *s);

/* What a request asks for on the GPU side. */
enum gv_sched_kind {
        GV_SCHED_KIND_NONE,  /* CPU and memory only */
        GV_SCHED_KIND_WHOLE, /* num_gpu whole GPUs, pass-through, one host */
        GV_SCHED_KIND_VGPU,  /* one vGPU of a type: time-sliced or MIG-backed (by the type) */
        GV_SCHED_KIND_MIG,   /* one GPU instance of a MIG profile */
        GV_SCHED_KIND_SHARE, /* openb semantics: num_gpu == 1 and gpu_milli <= 1000, or
                              * num_gpu 2..8 whole GPUs with gpu_milli == 1000 */
        GV_SCHED_KIND_NEED,  /* by need: the engine picks mode and profile (docs/placement.md) */
        _GV_SCHED_KIND_MAX,
        _GV_SCHED_KIND_INVALID = -EINVAL,
};
const char *gv_sched_kind_to_string(enum gv_sched_kind k);
enum gv_sched_kind gv_sched_kind_from_string(const char *s);

enum gv_sched_isolation {
        GV_SCHED_ISOLATION_NONE,
        GV_SCHED_ISOLATION_SOFTWARE,
        GV_SCHED_ISOLATION_HARDWARE,
        _GV_SCHED_ISOLATION_MAX,
        _GV_SCHED_ISOLATION_INVALID = -EINVAL,
};
const char *gv_sched_isolation_to_string(enum gv_sched_isolation i);
enum gv_sched_isolation gv_sched_isolation_from_string(const char *s);

/* What one slot of a placement puts on one GPU. */
enum gv_sched_alloc {
        GV_SCHED_ALLOC_WHOLE,    /* the whole GPU, pass-through */
        GV_SCHED_ALLOC_SHARE,    /* milli share */
        GV_SCHED_ALLOC_VGPU,     /* time-sliced vGPU */
        GV_SCHED_ALLOC_MIG,      /* a GPU instance */
        GV_SCHED_ALLOC_MIG_VGPU, /* a GPU instance holding one MIG-backed vGPU */
        _GV_SCHED_ALLOC_MAX,
        _GV_SCHED_ALLOC_INVALID = -EINVAL,
};
const char *gv_sched_alloc_to_string(enum gv_sched_alloc a);

/* Why a host was rejected for a request, in the order the checks run (a host is counted under
 * the first check it fails; among its GPUs the reason of the GPU that got furthest). */
enum gv_sched_reject {
        GV_SCHED_REJECT_STATE,         /* down or in maintenance */
        GV_SCHED_REJECT_LABELS,        /* lacks a required label */
        GV_SCHED_REJECT_MODEL,         /* no GPU of an allowed model (or that offers the type) */
        GV_SCHED_REJECT_ANTI_AFFINITY, /* already holds a member of the group */
        GV_SCHED_REJECT_CPU,
        GV_SCHED_REJECT_MEMORY,
        GV_SCHED_REJECT_GPU_MODE,      /* allowed GPUs are all in use in another mode */
        GV_SCHED_REJECT_GPU_COUNT,     /* fewer than num_gpu empty GPUs */
        GV_SCHED_REJECT_GPU_SHARE,     /* no GPU with enough free milli */
        GV_SCHED_REJECT_VGPU_SAME_SIZE,/* equal-size mode and another type is running */
        GV_SCHED_REJECT_VGPU_FULL,     /* max instances reached or no free placement id */
        GV_SCHED_REJECT_MIG_LIMIT,     /* instance count, GPU instance limit or compute slices */
        GV_SCHED_REJECT_MIG_GEOMETRY,  /* no valid placement with all its memory slices free */
        _GV_SCHED_REJECT_MAX,
        _GV_SCHED_REJECT_INVALID = -EINVAL,
};
/* Short words for messages: "in maintenance or down", "no free 8-slice range", ... */
const char *gv_sched_reject_to_string(enum gv_sched_reject r);

/* ---- the cluster ---- */

struct gv_sched_cluster;

/* A GPU model of the cluster. catalog == NULL: a "share-only" model (openb's G1/G2/G3/T4/P100/
 * V100M16/V100M32/A10) that takes whole-GPU and share requests, never vGPU or MIG. */
struct gv_sched_model {
        char *name;
        uint64_t memory_mib;
        const struct gv_gpu_model *catalog; /* borrowed */
        bool mig;                           /* has MIG profiles */
        uint32_t mig_memory_slices, mig_compute_slices, mig_max_instances;
        uint32_t vgpu_units;                /* mixed-size placement units (GiB) on the GPU */
};

/* Read-only view of a host; the aggregates are kept by reserve/release. */
struct gv_sched_host {
        char *name;
        enum gv_sched_host_state state;
        uint64_t labels;            /* bit i = label id i */
        uint64_t model_mask;        /* models of its GPUs */
        uint32_t first_gpu, n_gpus; /* its GPUs are ids first_gpu .. first_gpu + n_gpus - 1 */
        uint64_t cpu_milli, memory_mib;
        /* aggregates */
        uint64_t cpu_free, memory_free;
        uint32_t free_gpus;             /* GPUs with nothing allocated (any mode) */
        uint32_t share_free_milli;      /* Σ free milli over GPUs a share may use: empty or in
                                         * share mode */
        uint32_t share_max_free_milli;  /* the largest of those */
        uint32_t used_milli;            /* Σ GPU used_milli (allocation-ratio units) */
        uint32_t n_placed;              /* placements on the host */
};

/* Read-only view of one GPU. */
struct gv_sched_gpu {
        uint32_t host;
        uint16_t model;
        uint16_t index;              /* on its host */
        enum gv_sched_gpu_mode mode; /* current mode; the configured one while empty */
        enum gv_sched_gpu_mode base_mode; /* configured mode */
        bool mixed_size;             /* vGPU mixed-size (heterogeneous) mode enabled */
        uint32_t n_alloc;            /* allocations on the GPU; 0 = empty */
        /* Allocation-ratio units (scheduling.md §7 M1): pass-through 1000; share: Σ milli;
         * time-sliced vGPU: 1000·Σ framebuffer / GPU memory; MIG: 1000·compute slices used /
         * compute slices (the compute-based figure). */
        uint32_t used_milli;
        /* share */
        uint32_t share_milli;
        /* time-sliced vGPU */
        int16_t vgpu_type;            /* equal-size mode: the model's type index running; -1 */
        uint16_t n_vgpus;
        uint64_t vgpu_fb_mib;
        uint64_t vgpu_units[GV_SCHED_VGPU_UNITS / 64]; /* placement units taken (mixed-size) */
        /* MIG */
        uint32_t mig_occupied;        /* memory-slice mask */
        uint8_t mig_compute_used;
        uint8_t mig_instances;
        uint8_t mig_count[GV_SCHED_MAX_MIG_PROFILES]; /* GIs per profile index of the model */
};

/* A new, empty cluster. Never fails (allocation aborts on OOM). */
struct gv_sched_cluster *gv_sched_cluster_new(void);
struct gv_sched_cluster *gv_sched_cluster_free(struct gv_sched_cluster *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_sched_cluster *, gv_sched_cluster_free);

/* Add a catalog model (borrowed; name = its catalog name) or a share-only model. Returns the
 * model id (>= 0). -EEXIST for a name already there, -E2BIG past GV_SCHED_MAX_MODELS or for a
 * model whose profiles/types exceed the limits, -EINVAL for a bad name or memory size. */
int gv_sched_cluster_add_model(struct gv_sched_cluster *c, const struct gv_gpu_model *m,
                               struct gv_error **err);
int gv_sched_cluster_add_share_model(struct gv_sched_cluster *c, const char *name,
                                     uint64_t memory_mib, struct gv_error **err);
/* Model id by name (case-insensitive), or -ENOENT. */
int gv_sched_cluster_find_model(const struct gv_sched_cluster *c, const char *name);
/* "G2|T4" (openb gpu_spec syntax, '|'-separated; empty = any) -> mask. -EINVAL with an error
 * naming the unknown model and listing the cluster's models. */
int gv_sched_cluster_model_mask(const struct gv_sched_cluster *c, const char *spec,
                                uint64_t *ret, struct gv_error **err);

/* Intern a host label (any non-empty string without ','); returns its id (bit in masks).
 * -E2BIG past GV_SCHED_MAX_LABELS, -EINVAL for an empty name. */
int gv_sched_cluster_label(struct gv_sched_cluster *c, const char *name, struct gv_error **err);
/* "a,b" -> mask of existing labels; -ENOENT with an error naming the label no host has and
 * listing the known ones. */
int gv_sched_cluster_label_mask(const struct gv_sched_cluster *c, const char *list,
                                uint64_t *ret, struct gv_error **err);
/* Intern an anti-affinity group; returns its id (>= 1; 0 in a request means "no group"). */
int gv_sched_cluster_group(struct gv_sched_cluster *c, const char *name);

struct gv_sched_gpu_spec {
        uint32_t model;              /* model id */
        enum gv_sched_gpu_mode mode; /* configured mode (preference while empty) */
        bool mixed_size;             /* vGPU mixed-size mode (only on capable models) */
};

struct gv_sched_host_spec {
        const char *name;            /* unique */
        uint64_t cpu_milli;
        uint64_t memory_mib;
        enum gv_sched_host_state state;
        const char *const *labels;   /* interned on the way in */
        size_t n_labels;
        const struct gv_sched_gpu_spec *gpus;
        size_t n_gpus;               /* 0 .. GV_SCHED_MAX_HOST_GPUS */
};

/* Add a host with its GPUs, all empty. Returns the host id (>= 0). -EINVAL (unknown model id,
 * mixed-size on a model that cannot, bad state), -EEXIST (name), -E2BIG (too many GPUs or
 * labels). Attached policies get host_changed() for it. */
int gv_sched_cluster_add_host(struct gv_sched_cluster *c, const struct gv_sched_host_spec *spec,
                              struct gv_error **err);
/* Up / maintenance / down. What is placed stays; only new placements look at the state. */
int gv_sched_cluster_set_host_state(struct gv_sched_cluster *c, uint32_t host,
                                    enum gv_sched_host_state state);
/* Host id by name, or -ENOENT. O(hosts). */
int gv_sched_cluster_find_host(const struct gv_sched_cluster *c, const char *name);

size_t gv_sched_cluster_n_models(const struct gv_sched_cluster *c);
size_t gv_sched_cluster_n_hosts(const struct gv_sched_cluster *c);
size_t gv_sched_cluster_n_gpus(const struct gv_sched_cluster *c);
const struct gv_sched_model *gv_sched_cluster_model(const struct gv_sched_cluster *c, uint32_t id);
const struct gv_sched_host *gv_sched_cluster_host(const struct gv_sched_cluster *c, uint32_t id);
const struct gv_sched_gpu *gv_sched_cluster_gpu(const struct gv_sched_cluster *c, uint32_t id);
/* Free milli (1000 - used_milli) of every GPU, indexed by GPU id: a host's GPUs are the
 * n_gpus entries from first_gpu. Meaningful for share placement only on GPUs that are empty
 * or in share mode. Kept current by reserve/release. */
const uint32_t *gv_sched_cluster_free_milli(const struct gv_sched_cluster *c);
/* Σ used_milli over all GPUs (allocation ratio = used / (1000 · n_gpus)). */
uint64_t gv_sched_cluster_used_milli(const struct gv_sched_cluster *c);
/* Label name of an id, or NULL. */
const char *gv_sched_cluster_label_name(const struct gv_sched_cluster *c, uint32_t id);

/* Recompute every aggregate and derived per-GPU field from the per-GPU allocation state and
 * compare: -EUCLEAN with an error naming the host/GPU and field that disagree. Also checks
 * no capacity is over-committed (CPU, memory, milli, MIG slices and limits, vGPU counts).
 * For tests and debugging; O(cluster). */
int gv_sched_cluster_check(const struct gv_sched_cluster *c, struct gv_error **err);

/* ---- requests ---- */

struct gv_sched_request {
        uint64_t cpu_milli;
        uint64_t memory_mib;
        enum gv_sched_kind kind;
        uint32_t num_gpu;         /* WHOLE: 1..8; SHARE: 1..8 */
        uint32_t gpu_milli;       /* SHARE: per GPU, 1..1000 (1000 when num_gpu > 1) */
        const char *type;         /* VGPU: vGPU type name; MIG: GI profile name (borrowed) */
        struct {
                uint64_t gpu_memory_mib;
                enum gv_sched_isolation isolation;
                bool live_migration;
        } need;                   /* NEED */
        uint64_t model_mask;      /* allowed GPU models; 0 = any */
        uint64_t labels;          /* required host labels (mask) */
        uint64_t any_labels;      /* 0, or the host must carry at least one of these */
        uint32_t group;           /* anti-affinity group id; 0 = none */
        /* Ties between hosts with equal best score: 0 = the lowest host id wins; otherwise a
         * hash of (tie_seed, host) picks one uniformly (the kube-scheduler's random choice
         * among equal scores, made reproducible: pass a different seed per request). */
        uint64_t tie_seed;

        /* Filled by gv_sched_request_resolve(); do not set by hand. */
        struct {
                bool ok;
                uint64_t model_mask;   /* allowed models that can serve the request at all */
                /* VGPU: the type index per model; MIG: the GI profile index per model; -1 */
                int16_t index[GV_SCHED_MAX_MODELS];
                /* NEED: per model up to 4 options in preference order */
                uint8_t n_options[GV_SCHED_MAX_MODELS];
                struct gv_sched_option {
                        uint8_t alloc;     /* enum gv_sched_alloc */
                        int16_t index;     /* profile / type index; -1 */
                        uint16_t milli;    /* SHARE option */
                } options[GV_SCHED_MAX_MODELS][4];
        } resolved;
};

/* Validate r against the cluster and resolve names to per-model indices (not in the decision
 * path: do it once per request). Errors (-EINVAL) name the field and, for unknown vGPU types or
 * MIG profiles, list the valid ones of the cluster's models; -ENOENT when no model of the
 * cluster (within model_mask) offers the type or fits the need, naming the models looked at. */
int gv_sched_request_resolve(const struct gv_sched_cluster *c, struct gv_sched_request *r,
                             struct gv_error **err);
/* "gpu:2", "share:470m", "share:4x1000m", "vgpu:H100XM-20C", "mig:3g.40gb",
 * "need:20480MiB/hardware/migrate", "cpu" — into buf; returns buf. */
char *gv_sched_request_format(const struct gv_sched_request *r, char *buf, size_t size);

/* ---- placements ---- */

struct gv_sched_slot {
        uint32_t gpu;       /* GPU id */
        uint8_t alloc;      /* enum gv_sched_alloc */
        uint8_t prev_mode;  /* the GPU's mode at decision time (informational) */
        int16_t index;      /* MIG profile / vGPU type index of the model; -1 */
        uint16_t start;     /* MIG: first memory slice; mixed-size vGPU: placement id */
        uint16_t milli;     /* SHARE: the share; otherwise the used_milli it adds */
};

/* A decision (and, during the decision, a candidate). */
struct gv_sched_placement {
        uint32_t host;
        uint32_t n_slots;              /* 0 for CPU-only requests */
        bool switches_mode;            /* some GPU changes mode */
        struct gv_sched_slot slots[GV_SCHED_MAX_REQ_GPUS];
};

/* Host rejection counts of one decision. */
struct gv_sched_explain {
        uint32_t hosts;                /* hosts looked at */
        uint32_t feasible;             /* hosts with at least one candidate */
        uint32_t candidates;           /* candidates scored */
        uint32_t rejected[_GV_SCHED_REJECT_MAX];
};
/* "no host can place mig:7g.80gb: 3 hosts have no free 8-slice range, 1 host is in
 * maintenance or down"; newly allocated. */
char *gv_sched_explain_format(const struct gv_sched_request *r, const struct gv_sched_explain *why);

/* ---- policies ---- */

/* A candidate's score: higher is better. Within a host candidates compare first by whether
 * they switch a GPU's mode (never, if they can help it), then by (primary, secondary); between
 * hosts by primary, then the tie rule of the request. */
struct gv_sched_score {
        double primary;
        double secondary;
};

/* One const ops struct per policy (style.md). Only name and score are required. */
struct gv_sched_policy {
        const char *name;
        const char *summary;
        /* Per-cluster state: called by gv_sched_policy_attach(). */
        int (*attach)(const struct gv_sched_cluster *c, void **ret_state, struct gv_error **err);
        void (*detach)(void *state);
        /* After a host's allocations or GPUs changed (add_host, reserve, release). */
        void (*host_changed)(const struct gv_sched_cluster *c, void *state, uint32_t host);
        /* Once per decision, before any score() (per-request precomputation). */
        void (*begin)(const struct gv_sched_cluster *c, void *state,
                      const struct gv_sched_request *r);
        /* Score one feasible candidate (cand->host fits every rule). */
        void (*score)(const struct gv_sched_cluster *c, void *state,
                      const struct gv_sched_request *r, const struct gv_sched_placement *cand,
                      struct gv_sched_score *ret);
        /* The first host (in id order) with a candidate wins: the engine stops looking. */
        bool first_host_wins;
};

extern const struct gv_sched_policy gv_sched_policy_first_fit;
extern const struct gv_sched_policy gv_sched_policy_spread;
extern const struct gv_sched_policy gv_sched_policy_best_fit;
extern const struct gv_sched_policy gv_sched_policy_gpuvirt;
extern const struct gv_sched_policy gv_sched_policy_fgd; /* policy-fgd.c */

/* The default policy: gpuvirt. */
const struct gv_sched_policy *gv_sched_policy_default(void);
/* By name; -EINVAL with an error listing the valid names. */
int gv_sched_policy_find(const char *name, const struct gv_sched_policy **ret,
                         struct gv_error **err);
/* NULL-terminated list of every policy. */
const struct gv_sched_policy *const *gv_sched_policies(void);

/* Create p's per-cluster state (if it has attach) and keep it in c; c frees it. Attaching
 * twice is a no-op. At most 8 policies per cluster (-E2BIG). */
int gv_sched_policy_attach(struct gv_sched_cluster *c, const struct gv_sched_policy *p,
                           struct gv_error **err);
/* The state p keeps for c, or NULL. */
void *gv_sched_policy_state(const struct gv_sched_cluster *c, const struct gv_sched_policy *p);

/* ---- the decision ---- */

/*
 * Choose a placement for r (resolved) under policy p without changing anything. 0 and *ret on
 * success. -ENOSPC when nothing fits: *why (optional, written in both cases) counts the hosts
 * rejected per reason and err says it in words. -EINVAL: r not resolved against c, or p needs
 * state and is not attached.
 */
int gv_sched_place(const struct gv_sched_cluster *c, const struct gv_sched_policy *p,
                   const struct gv_sched_request *r, struct gv_sched_placement *ret,
                   struct gv_sched_explain *why, struct gv_error **err);

/* Apply / undo a placement for r. Exact inverses. reserve re-checks every rule on the GPUs of
 * the placement (-EBUSY with a reason when the cluster changed since the decision; nothing is
 * changed then); release checks the placement is held (-EINVAL otherwise). Attached policies
 * get host_changed(). */
int gv_sched_reserve(struct gv_sched_cluster *c, const struct gv_sched_request *r,
                     const struct gv_sched_placement *pl, struct gv_error **err);
int gv_sched_release(struct gv_sched_cluster *c, const struct gv_sched_request *r,
                     const struct gv_sched_placement *pl, struct gv_error **err);
