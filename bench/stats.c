/* SPDX-License-Identifier: MIT */
/*
 * stats.c — benchmark figures (stats.h).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "stats.h"
#include "util/alloc.h"

uint64_t bench_now_ns(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return (x > y) - (x < y);
}

uint64_t bench_percentile(const uint64_t *sorted, size_t n, unsigned pct)
{
        size_t rank = (n * pct + 99) / 100;
        if (rank == 0)
                rank = 1;
        return sorted[rank - 1];
}

struct bench_stats bench_stats_of(const uint64_t *samples, size_t n)
{
        _cleanup_free_ uint64_t *s = xreallocarray(NULL, n, sizeof(*s));
        double sum = 0;

        memcpy(s, samples, n * sizeof(*s));
        qsort(s, n, sizeof(*s), cmp_u64);
        for (size_t i = 0; i < n; i++)
                sum += (double)s[i];
        return (struct bench_stats){
                .p50 = (double)bench_percentile(s, n, 50) / BENCH_NSEC_PER_MSEC,
                .p90 = (double)bench_percentile(s, n, 90) / BENCH_NSEC_PER_MSEC,
                .p99 = (double)bench_percentile(s, n, 99) / BENCH_NSEC_PER_MSEC,
                .min = (double)s[0] / BENCH_NSEC_PER_MSEC,
                .max = (double)s[n - 1] / BENCH_NSEC_PER_MSEC,
                .mean = sum / (double)n / BENCH_NSEC_PER_MSEC,
        };
}
