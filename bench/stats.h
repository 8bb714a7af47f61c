/* SPDX-License-Identifier: MIT */
/*
 * stats.h — what the latency benchmarks report of their samples (BENCHMARKS.md): nearest-rank
 * percentiles, minimum, maximum and mean, in milliseconds, of nanosecond samples taken on
 * CLOCK_MONOTONIC.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define BENCH_NSEC_PER_MSEC 1000000.0

struct bench_stats {
        double p50, p90, p99, min, max, mean; /* milliseconds */
};

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);
/* Nearest rank: the smallest sample with at least pct% of the samples at or below it. `sorted`
 * is ascending, n >= 1. */
uint64_t bench_percentile(const uint64_t *sorted, size_t n, unsigned pct);
/* The figures of n >= 1 samples (not changed: a sorted copy is made). */
struct bench_stats bench_stats_of(const uint64_t *samples, size_t n);
