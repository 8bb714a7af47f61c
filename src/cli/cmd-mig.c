/* SPDX-License-Identifier: MIT */
/* `gpuvirt mig apply|list|destroy|profiles` */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog/mig-layout.h"
#include "cli/cli.h"
#include "cli/format.h"
#include "host/host-json.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/strv.h"

static json_t *gis_json(const struct gv_gpu *g)
{
        json_t *j = gv_json_gpu(g);
        json_t *mig = json_incref(json_object_get(j, "mig"));
        json_decref(j);
        return mig;
}

static void print_gis(const struct gv_gpu *g)
{
        if (g->n_gis == 0) {
                printf("GPU %u (%s): MIG %s, no GPU instances\n", g->index, g->bdf,
                       g->mig_enabled ? "enabled" : "disabled");
                return;
        }
        static const char *const headers[] = { "GI", "PROFILE", "SLICES", "MEMORY", "CIS",
                                               "VGPU", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        for (size_t i = 0; i < g->n_gis; i++) {
                const struct gv_mig_gi_info *gi = &g->gis[i];
                char id[12], sl[24], cis[12];
                snprintf(id, sizeof(id), "%u", gi->id);
                gv_mig_placement_format(&gi->placement, sl, sizeof(sl));
                snprintf(cis, sizeof(cis), "%zu", gi->n_cis);
                _cleanup_free_ char *mem = gv_fmt_mib(gi->memory_mib);
                gv_table_add_rowf(t, id, gi->profile_name, sl, mem, cis, gi->vgpu_uuid);
        }
        gv_table_print(t, stdout);
}

static int mig_apply(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig apply GPU PROFILE[,PROFILE...] [--dry-run] [--json]";
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "dry-run", no_argument, NULL, 'n' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        bool dry = false;
        int c;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "hn", options, NULL)) >= 0) {
                if (c == 'j')
                        cli->json = true;
                else if (c == 'n')
                        dry = true;
                else if (c == 'h') {
                        printf("Usage: gpuvirt %s\n", usage);
                        return GV_EXIT_OK;
                } else
                        return gv_cli_usage_error("unknown option '%s'; usage: gpuvirt %s",
                                                  argv[optind - 1], usage);
        }
        if (argc - optind != 2)
                return gv_cli_usage_error("usage: gpuvirt %s", usage);
        _cleanup_strv_free_ char **profiles = strv_split(argv[optind + 1], ", ");
        if (strv_length(profiles) == 0)
                return gv_cli_usage_error("no MIG profile given; usage: gpuvirt %s", usage);
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        int ex = gv_cli_open_gpu(cli, argv[optind], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *layout = NULL;
        int r = gv_gpu_mig_apply(h, g, profiles, dry, &layout, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json) {
                json_t *j = gis_json(g);
                json_object_set_new(j, "layout", json_string(layout));
                json_object_set_new(j, "dry_run", json_boolean(dry));
                gv_json_print(j);
                return GV_EXIT_OK;
        }
        printf("GPU %u (%s): %s %s\n", g->index, g->bdf, dry ? "would apply" : "applied", layout);
        if (!dry)
                print_gis(g);
        return GV_EXIT_OK;
}

static int mig_list(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig list GPU [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 1, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_gpu_mig_check(g, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json) {
                gv_json_print(gis_json(g));
                return GV_EXIT_OK;
        }
        print_gis(g);
        return GV_EXIT_OK;
}

static int mig_destroy(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig destroy GPU GI-ID [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 2, &idx, &ex))
                return ex;
        uint32_t id;
        if (gv_parse_u32(argv[idx + 1], 10, &id) < 0)
                return gv_cli_usage_error("'%s' is not a GPU instance id (a number, see 'gpuvirt "
                                          "mig list %s')", argv[idx + 1], argv[idx]);
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_gpu_mig_destroy(h, g, id, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json)
                gv_json_print(gis_json(g));
        else
                printf("GPU %u (%s): GPU instance %u destroyed\n", g->index, g->bdf, id);
        return GV_EXIT_OK;
}

static int mig_profiles(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "mig profiles GPU [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 1, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_mig_gi_profile *p = NULL;
        size_t n = 0;
        int r = gv_gpu_mig_profiles(h, g, &p, &n, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json) {
                json_t *a = json_array();
                for (size_t i = 0; i < n; i++) {
                        json_t *pl = json_array();
                        for (size_t k = 0; k < p[i].n_placements; k++)
                                json_array_append_new(pl, json_pack("{s:i, s:i}", "start",
                                                                    p[i].placements[k].start,
                                                                    "size",
                                                                    p[i].placements[k].size));
                        json_array_append_new(a, json_pack("{s:s, s:i, s:i, s:I, s:i, s:i, s:o}",
                                "name", p[i].name, "id", p[i].id, "slices", p[i].slices,
                                "memory_mib", (json_int_t)p[i].memory_mib, "instances",
                                p[i].instances, "sms", p[i].sms, "placements", pl));
                }
                gv_json_print(a);
        } else {
                static const char *const headers[] = { "PROFILE", "ID", "SLICES", "MEMORY",
                                                       "MAX", "SMS", "PLACEMENTS", NULL };
                _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
                for (size_t i = 0; i < n; i++) {
                        char id[12], sl[12], mx[12], sm[12];
                        snprintf(id, sizeof(id), "%u", p[i].id);
                        snprintf(sl, sizeof(sl), "%u", p[i].slices);
                        snprintf(mx, sizeof(mx), "%u", p[i].instances);
                        snprintf(sm, sizeof(sm), "%u", p[i].sms);
                        _cleanup_strv_free_ char **pls = NULL;
                        for (size_t k = 0; k < p[i].n_placements; k++) {
                                char b[24];
                                strv_extend(&pls, gv_mig_placement_format(&p[i].placements[k], b,
                                                                          sizeof(b)));
                        }
                        _cleanup_free_ char *pj = pls ? strv_join(pls, " ") : xstrdup("—");
                        _cleanup_free_ char *mem = gv_fmt_mib(p[i].memory_mib);
                        gv_table_add_rowf(t, p[i].name, id, sl, mem, mx, sm, pj);
                }
                gv_table_print(t, stdout);
        }
        gv_mig_gi_profiles_free(p, n);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_mig_commands[] = {
        { "mig", "apply", "GPU PROFILE[,...]", "make the GPU hold exactly these GPU instances",
          mig_apply },
        { "mig", "list", "GPU", "GPU instances and their memory slices", mig_list },
        { "mig", "destroy", "GPU GI-ID", "destroy one GPU instance", mig_destroy },
        { "mig", "profiles", "GPU", "the GPU-instance profiles and placements", mig_profiles },
        {},
};
