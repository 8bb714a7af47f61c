/* SPDX-License-Identifier: MIT */
/*
 * advise.h — the mode advisor, pure: a workload's traits, the GPU models a cluster has (catalog
 * models with their counts) and the price of a licence seat per edition → options ranked by
 * score, each a concrete mode and profile with its licence seats and yearly cost and the
 * reasons in the words of the trade-off table (../shared/DESIGN.md), and the options ruled out
 * with the rule that ruled them out. docs/advisor.md lists every rule with its source.
 *
 * Where an option fits in the cluster now is not decided here: the controller (advise.c there)
 * asks the placement engine for each option's instances, fills in `where`, and sorts again with
 * gv_advise_sort() (what fits now first).
 *
 * No I/O, no logging. Catalog pointers in the result are borrowed from the input's models and
 * must outlive it.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"
#include "catalog/licensing.h"
#include "sched/sched.h"
#include "util/error.h"

#define GV_ADVISE_USERS_MAX 1024u
#define GV_ADVISE_MEMORY_MAX_MIB (1024u * 1024u) /* 1 TiB: far above any GPU, a sane bound */
#define GV_ADVISE_MODELS_MAX 64u

enum gv_advise_kind {
        GV_ADVISE_KIND_TRAINING,
        GV_ADVISE_KIND_INFERENCE,
        GV_ADVISE_KIND_VDI,
        GV_ADVISE_KIND_DEVELOPMENT,
        GV_ADVISE_KIND_SIMULATION,
        _GV_ADVISE_KIND_MAX,
        _GV_ADVISE_KIND_INVALID = -EINVAL,
};
const char *gv_advise_kind_to_string(enum gv_advise_kind k);
enum gv_advise_kind gv_advise_kind_from_string(const char *s);

/* The latency SLA: "best-effort" (the default) or "strict" (a guaranteed latency). */
enum gv_advise_latency {
        GV_ADVISE_LATENCY_BEST_EFFORT,
        GV_ADVISE_LATENCY_STRICT,
        _GV_ADVISE_LATENCY_MAX,
        _GV_ADVISE_LATENCY_INVALID = -EINVAL,
};
const char *gv_advise_latency_to_string(enum gv_advise_latency l);
enum gv_advise_latency gv_advise_latency_from_string(const char *s);

enum gv_advise_mode {
        GV_ADVISE_PASSTHROUGH,
        GV_ADVISE_VGPU, /* time-sliced vGPU */
        GV_ADVISE_MIG,  /* a MIG GPU instance, which a VM receives as a MIG-backed vGPU */
        _GV_ADVISE_MODE_MAX,
        _GV_ADVISE_MODE_INVALID = -EINVAL,
};
const char *gv_advise_mode_to_string(enum gv_advise_mode m);
enum gv_advise_mode gv_advise_mode_from_string(const char *s);

struct gv_advise_traits {
        enum gv_advise_kind kind;
        uint64_t gpu_memory_mib;          /* per instance, 1..GV_ADVISE_MEMORY_MAX_MIB */
        enum gv_sched_isolation isolation; /* default none */
        bool live_migration;              /* default false */
        enum gv_advise_latency latency;   /* default best-effort */
        uint32_t users;                   /* replicas, or people for vdi/development; 1..1024 */
        char **models;                    /* strv; NULL: any model of the cluster */
};
void gv_advise_traits_done(struct gv_advise_traits *t);
/* A strict JSON object: {"kind" (required), "gpu_memory_mib" (required), "isolation"?,
 * "live_migration"?, "latency_sla"?, "users"?, "models"?}. Unknown members, wrong types and
 * values out of range are -EINVAL with a message naming the member and its valid values. */
int gv_advise_traits_from_json(const json_t *j, struct gv_advise_traits *ret,
                               struct gv_error **err);
/* The traits with their defaults filled in. */
json_t *gv_advise_traits_to_json(const struct gv_advise_traits *t);

/* A GPU model of the cluster and how many GPUs of it there are. */
struct gv_advise_gpus {
        const struct gv_gpu_model *model; /* borrowed */
        uint32_t count;
};

/* What a seat of one edition costs: the controller's gv_ctl_license_quote(). */
struct gv_advise_price {
        bool pooled;                       /* some pool of the edition exists */
        int64_t seats_free;
        double price_per_seat_year;        /* < 0: no pool of the edition has a price */
        char currency[8];
        enum gv_license_counting counting; /* of the priced pool; vm when none */
};

struct gv_advise_input {
        const struct gv_advise_traits *traits;
        const struct gv_advise_gpus *gpus;
        size_t n_gpus;
        /* [_GV_LICENSE_EDITION_MAX], indexed by edition; NULL: no pools at all */
        const struct gv_advise_price *prices;
        /* Names in traits->models are checked against it (unknown → -EINVAL listing its
         * models); NULL: against the cluster's models only. */
        const struct gv_catalog *catalog;
};

/* The seats an option needs and what they cost a year. */
struct gv_advise_license {
        int edition;                       /* enum gv_license_edition; -1: none needed */
        uint32_t seats;
        enum gv_license_counting counting;
        bool priced;
        double cost_per_year;              /* seats × price when priced */
        double price_per_seat_year;        /* when priced */
        char currency[8];
        int64_t seats_free;                /* in the edition's pools (when pooled) */
        bool pooled;
        char *note;                        /* why no cost, or what is free; NULL */
};

enum gv_advise_fit {
        GV_ADVISE_FIT_UNKNOWN, /* not asked (the pure core alone) */
        GV_ADVISE_FIT_NOW,     /* every instance fits in the cluster now */
        GV_ADVISE_FIT_NO_ROOM, /* the cluster has the GPUs but not the room now */
};

struct gv_advise_option {
        enum gv_advise_mode mode;
        const struct gv_gpu_model *model;
        const struct gv_mig_gi_profile *gi;     /* mode mig */
        const struct gv_vgpu_type *vgpu;        /* mode vgpu: the type; mode mig: the
                                                 * MIG-backed type the VM receives it as */
        uint32_t instances;                     /* VMs */
        uint32_t per_gpu;                       /* instances one GPU holds */
        uint32_t gpus;                          /* GPUs the instances take (at least) */
        bool shared_vm;                         /* pass-through: the users share one VM */
        uint64_t memory_mib;                    /* each instance's memory (catalog figure) */
        uint64_t idle_mib;                      /* memory taken but not asked for, in total */
        const char *isolation;                  /* "complete", "software", "hardware" */
        const char *predictability;             /* the table's words */
        bool live_migration;
        struct gv_advise_license license;       /* as offered */
        struct gv_advise_license as_vgpu;       /* mode mig: the MIG-backed vGPU's seats */
        int score;
        char **reasons;                         /* sentences, strv */
        enum gv_advise_fit fit;
        json_t *where;                          /* owned; set by the caller; NULL */
};

struct gv_advise_exclusion {
        enum gv_advise_mode mode;
        const struct gv_gpu_model *model;       /* NULL: every model */
        char *rule;                             /* the rule's id (docs/advisor.md) */
        char *reason;                           /* a sentence */
        const char *source;                     /* where the rule comes from */
};

struct gv_advise_result {
        struct gv_advise_option *options;
        size_t n_options;
        struct gv_advise_exclusion *excluded;
        size_t n_excluded;
        char *none;                             /* no option: why, in one sentence; NULL */
};
struct gv_advise_result *gv_advise_result_free(struct gv_advise_result *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_advise_result *, gv_advise_result_free);

/* The options for in->traits, sorted by gv_advise_sort(). -EINVAL for a model name unknown to
 * the catalog (or the cluster, without one). No option is not an error: r->none says why. */
int gv_advise(const struct gv_advise_input *in, struct gv_advise_result **ret,
              struct gv_error **err);

/* Sort: options that fit now (or unknown) before those that do not, then by score (higher
 * first), then by mode (pass-through, vGPU, MIG), GPUs taken, memory idle and model name. */
void gv_advise_sort(struct gv_advise_result *r);

/* What one instance asks the placement engine for: {"kind": "passthrough", "count": 1},
 * {"kind": "vgpu", "type": T} or {"kind": "mig", "profile": P} (a VM spec's gpus[0]), on
 * the option's model. How many such requests: gv_advise_requests(). */
json_t *gv_advise_option_request(const struct gv_advise_option *o);
uint32_t gv_advise_requests(const struct gv_advise_option *o);

/* The whole answer: {"traits", "options": [...with "rank"], "excluded": [...], "none"}
 * (docs/api.md, "Advisor"). */
json_t *gv_advise_result_to_json(const struct gv_advise_result *r,
                                 const struct gv_advise_traits *t);
