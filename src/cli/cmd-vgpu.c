/* SPDX-License-Identifier: MIT */
/* `gpuvirt vgpu types|create|destroy` */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "host/host-json.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"

static int vgpu_types(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vgpu types GPU [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 1, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;
        struct gv_vgpu_type_info *t = NULL;
        size_t n = 0;
        r = gv_gpu_vgpu_types(h, g, &t, &n, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json) {
                gv_json_print(gv_json_vgpu_types(t, n));
        } else {
                static const char *const headers[] = { "TYPE", "ID", "FRAMEBUFFER", "MAX",
                                                       "CREATABLE", "BACKING", NULL };
                _cleanup_(gv_table_freep) struct gv_table *tb = gv_table_new(headers);
                for (size_t i = 0; i < n; i++) {
                        char id[12], mx[12], cr[12];
                        snprintf(id, sizeof(id), "%u", t[i].type_id);
                        snprintf(mx, sizeof(mx), "%u", t[i].max_instances);
                        snprintf(cr, sizeof(cr), "%u", t[i].creatable);
                        _cleanup_free_ char *fb = gv_fmt_mib(t[i].framebuffer_mib);
                        _cleanup_free_ char *backing = t[i].gi_profile
                                ? xasprintf("MIG %s", t[i].gi_profile) : xstrdup("time-sliced");
                        gv_table_add_rowf(tb, t[i].name, id, fb, mx, cr, backing);
                }
                printf("GPU %u (%s), mode %s, %s mode\n", g->index, g->bdf,
                       gv_gpu_mode_to_string(g->mode),
                       g->vgpu_heterogeneous ? "mixed-size" : "equal-size");
                gv_table_print(tb, stdout);
        }
        gv_vgpu_type_info_free_array(t, n);
        return GV_EXIT_OK;
}

static int vgpu_create(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vgpu create GPU TYPE [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 2, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;
        char id[GV_UUID_STR_LEN + 1] = "";
        r = gv_gpu_vgpu_create(h, g, argv[idx + 1], id, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json)
                gv_json_print(json_pack("{s:s, s:s, s:i}", "id", id, "type", argv[idx + 1],
                                        "gpu", g->index));
        else
                printf("GPU %u (%s): created vGPU %s as %s\n", g->index, g->bdf, argv[idx + 1], id);
        return GV_EXIT_OK;
}

static int vgpu_destroy(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "vgpu destroy UUID|VF-ADDRESS [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 1, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        int r = gv_cli_open_host(cli, &h);
        if (r < 0)
                return -r;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_host_vgpu_destroy(h, argv[idx], &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json)
                gv_json_print(json_pack("{s:s, s:b}", "id", argv[idx], "destroyed", 1));
        else
                printf("vGPU %s destroyed\n", argv[idx]);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_vgpu_commands[] = {
        { "vgpu", "types", "GPU", "vGPU types, framebuffer, how many can still be made",
          vgpu_types },
        { "vgpu", "create", "GPU TYPE", "create a vGPU (mdev or vendor-VFIO)", vgpu_create },
        { "vgpu", "destroy", "UUID|VF", "destroy a vGPU", vgpu_destroy },
        {},
};
