/* SPDX-License-Identifier: MIT */
/*
 * ceiling.h — how high can any placement policy get on an openb trace under the published
 * protocol (every arrival placed once if it fits, never moved, no departures)?
 *
 * `bench-place --ceiling` replays each seed's workload on a *GPU pool*: the cluster's GPUs with
 * hosts, CPU, memory and GPU models taken away (a whole-GPU pod needs N empty GPUs anywhere).
 * On that pool it prints, per seed and as the mean:
 *   - best-fit's allocation ratio at the last arrival (130 %), the reference the engine's policies
 *     compare with (they also have hosts and CPU to respect);
 *   - a clairvoyant rollout policy: at every share decision it tries the best-fit GPU, an empty
 *     GPU and the next few fuller-than-needed free levels, plays the *actual* rest of the
 *     workload with best-fit from each, and keeps the best (so it is never below best-fit);
 *   - for the share shape that strands the most (the one above 500 milli with the largest
 *     count x leftover, 810 on `default`): how many of its pods best-fit and worst-fit accept,
 *     the allocation an oracle would reach if it could refuse that shape's pods beyond k (the
 *     rest best-fit), and the largest k that would still reach the target;
 *   - a proven upper bound on the pool: while fewer GPUs than the pool has have been asked for,
 *     some GPU is still empty, so every such pod of the shape before that point is accepted and
 *     leaves (1000 - milli) that only pods of at most that size can fill.
 * docs/placement.md ("The 96.5 % target") reads the figures.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "openb.h"
#include "util/error.h"

struct ceiling_options {
        const char *trace_name;
        const uint64_t *seeds;
        size_t n_seeds;
        double tune;   /* workload = tune x capacity, as the benchmark builds it */
        double target; /* percent at the last arrival, e.g. 96.5 */
};

int ceiling_run(const struct openb_pods *trace, const struct openb_cluster *c,
                const struct ceiling_options *o, struct gv_error **err);
