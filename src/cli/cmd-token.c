/* SPDX-License-Identifier: MIT */
/* `gpuvirt token list|create|delete`: API tokens and their roles (admin only; docs/api.md). */
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

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static int token_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "token list [--json]";
        _cleanup_json_ json_t *tokens = NULL;
        int ex = gv_cli_api_list(cli, argc, argv, usage, "/api/v1/tokens",
                                 "no tokens (the local socket needs none; 'gpuvirt token create "
                                 "NAME --role ROLE' makes one)", &tokens);
        if (!tokens)
                return ex;
        static const char *const headers[] = { "ID", "NAME", "ROLE", "TENANT", "CREATED", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        size_t i;
        json_t *tok;
        json_array_foreach(tokens, i, tok) {
                char when[32] = "—";
                json_int_t c = json_integer_value(json_object_get(tok, "created_at"));
                if (c > 0) {
                        time_t s = c > 100000000000LL ? (time_t)(c / 1000) : (time_t)c;
                        struct tm tm;
                        if (localtime_r(&s, &tm))
                                strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
                }
                /* only a member token has a tenant; the cluster roles reach every one */
                gv_table_add_rowf(t, jstr(tok, "id"), jstr(tok, "name"), jstr(tok, "role"),
                                  jstr(tok, "tenant") ?: "—", when);
        }
        gv_table_print(t, stdout);
        return GV_EXIT_OK;
}

static int token_create(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "token create NAME [--role member|viewer|operator|admin] "
                                    "[--tenant T] [--json]";
        enum { OPT_ROLE = GV_CLI_OPT_FIRST_OWN, OPT_TENANT };
        static const struct option options[] = {
                GV_CLI_API_OPTIONS,
                { "role", required_argument, NULL, OPT_ROLE },
                { "tenant", required_argument, NULL, OPT_TENANT },
                {},
        };
        const char *role = "viewer", *tenant = NULL;
        int c, ex = -1;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                if (c == OPT_ROLE) {
                        if (strcmp(optarg, "member") != 0 && strcmp(optarg, "viewer") != 0 &&
                            strcmp(optarg, "operator") != 0 && strcmp(optarg, "admin") != 0)
                                return gv_cli_usage_error("unknown role '%s' (valid: member "
                                                          "with --tenant, viewer, operator, "
                                                          "admin)", optarg);
                        role = optarg;
                } else if (c == OPT_TENANT) {
                        if (!gv_name_is_valid(optarg))
                                return gv_cli_usage_error("--tenant '%s' is not a tenant name "
                                                          "(gpuvirt tenant list shows them)",
                                                          optarg);
                        tenant = optarg;
                } else if (gv_cli_api_option(cli, c, usage, &ex)) {
                        if (ex >= 0)
                                return ex;
                } else {
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
                }
        }
        if (argc - optind != 1)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        const char *name = argv[optind];
        if (!gv_name_is_valid(name))
                return gv_cli_usage_error("'%s' is not a valid token name (lower-case letters, "
                                          "digits, '-')", name);
        /* a member reaches only its tenant's VMs, so it needs one; the cluster roles take
         * none (the controller says the same; saying it here spares the round trip) */
        if (!strcmp(role, "member") && !tenant)
                return gv_cli_usage_error("a member token needs its tenant: --role member "
                                          "--tenant T (gpuvirt tenant list shows them)");
        if (strcmp(role, "member") != 0 && tenant)
                return gv_cli_usage_error("--tenant is for a member token (--role member); a "
                                          "%s token reaches every tenant", role);
        _cleanup_json_ json_t *body = json_pack("{s:s, s:s}", "name", name, "role", role);
        if (tenant)
                json_object_set_new(body, "tenant", json_string(tenant));
        _cleanup_json_ json_t *tok = NULL;
        ex = gv_cli_api_call(cli, "POST", "/api/v1/tokens", body, &tok, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json) {
                gv_json_print(json_incref(tok));
                return GV_EXIT_OK;
        }
        const char *secret = jstr(tok, "token");
        if (!secret) {
                fprintf(stderr, "error: the controller answered without the token's secret.\n");
                return GV_EXIT_FAILURE;
        }
        fprintf(stderr, "token %s (%s, role %s%s%s) created; its secret is shown only now:\n",
                jstr(tok, "id") ? jstr(tok, "id") : "?", name, role, tenant ? " of tenant " : "",
                tenant ? tenant : "");
        printf("%s\n", secret);
        return GV_EXIT_OK;
}

static int token_delete(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "token delete ID [--json]";
        int idx, ex;
        if (!gv_cli_api_parse_simple(cli, argc, argv, usage, 1, NULL, &idx, &ex))
                return ex;
        _cleanup_free_ char *e = gv_cli_url_escape(argv[idx]);
        _cleanup_free_ char *path = xasprintf("/api/v1/tokens/%s", e);
        _cleanup_json_ json_t *reply = NULL;
        ex = gv_cli_api_call(cli, "DELETE", path, NULL, &reply, NULL);
        if (ex != GV_EXIT_OK)
                return ex;
        if (cli->json)
                gv_json_print(reply ? json_incref(reply)
                                    : json_pack("{s:s, s:b}", "id", argv[idx], "deleted", 1));
        else
                printf("token %s deleted\n", argv[idx]);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_token_commands[] = {
        { "token", "list", "", "API tokens: id, name, role, tenant (admin)", token_list },
        { "token", "create", "NAME [--role R]",
          "a new token (a member's: --tenant T); its secret is printed once",
          token_create },
        { "token", "delete", "ID", "revoke a token", token_delete },
        {},
};
