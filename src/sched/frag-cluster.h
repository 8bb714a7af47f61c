/* SPDX-License-Identifier: MIT */
/*
 * frag-cluster.h — the fragmentation cache (frag.h) kept for a placement cluster: how a host
 * looks in the share world, and a table of per-host fragmentation that rebuilds and follows
 * host changes. Shared by the policies that score with the FGD measure (fgd, gpuvirt).
 */
#pragma once

#include "sched/frag.h"
#include "sched/sched.h"

/* Free share-world milli of GPU id g: a GPU held in another mode (vGPU, MIG) has none. */
uint32_t gv_frag_share_free(const struct gv_sched_cluster *c, uint32_t g);

/* Host id as the measure sees it; buf (GV_FRAG_MAX_GPUS entries) holds its GPUs' free milli. */
void gv_frag_host_view(const struct gv_sched_cluster *c, uint32_t id, uint32_t *buf,
                       struct gv_frag_host *ret);

/* Replace *table by one for these shapes with room for every host of c (twice the hosts, so
 * hosts added later rarely force a rebuild), filled from the cluster. */
int gv_frag_table_rebuild(const struct gv_sched_cluster *c, struct gv_frag_table **table,
                          const struct gv_frag_shape *shapes, size_t n_shapes,
                          struct gv_error **err);

/* Follow a change of host (reserve, release, a host added): refresh its entry, or grow the
 * table when the host lies past its room. Nothing to do while *table is NULL. */
void gv_frag_table_host_changed(const struct gv_sched_cluster *c, struct gv_frag_table **table,
                                uint32_t host);
