/* SPDX-License-Identifier: MIT */
/* `gpuvirt host inspect` — the whole host as a user sees it. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/format.h"
#include "host/host-json.h"
#include "cli/format.h"
#include "cli/table.h"
#include "util/alloc.h"
#include "util/strv.h"

static void print_gpu_table(const struct gv_host *h)
{
        static const char *const headers[] = { "GPU", "PCI", "MODEL", "MODE", "USE", "UTIL",
                                               "MEM", "POWER", "TEMP", "NUMA", NULL };
        _cleanup_(gv_table_freep) struct gv_table *t = gv_table_new(headers);
        for (size_t i = 0; i < h->n_gpus; i++) {
                const struct gv_gpu *g = &h->gpus[i];
                char idx[12], numa[12], power[24], temp[16];
                snprintf(idx, sizeof(idx), "%u", g->index);
                snprintf(numa, sizeof(numa), "%d", g->numa_node);
                if (g->valid & GV_GPU_HAS_POWER)
                        snprintf(power, sizeof(power), "%u W", (g->power_mw + 500) / 1000);
                else
                        snprintf(power, sizeof(power), "—");
                if (g->valid & GV_GPU_HAS_TEMP)
                        snprintf(temp, sizeof(temp), "%d C", g->temperature_c);
                else
                        snprintf(temp, sizeof(temp), "—");
                _cleanup_free_ char *use = gv_fmt_gpu_use(g);
                _cleanup_free_ char *mem = gv_fmt_gpu_memory(g);
                _cleanup_free_ char *util = gv_fmt_gpu_util(g);
                gv_table_add_rowf(t, idx, g->bdf, g->model, gv_gpu_mode_to_string(g->mode), use,
                                  util, mem, power, temp, g->numa_node >= 0 ? numa : "—");
        }
        gv_table_print(t, stdout);
}

static void print_notes(const struct gv_host *h)
{
        bool header = false;
        for (size_t i = 0; i < h->n_gpus; i++) {
                const struct gv_gpu *g = &h->gpus[i];
                _cleanup_strv_free_ char **notes = NULL;
                for (size_t j = 0; j < g->n_gis; j++) {
                        char pl[32];
                        const struct gv_mig_gi_info *gi = &g->gis[j];
                        if (gi->placement.size == 1)
                                snprintf(pl, sizeof(pl), "%u", gi->placement.start);
                        else
                                snprintf(pl, sizeof(pl), "%u-%u", gi->placement.start,
                                         gi->placement.start + gi->placement.size - 1);
                        strv_consume(&notes, xasprintf("MIG instance %u: %s at memory slices %s%s%s",
                                                       gi->id, gi->profile_name, pl,
                                                       gi->vgpu_uuid ? ", vGPU " : "",
                                                       gi->vgpu_uuid ? gi->vgpu_uuid : ""));
                }
                for (size_t j = 0; j < g->n_vgpus; j++) {
                        const struct gv_vgpu_instance *v = &g->vgpus[j];
                        strv_consume(&notes, xasprintf("vGPU %s on %s%s%s%s", v->type_name,
                                                       v->parent_bdf, v->uuid[0] ? " uuid " : "",
                                                       v->uuid, v->vm_id ? " (VM holds it)" : ""));
                }
                for (size_t j = 0; j < g->n_group; j++)
                        if (g->group[j].same_device)
                                strv_consume(&notes, xasprintf("function %s (driver %s) moves "
                                                               "with it on pass-through",
                                                               g->group[j].bdf,
                                                               g->group[j].driver ? g->group[j].driver : "none"));
                if (g->mode_reason)
                        strv_consume(&notes, xasprintf("mode unknown: %s", g->mode_reason));
                if (g->passthrough_blocker)
                        strv_consume(&notes, xasprintf("pass-through not possible: %s",
                                                       g->passthrough_blocker));
                if (g->mig_pending_enabled != g->mig_enabled)
                        strv_consume(&notes, xasprintf("MIG %s is pending (needs a GPU reset)",
                                                       g->mig_pending_enabled ? "enable" : "disable"));
                STRV_FOREACH(p, g->problems)
                        strv_consume(&notes, xasprintf("problem: %s", *p));
                if (!notes)
                        continue;
                if (!header) {
                        printf("\n");
                        header = true;
                }
                STRV_FOREACH(n, notes)
                        printf("GPU %u: %s\n", g->index, *n);
        }
        STRV_FOREACH(p, h->problems)
                printf("host: problem: %s\n", *p);
}

static int host_inspect(struct gv_cli *cli, int argc, char **argv)
{
        int idx, ex;
        if (!gv_cli_parse_simple(cli, argc, argv, "host inspect [--json]", 0, &idx, &ex))
                return ex;
        _cleanup_(gv_host_freep) struct gv_host *h = NULL;
        int r = gv_cli_open_host(cli, &h);
        if (r < 0)
                return -r;
        if (cli->json) {
                gv_json_print(gv_json_host(h));
                return GV_EXIT_OK;
        }
        printf("host %s   accel %s   driver %s   NVML %s   %zu GPU%s\n", h->hostname, h->accel,
               h->driver_version ? h->driver_version : "—",
               h->nvml_version ? h->nvml_version : "—", h->n_gpus, h->n_gpus == 1 ? "" : "s");
        if (h->nvml_error)
                printf("NVML unavailable: %s\n", h->nvml_error);
        printf("\n");
        if (h->n_gpus == 0)
                printf("no GPUs found under '%s'\n", h->config.sysfs_root);
        else
                print_gpu_table(h);
        print_notes(h);
        return GV_EXIT_OK;
}

const struct gv_cli_command gv_cli_host_commands[] = {
        { "host", "inspect", "[--json]", "GPUs, modes, MIG instances, vGPUs, IOMMU groups",
          host_inspect },
        {},
};
