/* SPDX-License-Identifier: MIT */
/* `gpuvirt license list|show|set|delete|cost`: vGPU licence pools, who holds their seats and
 * what they cost (docs/licensing.md). */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static void money(char *buf, size_t n, const json_t *v, const char *currency)
{
        if (!json_is_number(v))
                snprintf(buf, n, "—");
        else
                snprintf(buf, n, "%.2f %s", json_number_value(v), currency ? currency : "");
}

static void term_text(char *buf, size_t n, const json_t *pool)
{
        const json_t *t = json_object_get(pool, "term");
        if (!json_is_object(t))
                snprintf(buf, n, "—");
        else
                snprintf(buf, n, "%s..%s%s", jstr(t, "start") ?: "?", jstr(t, "end") ?: "?",
                         json_is_true(json_object_get(pool, "active")) ? "" : " (inactive)");
}

static int license_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "license list [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 0, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *all = NULL;
        ex = gv_cli_api_call(cli, "GET", "/api/v1/licenses", NULL, &all, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(all));
                return GV_EXIT_OK;
        }
        json_t *pools = json_object_get(all, "pools");
        if (!json_array_size(pools))
                printf("no licence pools (gpuvirt license set NAME --edition vws --seats N "
                       "makes one)\n");
        static const char *const headers[] = { "POOL",   "EDITION", "SEATS",    "USED",
                                               "FREE",   "POLICY",  "COUNTING", "TERM",
                                               "PRICE/SEAT/YR", "COST/MONTH", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        json_t *p;
        size_t i;
        json_array_foreach(pools, i, p) {
                char seats[24], used[32], freeb[24], term[40], price[40], cost[40];
                snprintf(seats, sizeof(seats), "%lld",
                         (long long)json_integer_value(json_object_get(p, "seats")));
                long long over = json_integer_value(json_object_get(p, "over"));
                snprintf(used, sizeof(used), "%lld%s",
                         (long long)json_integer_value(json_object_get(p, "used")),
                         over ? " (over)" : "");
                snprintf(freeb, sizeof(freeb), "%lld",
                         (long long)json_integer_value(json_object_get(p, "free")));
                term_text(term, sizeof(term), p);
                money(price, sizeof(price), json_object_get(p, "price_per_seat_year"),
                      jstr(p, "currency"));
                money(cost, sizeof(cost), json_object_get(p, "cost_per_month"),
                      jstr(p, "currency"));
                gv_table_add_rowf(t, jstr(p, "name"), jstr(p, "edition"), seats, used, freeb,
                                  jstr(p, "policy"), jstr(p, "counting"), term, price, cost);
        }
        if (json_array_size(pools))
                gv_table_print(t, stdout);
        json_t *u;
        json_array_foreach(json_object_get(all, "unlicensed"), i, u) {
                _cleanup_free_ char *needs = NULL;
                json_t *n;
                size_t k;
                json_array_foreach(json_object_get(u, "needs"), k, n) {
                        char *x = xasprintf("%s%s%s", needs ? needs : "", needs ? " or " : "",
                                            json_string_value(n) ?: "?");
                        free(needs);
                        needs = x;
                }
                printf("unlicensed: %s (%s) needs %s and no pool gives it\n", jstr(u, "vm"),
                       jstr(u, "state") ?: "?", needs ? needs : "?");
        }
        const char *cur;
        json_t *v;
        json_object_foreach(json_object_get(json_object_get(all, "cost"), "per_month"), cur, v)
                printf("cost per month: %.2f %s\n", json_number_value(v), cur);
        return GV_EXIT_OK;
}

static int license_show(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "license show POOL [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *e = gv_cli_url_escape(argv[idx]);
        _cleanup_free_ char *path = xasprintf("/api/v1/licenses/%s", e);
        _cleanup_json_ json_t *p = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &p, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(p));
                return GV_EXIT_OK;
        }
        char term[40], price[40], cost[40];
        term_text(term, sizeof(term), p);
        money(price, sizeof(price), json_object_get(p, "price_per_seat_year"),
              jstr(p, "currency"));
        money(cost, sizeof(cost), json_object_get(p, "cost_per_month"), jstr(p, "currency"));
        printf("pool %s: %s, %lld of %lld seats used, %lld free, policy %s, counting per %s\n"
               "passthrough %s, mig %s, term %s, price %s per seat per year, %s per month\n",
               jstr(p, "name"), jstr(p, "edition"),
               (long long)json_integer_value(json_object_get(p, "used")),
               (long long)json_integer_value(json_object_get(p, "seats")),
               (long long)json_integer_value(json_object_get(p, "free")), jstr(p, "policy"),
               jstr(p, "counting"),
               json_is_true(json_object_get(p, "passthrough")) ? "yes" : "no",
               json_is_true(json_object_get(p, "mig")) ? "yes" : "no", term, price, cost);
        json_t *holders = json_object_get(p, "holders");
        if (!json_array_size(holders)) {
                printf("no VM holds a seat\n");
                return GV_EXIT_OK;
        }
        static const char *const headers[] = { "VM",    "TENANT", "HOST",       "STATE",
                                               "SEATS", "OVER",   "COST/MONTH", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        json_t *h;
        size_t i;
        json_array_foreach(holders, i, h) {
                char seats[16], c[40];
                snprintf(seats, sizeof(seats), "%lld",
                         (long long)json_integer_value(json_object_get(h, "seats")));
                money(c, sizeof(c), json_object_get(h, "cost_per_month"), jstr(p, "currency"));
                gv_table_add_rowf(t, jstr(h, "vm"), jstr(h, "tenant"), jstr(h, "host") ?: "—",
                                  jstr(h, "state"), seats,
                                  json_is_true(json_object_get(h, "over")) ? "yes" : "", c);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

/* "2026-01-01..2026-12-31" → {"start", "end"}; "none" → null. */
static int parse_term(const char *s, json_t **ret)
{
        if (!strcmp(s, "none")) {
                *ret = json_null();
                return 0;
        }
        const char *dots = strstr(s, "..");
        if (!dots || dots == s || !dots[2])
                return gv_cli_usage_error("--term: START..END as YYYY-MM-DD..YYYY-MM-DD, or "
                                          "none");
        *ret = json_pack("{s:s%, s:s}", "start", s, (size_t)(dots - s), "end", dots + 2);
        return 0;
}

static int license_set(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "license set POOL [--edition nvaie|vcs|vws|vpc|vapps] [--seats N] "
                "[--policy enforce|warn] [--counting vm|gpu] [--passthrough yes|no] "
                "[--mig yes|no] [--term START..END|none] [--price N|none] [--currency CUR] "
                "[--json]";
        enum { OPT_EDITION = GV_CLI_OPT_FIRST_OWN, OPT_SEATS, OPT_POLICY, OPT_COUNTING,
               OPT_PT, OPT_MIG, OPT_TERM, OPT_PRICE, OPT_CURRENCY };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "edition", required_argument, NULL, OPT_EDITION },
                { "seats", required_argument, NULL, OPT_SEATS },
                { "policy", required_argument, NULL, OPT_POLICY },
                { "counting", required_argument, NULL, OPT_COUNTING },
                { "passthrough", required_argument, NULL, OPT_PT },
                { "mig", required_argument, NULL, OPT_MIG },
                { "term", required_argument, NULL, OPT_TERM },
                { "price", required_argument, NULL, OPT_PRICE },
                { "currency", required_argument, NULL, OPT_CURRENCY },
                {},
        };
        /* What the options say; the rest is kept from the pool as it is (a new pool needs
         * --edition and --seats: the controller says so). */
        _cleanup_json_ json_t *change = json_object();
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                uint64_t n;
                json_t *v = NULL;
                switch (c) {
                case OPT_EDITION:
                case OPT_POLICY:
                case OPT_COUNTING:
                case OPT_CURRENCY:
                        json_object_set_new(change,
                                            c == OPT_EDITION    ? "edition"
                                            : c == OPT_POLICY   ? "policy"
                                            : c == OPT_COUNTING ? "counting"
                                                                : "currency",
                                            json_string(optarg));
                        break;
                case OPT_SEATS:
                        if (gv_parse_u64(optarg, 10, &n) < 0)
                                return gv_cli_usage_error("--seats: a whole number, not '%s'",
                                                          optarg);
                        json_object_set_new(change, "seats", json_integer((json_int_t)n));
                        break;
                case OPT_PT:
                case OPT_MIG:
                        if (strcmp(optarg, "yes") != 0 && strcmp(optarg, "no") != 0)
                                return gv_cli_usage_error("--%s: yes or no",
                                                          c == OPT_PT ? "passthrough" : "mig");
                        json_object_set_new(change, c == OPT_PT ? "passthrough" : "mig",
                                            json_boolean(!strcmp(optarg, "yes")));
                        break;
                case OPT_TERM:
                        if (parse_term(optarg, &v) != 0)
                                return GV_EXIT_USAGE;
                        json_object_set_new(change, "term", v);
                        break;
                case OPT_PRICE: {
                        char *end = NULL;
                        double d = strtod(optarg, &end);
                        if (!strcmp(optarg, "none"))
                                v = json_null();
                        else if (!*optarg || !end || *end || !isfinite(d))
                                return gv_cli_usage_error("--price: a number (per seat per "
                                                          "year) or none, not '%s'", optarg);
                        else
                                v = json_real(d);
                        json_object_set_new(change, "price_per_seat_year", v);
                        break;
                }
                default:
                        if (gv_cli_api_option(cli, c, usage, &ex)) {
                                if (ex >= 0)
                                        return ex;
                                break;
                        }
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        _cleanup_free_ char *e = gv_cli_url_escape(argv[optind]);
        _cleanup_free_ char *path = xasprintf("/api/v1/licenses/%s", e);
        /* The pool as it is, from the list (a new pool is no error to print). */
        _cleanup_json_ json_t *all = NULL, *body = json_object();
        ex = gv_cli_api_call(cli, "GET", "/api/v1/licenses", NULL, &all, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        const json_t *cur = NULL, *p0;
        size_t i0;
        json_array_foreach(json_object_get(all, "pools"), i0, p0)
                if (!strcmp(jstr(p0, "name") ?: "", argv[optind]))
                        cur = p0;
        static const char *const kept[] = { "edition",  "seats", "policy", "counting",
                                            "passthrough", "mig", "term",
                                            "price_per_seat_year", "currency", NULL };
        for (size_t i = 0; cur && kept[i]; i++)
                if (json_object_get(cur, kept[i]))
                        json_object_set(body, kept[i], json_object_get(cur, kept[i]));
        json_object_update(body, change);
        _cleanup_json_ json_t *p = NULL;
        ex = gv_cli_api_call(cli, "PUT", path, body, &p, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(p));
                return GV_EXIT_OK;
        }
        printf("pool %s %s: %s, %lld seats (%lld used), policy %s\n", argv[optind],
               cur ? "updated" : "created", jstr(p, "edition"),
               (long long)json_integer_value(json_object_get(p, "seats")),
               (long long)json_integer_value(json_object_get(p, "used")), jstr(p, "policy"));
        return GV_EXIT_OK;
}

static int license_delete(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "license delete POOL [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *e = gv_cli_url_escape(argv[idx]);
        _cleanup_free_ char *path = xasprintf("/api/v1/licenses/%s", e);
        _cleanup_json_ json_t *reply = NULL;
        ex = gv_cli_api_call(cli, "DELETE", path, NULL, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(json_incref(reply));
        else
                printf("pool %s deleted\n", argv[idx]);
        return GV_EXIT_OK;
}

/* Cost per month by tenant, then by VM. */
static int license_cost(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "license cost [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 0, NULL, &idx, &ex))
                return ex;
        _cleanup_json_ json_t *all = NULL;
        ex = gv_cli_api_call(cli, "GET", "/api/v1/licenses", NULL, &all, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        json_t *cost = json_object_get(all, "cost");
        if (cli->json) {
                gv_json_print(json_incref(cost));
                return GV_EXIT_OK;
        }
        static const char *const by[] = { "by_tenant", "by_vm" };
        static const char *const heads[][3] = { { "TENANT", "COST/MONTH", NULL },
                                                { "VM", "COST/MONTH", NULL } };
        for (size_t b = 0; b < 2; b++) {
                _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(heads[b]);
                const char *who, *cur;
                json_t *m, *v;
                json_object_foreach(json_object_get(cost, by[b]), who, m)
                        json_object_foreach(m, cur, v) {
                                char s[48];
                                snprintf(s, sizeof(s), "%.2f %s", json_number_value(v), cur);
                                gv_table_add_rowf(t, who, s);
                        }
                if (json_object_size(json_object_get(cost, by[b])))
                        gv_table_print(t, stdout);
                else if (b == 0)
                        printf("no priced seats are held (give a pool --price to see costs)\n");
                if (b == 0 && json_object_size(json_object_get(cost, by[b])))
                        printf("\n");
        }
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_license_commands[] = {
        { "license", "list", "", "licence pools: seats, use, price, cost", license_list },
        { "license", "show", "POOL", "a pool and the VMs that hold its seats", license_show },
        { "license", "set", "POOL --edition E --seats N ...",
          "create a pool, or change what the options name", license_set },
        { "license", "delete", "POOL", "delete a pool no VM holds seats of", license_delete },
        { "license", "cost", "", "licence cost per month by tenant and by VM", license_cost },
        {},
};
