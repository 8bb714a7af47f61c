/* SPDX-License-Identifier: MIT */
/*
 * `gpuvirt audit [--since T] [--until T] [--principal P] [--tenant T] [--object KIND/NAME]
 * [--outcome allowed|denied|failed] [--method M] [--limit N] [--after CURSOR] [--json]`: the
 * controller's audit log (GET /api/v1/audit, admin; docs/audit.md), newest first. A time is
 * RFC 3339, milliseconds since the epoch, or a duration ago ("30s", "15m", "2h", "7d") that the
 * CLI turns into milliseconds; the rest is checked by the controller, in its words.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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

/* "15m" → ms before now, as text; NULL when s is not a duration (the controller reads it). */
static char *duration_ago(const char *s)
{
        static const struct {
                char unit;
                int64_t ms;
        } units[] = { { 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 } };
        size_t n = strlen(s);
        if (n < 2)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++) {
                if (s[n - 1] != units[i].unit)
                        continue;
                _cleanup_free_ char *num = xstrndup(s, n - 1);
                uint32_t v = 0;
                if (gv_parse_u32(num, 10, &v) < 0 || v > 3650u * 24 * 3600)
                        return NULL;
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                int64_t t = now - (int64_t)v * units[i].ms;
                return xasprintf("%lld", (long long)(t > 0 ? t : 1));
        }
        return NULL;
}

/* ms → "2026-11-24T05:02:38Z". */
static void fmt_time(char *buf, size_t n, const json_t *v)
{
        time_t t = (time_t)(json_integer_value(v) / 1000);
        struct tm tm;
        if (!json_is_integer(v) || !gmtime_r(&t, &tm) || !strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ",
                                                                  &tm))
                snprintf(buf, n, "?");
}

/* s as one shell word: as it is when it holds only safe characters, else in single quotes. */
static char *shell_word(const char *s)
{
        if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            ":/._=,+-@") == strlen(s))
                return xstrdup(s);
        char *out = xstrdup("'");
        for (const char *p = s; *p; p++) {
                char *next = *p == '\'' ? xasprintf("%s'\\''", out) : xasprintf("%s%c", out, *p);
                free(out);
                out = next;
        }
        char *next = xasprintf("%s'", out);
        free(out);
        return next;
}

/* Append "&key=escaped(value)" to *q. */
static void add_param(char **q, const char *key, const char *value)
{
        _cleanup_free_ char *e = gv_cli_url_escape(value);
        char *next = xasprintf("%s%s%s=%s", *q, **q ? "&" : "", key, e);
        free(*q);
        *q = next;
}

static int audit(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] =
                "audit [--since T] [--until T] [--principal P] [--tenant T] "
                "[--object KIND/NAME] [--outcome allowed|denied|failed] [--method M] "
                "[--limit N] [--after CURSOR] [--json]";
        enum { OPT_SINCE = GV_CLI_OPT_FIRST_OWN, OPT_UNTIL, OPT_PRINCIPAL, OPT_TENANT,
               OPT_OBJECT, OPT_OUTCOME, OPT_METHOD, OPT_LIMIT, OPT_AFTER };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "since", required_argument, NULL, OPT_SINCE },
                { "until", required_argument, NULL, OPT_UNTIL },
                { "principal", required_argument, NULL, OPT_PRINCIPAL },
                { "tenant", required_argument, NULL, OPT_TENANT },
                { "object", required_argument, NULL, OPT_OBJECT },
                { "outcome", required_argument, NULL, OPT_OUTCOME },
                { "method", required_argument, NULL, OPT_METHOD },
                { "limit", required_argument, NULL, OPT_LIMIT },
                { "after", required_argument, NULL, OPT_AFTER },
                {},
        };
        static const char *const names[] = { [OPT_SINCE - OPT_SINCE] = "since",
                                             [OPT_UNTIL - OPT_SINCE] = "until",
                                             [OPT_PRINCIPAL - OPT_SINCE] = "principal",
                                             [OPT_TENANT - OPT_SINCE] = "tenant",
                                             [OPT_OBJECT - OPT_SINCE] = "object",
                                             [OPT_OUTCOME - OPT_SINCE] = "outcome",
                                             [OPT_METHOD - OPT_SINCE] = "method",
                                             [OPT_LIMIT - OPT_SINCE] = "limit",
                                             [OPT_AFTER - OPT_SINCE] = "after" };
        /* The filters as given (for the "more" line) and as sent. */
        _cleanup_free_ char *query = xstrdup(""), *again = xstrdup("");
        int c, ex = -1;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c >= OPT_SINCE && c <= OPT_AFTER) {
                        const char *name = names[c - OPT_SINCE];
                        _cleanup_free_ char *ago = c == OPT_SINCE || c == OPT_UNTIL
                                                           ? duration_ago(optarg)
                                                           : NULL;
                        add_param(&query, name, ago ? ago : optarg);
                        if (c != OPT_AFTER) {
                                _cleanup_free_ char *w = shell_word(ago ? ago : optarg);
                                char *next = xasprintf("%s --%s %s", again, name, w);
                                free(again);
                                again = next;
                        }
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc != optind)
                return gv_cli_usage_error("'%s' is not an option of audit; usage: gpuvirt %s",
                                          argv[optind], usage);

        _cleanup_free_ char *path = xasprintf("/api/v1/audit%s%s", *query ? "?" : "", query);
        json_t *body = NULL;
        ex = gv_cli_api_call(cli, "GET", path, NULL, &body, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(body);
                return GV_EXIT_OK;
        }
        _cleanup_json_ json_t *b = body;
        json_t *records = json_object_get(b, "records");
        if (json_array_size(records) == 0) {
                printf("no audit records match\n");
                return GV_EXIT_OK;
        }
        static const char *const headers[] = { "TIME",   "WHO",    "FROM",    "REQUEST",
                                               "OBJECT", "STATUS", "OUTCOME", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        const json_t *r;
        size_t i;
        json_array_foreach(records, i, r) {
                char when[32], status[16];
                fmt_time(when, sizeof(when), json_object_get(r, "time"));
                snprintf(status, sizeof(status), "%lld",
                         (long long)json_integer_value(json_object_get(r, "status")));
                _cleanup_free_ char *who =
                        jstr(r, "tenant") ? xasprintf("%s (%s)", jstr(r, "principal") ?: "?",
                                                      jstr(r, "tenant"))
                                          : xstrdup(jstr(r, "principal") ?: "?");
                _cleanup_free_ char *req = xasprintf("%s %s", jstr(r, "method") ?: "?",
                                                     jstr(r, "path") ?: "?");
                gv_table_add_rowf(t, when, who, jstr(r, "source"), req, jstr(r, "object"),
                                  status, jstr(r, "outcome"));
        }
        gv_table_print(t, stdout);
        const char *next = jstr(b, "next");
        if (next)
                printf("more: gpuvirt audit%s --after %s\n", again, next);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_audit_commands[] = {
        { "audit", "", "[--since T] [--principal P] [--object KIND/NAME] [--outcome O] ...",
          "who asked for which change, from where, and what was answered (admin)", audit },
        {},
};
