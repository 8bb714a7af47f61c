/* SPDX-License-Identifier: MIT */
/*
 * fuzz-trace-csv — the openb trace reader (bench/place/openb.c): a node list and a pod list
 * (CSV, columns found by header name), then the workload the benchmark replays from them.
 *
 * The input is split at the first byte 0x1e (ASCII record separator): the node list before it,
 * the pod list after it (checked against the nodes' GPU models). When both parse, the workload
 * is built from them at the benchmark's default tune ratio (1.3) with a fixed seed, and its
 * length checked against what openb.h promises.
 */
#include <string.h>

#include "../bench/place/openb.h"
#include "fuzz.h"
#include "util/alloc.h"

/* Building a workload costs up to 1,000 draws per pod: keep an input's run short. */
#define WORKLOAD_PODS_MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nodes, *pods;
        size_t n_nodes, n_pods;
        fuzz_split(data, size, "\x1e", &nodes, &n_nodes, &pods, &n_pods);

        _cleanup_free_ char *ntext = fuzz_strndup(nodes, n_nodes);
        _cleanup_free_ char *ptext = fuzz_strndup(pods, n_pods);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct openb_cluster c = {};
        if (openb_cluster_parse("nodes.csv", ntext, &c, &e) < 0)
                return 0;
        if (c.n_models > OPENB_MAX_MODELS)
                fuzz_fail("%zu GPU models, more than %d", c.n_models, OPENB_MAX_MODELS);
        for (size_t i = 0; i < c.n_nodes; i++)
                if (c.nodes[i].model >= c.n_models && c.nodes[i].gpus > 0)
                        fuzz_fail("node %zu has model index %u of %zu", i, c.nodes[i].model,
                                  c.n_models);

        struct openb_pods p = {};
        if (openb_pods_parse("pods.csv", ptext, &c, &p, &e) >= 0) {
                for (size_t i = 0; i < p.n_pods; i++)
                        if (p.pods[i].num_gpu == 0 && p.pods[i].gpu_milli != 0)
                                fuzz_fail("pod %zu asks for no GPU but %u milli-GPU", i,
                                          p.pods[i].gpu_milli);
                if (p.n_pods > 0 && p.n_pods <= WORKLOAD_PODS_MAX) {
                        struct openb_workload w = {};
                        _cleanup_(gv_error_freep) struct gv_error *we = NULL;
                        if (openb_workload_build(&p, c.total_gpus * 1000, 1.3, 42, &w, &we) >=
                            0) {
                                if (w.n_trace > p.n_pods || w.n < w.n_trace)
                                        fuzz_fail("workload of %zu with %zu from a trace of %zu",
                                                  w.n, w.n_trace, p.n_pods);
                                openb_workload_done(&w);
                        }
                }
                openb_pods_done(&p);
        }
        openb_cluster_done(&c);
        return 0;
}
