/* SPDX-License-Identifier: MIT */
/*
 * ceiling.c — what the protocol leaves to any policy on an openb trace (ceiling.h).
 *
 * The pool: free milli per GPU counted by level, cnt[f] = GPUs with exactly f milli free
 * (0..1000). Best-fit takes the smallest level >= the share; worst-fit the largest.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ceiling.h"
#include "util/alloc.h"

#define LEVELS 1001
#define ROLLOUT_LEVELS 4 /* fuller-than-needed levels tried beside best-fit and empty */

enum rule { RULE_BEST_FIT, RULE_WORST_FIT };

struct pool {
        uint32_t cnt[LEVELS];
};

static void pool_init(struct pool *p, uint64_t gpus)
{
        memset(p, 0, sizeof(*p));
        p->cnt[1000] = (uint32_t)gpus;
}

/* The level a share of m milli goes to under `rule`, or -1 when no GPU has m free. */
static int pool_level(const struct pool *p, uint32_t m, enum rule rule)
{
        if (rule == RULE_BEST_FIT) {
                for (uint32_t f = m; f < LEVELS; f++)
                        if (p->cnt[f])
                                return (int)f;
        } else {
                for (uint32_t f = 1000; f >= m && f <= 1000; f--)
                        if (p->cnt[f])
                                return (int)f;
        }
        return -1;
}

static void pool_take(struct pool *p, uint32_t level, uint32_t m)
{
        p->cnt[level]--;
        p->cnt[level - m]++;
}

/* Places one pod; returns the milli it got (0: refused). Whole-GPU pods need num_gpu empty
 * GPUs anywhere: the pool has no hosts. */
static uint64_t pool_place(struct pool *p, const struct openb_pod *pod, enum rule rule)
{
        if (!pod->num_gpu)
                return 0;
        if (pod->gpu_milli == 1000) {
                if (p->cnt[1000] < pod->num_gpu)
                        return 0;
                p->cnt[1000] -= pod->num_gpu;
                p->cnt[0] += pod->num_gpu;
                return (uint64_t)pod->num_gpu * 1000;
        }
        int f = pool_level(p, pod->gpu_milli, rule);
        if (f < 0)
                return 0;
        pool_take(p, (uint32_t)f, pod->gpu_milli);
        return pod->gpu_milli;
}

/* Replays seq[from..n) with `rule`; pods of `big` milli beyond `cap` accepted ones are refused
 * (the oracle; cap = SIZE_MAX: none). Returns the milli placed; *n_big counts accepted bigs. */
static uint64_t pool_replay(struct pool *p, const struct openb_pod *const *seq, size_t from,
                            size_t n, enum rule rule, uint32_t big, size_t cap, size_t *n_big)
{
        uint64_t used = 0;
        size_t k = 0;

        for (size_t i = from; i < n; i++) {
                const struct openb_pod *pod = seq[i];
                bool is_big = pod->num_gpu == 1 && pod->gpu_milli == big;

                if (is_big && k >= cap)
                        continue;
                uint64_t got = pool_place(p, pod, rule);
                if (got && is_big)
                        k++;
                used += got;
        }
        if (n_big)
                *n_big = k;
        return used;
}

/* The clairvoyant rollout over best-fit (see ceiling.h). Never below best-fit: the best-fit
 * choice is always a candidate and wins ties, so each step keeps a final value at least the
 * value of continuing with best-fit from there. */
static uint64_t pool_rollout(uint64_t gpus, const struct openb_pod *const *seq, size_t n)
{
        struct pool p, trial;
        uint64_t used = 0;

        pool_init(&p, gpus);
        for (size_t i = 0; i < n; i++) {
                const struct openb_pod *pod = seq[i];
                uint32_t m = pod->gpu_milli;
                int cand[ROLLOUT_LEVELS + 2];
                size_t nc = 0;

                if (pod->num_gpu != 1 || m == 1000) {
                        used += pool_place(&p, pod, RULE_BEST_FIT);
                        continue;
                }
                for (uint32_t f = m; f < LEVELS && nc < ROLLOUT_LEVELS + 1; f++)
                        if (p.cnt[f])
                                cand[nc++] = (int)f;
                if (p.cnt[1000] && (nc == 0 || cand[nc - 1] != 1000))
                        cand[nc++] = 1000;
                if (!nc)
                        continue;
                int best = cand[0];
                if (nc > 1) {
                        uint64_t best_v = 0;
                        for (size_t c = 0; c < nc; c++) {
                                trial = p;
                                pool_take(&trial, (uint32_t)cand[c], m);
                                uint64_t v = pool_replay(&trial, seq, i + 1, n, RULE_BEST_FIT, 0,
                                                         SIZE_MAX, NULL);
                                if (c == 0 || v > best_v) {
                                        best_v = v;
                                        best = cand[c];
                                }
                        }
                }
                pool_take(&p, (uint32_t)best, m);
                used += m;
        }
        return used;
}

/* The share shape above 500 milli that strands the most: count x (1000 - milli). */
static uint32_t stranding_shape(const struct openb_pods *trace)
{
        uint64_t count[1001] = { 0 };
        uint32_t best = 0;
        uint64_t best_w = 0;

        for (size_t i = 0; i < trace->n_pods; i++) {
                const struct openb_pod *p = &trace->pods[i];
                if (p->num_gpu == 1 && p->gpu_milli > 500 && p->gpu_milli < 1000)
                        count[p->gpu_milli]++;
        }
        for (uint32_t m = 501; m < 1000; m++)
                if (count[m] * (1000 - m) > best_w) {
                        best_w = count[m] * (1000 - m);
                        best = m;
                }
        return best;
}

/* The proven bound on the pool (ceiling.h): used milli at most capacity minus what the big
 * pods that must be accepted leave, less every pod that could fill beside them. */
static uint64_t pool_bound(uint64_t gpus, const struct openb_pod *const *seq, size_t n,
                           uint32_t big, size_t *ret_forced)
{
        uint64_t asked = 0, fill = 0, cap = gpus * 1000;
        size_t forced = 0;

        for (size_t i = 0; i < n; i++) {
                const struct openb_pod *pod = seq[i];
                if (!pod->num_gpu)
                        continue;
                if (pod->num_gpu == 1 && pod->gpu_milli <= 1000 - big)
                        fill += pod->gpu_milli;
                /* Fewer than `gpus` GPUs asked for before this pod: one is still empty. */
                if (asked < gpus && pod->num_gpu == 1 && pod->gpu_milli == big)
                        forced++;
                asked += pod->num_gpu;
        }
        *ret_forced = forced;
        uint64_t waste = (uint64_t)forced * (1000 - big);
        waste = waste > fill ? waste - fill : 0;
        return cap - waste;
}

struct seed_result {
        double best_fit, worst_fit, rollout, bound, cap_ratio[8];
        size_t big_best_fit, big_worst_fit, big_forced, big_needed;
};

static const size_t cap_steps[8] = { 1100, 1000, 950, 900, 850, 800, 700, 500 };

int ceiling_run(const struct openb_pods *trace, const struct openb_cluster *c,
                const struct ceiling_options *o, struct gv_error **err)
{
        _cleanup_free_ struct seed_result *res = xcalloc(o->n_seeds, sizeof(*res));
        uint64_t gpus = c->total_gpus, cap = gpus * 1000;
        uint32_t big = stranding_shape(trace);
        struct pool p;
        int r;

        if (!big)
                return gv_error_set(err, EINVAL, "Trace '%s' has no share above 500 milli; the "
                                    "ceiling analysis has nothing to measure.", o->trace_name);
        printf("ceiling: trace %s on a pool of %" PRIu64 " GPUs (no hosts, CPU, memory or "
               "models); workload %.2f x capacity; stranding shape %" PRIu32 " milli; target "
               "%.2f %%\n", o->trace_name, gpus, o->tune, big, o->target);
        printf("columns: allocation %% at the last arrival (best-fit, worst-fit, rollout, proven "
               "bound); %" PRIu32 "-milli pods accepted by best-fit and worst-fit, forced (the "
               "bound's), needed for the target; allocation %% of the oracle capping them at k\n",
               big);
        printf("%-6s %9s %9s %9s %9s | %6s %6s %6s %6s |", "seed", "best-fit", "worst-fit",
               "rollout", "bound", "bf", "wf", "forced", "need");
        for (size_t k = 0; k < ELEMENTSOF(cap_steps); k++)
                printf(" k=%-5zu", cap_steps[k]);
        printf("\n");

        for (size_t s = 0; s < o->n_seeds; s++) {
                _cleanup_(openb_workload_done) struct openb_workload w = { 0 };
                struct seed_result *x = &res[s];

                r = openb_workload_build(trace, cap, o->tune, o->seeds[s], &w, err);
                if (r < 0)
                        return r;

                pool_init(&p, gpus);
                x->best_fit = 100.0 * (double)pool_replay(&p, w.seq, 0, w.n, RULE_BEST_FIT, big,
                                                          SIZE_MAX, &x->big_best_fit) / (double)cap;
                pool_init(&p, gpus);
                x->worst_fit = 100.0 * (double)pool_replay(&p, w.seq, 0, w.n, RULE_WORST_FIT, big,
                                                           SIZE_MAX, &x->big_worst_fit) /
                               (double)cap;
                x->rollout = 100.0 * (double)pool_rollout(gpus, w.seq, w.n) / (double)cap;
                x->bound = 100.0 * (double)pool_bound(gpus, w.seq, w.n, big, &x->big_forced) /
                           (double)cap;
                for (size_t k = 0; k < ELEMENTSOF(cap_steps); k++) {
                        pool_init(&p, gpus);
                        x->cap_ratio[k] = 100.0 *
                                          (double)pool_replay(&p, w.seq, 0, w.n, RULE_BEST_FIT,
                                                              big, cap_steps[k], NULL) /
                                          (double)cap;
                }
                /* The largest cap that still reaches the target, in steps of 5 pods. */
                x->big_needed = 0;
                for (size_t k = x->big_best_fit; k > 0; k -= k >= 5 ? 5 : k) {
                        pool_init(&p, gpus);
                        double v = 100.0 *
                                   (double)pool_replay(&p, w.seq, 0, w.n, RULE_BEST_FIT, big, k,
                                                       NULL) / (double)cap;
                        if (v >= o->target) {
                                x->big_needed = k;
                                break;
                        }
                }

                /* What the figures must satisfy; a failure is a bug in this file. */
                if (x->rollout + 1e-9 < x->best_fit || x->best_fit > x->bound + 1e-9 ||
                    x->rollout > x->bound + 1e-9 || x->big_forced > x->big_best_fit ||
                    x->big_forced > x->big_worst_fit)
                        return gv_error_set(err, EPROTO, "ceiling: inconsistent figures for seed "
                                            "%" PRIu64 " (best-fit %.2f, rollout %.2f, bound "
                                            "%.2f, forced %zu, accepted %zu/%zu).", o->seeds[s],
                                            x->best_fit, x->rollout, x->bound, x->big_forced,
                                            x->big_best_fit, x->big_worst_fit);

                printf("%-6" PRIu64 " %9.2f %9.2f %9.2f %9.2f | %6zu %6zu %6zu %6zu |",
                       o->seeds[s], x->best_fit, x->worst_fit, x->rollout, x->bound,
                       x->big_best_fit, x->big_worst_fit, x->big_forced, x->big_needed);
                for (size_t k = 0; k < ELEMENTSOF(cap_steps); k++)
                        printf(" %7.2f", x->cap_ratio[k]);
                printf("\n");
                fflush(stdout);
        }

        struct seed_result m = { 0 };
        double nn = (double)o->n_seeds;
        double big_bf = 0, big_wf = 0, big_forced = 0, big_needed = 0;
        for (size_t s = 0; s < o->n_seeds; s++) {
                m.best_fit += res[s].best_fit / nn;
                m.worst_fit += res[s].worst_fit / nn;
                m.rollout += res[s].rollout / nn;
                m.bound += res[s].bound / nn;
                for (size_t k = 0; k < ELEMENTSOF(cap_steps); k++)
                        m.cap_ratio[k] += res[s].cap_ratio[k] / nn;
                big_bf += (double)res[s].big_best_fit / nn;
                big_wf += (double)res[s].big_worst_fit / nn;
                big_forced += (double)res[s].big_forced / nn;
                big_needed += (double)res[s].big_needed / nn;
        }
        printf("%-6s %9.2f %9.2f %9.2f %9.2f | %6.0f %6.0f %6.0f %6.0f |", "mean", m.best_fit,
               m.worst_fit, m.rollout, m.bound, big_bf, big_wf, big_forced, big_needed);
        for (size_t k = 0; k < ELEMENTSOF(cap_steps); k++)
                printf(" %7.2f", m.cap_ratio[k]);
        printf("\n");
        printf("ceiling: on the pool, best-fit reaches %.2f %% and the clairvoyant rollout %.2f %%; "
               "%.2f %% would need at most %.0f of the %" PRIu32 "-milli pods accepted, while "
               "best-fit accepts %.0f and worst-fit (which fills empty GPUs first, %.2f %%) "
               "still %.0f; proven upper bound %.2f %%.\n",
               m.best_fit, m.rollout, o->target, big_needed, big, big_bf, m.worst_fit, big_wf,
               m.bound);
        return 0;
}
