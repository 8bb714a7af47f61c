/* SPDX-License-Identifier: MIT */
/*
 * test-advise: the mode advisor's core (src/advise/advise.c, docs/advisor.md), one table row per
 * claim of the trade-off table (../shared/DESIGN.md) and of the catalog's facts: what ranks
 * first for a kind of workload, which mode ranks above which, what a rule rules out, what a
 * model cannot offer, what seats cost; then bad traits, each refused naming its member.
 *
 * Options are named "MODE/MODEL/PROFILE" (PROFILE "-" for pass-through); an expectation names a
 * prefix of that ("mig", "vgpu/L40S/L40S-2Q").
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "advise/advise.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

static struct gv_catalog *cat;

static int setup(void **state _unused_)
{
        struct gv_error *e = NULL;
        int r = gv_catalog_load_default(&cat, &e);
        if (r < 0)
                fail_msg("catalog: %s", gv_error_msg(e, r));
        return 0;
}

static int teardown(void **state _unused_)
{
        gv_catalog_free(cat);
        return 0;
}

struct row {
        const char *name;
        const char *traits;   /* JSON */
        const char *cluster;  /* "MODEL:COUNT,..." */
        const char *price;    /* "EDITION:PRICE:COUNTING" (PRICE -1: a pool without a price) */
        /* expectations (NULL / 0: not checked) */
        int err;              /* the traits are refused with this errno */
        const char *err_has;  /* ... and this in the message */
        const char *first;    /* rank 1 */
        const char *order;    /* "a>b>c": the best option named a ranks above b's, ... */
        const char *excluded[2]; /* "MODE:RULE" or "MODE:RULE:TEXT IN THE REASON" */
        const char *absent;   /* no option named so */
        const char *none_has; /* no option at all, and this says why */
        const char *reason;   /* "NAME:TEXT": the best option named NAME has TEXT in a reason */
        const char *cost;     /* "NAME:SEATS:COST" of the best option named NAME; COST "null" */
};

#define H100 "H100-SXM5-80GB"
#define MIXED H100 ":8,L40S:4"

static const struct row rows[] = {
        /* ---- best for (DESIGN.md, first row) ---- */
        { .name = "training: pass-through first",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 40960}", .cluster = MIXED,
          .first = "passthrough", .order = "passthrough/L40S>passthrough/" H100 ">mig>vgpu",
          .reason = "passthrough:best for LLM training" },
        { .name = "training, 1 GiB: pass-through first even with most of the card idle",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1024}", .cluster = H100 ":8",
          .first = "passthrough", .reason = "passthrough:78.6 GiB of its 79.6 GiB idle" },
        { .name = "simulation: pass-through first",
          .traits = "{\"kind\": \"simulation\", \"gpu_memory_mib\": 20480, \"users\": 2}",
          .cluster = H100 ":8", .first = "passthrough", .reason = "passthrough:share one VM" },
        { .name = "VDI: a Q-series vGPU first, B-series next, pass-through below",
          .traits = "{\"kind\": \"vdi\", \"gpu_memory_mib\": 2048, \"users\": 20}",
          .cluster = "L40S:4", .first = "vgpu/L40S/L40S-2Q", .order = "vgpu/L40S/L40S-2Q>"
          "vgpu/L40S/L40S-2B", .excluded = { "mig:no-mig:L40S has no MIG",
                                             "passthrough:capacity:needs 20 L40S GPUs" } },
        { .name = "VDI on a mixed cluster: the L40S's Q-series, not the H100's compute types",
          .traits = "{\"kind\": \"vdi\", \"gpu_memory_mib\": 4096, \"users\": 2}",
          .cluster = MIXED, .first = "vgpu/L40S/L40S-4Q", .order = "vgpu>passthrough",
          .absent = "vgpu/" H100, .excluded = { "mig:series:MIG-backed vGPU",
                                                "vgpu:series:no time-sliced Q-series" } },
        { .name = "VDI on H100s only: every mode ruled out, each with its rule",
          .traits = "{\"kind\": \"vdi\", \"gpu_memory_mib\": 2048, \"users\": 20}",
          .cluster = H100 ":8", .none_has = "Every mode is ruled out",
          .excluded = { "vgpu:series", "passthrough:capacity" } },
        { .name = "development: vGPU first",
          .traits = "{\"kind\": \"development\", \"gpu_memory_mib\": 8192, \"users\": 4}",
          .cluster = H100 ":8", .first = "vgpu/" H100 "/H100XM-8C",
          .reason = "vgpu:best for developer access" },
        { .name = "multi-tenant hardware isolation: MIG first, time-sliced vGPU ruled out",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"isolation\": "
                    "\"hardware\", \"users\": 3}",
          .cluster = MIXED, .first = "mig/" H100 "/1g.20gb", .order = "mig>passthrough",
          .absent = "vgpu", .reason = "mig:best for multi-tenant isolation",
          .excluded = { "vgpu:isolation-hardware:rules out time-sliced vGPU (software "
                        "isolation)" } },
        { .name = "multi-tenant hardware isolation for developers: MIG first",
          .traits = "{\"kind\": \"development\", \"gpu_memory_mib\": 10240, \"isolation\": "
                    "\"hardware\", \"users\": 4}",
          .cluster = H100 ":8", .first = "mig/" H100 "/1g.10gb", .absent = "vgpu" },
        { .name = "inference with a strict SLA: MIG and pass-through above time-sliced vGPU",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"latency_sla\": "
                    "\"strict\", \"users\": 3}",
          .cluster = H100 ":8", .first = "mig", .order = "mig>passthrough>vgpu",
          .reason = "vgpu:varies under contention" },
        { .name = "inference with a strict SLA, one replica, on L40S and H100",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 16384, \"latency_sla\": "
                    "\"strict\"}",
          .cluster = MIXED, .order = "passthrough>vgpu", .first = "mig" },
        { .name = "best-effort multi-user inference: vGPU is offered",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .order = "vgpu>passthrough",
          .reason = "vgpu:vGPU is best for multi-user inference" },
        /* ---- live migration (DESIGN.md: pass-through no; vGPU yes; MIG as MIG-backed) ---- */
        { .name = "live migration rules out pass-through",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 40960, \"live_migration\": "
                    "true}",
          .cluster = H100 ":8", .absent = "passthrough",
          .excluded = { "passthrough:live-migration:rules out pass-through" },
          .reason = "mig:as MIG-backed vGPU" },
        { .name = "live migration and hardware isolation: MIG only",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 40960, \"live_migration\": "
                    "true, \"isolation\": \"hardware\"}",
          .cluster = MIXED, .first = "mig/" H100 "/3g.40gb", .absent = "passthrough",
          .excluded = { "vgpu:isolation-hardware", "passthrough:live-migration" } },
        /* ---- hardware (catalog facts) ---- */
        { .name = "an L40S-only cluster never offers MIG",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 8192, \"isolation\": "
                    "\"hardware\", \"users\": 2}",
          .cluster = "L40S:4", .first = "passthrough/L40S", .absent = "mig",
          .excluded = { "mig:no-mig:L40S has no MIG", "vgpu:isolation-hardware" } },
        { .name = "a GPU without vGPU types (GeForce) offers pass-through only",
          .traits = "{\"kind\": \"development\", \"gpu_memory_mib\": 8192}",
          .cluster = "GeForce-RTX-3090:1", .first = "passthrough", .absent = "vgpu",
          .excluded = { "vgpu:no-vgpu:no vGPU types", "mig:no-mig" } },
        { .name = "more memory than every GPU: no option, and why",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 204800}", .cluster = MIXED,
          .none_has = "more than any GPU of the cluster has (the largest: " H100 ", 80 GiB)",
          .excluded = { "passthrough:memory:needs 200 GiB", "mig:memory:the largest, 7g.80gb" } },
        { .name = "more memory than an H100, less than an H200: the H200",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 122880}",
          .cluster = H100 ":8,H200-SXM-141GB:2", .first = "passthrough/H200-SXM-141GB",
          .absent = "passthrough/" H100, .excluded = { "passthrough:memory:A " H100 " has" } },
        { .name = "sizes as NVIDIA names them: 20G is a 1g.20gb and an H100XM-20C",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8",
          .reason = "mig:2g.20gb has the same memory with 2 compute slices instead of 1",
          .order = "vgpu/" H100 "/H100XM-20C>passthrough" },
        { .name = "more instances than GPUs for one per VM: capacity",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 40960, \"users\": 10}",
          .cluster = H100 ":8", .absent = "passthrough",
          .excluded = { "passthrough:capacity:needs 10 " H100 " GPUs" } },
        { .name = "models restrict the options",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 8192, \"models\": "
                    "[\"l40s\"]}",
          .cluster = MIXED, .first = "vgpu/L40S", .absent = "mig" },
        { .name = "a model the cluster lacks: ruled out by name",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 8192, \"models\": "
                    "[\"A100-SXM4-80GB\"]}",
          .cluster = H100 ":8", .none_has = "no GPU of the models asked for",
          .excluded = { "mig:model-absent:no A100-SXM4-80GB GPU" } },
        { .name = "an empty cluster",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 8192}", .cluster = "",
          .none_has = "no GPU the catalog knows" },
        /* ---- licence cost (vgpu.md §12; licensing.h) ---- */
        { .name = "cost = seats × price, counted per VM",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .price = "nvaie:4500:vm",
          .cost = "vgpu:3:13500", .reason = "vgpu:$13,500/yr at the configured price" },
        { .name = "counting gpu: one seat per GPU (3 vGPUs on one GPU)",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .price = "nvaie:4500:gpu", .cost = "vgpu:1:4500" },
        { .name = "counting gpu: 6 vGPUs of 4 per GPU take 2 GPUs, 2 seats",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 6}",
          .cluster = H100 ":8", .price = "nvaie:4500:gpu", .cost = "vgpu:2:9000" },
        { .name = "no pool: no price invented",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .cost = "vgpu:3:null",
          .reason = "vgpu:gpuvirt invents no price" },
        { .name = "a pool without a price: no cost",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .price = "nvaie:-1:vm", .cost = "vgpu:3:null",
          .reason = "vgpu:no price_per_seat_year" },
        { .name = "VDI's Q-series is priced from the vWS pools",
          .traits = "{\"kind\": \"vdi\", \"gpu_memory_mib\": 2048, \"users\": 4}",
          .cluster = "L40S:1", .price = "vws:250:vm", .cost = "vgpu/L40S/L40S-2Q:4:1000" },
        { .name = "pass-through and MIG hold no seat",
          .traits = "{\"kind\": \"inference\", \"gpu_memory_mib\": 20480, \"users\": 3}",
          .cluster = H100 ":8", .price = "nvaie:4500:vm", .cost = "mig:0:0",
          .reason = "mig:MIG-backed vGPU H100XM-1-20C; where a licence pool counts it, that is 3 "
                    "seats of nvaie, $13,500/yr" },
        { .name = "pass-through holds no seat",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 20480}",
          .cluster = H100 ":8", .price = "nvaie:4500:vm", .cost = "passthrough:0:0" },
        /* ---- bad traits: refused, naming the member and the valid values ---- */
        { .name = "not an object", .traits = "[]", .err = EINVAL, .err_has = "JSON object" },
        { .name = "no kind", .traits = "{\"gpu_memory_mib\": 1024}", .err = EINVAL,
          .err_has = "kind: required, one of training, inference, vdi, development, "
                     "simulation" },
        { .name = "unknown kind", .traits = "{\"kind\": \"gaming\", \"gpu_memory_mib\": 1}",
          .err = EINVAL, .err_has = "kind: 'gaming' is not one of training, inference, vdi, "
                                    "development, simulation" },
        { .name = "kind not a string", .traits = "{\"kind\": 3, \"gpu_memory_mib\": 1}",
          .err = EINVAL, .err_has = "kind: a string, one of" },
        { .name = "no memory", .traits = "{\"kind\": \"training\"}", .err = EINVAL,
          .err_has = "gpu_memory_mib: required" },
        { .name = "memory as a size string",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": \"20G\"}", .err = EINVAL,
          .err_has = "gpu_memory_mib: '20G' is a string" },
        { .name = "memory 0", .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 0}",
          .err = EINVAL, .err_has = "gpu_memory_mib: the GPU memory one instance needs in MiB, "
                                    "an integer from 1 to 1048576" },
        { .name = "memory negative",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": -5}", .err = EINVAL,
          .err_has = "gpu_memory_mib:" },
        { .name = "unknown isolation",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"isolation\": "
                    "\"strong\"}",
          .err = EINVAL, .err_has = "isolation: 'strong' is not one of none, software, "
                                    "hardware" },
        { .name = "live_migration not a boolean",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"live_migration\": "
                    "\"yes\"}",
          .err = EINVAL, .err_has = "live_migration: true or false" },
        { .name = "latency_sla as a boolean",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"latency_sla\": true}",
          .err = EINVAL, .err_has = "latency_sla: a string, one of best-effort, strict" },
        { .name = "unknown latency_sla",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"latency_sla\": "
                    "\"fast\"}",
          .err = EINVAL, .err_has = "latency_sla: 'fast' is not one of best-effort, strict" },
        { .name = "users 0",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"users\": 0}",
          .err = EINVAL, .err_has = "users: how many users or replicas, an integer from 1 to "
                                    "1024" },
        { .name = "users past the bound",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"users\": 1025}",
          .err = EINVAL, .err_has = "users:" },
        { .name = "models not a list",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"models\": \"L40S\"}",
          .err = EINVAL, .err_has = "models: a list" },
        { .name = "models holding a number",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"models\": [\"L40S\", "
                    "1]}",
          .err = EINVAL, .err_has = "models[1]: a GPU model name" },
        { .name = "a model the catalog does not know",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"models\": [\"H100\"]}",
          .cluster = H100 ":8", .err = EINVAL,
          .err_has = "models: 'H100' is not a GPU model of the catalog; valid: " },
        { .name = "an unknown member",
          .traits = "{\"kind\": \"training\", \"gpu_memory_mib\": 1, \"gpus\": 1}",
          .err = EINVAL, .err_has = "Unknown member 'gpus'; the traits are kind, "
                                    "gpu_memory_mib, isolation, live_migration, latency_sla, "
                                    "users, models" },
};

static char *name_of(const struct gv_advise_option *o)
{
        const char *p = o->gi ? o->gi->name : o->vgpu ? o->vgpu->name : "-";
        return xasprintf("%s/%s/%s", gv_advise_mode_to_string(o->mode), o->model->name, p);
}

/* The best-ranked option named by prefix, or -1. */
static int find(const struct gv_advise_result *r, const char *prefix, size_t len)
{
        for (size_t i = 0; i < r->n_options; i++) {
                _cleanup_free_ char *n = name_of(&r->options[i]);
                if (strncmp(n, prefix, len) == 0 && (n[len] == 0 || n[len] == '/' ||
                                                     prefix[len - 1] == '/'))
                        return (int)i;
        }
        return -1;
}

static char *dump(const struct gv_advise_result *r)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < r->n_options; i++) {
                _cleanup_free_ char *n = name_of(&r->options[i]);
                strv_consume(&l, xasprintf("%zu. %s (score %d)", i + 1, n, r->options[i].score));
        }
        for (size_t i = 0; i < r->n_excluded; i++)
                strv_consume(&l, xasprintf("x %s/%s %s: %s",
                                           gv_advise_mode_to_string(r->excluded[i].mode),
                                           r->excluded[i].model ? r->excluded[i].model->name
                                                                : "*",
                                           r->excluded[i].rule, r->excluded[i].reason));
        return strv_join(l, "\n  ");
}

static void run_row(const struct row *w)
{
        struct gv_advise_gpus gpus[8];
        struct gv_advise_price prices[_GV_LICENSE_EDITION_MAX] = { 0 };
        size_t n = 0;
        _cleanup_strv_free_ char **parts = strv_split(w->cluster ? w->cluster : "", ",");
        _cleanup_json_ json_t *tj = NULL;
        struct gv_error *e = NULL;
        struct gv_advise_traits t = { 0 };
        int r;

        print_message("row: %s\n", w->name);
        for (size_t i = 0; i < _GV_LICENSE_EDITION_MAX; i++)
                prices[i] = (struct gv_advise_price){ .price_per_seat_year = -1 };
        STRV_FOREACH(p, parts) {
                char *colon = strchr(*p, ':');
                assert_non_null(colon);
                *colon = 0;
                gpus[n].model = gv_catalog_find(cat, *p);
                if (!gpus[n].model)
                        fail_msg("%s: no model %s in the catalog", w->name, *p);
                assert_int_equal(gv_parse_u32(colon + 1, 10, &gpus[n++].count), 0);
        }
        if (w->price) {
                char ed[16], counting[8];
                double price;
                assert_int_equal(sscanf(w->price, "%15[^:]:%lf:%7s", ed, &price, counting), 3);
                int k = gv_license_edition_from_string(ed);
                assert_true(k >= 0);
                prices[k] = (struct gv_advise_price){
                        .pooled = true, .seats_free = 100, .price_per_seat_year = price,
                        .counting = gv_license_counting_from_string(counting),
                };
                strcpy(prices[k].currency, "USD");
        }

        tj = json_loads(w->traits, 0, NULL);
        if (!tj)
                fail_msg("%s: the row's traits are not JSON", w->name);
        r = gv_advise_traits_from_json(tj, &t, &e);
        struct gv_advise_input in = { .traits = &t, .gpus = gpus, .n_gpus = n,
                                      .prices = prices, .catalog = cat };
        _cleanup_(gv_advise_result_freep) struct gv_advise_result *res = NULL;
        if (r >= 0)
                r = gv_advise(&in, &res, &e);
        if (w->err) {
                if (r != -w->err)
                        fail_msg("%s: want -%d, got %d", w->name, w->err, r);
                assert_non_null(e);
                if (!strstr(e->msg, w->err_has))
                        fail_msg("%s: the error '%s' lacks '%s'", w->name, e->msg, w->err_has);
                gv_error_free(e);
                gv_advise_traits_done(&t);
                return;
        }
        if (r < 0)
                fail_msg("%s: %s", w->name, gv_error_msg(e, r));
        _cleanup_free_ char *d = dump(res);

        if (w->first) {
                int i = find(res, w->first, strlen(w->first));
                if (i != 0)
                        fail_msg("%s: want %s first, got:\n  %s", w->name, w->first, d);
        }
        if (w->order) {
                _cleanup_strv_free_ char **chain = strv_split(w->order, ">");
                for (size_t i = 0; chain[i] && chain[i + 1]; i++) {
                        int a = find(res, chain[i], strlen(chain[i]));
                        int b = find(res, chain[i + 1], strlen(chain[i + 1]));
                        if (a < 0 || b < 0 || a > b)
                                fail_msg("%s: want %s above %s, got:\n  %s", w->name, chain[i],
                                         chain[i + 1], d);
                }
        }
        for (size_t k = 0; k < ELEMENTSOF(w->excluded) && w->excluded[k]; k++) {
                _cleanup_strv_free_ char **x = strv_split(w->excluded[k], ":");
                bool hit = false;
                for (size_t i = 0; i < res->n_excluded && !hit; i++) {
                        const struct gv_advise_exclusion *ex = &res->excluded[i];
                        hit = strcmp(gv_advise_mode_to_string(ex->mode), x[0]) == 0 &&
                              strcmp(ex->rule, x[1]) == 0 && (!x[2] || strstr(ex->reason, x[2]));
                        if (hit)
                                assert_non_null(ex->source);
                }
                if (!hit)
                        fail_msg("%s: want the exclusion %s, got:\n  %s", w->name,
                                 w->excluded[k], d);
        }
        if (w->absent && find(res, w->absent, strlen(w->absent)) >= 0)
                fail_msg("%s: want no %s, got:\n  %s", w->name, w->absent, d);
        if (w->none_has) {
                if (res->n_options != 0 || !res->none || !strstr(res->none, w->none_has))
                        fail_msg("%s: want no option because '%s', got '%s':\n  %s", w->name,
                                 w->none_has, res->none ? res->none : "(null)", d);
        } else {
                if (res->n_options == 0 || res->none)
                        fail_msg("%s: want options, got none: %s", w->name,
                                 res->none ? res->none : "?");
        }
        if (w->reason) {
                const char *colon = strchr(w->reason, ':');
                int i = find(res, w->reason, (size_t)(colon - w->reason));
                bool hit = false;
                if (i < 0)
                        fail_msg("%s: no option %.*s:\n  %s", w->name, (int)(colon - w->reason),
                                 w->reason, d);
                STRV_FOREACH(s, res->options[i].reasons)
                        hit = hit || strstr(*s, colon + 1);
                if (!hit) {
                        _cleanup_free_ char *all = strv_join(res->options[i].reasons, "\n  ");
                        fail_msg("%s: no reason with '%s' in:\n  %s", w->name, colon + 1, all);
                }
        }
        if (w->cost) {
                _cleanup_strv_free_ char **x = strv_split(w->cost, ":");
                int i = find(res, x[0], strlen(x[0]));
                if (i < 0)
                        fail_msg("%s: no option %s:\n  %s", w->name, x[0], d);
                const struct gv_advise_license *l = &res->options[i].license;
                uint32_t seats;
                assert_int_equal(gv_parse_u32(x[1], 10, &seats), 0);
                assert_int_equal(l->seats, seats);
                if (strcmp(x[2], "null") == 0) {
                        assert_false(l->priced);
                        assert_non_null(l->note);
                } else if (l->edition < 0) {
                        assert_string_equal(x[2], "0");
                } else {
                        assert_true(l->priced);
                        assert_true(l->cost_per_year == strtod(x[2], NULL));
                }
        }

        /* every option is whole: a profile where the mode has one, instances, GPUs, a reason
         * from the mode's facts; JSON ranks in order */
        _cleanup_json_ json_t *j = gv_advise_result_to_json(res, &t);
        for (size_t i = 0; i < res->n_options; i++) {
                const struct gv_advise_option *o = &res->options[i];
                json_t *jo = json_array_get(json_object_get(j, "options"), i);
                assert_true(o->instances >= 1 && o->gpus >= 1 && o->reasons);
                assert_int_equal(json_integer_value(json_object_get(jo, "rank")), (int)i + 1);
                assert_true(o->mode == GV_ADVISE_PASSTHROUGH || o->vgpu);
                if (o->mode == GV_ADVISE_MIG) {
                        assert_non_null(o->gi);
                        assert_string_equal(o->vgpu->gi_profile, o->gi->name);
                        assert_non_null(json_object_get(jo, "as_vgpu"));
                }
                if (i > 0)
                        assert_true(res->options[i - 1].score >= o->score);
        }
        gv_advise_traits_done(&t);
}

static void test_rows(void **state _unused_)
{
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                run_row(&rows[i]);
}

/* An option that fits nowhere now ranks below every one that fits, whatever its score. */
static void test_sort_fit(void **state _unused_)
{
        struct gv_advise_gpus gpus[] = { { gv_catalog_find(cat, H100), 8 } };
        struct gv_advise_traits t = { .kind = GV_ADVISE_KIND_TRAINING, .gpu_memory_mib = 40960,
                                      .users = 1 };
        struct gv_advise_input in = { .traits = &t, .gpus = gpus, .n_gpus = 1 };
        _cleanup_(gv_advise_result_freep) struct gv_advise_result *r = NULL;
        assert_int_equal(gv_advise(&in, &r, NULL), 0);
        assert_true(r->n_options >= 3);
        assert_int_equal(r->options[0].mode, GV_ADVISE_PASSTHROUGH);
        int top = r->options[0].score;
        for (size_t i = 0; i < r->n_options; i++)
                r->options[i].fit = GV_ADVISE_FIT_NOW;
        r->options[0].fit = GV_ADVISE_FIT_NO_ROOM;
        gv_advise_sort(r);
        assert_int_equal(r->options[r->n_options - 1].mode, GV_ADVISE_PASSTHROUGH);
        assert_int_equal(r->options[r->n_options - 1].score, top);
        assert_int_not_equal(r->options[0].mode, GV_ADVISE_PASSTHROUGH);
        _cleanup_json_ json_t *j = gv_advise_result_to_json(r, &t);
        json_t *last = json_array_get(json_object_get(j, "options"), r->n_options - 1);
        assert_string_equal(json_string_value(json_object_get(last, "fit")), "no-room");
}

/* What one instance asks the engine for, per mode (the controller places these). */
static void test_requests(void **state _unused_)
{
        struct gv_advise_gpus gpus[] = { { gv_catalog_find(cat, H100), 8 } };
        struct gv_advise_traits t = { .kind = GV_ADVISE_KIND_INFERENCE,
                                      .gpu_memory_mib = 20480, .users = 3 };
        struct gv_advise_input in = { .traits = &t, .gpus = gpus, .n_gpus = 1 };
        _cleanup_(gv_advise_result_freep) struct gv_advise_result *r = NULL;
        bool seen[_GV_ADVISE_MODE_MAX] = { false };
        assert_int_equal(gv_advise(&in, &r, NULL), 0);
        for (size_t i = 0; i < r->n_options; i++) {
                const struct gv_advise_option *o = &r->options[i];
                _cleanup_json_ json_t *q = gv_advise_option_request(o);
                _cleanup_free_ char *s = json_dumps(q, JSON_SORT_KEYS | JSON_COMPACT);
                seen[o->mode] = true;
                switch (o->mode) {
                case GV_ADVISE_PASSTHROUGH:
                        /* the 3 replicas share one VM: one request */
                        assert_string_equal(s, "{\"count\":1,\"kind\":\"passthrough\"}");
                        assert_true(o->shared_vm);
                        assert_int_equal(gv_advise_requests(o), 1);
                        break;
                case GV_ADVISE_VGPU:
                        assert_string_equal(s, "{\"kind\":\"vgpu\",\"type\":\"H100XM-20C\"}");
                        assert_int_equal(gv_advise_requests(o), 3);
                        break;
                case GV_ADVISE_MIG:
                        assert_string_equal(s, "{\"kind\":\"mig\",\"profile\":\"1g.20gb\"}");
                        assert_string_equal(o->vgpu->name, "H100XM-1-20C");
                        assert_int_equal(o->gpus, 1);
                        assert_int_equal(gv_advise_requests(o), 3);
                        break;
                default:
                        fail();
                }
        }
        assert_true(seen[GV_ADVISE_PASSTHROUGH] && seen[GV_ADVISE_VGPU] && seen[GV_ADVISE_MIG]);
}

/* The enum tables: every value round-trips; unknown names are -EINVAL. */
static void test_names(void **state _unused_)
{
        for (int k = 0; k < _GV_ADVISE_KIND_MAX; k++)
                assert_int_equal(gv_advise_kind_from_string(gv_advise_kind_to_string(k)), k);
        for (int m = 0; m < _GV_ADVISE_MODE_MAX; m++)
                assert_int_equal(gv_advise_mode_from_string(gv_advise_mode_to_string(m)), m);
        assert_int_equal(gv_advise_latency_from_string("strict"), GV_ADVISE_LATENCY_STRICT);
        assert_int_equal(gv_advise_kind_from_string("gaming"), -EINVAL);
        assert_int_equal(gv_advise_latency_from_string(NULL), -EINVAL);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows),
                cmocka_unit_test(test_sort_fit),
                cmocka_unit_test(test_requests),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
