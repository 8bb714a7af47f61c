/* SPDX-License-Identifier: MIT */
/* `gpuvirt tenant list|show|create|set|delete`: tenants, their quotas against what their VMs
 * use, and the GPU pools they may be placed in (docs/api.md "tenant", docs/security.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define MIB (1024ull * 1024ull)

/* The quota's scalar dimensions: the option and --no-limit word, the API member, the words. */
static const struct dim {
        const char *opt;
        const char *key;
        const char *words;
        bool mib;
} dims[] = {
        { "vms", "vms", "VMs", false },
        { "vcpus", "vcpus", "vCPUs", false },
        { "memory", "memory_mib", "memory", true },
        { "gpus", "gpus", "whole GPUs", false },
        { "slices", "slices", "GPU slices", false },
};
#define N_DIMS ELEMENTSOF(dims)

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static char *fmt_amount(uint64_t n, bool mib)
{
        return mib ? gv_fmt_mib(n) : xasprintf("%llu", (unsigned long long)n);
}

/* "3/8", "3/∞" (no limit); memory in its units ("2 GiB/8 GiB"). */
static char *fmt_used_limit(const json_t *used, const json_t *limit, bool mib)
{
        _cleanup_free_ char *u = fmt_amount((uint64_t)json_integer_value(used), mib);
        if (!json_is_integer(limit))
                return xasprintf("%s/∞", u);
        _cleanup_free_ char *l = fmt_amount((uint64_t)json_integer_value(limit), mib);
        return xasprintf("%s/%s", u, l);
}

/* Every edition with a limit or in use: "vws 1/4, nvaie 2/∞"; "—" when none. */
static char *fmt_seats(const json_t *t)
{
        const json_t *lim = json_object_get(json_object_get(t, "quota"), "seats");
        const json_t *used = json_object_get(json_object_get(t, "usage"), "seats");
        _cleanup_free_ char *s = NULL;
        const char *e;
        json_t *v;
        json_object_foreach((json_t *)lim, e, v) {
                _cleanup_free_ char *c = fmt_used_limit(json_object_get(used, e), v, false);
                char *x = xasprintf("%s%s%s %s", s ? s : "", s ? ", " : "", e, c);
                free(s);
                s = x;
        }
        json_object_foreach((json_t *)used, e, v) {
                if (json_object_get(lim, e))
                        continue;
                _cleanup_free_ char *c = fmt_used_limit(v, NULL, false);
                char *x = xasprintf("%s%s%s %s", s ? s : "", s ? ", " : "", e, c);
                free(s);
                s = x;
        }
        return s ? TAKE_PTR(s) : xstrdup("—");
}

/* "a, b"; "any" when the tenant may use every pool. */
static char *fmt_pools(const json_t *t)
{
        const json_t *pools = json_object_get(t, "gpu_pools"), *p;
        if (!json_is_array(pools))
                return xstrdup("any");
        if (json_array_size(pools) == 0)
                return xstrdup("none");
        _cleanup_free_ char *s = NULL;
        size_t i;
        json_array_foreach(pools, i, p) {
                char *x = xasprintf("%s%s%s", s ? s : "", s ? ", " : "",
                                    json_string_value(p) ?: "?");
                free(s);
                s = x;
        }
        return TAKE_PTR(s);
}

/* The quota in words: "4 VMs, 16 vCPUs, 64 GiB memory, vws seats 4"; "no limits". */
static char *fmt_quota(const json_t *t)
{
        const json_t *q = json_object_get(t, "quota");
        _cleanup_free_ char *s = NULL;
        for (size_t d = 0; d < N_DIMS; d++) {
                const json_t *v = json_object_get(q, dims[d].key);
                if (!json_is_integer(v))
                        continue;
                _cleanup_free_ char *a = fmt_amount((uint64_t)json_integer_value(v), dims[d].mib);
                char *x = xasprintf("%s%s%s %s", s ? s : "", s ? ", " : "", a, dims[d].words);
                free(s);
                s = x;
        }
        const char *e;
        json_t *v;
        json_object_foreach(json_object_get(q, "seats"), e, v) {
                char *x = xasprintf("%s%s%s seats %lld", s ? s : "", s ? ", " : "", e,
                                    (long long)json_integer_value(v));
                free(s);
                s = x;
        }
        return s ? TAKE_PTR(s) : xstrdup("no limits");
}

static char *tenant_path(const char *name)
{
        _cleanup_free_ char *e = gv_cli_url_escape(name);
        return xasprintf("/api/v1/tenants/%s", e);
}

static int tenant_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "tenant list [--json]";
        _cleanup_json_ json_t *tenants = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/tenants",
                                 "no tenants (gpuvirt tenant create NAME [--vcpus N ...] makes "
                                 "one)", &tenants);
        if (!tenants)
                return ex;
        static const char *const headers[] = { "NAME",   "VMS",    "VCPUS", "MEMORY", "GPUS",
                                               "SLICES", "SEATS", "POOLS",  NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *tn;
        json_array_foreach(tenants, i, tn) {
                const json_t *q = json_object_get(tn, "quota");
                const json_t *u = json_object_get(tn, "usage");
                char *cells[N_DIMS];
                for (size_t d = 0; d < N_DIMS; d++)
                        cells[d] = fmt_used_limit(json_object_get(u, dims[d].key),
                                                  json_object_get(q, dims[d].key), dims[d].mib);
                _cleanup_free_ char *seats = fmt_seats(tn), *pools = fmt_pools(tn);
                gv_table_add_rowf(t, jstr(tn, "name"), cells[0], cells[1], cells[2], cells[3],
                                  cells[4], seats, pools);
                for (size_t d = 0; d < N_DIMS; d++)
                        free(cells[d]);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* One row of the quota table: DIMENSION, USED, LIMIT, FREE. */
static void quota_row(struct gv_table *t, const char *what, const json_t *used,
                      const json_t *limit, bool mib)
{
        uint64_t u = (uint64_t)json_integer_value(used);
        _cleanup_free_ char *us = fmt_amount(u, mib);
        _cleanup_free_ char *ls = NULL, *fs = NULL;
        if (json_is_integer(limit)) {
                uint64_t l = (uint64_t)json_integer_value(limit);
                ls = fmt_amount(l, mib);
                fs = u >= l ? xstrdup(u > l ? "0 (over)" : "0") : fmt_amount(l - u, mib);
        }
        gv_table_add_rowf(t, what, us, ls ? ls : "no limit", fs ? fs : "—");
}

static int tenant_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "tenant show NAME [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *path = tenant_path(argv[idx]);
        _cleanup_json_ json_t *tn = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &tn, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(tn));
                return GV_EXIT_OK;
        }
        char when[32] = "—";
        json_int_t born = json_integer_value(json_object_get(tn, "created_at"));
        if (born > 0) {
                time_t s = born > 100000000000LL ? (time_t)(born / 1000) : (time_t)born;
                struct tm tm;
                if (localtime_r(&s, &tm))
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        }
        _cleanup_free_ char *pools = fmt_pools(tn);
        printf("tenant:      %s\n", jstr(tn, "name") ?: argv[idx]);
        if (jstr(tn, "description") && *jstr(tn, "description"))
                printf("description: %s\n", jstr(tn, "description"));
        printf("created:     %s\n", when);
        printf("gpu pools:   %s\n\n", json_is_array(json_object_get(tn, "gpu_pools"))
                                              ? pools
                                              : "any (every pool)");
        static const char *const headers[] = { "QUOTA", "USED", "LIMIT", "FREE", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *q = json_object_get(tn, "quota"), *u = json_object_get(tn, "usage");
        for (size_t d = 0; d < N_DIMS; d++)
                quota_row(t, dims[d].opt, json_object_get(u, dims[d].key),
                          json_object_get(q, dims[d].key), dims[d].mib);
        const json_t *lim = json_object_get(q, "seats"), *used = json_object_get(u, "seats");
        const char *e;
        json_t *v;
        json_object_foreach((json_t *)lim, e, v) {
                _cleanup_free_ char *w = xasprintf("seats %s", e);
                quota_row(t, w, json_object_get(used, e), v, false);
        }
        json_object_foreach((json_t *)used, e, v)
                if (!json_object_get(lim, e)) {
                        _cleanup_free_ char *w = xasprintf("seats %s", e);
                        quota_row(t, w, v, NULL, false);
                }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* What the options of create and set say; set applies it to the tenant as it is. */
struct change {
        json_t *quota;        /* members to set: dims' keys, "seats": {EDITION: N} */
        char **no_limit;      /* --no-limit words: a dimension, "seats" (all) or "seats:E" */
        json_t *pools;        /* --pool: the new list; NULL: kept */
        bool pools_any;       /* --pools-any */
        json_t *description;  /* NULL: kept */
};

static void change_done(struct change *c)
{
        json_decref(c->quota);
        strv_free(c->no_limit);
        json_decref(c->pools);
        json_decref(c->description);
}

static int parse_count(const char *opt, const char *s, uint64_t *ret)
{
        uint64_t n;
        if (gv_parse_u64(s, 10, &n) < 0 || n > INT64_MAX)
                return gv_cli_usage_error("--%s: a whole number from 0 (leave the option out, "
                                          "or --no-limit %s, for no limit), not '%s'", opt,
                                          opt, s);
        *ret = n;
        return GV_EXIT_OK;
}

/* "32G" → MiB; 0 allowed (nothing may be used); whole MiB. */
static int parse_memory(const char *s, uint64_t *ret)
{
        uint64_t bytes;
        if (gv_parse_size(s, &bytes) < 0)
                return gv_cli_usage_error("--memory '%s' is not a size such as 512M, 64G or 1T",
                                          s);
        if (bytes % MIB != 0)
                return gv_cli_usage_error("--memory '%s' is not a whole number of MiB (a bare "
                                          "number is bytes: write 64G or 512M)", s);
        *ret = bytes / MIB;
        return GV_EXIT_OK;
}

/* --seats EDITION=N (the controller checks the edition and names the valid ones). */
static int parse_seats(const char *s, json_t *quota)
{
        const char *eq = strchr(s, '=');
        uint64_t n;
        if (!eq || eq == s)
                return gv_cli_usage_error("--seats '%s': EDITION=N, e.g. --seats vws=4", s);
        _cleanup_free_ char *ed = xstrndup(s, (size_t)(eq - s));
        if (gv_parse_u64(eq + 1, 10, &n) < 0 || n > INT64_MAX)
                return gv_cli_usage_error("--seats '%s': the seats after '=' must be a whole "
                                          "number from 0, e.g. --seats %s=4", s, ed);
        json_t *seats = json_object_get(quota, "seats");
        if (!seats) {
                seats = json_object();
                json_object_set_new(quota, "seats", seats);
        }
        json_t *v = json_integer((json_int_t)n);
        if (json_object_set_new(seats, ed, v) < 0)
                return gv_cli_usage_error("--seats '%s': the edition is not valid UTF-8", s);
        return GV_EXIT_OK;
}

/* A dimension's word → its API member ("memory" → "memory_mib"); NULL when it is none. */
static const char *dim_key(const char *word)
{
        for (size_t d = 0; d < N_DIMS; d++)
                if (strcmp(word, dims[d].opt) == 0)
                        return dims[d].key;
        return NULL;
}

/* --no-limit DIM: a dimension's word, "seats" (every edition) or "seats:EDITION". */
static int parse_no_limit(const char *s, char ***no_limit)
{
        if (dim_key(s) || strcmp(s, "seats") == 0 || (gv_startswith(s, "seats:") && s[6])) {
                strv_extend(no_limit, s);
                return GV_EXIT_OK;
        }
        return gv_cli_usage_error("--no-limit '%s' (valid: vms, vcpus, memory, gpus, slices, "
                                  "seats, seats:EDITION)", s);
}

enum {
        OPT_DESCRIPTION = GV_CLI_OPT_FIRST_OWN, OPT_VMS, OPT_VCPUS, OPT_MEMORY, OPT_GPUS,
        OPT_SLICES, OPT_SEATS, OPT_POOL, OPT_NO_LIMIT, OPT_POOLS_ANY,
};

/* Parse create's (set: with_set) options into c; *ret_index the tenant's name. Returns -1 to
 * go on, else the exit code. */
static int parse_change(struct gv_cli *cli, int argc, char **argv, const char *usage,
                        bool with_set, struct change *c, int *ret_index)
{
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "description", required_argument, NULL, OPT_DESCRIPTION },
                { "vms", required_argument, NULL, OPT_VMS },
                { "vcpus", required_argument, NULL, OPT_VCPUS },
                { "memory", required_argument, NULL, OPT_MEMORY },
                { "gpus", required_argument, NULL, OPT_GPUS },
                { "slices", required_argument, NULL, OPT_SLICES },
                { "seats", required_argument, NULL, OPT_SEATS },
                { "pool", required_argument, NULL, OPT_POOL },
                { "no-limit", required_argument, NULL, OPT_NO_LIMIT },
                { "pools-any", no_argument, NULL, OPT_POOLS_ANY },
                {},
        };
        int opt, ex = -1;
        c->quota = json_object();
        optind = 0;
        opterr = 0;
        while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                uint64_t n = 0;
                int r = GV_EXIT_OK;
                switch (opt) {
                case OPT_DESCRIPTION:
                        json_decref(c->description);
                        c->description = json_string(optarg);
                        if (!c->description)
                                return gv_cli_usage_error("--description is not valid UTF-8");
                        break;
                case OPT_VMS:
                case OPT_VCPUS:
                case OPT_GPUS:
                case OPT_SLICES: {
                        const struct dim *d = &dims[opt == OPT_VMS     ? 0
                                                    : opt == OPT_VCPUS ? 1
                                                    : opt == OPT_GPUS  ? 3
                                                                       : 4];
                        r = parse_count(d->opt, optarg, &n);
                        if (r == GV_EXIT_OK)
                                json_object_set_new(c->quota, d->key, json_integer((json_int_t)n));
                        break;
                }
                case OPT_MEMORY:
                        r = parse_memory(optarg, &n);
                        if (r == GV_EXIT_OK)
                                json_object_set_new(c->quota, "memory_mib",
                                                    json_integer((json_int_t)n));
                        break;
                case OPT_SEATS:
                        r = parse_seats(optarg, c->quota);
                        break;
                case OPT_POOL:
                        if (!gv_name_is_valid(optarg))
                                return gv_cli_usage_error("--pool '%s' is not a pool name (1 to "
                                                          "63 of a-z 0-9 . _ -, starting with a "
                                                          "letter or digit)", optarg);
                        if (!c->pools)
                                c->pools = json_array();
                        json_array_append_new(c->pools, json_string(optarg));
                        break;
                case OPT_NO_LIMIT:
                case OPT_POOLS_ANY:
                        if (!with_set)
                                return gv_cli_usage_error("--%s is for 'gpuvirt tenant set' (a "
                                                          "new tenant has no limits and every "
                                                          "pool unless told); usage: gpuvirt %s",
                                                          opt == OPT_NO_LIMIT ? "no-limit"
                                                                              : "pools-any",
                                                          usage);
                        if (opt == OPT_POOLS_ANY)
                                c->pools_any = true;
                        else
                                r = parse_no_limit(optarg, &c->no_limit);
                        break;
                default:
                        if (gv_cli_api_option(cli, opt, usage, &ex)) {
                                if (ex >= 0)
                                        return ex;
                                break;
                        }
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
                if (r != GV_EXIT_OK)
                        return r;
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        if (!gv_name_is_valid(argv[optind]))
                return gv_cli_usage_error("'%s' is not a valid tenant name (1 to 63 of a-z 0-9 . "
                                          "_ -, starting with a letter or digit)", argv[optind]);
        if (c->pools && c->pools_any)
                return gv_cli_usage_error("--pool and --pools-any contradict each other: name "
                                          "the pools, or allow every pool");
        STRV_FOREACH(k, c->no_limit) {
                const char *ed = gv_startswith(*k, "seats:") ? *k + 6 : NULL;
                const json_t *seats = json_object_get(c->quota, "seats");
                if (ed ? json_object_get(seats, ed) != NULL
                       : strcmp(*k, "seats") == 0 ? seats != NULL
                                                  : json_object_get(c->quota, dim_key(*k)) != NULL)
                        return gv_cli_usage_error("--no-limit %s contradicts a limit given for "
                                                  "it on the same line", *k);
        }
        *ret_index = optind;
        return -1;
}

/* The tenant's document as the API takes it back: description, quota, gpu_pools (a null list
 * — every pool — is left out). */
static json_t *put_body(const json_t *cur)
{
        json_t *b = json_object();
        const json_t *v;
        if ((v = json_object_get(cur, "description")) && json_is_string(v))
                json_object_set(b, "description", (json_t *)v);
        v = json_object_get(cur, "quota");
        json_object_set_new(b, "quota", json_is_object(v) ? json_deep_copy(v) : json_object());
        if ((v = json_object_get(cur, "gpu_pools")) && json_is_array(v))
                json_object_set(b, "gpu_pools", (json_t *)v);
        return b;
}

/* Apply c to body; a removal of a limit that is not there is an error (exit 2). */
static int apply_change(const char *name, json_t *body, const struct change *c)
{
        json_t *q = json_object_get(body, "quota");
        json_t *seats = json_object_get(q, "seats");
        STRV_FOREACH(k, c->no_limit) {
                const char *ed = gv_startswith(*k, "seats:") ? *k + 6 : NULL;
                bool had = ed                      ? json_object_del(seats, ed) == 0
                           : strcmp(*k, "seats") == 0 ? json_object_del(q, "seats") == 0
                                                      : json_object_del(q, dim_key(*k)) == 0;
                if (!had)
                        return gv_cli_usage_error("tenant '%s' has no limit on %s to remove "
                                                  "(gpuvirt tenant show %s lists its limits)",
                                                  name, *k, name);
        }
        const char *k;
        json_t *v;
        json_object_foreach(c->quota, k, v) {
                if (strcmp(k, "seats") != 0) {
                        json_object_set(q, k, v);
                        continue;
                }
                seats = json_object_get(q, "seats");
                if (!json_is_object(seats)) {
                        seats = json_object();
                        json_object_set_new(q, "seats", seats);
                }
                json_object_update(seats, v);
        }
        if (json_object_size(json_object_get(q, "seats")) == 0)
                json_object_del(q, "seats");
        if (c->description) {
                if (*json_string_value(c->description))
                        json_object_set(body, "description", c->description);
                else
                        json_object_del(body, "description");
        }
        if (c->pools)
                json_object_set(body, "gpu_pools", c->pools);
        if (c->pools_any)
                json_object_del(body, "gpu_pools");
        return GV_EXIT_OK;
}

static int put_and_print(struct gv_cli *cli, const char *name, const json_t *body,
                         const char *done)
{
        _cleanup_free_ char *path = tenant_path(name);
        _cleanup_json_ json_t *tn = NULL;
        int ex = gv_cli_api_call(cli, "PUT", path, body, &tn, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(tn));
                return GV_EXIT_OK;
        }
        _cleanup_free_ char *quota = fmt_quota(tn), *pools = fmt_pools(tn);
        printf("tenant %s %s: %s; gpu pools: %s\n", name, done, quota, pools);
        return GV_EXIT_OK;
}

static int tenant_create(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "tenant create NAME [--description TEXT] [--vms N] [--vcpus N] [--memory SIZE] "
                "[--gpus N] [--slices N] [--seats EDITION=N]... [--pool P]... [--json]";
        struct change c = { 0 };
        int idx, ex = parse_change(cli, argc, argv, usage, false, &c, &idx);
        if (ex < 0) {
                const char *name = argv[idx];
                _cleanup_json_ json_t *all = NULL, *body = json_object();
                /* create never replaces: a tenant that is there is the user's mistake */
                ex = gv_cli_api_call(cli, "GET", "/api/v1/tenants", NULL, &all, NULL);
                bool exists = false;
                const json_t *t;
                size_t i;
                json_array_foreach(all, i, t)
                        exists |= strcmp(jstr(t, "name") ?: "", name) == 0;
                if (ex == GV_EXIT_OK && exists) {
                        fprintf(stderr, "error: tenant '%s' exists; 'gpuvirt tenant set %s "
                                "...' changes it.\n", name, name);
                        ex = GV_EXIT_REFUSED;
                } else if (ex == GV_EXIT_OK) {
                        json_object_set_new(body, "quota", json_object());
                        ex = apply_change(name, body, &c);
                        if (ex == GV_EXIT_OK)
                                ex = put_and_print(cli, name, body, "created");
                }
        }
        change_done(&c);
        return ex;
}

static int tenant_set(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "tenant set NAME [--description TEXT] [--vms N] [--vcpus N] [--memory SIZE] "
                "[--gpus N] [--slices N] [--seats EDITION=N]... [--pool P]... [--pools-any] "
                "[--no-limit vms|vcpus|memory|gpus|slices|seats|seats:EDITION]... [--json]";
        struct change c = { 0 };
        int idx, ex = parse_change(cli, argc, argv, usage, true, &c, &idx);
        if (ex < 0) {
                const char *name = argv[idx];
                _cleanup_free_ char *path = tenant_path(name);
                _cleanup_json_ json_t *cur = NULL, *body = NULL;
                /* read, change what the options name, write the whole back */
                ex = gv_cli_api_call(cli, "GET", path, NULL, &cur, NULL);
                if (ex == GV_EXIT_OK) {
                        body = put_body(cur);
                        ex = apply_change(name, body, &c);
                }
                if (ex == GV_EXIT_OK)
                        ex = put_and_print(cli, name, body, "updated");
        }
        change_done(&c);
        return ex;
}

static int tenant_delete(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "tenant delete NAME [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *path = tenant_path(argv[idx]);
        _cleanup_json_ json_t *reply = NULL;
        ex = gv_cli_api_call(cli, "DELETE", path, NULL, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(reply ? json_incref(reply)
                                    : json_pack("{s:s, s:b}", "name", argv[idx], "deleted", 1));
        else
                printf("tenant %s deleted\n", argv[idx]);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_tenant_commands[] = {
        { "tenant", "list", "", "tenants: quota used/limit per dimension, seats, GPU pools",
          tenant_list },
        { "tenant", "show", "NAME", "one tenant: each quota's use, limit and what is free",
          tenant_show },
        { "tenant", "create", "NAME [--vcpus N ...]", "a new tenant with its quotas and pools",
          tenant_create },
        { "tenant", "set", "NAME [--no-limit DIM ...]", "change only what the options name",
          tenant_set },
        { "tenant", "delete", "NAME", "delete a tenant no VM or member token belongs to",
          tenant_delete },
        {},
};
