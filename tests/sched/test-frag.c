/* SPDX-License-Identifier: MIT */
/*
 * test-frag: the FGD fragmentation measure (src/sched/frag.h) against the rules of
 * ../shared/reference/scheduling.md §3, the typical-shape set, and the incremental cache
 * against a from-scratch computation over random changes.
 */
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <string.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "sched/frag.h"

static void test_rules(void **state)
{
        uint32_t free4[] = { 1000, 300, 0, 700 };
        struct gv_frag_host h = { .cpu_free_milli = 8000, .model = 1, .n_gpus = 4,
                                  .gpu_free_milli = free4 };
        struct gv_frag_shape cpu_only = { .cpu_milli = 1000 };
        struct gv_frag_shape half = { .cpu_milli = 1000, .num_gpu = 1, .gpu_milli = 500 };
        struct gv_frag_shape two = { .cpu_milli = 1000, .num_gpu = 2, .gpu_milli = 1000 };
        struct gv_frag_shape other_model = { .cpu_milli = 1000, .num_gpu = 1, .gpu_milli = 100,
                                             .model_mask = 1u << 0 };
        struct gv_frag_shape this_model = other_model;
        struct gv_frag_shape big_cpu = { .cpu_milli = 9000, .num_gpu = 1, .gpu_milli = 100 };

        (void)state;
        this_model.model_mask = 1u << 1;
        /* no GPU asked: all free milli is fragment */
        assert_true(gv_frag_host_shape(&cpu_only, &h) == 2000);
        /* fits: GPUs with free < 500 are fragment (300 + 0) */
        assert_true(gv_frag_host_shape(&half, &h) == 300);
        /* two whole GPUs: only one GPU is whole -> cannot host -> everything */
        assert_true(gv_frag_host_shape(&two, &h) == 2000);
        /* model not allowed -> everything; allowed -> the GPUs below 100 (only the 0 one) */
        assert_true(gv_frag_host_shape(&other_model, &h) == 2000);
        assert_true(gv_frag_host_shape(&this_model, &h) == 0);
        /* CPU short -> everything */
        assert_true(gv_frag_host_shape(&big_cpu, &h) == 2000);

        {
                struct gv_frag_shape set[] = { half, cpu_only };
                set[0].weight = 0.75;
                set[1].weight = 0.25;
                assert_true(gv_frag_host_amount(set, 2, &h) == 0.75 * 300 + 0.25 * 2000);
        }
}

static void test_typical(void **state)
{
        struct gv_frag_shape reqs[20];
        _cleanup_free_ struct gv_frag_shape *typ = NULL;
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        size_t n = 0, k = 0;

        (void)state;
        /* 10 x A, 6 x B, 3 x C, 1 x D */
        for (int i = 0; i < 10; i++)
                reqs[k++] = (struct gv_frag_shape){ .cpu_milli = 4000, .num_gpu = 1,
                                                    .gpu_milli = 1000, .weight = 1 };
        for (int i = 0; i < 6; i++)
                reqs[k++] = (struct gv_frag_shape){ .cpu_milli = 2000, .num_gpu = 1,
                                                    .gpu_milli = 500, .weight = 1 };
        for (int i = 0; i < 3; i++)
                reqs[k++] = (struct gv_frag_shape){ .cpu_milli = 1000, .weight = 1 };
        reqs[k++] = (struct gv_frag_shape){ .cpu_milli = 1000, .num_gpu = 8, .gpu_milli = 1000,
                                            .weight = 1 };
        /* 80 % needs A and B (16 of 20); 95 % needs A, B, C (19 of 20) */
        assert_int_equal(gv_frag_typical_shapes(reqs, k, 80, &typ, &n, &err), 0);
        assert_int_equal(n, 2);
        assert_int_equal(typ[0].cpu_milli, 4000);
        assert_true(typ[0].weight > 0.62 && typ[0].weight < 0.63); /* 10/16 */
        free(typ);
        typ = NULL;
        assert_int_equal(gv_frag_typical_shapes(reqs, k, 95, &typ, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_int_equal(typ[2].num_gpu, 0);
        assert_true(typ[0].weight + typ[1].weight + typ[2].weight > 0.999999);
        free(typ);
        typ = NULL;
        assert_int_equal(gv_frag_typical_shapes(reqs, k, 100, &typ, &n, &err), 0);
        assert_int_equal(n, 4);

        /* bad input is refused with a reason */
        reqs[0].gpu_milli = 1500;
        assert_int_equal(gv_frag_typical_shapes(reqs, k, 95, &typ, &n, &err), -EINVAL);
        assert_non_null(err);
        assert_non_null(strstr(err->msg, "1..1000"));
        err = gv_error_free(err);
        reqs[0].gpu_milli = 1000;
        assert_int_equal(gv_frag_typical_shapes(reqs, k, 0, &typ, &n, &err), -EINVAL);
}

/* The cache's "after" value equals a from-scratch computation, for random hosts and changes. */
static void test_cache_random(void **state)
{
        struct gv_frag_shape shapes[6] = {
                { .cpu_milli = 8000, .num_gpu = 1, .gpu_milli = 1000, .weight = 0.3 },
                { .cpu_milli = 4000, .num_gpu = 1, .gpu_milli = 470, .weight = 0.2 },
                { .cpu_milli = 2000, .num_gpu = 1, .gpu_milli = 230, .weight = 0.15 },
                { .cpu_milli = 16000, .num_gpu = 4, .gpu_milli = 1000, .weight = 0.1 },
                { .cpu_milli = 1000, .weight = 0.15 },
                { .cpu_milli = 2000, .num_gpu = 1, .gpu_milli = 810, .model_mask = 2,
                  .weight = 0.1 },
        };
        _cleanup_(gv_frag_table_freep) struct gv_frag_table *t = NULL;
        unsigned seed = 12345;

        (void)state;
        assert_int_equal(gv_frag_table_new(shapes, 6, 4, &t, NULL), 0);
        for (int iter = 0; iter < 5000; iter++) {
                uint32_t freev[8], after[8], old[3], new[3];
                size_t idx[3], n_changed;
                struct gv_frag_host h = { .n_gpus = 1 + rand_r(&seed) % 8,
                                          .model = rand_r(&seed) % 3,
                                          .cpu_free_milli = rand_r(&seed) % 64000,
                                          .gpu_free_milli = freev };
                struct gv_frag_host ha = h;
                uint32_t take = rand_r(&seed) % 20000;
                size_t host = rand_r(&seed) % 4;
                double want, got;

                for (unsigned g = 0; g < h.n_gpus; g++)
                        freev[g] = (rand_r(&seed) % 3 == 0) ? 1000 : rand_r(&seed) % 1001;
                gv_frag_table_update(t, host, &h);
                assert_true(t->hosts[host].frag - gv_frag_host_amount(shapes, 6, &h) < 1e-9);
                assert_true(gv_frag_host_amount(shapes, 6, &h) - t->hosts[host].frag < 1e-9);

                memcpy(after, freev, sizeof(freev));
                n_changed = 1 + rand_r(&seed) % MIN(3u, h.n_gpus);
                for (size_t k = 0; k < n_changed; k++) {
                        idx[k] = k; /* distinct GPUs */
                        old[k] = freev[idx[k]];
                        new[k] = rand_r(&seed) % (old[k] + 1);
                        after[idx[k]] = new[k];
                }
                ha.gpu_free_milli = after;
                ha.cpu_free_milli = h.cpu_free_milli >= take ? h.cpu_free_milli - take : 0;
                want = gv_frag_host_amount(shapes, 6, &ha);
                got = gv_frag_table_after(t, host, take, old, new, n_changed);
                assert_true(fabs(want - got) < 1e-6);
        }
        /* the total is the sum over hosts */
        {
                double sum = 0;
                for (size_t i = 0; i < 4; i++)
                        sum += t->hosts[i].frag;
                assert_true(fabs(sum - gv_frag_table_total(t)) < 1e-9);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rules),
                cmocka_unit_test(test_typical),
                cmocka_unit_test(test_cache_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
