/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt advise`: which GPU mode fits a workload, from the controller's advisor
 * (POST /api/v1/advise; docs/advisor.md, docs/cli.md). One numbered line per option, as
 * ../shared/UX.md sketches it, the options ruled out after them; --reasons prints every reason,
 * --json the advisor's answer as it is.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/format.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define MIB (1024ull * 1024ull)
#define WIDTH 100

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static json_int_t jint(const json_t *o, const char *key)
{
        return json_integer_value(json_object_get(o, key));
}

/* Print text wrapped at WIDTH, the first line after `first` (already printed, its width
 * first_len), the others indented by `indent` spaces. */
static void print_wrapped(const char *text, size_t first_len, size_t indent)
{
        size_t col = first_len;
        _cleanup_strv_free_ char **words = strv_split(text, " ");
        bool line_start = true;
        STRV_FOREACH(w, words) {
                size_t len = strlen(*w);
                if (!line_start && col + 1 + len > WIDTH) {
                        printf("\n%*s", (int)indent, "");
                        col = indent;
                        line_start = true;
                }
                if (!line_start) {
                        putchar(' ');
                        col++;
                }
                fputs(*w, stdout);
                col += len;
                line_start = false;
        }
        putchar('\n');
}

static char *money(const json_t *l)
{
        double v = json_number_value(json_object_get(l, "cost_per_year"));
        const char *cur = jstr(l, "currency");
        char digits[64], out[96];
        long long whole = (long long)(v + 0.5);
        int n = snprintf(digits, sizeof(digits), "%lld", whole), k = 0;
        for (int i = 0; i < n; i++) {
                if (i && (n - i) % 3 == 0)
                        out[k++] = ',';
                out[k++] = digits[i];
        }
        out[k] = 0;
        if (!cur || strcmp(cur, "USD") == 0)
                return xasprintf("$%s", out);
        return xasprintf("%s %s", out, cur);
}

/* "3 seats NVAIE ($13,500/yr at the configured price)" */
static char *seats_text(const json_t *l)
{
        const char *ed = jstr(l, "edition");
        json_int_t seats = jint(l, "seats");
        if (!ed)
                return xstrdup("no licence seat");
        _cleanup_free_ char *upper = xstrdup(ed);
        for (char *p = upper; *p; p++)
                *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        const char *per = jstr(l, "counting") && !strcmp(jstr(l, "counting"), "gpu")
                                  ? ", one per GPU" : "";
        if (json_is_number(json_object_get(l, "cost_per_year"))) {
                _cleanup_free_ char *m = money(l);
                return xasprintf("%lld seat%s %s (%s/yr at the configured price%s)",
                                 (long long)seats, seats == 1 ? "" : "s", upper, m, per);
        }
        return xasprintf("%lld seat%s %s (no price configured%s)", (long long)seats,
                         seats == 1 ? "" : "s", upper, per);
}

/* One option as UX.md's line: "MIG 1g.20gb ×3 on node-a GPU 3 (after mode change) — ..." */
static char *option_line(const json_t *o, uint32_t users)
{
        const char *mode = jstr(o, "mode") ?: "?";
        const char *model = jstr(o, "model") ?: "?";
        const char *profile = jstr(o, "profile");
        const json_t *where = json_object_get(o, "where");
        json_int_t n = jint(o, "instances");
        _cleanup_free_ char *head = NULL, *place = NULL, *idle = NULL, *seats = NULL;
        _cleanup_strv_free_ char **traits = NULL;

        if (!strcmp(mode, "passthrough")) {
                if (json_is_true(json_object_get(o, "shared_vm")))
                        head = xasprintf("Pass-through %s ×1 shared by the %u replicas inside "
                                         "one VM", model, users);
                else
                        head = xasprintf("Pass-through %s ×%lld", model, (long long)n);
        } else if (!strcmp(mode, "vgpu")) {
                head = xasprintf("vGPU %s ×%lld", profile ?: "?", (long long)n);
        } else {
                head = xasprintf("MIG %s (%s) ×%lld", profile ?: "?", model, (long long)n);
        }
        if (json_is_true(json_object_get(where, "fits")))
                place = xasprintf(" on %s", jstr(where, "text") ?: "?");
        else if (json_is_object(where))
                place = xasprintf(" — does not fit now (%s)", jstr(where, "text") ?: "?");
        else
                place = xstrdup("");

        const char *iso = jstr(o, "isolation") ?: "?";
        strv_consume(&traits, xasprintf("%s isolation", iso));
        if (!strcmp(mode, "passthrough")) {
                strv_extend(&traits, "full GPU, predictability highest");
                strv_extend(&traits, "no live migration");
                strv_extend(&traits, "no licence seat");
                idle = gv_fmt_mib((uint64_t)jint(o, "idle_mib"));
                if (jint(o, "idle_mib") >= 1024)
                        strv_consume(&traits, xasprintf("%s idle", idle));
        } else if (!strcmp(mode, "vgpu")) {
                strv_extend(&traits, "throughput varies under contention");
                strv_extend(&traits, "live-migratable");
                strv_consume(&traits, seats_text(json_object_get(o, "license")));
        } else {
                strv_extend(&traits, "predictable latency (guaranteed per slice)");
                strv_extend(&traits, "no licence seat for the slice");
                seats = seats_text(json_object_get(o, "as_vgpu"));
                strv_consume(&traits, xasprintf("live-migratable as MIG-backed vGPU (%s, %s)",
                                                jstr(o, "vgpu_type") ?: "?", seats));
        }
        _cleanup_free_ char *t = strv_join(traits, ", ");
        return xasprintf("%s%s — %s.", head, place, t);
}

static int print_advice(const json_t *a, bool reasons)
{
        const json_t *options = json_object_get(a, "options"), *o;
        const json_t *excluded = json_object_get(a, "excluded");
        uint32_t users = (uint32_t)jint(json_object_get(a, "traits"), "users");
        size_t i;

        if (jstr(a, "none"))
                print_wrapped(jstr(a, "none"), (size_t)printf("no option: "), 3);
        json_array_foreach(options, i, o) {
                _cleanup_free_ char *line = option_line(o, users);
                int w = printf("%zu. ", i + 1);
                print_wrapped(line, (size_t)w, 3);
                if (reasons) {
                        const json_t *r;
                        size_t k;
                        json_array_foreach(json_object_get(o, "reasons"), k, r)
                                print_wrapped(json_string_value(r), (size_t)printf("     · "), 7);
                        const char *why = jstr(json_object_get(o, "where"), "reason");
                        if (why)
                                print_wrapped(why, (size_t)printf("     · now: "), 7);
                }
        }
        if (json_array_size(excluded)) {
                printf("ruled out:\n");
                json_array_foreach(excluded, i, o) {
                        const char *m = jstr(o, "model");
                        _cleanup_free_ char *lead = xasprintf("  %s%s%s: ", jstr(o, "mode"),
                                                              m ? " on " : "", m ? m : "");
                        fputs(lead, stdout);
                        print_wrapped(jstr(o, "reason") ?: "?", strlen(lead), 4);
                }
        }
        return GV_EXIT_OK;
}

static int advise(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "advise --kind training|inference|vdi|development|simulation --gpu-memory SIZE\n"
                "               [--isolation none|software|hardware] [--live-migration]\n"
                "               [--latency-sla strict|best-effort] [--users N] [--model M]...\n"
                "               [--reasons] [--json]";
        enum {
                OPT_KIND = GV_CLI_OPT_FIRST_OWN,
                OPT_MEMORY,
                OPT_ISOLATION,
                OPT_LIVE_MIGRATION,
                OPT_LATENCY,
                OPT_USERS,
                OPT_MODEL,
                OPT_REASONS,
        };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "kind", required_argument, NULL, OPT_KIND },
                { "gpu-memory", required_argument, NULL, OPT_MEMORY },
                { "isolation", required_argument, NULL, OPT_ISOLATION },
                { "live-migration", no_argument, NULL, OPT_LIVE_MIGRATION },
                { "latency-sla", required_argument, NULL, OPT_LATENCY },
                { "users", required_argument, NULL, OPT_USERS },
                { "model", required_argument, NULL, OPT_MODEL },
                { "reasons", no_argument, NULL, OPT_REASONS },
                {},
        };
        _cleanup_json_ json_t *body = json_object(), *models = NULL, *reply = NULL;
        bool reasons = false;
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                uint64_t v;
                uint32_t u;
                switch (c) {
                case OPT_KIND:
                        json_object_set_new(body, "kind", json_string(optarg));
                        break;
                case OPT_MEMORY:
                        /* the traits' check says what is wrong with the value; only the size
                         * syntax is the CLI's */
                        if (gv_parse_size(optarg, &v) < 0 || v == 0)
                                return gv_cli_usage_error("--gpu-memory '%s' is not a size such "
                                                          "as 512M, 20G or 1T", optarg);
                        if (v % MIB != 0)
                                return gv_cli_usage_error("--gpu-memory '%s' is not a whole "
                                                          "number of MiB (a bare number is "
                                                          "bytes: write 20G or 512M)", optarg);
                        json_object_set_new(body, "gpu_memory_mib",
                                            json_integer((json_int_t)(v / MIB)));
                        break;
                case OPT_ISOLATION:
                        json_object_set_new(body, "isolation", json_string(optarg));
                        break;
                case OPT_LIVE_MIGRATION:
                        json_object_set_new(body, "live_migration", json_true());
                        break;
                case OPT_LATENCY:
                        json_object_set_new(body, "latency_sla", json_string(optarg));
                        break;
                case OPT_USERS:
                        if (gv_parse_u32(optarg, 10, &u) < 0)
                                return gv_cli_usage_error("--users '%s' is not a count (1 to "
                                                          "1024)", optarg);
                        json_object_set_new(body, "users", json_integer(u));
                        break;
                case OPT_MODEL:
                        if (!models)
                                models = json_array();
                        json_array_append_new(models, json_string(optarg));
                        break;
                case OPT_REASONS:
                        reasons = true;
                        break;
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
        if (argc - optind != 0)
                return gv_cli_usage_error("advise takes no arguments ('%s'); usage: gpuvirt %s",
                                          argv[optind], usage);
        if (!json_object_get(body, "kind") || !json_object_get(body, "gpu_memory_mib"))
                return gv_cli_usage_error("advise needs --kind and --gpu-memory; usage: "
                                          "gpuvirt %s", usage);
        if (models)
                json_object_set(body, "models", models);
        ex = gv_cli_api_call(cli, "POST", "/api/v1/advise", body, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(reply));
                return GV_EXIT_OK;
        }
        return print_advice(reply, reasons);
}

const struct gv_cli_command gv_cli_advise_commands[] = {
        { "advise", "", "--kind K --gpu-memory SIZE [...]",
          "which GPU mode fits a workload: ranked options, where, licence cost", advise },
        {},
};
