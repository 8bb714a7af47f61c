/* SPDX-License-Identifier: MIT */
/*
 * mig-layout.h — pure MIG geometry: which memory slices a GPU instance (GI) occupies, where a
 * profile still fits, and a planner that places a set of wanted GIs next to existing ones
 * (used by `gpuvirt mig apply`, declarative like mig-parted, and by the placement engine).
 *
 * Facts it relies on (../shared/reference/mig.md §4, §5): a GI occupies the memory slices of
 * its placement (start, size); two GIs may not share a memory slice; each profile has a fixed
 * list of possible placements, an instance count per GPU, and the GPU a total instance limit.
 * Nothing here assumes the profiles came from the catalog: on a real host the hardware layer
 * fills the same struct gv_mig_gi_profile from NVML. Profiles are told apart by their id.
 *
 * Memory slices are a bitmask: bit i = memory slice i (at most 32 slices; GPUs have 8 or 4).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "catalog/catalog.h"

/* The MIG geometry of one GPU. profiles is borrowed. */
struct gv_mig_geometry {
        uint32_t memory_slices;  /* 8 (A100, H100, H200), 4 (A30) */
        uint32_t compute_slices; /* 7, 4 */
        uint32_t max_instances;  /* GIs per GPU: 7, 4 */
        const struct gv_mig_gi_profile *profiles;
        size_t n_profiles;
};

/* Fill g from a catalog model (g borrows m's profiles). */
void gv_mig_geometry_from_model(const struct gv_gpu_model *m, struct gv_mig_geometry *ret);

/* One GPU instance, existing or planned. profile is borrowed. */
struct gv_mig_instance {
        const struct gv_mig_gi_profile *profile;
        struct gv_mig_placement placement;
};

/* The memory slices a placement covers; 0 when it reaches beyond slice 31. */
uint32_t gv_mig_placement_mask(const struct gv_mig_placement *p);
/* The union of the instances' memory slices. */
uint32_t gv_mig_occupied(const struct gv_mig_instance *inst, size_t n);

/* The placements of p that do not touch an occupied slice, in p's order. Writes them to buf
 * when buf is not NULL (buf holds p->n_placements entries) and returns how many there are. */
size_t gv_mig_free_placements(const struct gv_mig_gi_profile *p, uint32_t occupied,
                              struct gv_mig_placement *buf);

/* Check an existing layout: each placement is one its profile allows and lies inside the GPU,
 * no two instances share a memory slice, instance counts per profile and per GPU and the
 * compute slices are within the limits. -EINVAL with an error naming the offending instances. */
int gv_mig_layout_check(const struct gv_mig_geometry *g, const struct gv_mig_instance *inst,
                        size_t n, struct gv_error **err);

/*
 * Choose a placement for every wanted profile so that they all fit beside the existing
 * instances. Larger profiles are placed first, so the order of wanted does not matter (the MUG
 * known issue: `-cgi 19,19,14,9` fails on the driver, planned as a set it succeeds). Among all
 * arrangements it picks the one that keeps the most future capacity: first the largest profile
 * still placeable afterwards, then the number of free placements of every profile that can still
 * be added, then (tie) the one packing smaller instances towards slice 0.
 *
 * ret_placements (n_wanted entries, in wanted's order) is written only on success. Failures:
 * -ENOSPC with an error that names the profile that cannot be placed and why: its placements
 * and the existing/planned instances holding their slices, a per-profile instance count, the
 * GPU's instance limit, or the compute slices; -EINVAL when the existing layout is invalid.
 */
int gv_mig_plan(const struct gv_mig_geometry *g, const struct gv_mig_instance *existing,
                size_t n_existing, const struct gv_mig_gi_profile *const *wanted, size_t n_wanted,
                struct gv_mig_placement *ret_placements, struct gv_error **err);

/* "0-3:4g.40gb 4-5:2g.20gb 6:1g.10gb 7:free"; newly allocated. */
char *gv_mig_layout_format(const struct gv_mig_geometry *g, const struct gv_mig_instance *inst,
                           size_t n);
/* "0-3" or "6": the memory slices of a placement, into buf (at least 24 bytes). */
char *gv_mig_placement_format(const struct gv_mig_placement *p, char *buf, size_t size);
