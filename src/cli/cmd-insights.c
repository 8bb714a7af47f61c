/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt insights [--window 1h] [--threshold 5] [--json]`: the controller's utilization
 * insights (GET /api/v1/insights, docs/insights.md): idle pass-through GPUs and what converting
 * them would free and cost, MIG fragmentation with re-layout plans, licence seats held by idle
 * VMs. The evidence of every idle entry is printed with it: a stopped VM is certain, a VM's CPU
 * is a proxy (a pass-through GPU's own utilization cannot be read by the host).
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/* "12:03" today, "Jun 10 12:03" otherwise; "before the window" for null. */
static char *fmt_since(const json_t *o)
{
        const json_t *v = json_object_get(o, "since");
        if (!json_is_integer(v))
                return xstrdup("before the window");
        time_t s = (time_t)(json_integer_value(v) / 1000), now = time(NULL);
        struct tm tm, tn;
        char b[32];
        if (!localtime_r(&s, &tm) || !localtime_r(&now, &tn))
                return xstrdup("?");
        strftime(b, sizeof b,
                 tm.tm_yday == tn.tm_yday && tm.tm_year == tn.tm_year ? "%H:%M:%S" : "%b %d %H:%M",
                 &tm);
        return xstrdup(b);
}

/* "VM stopped (certain)", "VM CPU 1.2% (proxy)", "GPU 0.4%", "host down (unknown)". */
static char *fmt_evidence(const json_t *o)
{
        const char *e = jstr(o, "evidence");
        double v = json_number_value(json_object_get(o, "value"));
        bool has = json_is_number(json_object_get(o, "value"));
        if (!e)
                return xstrdup("?");
        if (strcmp(e, "vm-stopped") == 0)
                return xasprintf("VM %s (certain)", jstr(o, "state") ?: "stopped");
        if (strcmp(e, "vm-unknown") == 0)
                return xstrdup("VM state unknown (host down)");
        if (strcmp(e, "vm-cpu") == 0)
                return has ? xasprintf("VM CPU %.1f%% (proxy)", v) : xstrdup("VM CPU (proxy)");
        if (strcmp(e, "gpu-util") == 0)
                return has ? xasprintf("GPU %.1f%%", v) : xstrdup("GPU");
        return xstrdup(e);
}

static char *fmt_cost(const json_t *o)
{
        const json_t *cost = json_object_get(o, "cost_per_year");
        if (json_is_number(cost))
                return xasprintf("%.2f %s/year", json_number_value(cost),
                                 jstr(o, "currency") ?: "");
        return xstrdup("cost unknown");
}

/* "MIG 7× 1g.10gb, no licence · vGPU 8× H100XM-10C, nvaie 8 seats, cost unknown" */
static char *fmt_convert(const json_t *conv)
{
        _cleanup_strv_free_ char **parts = NULL;
        const json_t *o;
        size_t i;
        json_array_foreach(conv, i, o) {
                _cleanup_free_ char *cost = fmt_cost(o);
                json_int_t n = json_integer_value(json_object_get(o, "instances"));
                if (strcmp(jstr(o, "mode") ?: "", "mig") == 0) {
                        if (strcmp(jstr(o, "licence") ?: "", "none") == 0)
                                strv_consume(&parts, xasprintf("MIG %lld× %s, no licence",
                                                               (long long)n, jstr(o, "profile")));
                        else
                                strv_consume(&parts,
                                             xasprintf("MIG %lld× %s, %s %lld seats, %s",
                                                       (long long)n, jstr(o, "profile"),
                                                       jstr(o, "edition") ?: "?",
                                                       (long long)json_integer_value(
                                                               json_object_get(o, "seats")),
                                                       cost));
                } else {
                        strv_consume(&parts,
                                     xasprintf("vGPU %lld× %s, %s %lld seat%s, %s", (long long)n,
                                               jstr(o, "type"), jstr(o, "edition") ?: "?",
                                               (long long)json_integer_value(
                                                       json_object_get(o, "seats")),
                                               json_integer_value(json_object_get(o, "seats")) ==
                                                               1
                                                       ? ""
                                                       : "s",
                                               cost));
                }
        }
        return parts ? strv_join(parts, " · ") : xstrdup("—");
}

static void print_passthrough(const json_t *list)
{
        printf("Idle pass-through GPUs (their utilization is not visible to the host)\n");
        if (json_array_size(list) == 0) {
                printf("  none\n\n");
                return;
        }
        static const char *const headers[] = { "GPU", "MODEL", "VM", "EVIDENCE", "SINCE",
                                               "FREES", "CONVERT", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *o;
        size_t i;
        json_array_foreach(list, i, o) {
                _cleanup_free_ char *gpu = xasprintf("%s %s", jstr(o, "host") ?: "?",
                                                     jstr(o, "gpu") ?: "?");
                _cleanup_free_ char *ev = fmt_evidence(o), *since = fmt_since(o);
                const json_t *mem = json_object_get(json_object_get(o, "frees"), "memory_mib");
                _cleanup_free_ char *frees = json_is_integer(mem)
                                                     ? gv_fmt_mib((uint64_t)json_integer_value(mem))
                                                     : xstrdup("1 GPU");
                _cleanup_free_ char *conv = fmt_convert(json_object_get(o, "convert"));
                gv_table_add_rowf(t, gpu, jstr(o, "model"), jstr(o, "vm"), ev, since, frees,
                                  conv);
        }
        gv_table_print(t, stdout);
        printf("\n");
}

static void print_fragmentation(const json_t *list)
{
        printf("MIG fragmentation\n");
        if (json_array_size(list) == 0) {
                printf("  no GPU holds MIG instances\n\n");
                return;
        }
        static const char *const headers[] = { "GPU", "LAYOUT", "FRAG", "LARGEST FREE",
                                               "VERDICT", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *o;
        size_t i;
        json_array_foreach(list, i, o) {
                _cleanup_free_ char *gpu = xasprintf("%s %s", jstr(o, "host") ?: "?",
                                                     jstr(o, "gpu") ?: "?");
                const json_t *m = json_object_get(o, "measure");
                _cleanup_free_ char *frag = json_is_number(m)
                                                    ? xasprintf("%.3f", json_number_value(m))
                                                    : xstrdup("—");
                gv_table_add_rowf(t, gpu, jstr(o, "layout"), frag,
                                  jstr(o, "largest_free_profile") ?: "none", jstr(o, "verdict"));
        }
        gv_table_print(t, stdout);
        json_array_foreach(list, i, o) {
                const json_t *plan = json_object_get(o, "plan"), *mv;
                size_t k;
                printf("  %s %s: %s\n", jstr(o, "host") ?: "?", jstr(o, "gpu") ?: "?",
                       jstr(o, "why") ?: "");
                if (!json_is_object(plan))
                        continue;
                json_array_foreach(json_object_get(plan, "moves"), k, mv) {
                        bool live = json_is_true(json_object_get(mv, "needs_live_migration"));
                        bool direct = json_is_true(json_object_get(mv, "direct"));
                        printf("    %lld. %s %s: slices %s → %s%s%s\n",
                               (long long)json_integer_value(json_object_get(mv, "step")),
                               jstr(mv, "vm") ?: "(no VM)", jstr(mv, "profile") ?: "?",
                               jstr(mv, "from_slices") ?: "?", jstr(mv, "to_slices") ?: "?",
                               live ? " (live migration)" : " (VM not running: no migration)",
                               direct ? "" : ", parked on another GPU first");
                }
                printf("    afterwards: %s\n", jstr(plan, "layout") ?: "?");
        }
        printf("\n");
}

static void print_seats(const json_t *list)
{
        printf("Licence seats held by idle VMs\n");
        if (json_array_size(list) == 0) {
                printf("  none\n");
                return;
        }
        static const char *const headers[] = { "POOL", "VM", "STATE", "EVIDENCE", "SINCE",
                                               "COST/MONTH", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *o;
        size_t i;
        json_array_foreach(list, i, o) {
                _cleanup_free_ char *ev = fmt_evidence(o), *since = fmt_since(o);
                const json_t *c = json_object_get(o, "cost_per_month");
                _cleanup_free_ char *cost = json_is_number(c)
                                                    ? xasprintf("%.2f", json_number_value(c))
                                                    : xstrdup("—");
                gv_table_add_rowf(t, jstr(o, "pool"), jstr(o, "vm"), jstr(o, "state"), ev, since,
                                  cost);
        }
        gv_table_print(t, stdout);
}

static int insights(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "insights [--window 5m|15m|1h|6h|24h] [--threshold PCT] [--json]";
        static const char *const windows[] = { "5m", "15m", "1h", "6h", "24h", NULL };
        enum { OPT_WINDOW = GV_CLI_OPT_FIRST_OWN, OPT_THRESHOLD };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "window", required_argument, NULL, OPT_WINDOW },
                { "threshold", required_argument, NULL, OPT_THRESHOLD },
                {},
        };
        const char *window = "1h", *threshold = "5";
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_WINDOW) {
                        if (!strv_contains((char *const *)windows, optarg))
                                return gv_cli_usage_error("--window '%s' is not one of 5m, 15m, "
                                                          "1h, 6h, 24h", optarg);
                        window = optarg;
                } else if (c == OPT_THRESHOLD) {
                        threshold = optarg; /* the controller checks it (0..100) */
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc != optind)
                return gv_cli_usage_error("'%s' is not an option of insights; usage: gpuvirt %s",
                                          argv[optind], usage);

        _cleanup_free_ char *t = gv_cli_url_escape(threshold);
        _cleanup_free_ char *path = xasprintf("/api/v1/insights?window=%s&threshold=%s", window,
                                              t);
        json_t *body = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &body, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(body);
                return GV_EXIT_OK;
        }
        _cleanup_json_ json_t *b = body;
        printf("Insights over %s (idle: under %g%% on average)\n\n", jstr(b, "window") ?: window,
               json_number_value(json_object_get(b, "threshold")));
        print_passthrough(json_object_get(b, "idle_passthrough"));
        print_fragmentation(json_object_get(b, "fragmentation"));
        print_seats(json_object_get(b, "idle_seats"));
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_insights_commands[] = {
        { "insights", "", "[--window 1h] [--threshold 5]",
          "idle pass-through GPUs, MIG fragmentation with re-layout plans, idle licence seats",
          insights },
        {},
};
