/* SPDX-License-Identifier: MIT */
/*
 * bench-license — what a licence admission costs a VM start at cluster scale (issue 8,
 * BENCHMARKS.md "Licence admission"), beside the store read it cannot do without, in one run.
 *
 *   bench-license [--vms N] [--pools P] [--runs R]
 *
 * Seats are derived from the VMs' documents on every decision (src/controller/license.c), not
 * booked: that keeps them right across crashes, moves and restarts, and costs a read of every
 * VM per admission. This measures that cost.
 *
 * Setup (untimed): a fresh SQLite store in a temporary directory holds N running VMs, each with
 * a placement like the controller writes (a vGPU of a Q- or C-series type, 8 VMs per GPU,
 * 8 GPUs per host) and P pools (vws per VM, nvaie per GPU, then more vws pools), big enough
 * that the VM admitted gets a seat. A controller runs in this process on that store (no hosts).
 *
 * Timed, R times each, alternating:
 *   admit     gv_ctl_license_admit() for one more VM (read pools and VMs, order, assign)
 *   read      gv_store_list() of the VMs alone: the baseline, the read any derivation needs
 *   view      gv_controller_licenses(): the whole GET /api/v1/licenses document, with costs
 *
 * Every admission must answer 0 (a seat free). Exit status: 0 measured, 1 setup or a check
 * failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "stats.h"
#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"

static const char *prog = "bench-license";


static json_t *vm_doc(unsigned i)
{
        unsigned gpu = i / 8, host = gpu / 8;
        char name[32], hostname[32], pci[32];
        snprintf(name, sizeof(name), "vm-%05u", i);
        snprintf(hostname, sizeof(hostname), "node-%04u", host);
        snprintf(pci, sizeof(pci), "0000:%02x:00.0", 0x18 + gpu % 8);
        const char *type = i % 2 ? "H100XM-10C" : "L40S-4Q";
        return json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:[{s:s, s:s, s:s}]}, s:I, "
                         "s:I}",
                         "name", name, "state", "running", "host", hostname, "spec", "name",
                         name, "tenant", i % 3 ? "team-a" : "team-b", "placement", "host",
                         hostname, "gpus", "alloc", "vgpu", "name", type, "pci", pci,
                         "created_at", (json_int_t)(1700000000 + i), "seat_since",
                         (json_int_t)(1700000000000LL + i));
}

static void print_stats(const char *what, const uint64_t *s, size_t n)
{
        struct bench_stats st = bench_stats_of(s, n);
        printf("%-6s p50 %8.3f ms  p90 %8.3f ms  p99 %8.3f ms  min %8.3f ms\n", what, st.p50,
               st.p90, st.p99, st.min);
}

int main(int argc, char **argv)
{
        unsigned vms = 5000, pools = 8, runs = 30;
        static const struct option options[] = {
                { "vms", required_argument, NULL, 'v' },
                { "pools", required_argument, NULL, 'p' },
                { "runs", required_argument, NULL, 'r' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'v':
                        if (bench_parse_uint(prog, "--vms", optarg, 1, 100000, &vms) != 0)
                                return 2;
                        break;
                case 'p':
                        if (bench_parse_uint(prog, "--pools", optarg, 2, 1000, &pools) != 0)
                                return 2;
                        break;
                case 'r':
                        if (bench_parse_uint(prog, "--runs", optarg, 1, 10000, &runs) != 0)
                                return 2;
                        break;
                default:
                        return bench_usage_error(prog, "unknown option");
                }
        }
        if (optind < argc)
                return bench_usage_error(prog, "unexpected argument '%s'", argv[optind]);

        char dir[] = "/tmp/bench-license.XXXXXX";
        if (!mkdtemp(dir))
                return bench_fail(prog, "mkdtemp: %m");
        _cleanup_free_ char *url = xasprintf("sqlite:%s/gpuvirt.db", dir);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_controller *ctl = NULL;
        uint64_t *t_admit = xnew0(uint64_t, runs), *t_read = xnew0(uint64_t, runs);
        uint64_t *t_view = xnew0(uint64_t, runs);
        int rc = 1, r;

        /* The store, filled in batches of 500 */
        struct gv_store *st = NULL;
        r = gv_store_open(url, &st, &e);
        for (unsigned i = 0; r >= 0 && i < vms; i += 500) {
                unsigned n = vms - i < 500 ? vms - i : 500;
                struct gv_store_write w[500];
                json_t *docs[500];
                char keys[500][32];
                for (unsigned k = 0; k < n; k++) {
                        docs[k] = vm_doc(i + k);
                        snprintf(keys[k], sizeof(keys[k]), "%s",
                                 json_string_value(json_object_get(docs[k], "name")));
                        w[k] = (struct gv_store_write){ .op = GV_STORE_CREATE,
                                                        .kind = GV_STORE_VM, .key = keys[k],
                                                        .doc = docs[k] };
                }
                r = gv_store_write(st, w, n, &e);
                for (unsigned k = 0; k < n; k++)
                        json_decref(docs[k]);
        }
        for (unsigned p = 0; r >= 0 && p < pools; p++) {
                char name[32];
                snprintf(name, sizeof(name), "pool-%03u", p);
                /* pool-000: vws for every Q VM; pool-001: nvaie per GPU; the rest: vws spares */
                _cleanup_json_ json_t *doc = json_pack(
                        "{s:s, s:s, s:I, s:s, s:s, s:b, s:b, s:n, s:f, s:s}", "name", name,
                        "edition", p == 1 ? "nvaie" : "vws", "seats", (json_int_t)vms + 10,
                        "policy", "enforce", "counting", p == 1 ? "gpu" : "vm", "passthrough",
                        0, "mig", 0, "term", "price_per_seat_year", 2400.0, "currency", "USD");
                r = gv_store_create(st, GV_STORE_LICENSE, name, doc, NULL, &e);
        }
        gv_store_free(st);
        if (r < 0) {
                bench_fail(prog, "store: %s", gv_error_msg(e, r));
                goto out;
        }
        struct gv_controller_config cc = { .store_url = url, .metrics_interval_ms = 60000 };
        r = gv_controller_new(&cc, &ctl, &e);
        if (r < 0) {
                bench_fail(prog, "controller: %s", gv_error_msg(e, r));
                goto out;
        }

        bench_print_machine();
        printf("%u VMs on %u GPUs, %u pools, %u runs each, alternating\n", vms, (vms + 7) / 8,
               pools, runs);
        for (unsigned i = 0; i < runs; i++) {
                _cleanup_json_ json_t *newvm = vm_doc(vms + i);
                uint64_t t0 = bench_now_ns();
                r = gv_ctl_license_admit(ctl, newvm, &e);
                t_admit[i] = bench_now_ns() - t0;
                if (r < 0) {
                        bench_fail(prog, "admission refused: %s", gv_error_msg(e, r));
                        goto out;
                }
                struct gv_store_obj *objs = NULL;
                size_t n = 0;
                t0 = bench_now_ns();
                r = gv_store_list(ctl->store, GV_STORE_VM, &objs, &n, &e);
                t_read[i] = bench_now_ns() - t0;
                gv_store_objs_free(objs, n);
                if (r < 0 || n != vms) {
                        bench_fail(prog, "read %zu VMs of %u: %s", n, vms, gv_error_msg(e, r));
                        goto out;
                }
                t0 = bench_now_ns();
                _cleanup_json_ json_t *view = gv_controller_licenses(ctl);
                t_view[i] = bench_now_ns() - t0;
                json_t *p0 = json_array_get(json_object_get(view, "pools"), 0);
                if (json_integer_value(json_object_get(p0, "used")) < 1) {
                        bench_fail(prog, "the view counts no seats in %s", json_string_value(
                                                   json_object_get(p0, "name")));
                        goto out;
                }
        }
        print_stats("admit", t_admit, runs);
        print_stats("read", t_read, runs);
        print_stats("view", t_view, runs);
        struct bench_stats a = bench_stats_of(t_admit, runs), b = bench_stats_of(t_read, runs);
        printf("admission p50 %.3f ms = the VM read's %.3f ms × %.2f (+%.3f ms to order and "
               "assign %u VMs)\n", a.p50, b.p50, b.p50 > 0 ? a.p50 / b.p50 : 0, a.p50 - b.p50,
               vms);
        rc = 0;
out:
        gv_controller_free(ctl);
        free(t_admit);
        free(t_read);
        free(t_view);
        (void)gv_rm_rf(dir);
        return rc;
}
