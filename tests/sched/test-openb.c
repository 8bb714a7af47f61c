/* SPDX-License-Identifier: MIT */
/*
 * test-openb: the openb CSV reader of bench/place (errors naming file, row and column; unknown
 * GPU models) and the artefact's workload protocol (shuffle, tune to 1.3 x capacity).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "openb.h"
#include "util/alloc.h"

static const char nodes_csv[] = "sn,cpu_milli,memory_mib,gpu,model\n"
                                "n0,64000,262144,2,P100\n"
                                "n1,96000,786432,8,G2\r\n"
                                "n2,32000,131072,1,T4\n";

static int parse_nodes(const char *text, struct openb_cluster *c, struct gv_error **err)
{
        _cleanup_free_ char *dup = xstrdup(text);
        return openb_cluster_parse("nodes.csv", dup, c, err);
}

static int parse_pods(const char *text, const struct openb_cluster *c, struct openb_pods *p,
                      struct gv_error **err)
{
        _cleanup_free_ char *dup = xstrdup(text);
        return openb_pods_parse("pods.csv", dup, c, p, err);
}

static void expect_error(int r, struct gv_error **err, const char *needle)
{
        assert_int_equal(r, -EINVAL);
        assert_non_null(*err);
        if (!strstr((*err)->msg, needle))
                fail_msg("error '%s' does not say '%s'", (*err)->msg, needle);
        *err = gv_error_free(*err);
}

static void test_nodes(void **state)
{
        struct openb_cluster c = {};
        struct gv_error *err = NULL;

        (void)state;
        assert_int_equal(parse_nodes(nodes_csv, &c, &err), 0);
        assert_int_equal(c.n_nodes, 3);
        assert_int_equal(c.total_gpus, 11);
        assert_int_equal(c.n_models, 3);
        assert_string_equal(c.models[c.nodes[1].model], "G2");
        assert_int_equal(c.nodes[1].memory_mib, 786432);
        openb_cluster_done(&c);

        /* header-driven: columns in another order, an extra column */
        assert_int_equal(parse_nodes("model,gpu,extra,sn,memory_mib,cpu_milli\nT4,2,x,a,1,2\n",
                                     &c, &err), 0);
        assert_int_equal(c.nodes[0].gpus, 2);
        assert_int_equal(c.nodes[0].cpu_milli, 2);
        openb_cluster_done(&c);

        expect_error(parse_nodes("sn,cpu_milli,memory_mib,model\nn0,1,1,T4\n", &c, &err), &err,
                     "no 'gpu' column");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2\n", &c, &err),
                     &err, "row 2 has 4 fields");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,T4\nn1,x1,1,2,"
                                 "T4\n", &c, &err),
                     &err, "row 3, column 'cpu_milli': 'x1'");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\nn0,-1,1,2,T4\n", &c, &err),
                     &err, "column 'cpu_milli'");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\n", &c, &err), &err,
                     "no nodes");
        expect_error(parse_nodes("", &c, &err), &err, "empty");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\n\"n0\",1,1,2,T4\n", &c,
                                 &err), &err, "quoted");
        expect_error(parse_nodes("sn,cpu_milli,memory_mib,gpu,model\nn0,1,1,2,T4\n\nn1,1,1,1,"
                                 "T4\n", &c, &err), &err, "row 3 is empty");
}

static void test_pods(void **state)
{
        struct openb_cluster c = {};
        struct openb_pods p = {};
        struct gv_error *err = NULL;
        const char *hdr = "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos\n";
        _cleanup_free_ char *ok = NULL, *unknown = NULL;

        (void)state;
        assert_int_equal(parse_nodes(nodes_csv, &c, &err), 0);
        ok = xasprintf("%sp0,12000,16384,1,470,,LS\np1,4000,100,0,500,,BE\n"
                       "p2,1,1,8,1000,G2|T4,LS\n", hdr);
        assert_int_equal(parse_pods(ok, &c, &p, &err), 0);
        assert_int_equal(p.n_pods, 3);
        assert_int_equal(p.pods[0].gpu_milli, 470);
        assert_int_equal(p.pods[1].gpu_milli, 0); /* CPU-only: share ignored */
        assert_int_equal(openb_pod_total_milli(&p.pods[2]), 8000);
        assert_int_equal(p.pods[2].model_mask, (1u << 1) | (1u << 2));
        openb_pods_done(&p);

        unknown = xasprintf("%sp0,1,1,1,1000,V100M32,LS\n", hdr);
        expect_error(parse_pods(unknown, &c, &p, &err), &err,
                     "row 2, column 'gpu_spec': unknown GPU model 'V100M32'; the node list has "
                     "P100, G2, T4");
        {
                _cleanup_free_ char *t = xasprintf("%sp0,1,1,1,0,,LS\n", hdr);
                expect_error(parse_pods(t, &c, &p, &err), &err, "column 'gpu_milli'");
        }
        {
                _cleanup_free_ char *t = xasprintf("%sp0,1,1,2,500,,LS\n", hdr);
                expect_error(parse_pods(t, &c, &p, &err), &err, "only single-GPU pods");
        }
        {
                _cleanup_free_ char *t = xasprintf("%sp0,1,1,1,1001,,LS\n", hdr);
                expect_error(parse_pods(t, &c, &p, &err), &err, "1..1000");
        }
        expect_error(parse_pods("name,cpu_milli,num_gpu,gpu_milli\np,1,1,1\n", &c, &p, &err),
                     &err, "no 'memory_mib' column");
        openb_cluster_done(&c);
}

/* tuneUpPods: the trace part is a permutation, the appended pods come from the trace, the total
 * stays within ratio x capacity, and the seed decides the order. */
static void test_workload(void **state)
{
        struct openb_pods p = { .n_pods = 100 };
        struct openb_workload a = {}, b = {}, d = {};
        uint64_t cap = 10 * 1000, total = 0;
        int seen[100] = {};

        (void)state;
        p.pods = xnew0(struct openb_pod, p.n_pods);
        for (size_t i = 0; i < p.n_pods; i++) {
                p.pods[i].name = xasprintf("pod-%03zu", i);
                p.pods[i].cpu_milli = 1000;
                p.pods[i].num_gpu = i % 10 == 0 ? 0 : 1;
                p.pods[i].gpu_milli = i % 10 == 0 ? 0 : (i % 2 ? 100 : 50);
        }
        assert_int_equal(openb_workload_build(&p, cap, 1.3, 42, &a, NULL), 0);
        assert_int_equal(a.n_trace, 100);
        assert_true(a.n > a.n_trace);
        for (size_t i = 0; i < a.n; i++) {
                assert_true(a.seq[i] >= p.pods && a.seq[i] < p.pods + p.n_pods);
                total += openb_pod_total_milli(a.seq[i]);
                if (i < a.n_trace)
                        seen[a.seq[i] - p.pods]++;
        }
        for (size_t i = 0; i < 100; i++)
                assert_int_equal(seen[i], 1);
        assert_true(total <= 13000);
        assert_true(total > 13000 - 100);
        assert_int_equal(openb_workload_build(&p, cap, 1.3, 42, &b, NULL), 0);
        assert_int_equal(a.n, b.n);
        assert_memory_equal(a.seq, b.seq, a.n * sizeof(*a.seq));
        assert_int_equal(openb_workload_build(&p, cap, 1.3, 43, &d, NULL), 0);
        assert_memory_not_equal(a.seq, d.seq, 100 * sizeof(*a.seq));
        openb_workload_done(&d);
        /* tune down: a ratio below the trace's demand removes pods */
        assert_int_equal(openb_workload_build(&p, cap, 0.2, 42, &d, NULL), 0);
        total = 0;
        for (size_t i = 0; i < d.n; i++)
                total += openb_pod_total_milli(d.seq[i]);
        assert_true(d.n < 100 && total <= 2000);
        openb_workload_done(&a);
        openb_workload_done(&b);
        openb_workload_done(&d);
        openb_pods_done(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nodes),
                cmocka_unit_test(test_pods),
                cmocka_unit_test(test_workload),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
