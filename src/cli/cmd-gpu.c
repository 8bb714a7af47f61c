/* SPDX-License-Identifier: MIT */
/* `gpuvirt gpu set-mode GPU MODE` */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "host/host-json.h"
#include "cli/format.h"
#include "util/alloc.h"

static int gpu_set_mode(struct gv_cli *cli, int argc, char **argv)
{
        static const char usage[] = "gpu set-mode GPU none|passthrough|vgpu|mig [--json]";
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, usage, 2, &idx, &ex))
                return ex;
        enum gv_gpu_mode mode = gv_gpu_mode_from_string(argv[idx + 1]);
        if ((int)mode < 0) {
                _cleanup_free_ char *names = gv_gpu_mode_names();
                return gv_cli_usage_error("unknown mode '%s' (valid: %s)", argv[idx + 1], names);
        }
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        struct gv_gpu *g = NULL;
        ex = gv_cli_open_gpu(cli, argv[idx], &h, &g);
        if (ex >= 0)
                return ex;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;
        enum gv_gpu_mode before = g->mode;
        r = gv_gpu_set_mode(h, g, mode, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        if (cli->json) {
                gv_json_print(gv_json_gpu(g));
                return GV_EXIT_OK;
        }
        if (before == g->mode && before == mode)
                printf("GPU %u (%s): already in mode %s\n", g->index, g->bdf,
                       gv_gpu_mode_to_string(mode));
        else
                printf("GPU %u (%s): mode %s -> %s\n", g->index, g->bdf,
                       gv_gpu_mode_to_string(before), gv_gpu_mode_to_string(g->mode));
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_gpu_commands[] = {
        { "gpu", "set-mode", "GPU MODE", "none, passthrough (vfio-pci), vgpu or mig",
          gpu_set_mode },
        {},
};
