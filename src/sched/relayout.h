/* SPDX-License-Identifier: MIT */
/*
 * relayout.h — MIG re-layout: given one GPU's geometry and the GPU instances it holds (profile,
 * first memory slice, owning VM), find an arrangement of the same instances that leaves room
 * for the largest profile that can still be added, and say which instances would move where.
 * Also a per-GPU fragmentation measure in the spirit of FGD (frag.h), read on MIG geometry.
 * Used by the controller's insights (docs/insights.md).
 *
 * Facts (../shared/reference/mig.md §4, §5): a GPU instance occupies the memory slices of one
 * of its profile's placements (start, size); no two instances share a slice; per-profile
 * instance counts, the GPU's instance limit and its compute slices bound what may be added;
 * "fragmentation can build up as instances are created and destroyed" (MUG). Moving an
 * instance means destroying it and creating it again at another placement, so a VM using it
 * must leave it first (a live migration when the VM runs).
 *
 * Objective, in order: (1) the largest profile that can be added afterwards (memory slices,
 * then compute slices; a profile without media extensions before its "+me" twin), (2) the
 * longest run of free memory slices, (3) the fewest moves of instances whose VM runs (live
 * migrations), (4) the fewest moves. A plan is offered only when (1) improves: moving VMs only
 * to lengthen a free run that no larger profile can use is not worth their live migrations.
 *
 * Pure: no I/O; no allocation except in gv_relayout_explain(). Instances are searched
 * exhaustively (largest first, equal profiles in increasing slice order): with 8 memory slices
 * and at most 7 instances a few thousand arrangements at worst.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/mig-layout.h"
#include "util/error.h"

#define GV_RELAYOUT_MAX_INSTANCES 32u
#define GV_RELAYOUT_MAX_PROFILES 32u  /* GI profiles per geometry */

/* One existing GPU instance. */
struct gv_relayout_instance {
        const struct gv_mig_gi_profile *profile; /* borrowed, one of the geometry's profiles */
        uint32_t start;                          /* its first memory slice now */
        const char *owner;                       /* the VM using it (borrowed); NULL: none */
        bool live;                               /* moving it needs its VM live-migrated */
};

/* What a layout leaves free. */
struct gv_relayout_state {
        uint32_t free_slices;  /* memory slices no instance covers */
        uint32_t largest_run;  /* the longest run of contiguous free memory slices */
        /* The largest profile that could be added now (a free placement, and the instance
         * counts and compute slices allow another); NULL when none. */
        const struct gv_mig_gi_profile *largest;
};

enum gv_relayout_verdict {
        GV_RELAYOUT_PLAN,     /* "plan": moving instances makes room for a larger profile */
        GV_RELAYOUT_COMPACT,  /* "compact": no arrangement leaves room for a larger profile */
        GV_RELAYOUT_EMPTY,    /* "empty": no instances */
        GV_RELAYOUT_FULL,     /* "full": every memory slice is taken */
        GV_RELAYOUT_LIMITS,   /* "limits": free slices, but the compute slices or instance
                               * limits allow no further instance wherever it would go */
        GV_RELAYOUT_GEOMETRY, /* "geometry": the free slices and limits would allow a larger
                               * profile (plan.wanted), but none of its placements can be
                               * freed by any arrangement of these instances */
        _GV_RELAYOUT_VERDICT_MAX,
        _GV_RELAYOUT_VERDICT_INVALID = -EINVAL,
};
const char *gv_relayout_verdict_to_string(enum gv_relayout_verdict v);
enum gv_relayout_verdict gv_relayout_verdict_from_string(const char *s);

struct gv_relayout_move {
        uint32_t index; /* into the instances given */
        uint32_t from;  /* first memory slice now */
        uint32_t to;    /* first memory slice in the new layout */
        uint32_t step;  /* 1..: the order to carry the moves out in */
        /* Its target slices are free when its turn comes. false: another move needs its
         * slices first, so its VM must go elsewhere (another GPU) meanwhile. */
        bool direct;
        /* Not direct: the step before which its VM leaves the instance (which is then
         * destroyed, freeing its slices); 0 when direct. */
        uint32_t park_before;
};

struct gv_relayout_plan {
        enum gv_relayout_verdict verdict;
        struct gv_relayout_state before;
        struct gv_relayout_state after;  /* == before unless verdict is PLAN */
        /* GEOMETRY: the profile the free slices and limits would allow; else NULL. */
        const struct gv_mig_gi_profile *wanted;
        uint32_t n_instances;
        uint32_t compute_used;                  /* compute slices the instances hold */
        uint32_t to[GV_RELAYOUT_MAX_INSTANCES]; /* every instance's start afterwards */
        uint32_t n_moves;
        uint32_t n_live;                        /* moves whose instance is live */
        struct gv_relayout_move moves[GV_RELAYOUT_MAX_INSTANCES]; /* in step order */
};

/* What the instances leave free (no check of the layout). */
void gv_relayout_state(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                       size_t n, struct gv_relayout_state *ret);

/* Plan a re-layout. *ret is written on success, with a verdict (PLAN or why there is none).
 * -EINVAL with an error naming the instances when the layout is not valid (overlaps, a
 * placement the profile does not have, limits exceeded: gv_mig_layout_check) or an instance's
 * profile is not one of the geometry's; -E2BIG past GV_RELAYOUT_MAX_INSTANCES instances or
 * GV_RELAYOUT_MAX_PROFILES profiles. */
int gv_relayout_plan(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                     size_t n, struct gv_relayout_plan *ret, struct gv_error **err);

/* One sentence for people: "moving 1 instance (1 VM live-migrated) makes room for 4g.40gb
 * (largest now: 2g.20gb)" or why there is no plan; newly allocated. */
char *gv_relayout_explain(const struct gv_mig_geometry *g, const struct gv_relayout_plan *p);

/*
 * Fragmentation of one MIG GPU, FGD's measure (frag.h, docs/placement.md "FGD") read on MIG
 * geometry: the GPU's free memory slices are fragment for a profile p when no instance of p can
 * be added (no free placement, or its count, the GPU's instance limit or the compute slices
 * forbid it); F = Σ_p w_p · fragment_p / Σ_p w_p, divided by the GPU's memory slices. 0: every
 * weighted profile still fits (an empty GPU, a full one); 1: the whole GPU is free and no
 * weighted profile fits. weights: one per geometry profile (g->profiles order), e.g. how many
 * instances of each the cluster holds (FGD's popularity); NULL or all zero: equal weights over
 * the profiles without media extensions.
 */
double gv_relayout_frag(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                        size_t n, const double *weights);
