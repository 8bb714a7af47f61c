/* SPDX-License-Identifier: MIT */
/*
 * gpuvirt — the command-line interface: `gpuvirt [GLOBAL OPTIONS] GROUP VERB [ARGS]`. Local
 * commands work on this host's hardware directly (cmd-host.c, cmd-gpu.c, cmd-mig.c,
 * cmd-vgpu.c); the others talk to the controller's REST API (client.h). A GPU written HOST/GPU
 * means the API, a bare one this host.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "config.h"
#include "util/log.h"

extern const struct gv_cli_command gv_cli_top_commands[]; /* cmd-top.c */
extern const struct gv_cli_command gv_cli_advise_commands[]; /* cmd-advise.c */
extern const struct gv_cli_command gv_cli_insights_commands[]; /* cmd-insights.c */
extern const struct gv_cli_command gv_cli_audit_commands[]; /* cmd-audit.c */
extern const struct gv_cli_command gv_cli_tenant_commands[]; /* cmd-tenant.c */

/* In order: a group+verb found in an earlier table wins (the cluster table's entries for
 * `gpu set-mode`, `mig apply|list`, `vgpu types` hand a bare GPU on to the local tables). */
static const struct gv_cli_command *const command_tables[] = {
        gv_cli_cluster_commands,
        gv_cli_vm_commands,
        gv_cli_op_commands,
        gv_cli_image_commands,
        gv_cli_token_commands,
        gv_cli_license_commands,
        gv_cli_tenant_commands,
        gv_cli_advise_commands,
        gv_cli_top_commands,
        gv_cli_insights_commands,
        gv_cli_audit_commands,
        gv_cli_host_commands,
        gv_cli_gpu_commands,
        gv_cli_mig_commands,
        gv_cli_vgpu_commands,
};

/* The first entry for group and verb over all tables. */
static const struct gv_cli_command *find_command(const char *group, const char *verb)
{
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *c = command_tables[i]; c->group; c++)
                        if (strcmp(c->group, group) == 0 && strcmp(c->verb, verb) == 0)
                                return c;
        return NULL;
}

static void print_help(FILE *f)
{
        fprintf(f,
                "Usage: gpuvirt [GLOBAL OPTIONS] COMMAND [ARGS] [--json]\n"
                "\n"
                "GPU virtualization: pass-through, NVIDIA vGPU and MIG, on this host or across\n"
                "the cluster through the controller.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *c = command_tables[i]; c->group; c++) {
                        if (find_command(c->group, c->verb) != c)
                                continue; /* shown with its first entry */
                        char left[64];
                        snprintf(left, sizeof(left), "%s%s%s %s", c->group, *c->verb ? " " : "",
                                 c->verb, c->args);
                        fprintf(f, "  %-40s %s\n", left, c->summary);
                }
        fprintf(f,
                "\n"
                "GPU is a gpuvirt index (0, 1, ...), a PCI address (0000:18:00.0) or a UUID of\n"
                "this host; HOST/GPU (node-a/0) is a GPU of the cluster, through the controller.\n"
                "\n"
                "Global options:\n"
                "  --endpoint URL         the controller: unix:/PATH or http(s)://HOST:PORT "
                "(default\n"
                "                         $GPUVIRT_ENDPOINT, 'endpoint =' in "
                "~/.config/gpuvirt/config,\n"
                "                         else " GV_CLI_ENDPOINT_DEFAULT ")\n"
                "  --token T              API token (default $GPUVIRT_TOKEN or 'token =' in the "
                "config)\n"
                "  --ca FILE              the CA of an https:// controller's certificate "
                "(default\n"
                "                         $GPUVIRT_CA or 'ca =' in the config; docs/tls.md)\n"
                "  --sysfs-root DIR       root holding sys/ (default $GPUVIRT_SYSFS_ROOT or /)\n"
                "  --nvml-library PATH    NVML library (default $GPUVIRT_NVML_LIBRARY or "
                "libnvidia-ml.so.1)\n"
                "  --json                 machine-readable output\n"
                "  -h, --help             this help;  --version  the version\n"
                "\n"
                "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 refused by state, "
                "5 unavailable\n"
                "(library, interface or controller), 6 not allowed (token or role).\n");
}

int main(int argc, char **argv)
{
        enum { OPT_SYSFS = 0x100, OPT_NVML, OPT_JSON, OPT_VERSION, OPT_ENDPOINT, OPT_TOKEN,
               OPT_CA };
        static const struct option options[] = {
                { "endpoint", required_argument, NULL, OPT_ENDPOINT },
                { "token", required_argument, NULL, OPT_TOKEN },
                { "ca", required_argument, NULL, OPT_CA },
                { "sysfs-root", required_argument, NULL, OPT_SYSFS },
                { "nvml-library", required_argument, NULL, OPT_NVML },
                { "json", no_argument, NULL, OPT_JSON },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, OPT_VERSION },
                {},
        };
        struct gv_cli cli = {
                .sysfs_root = secure_getenv("GPUVIRT_SYSFS_ROOT"),
                .nvml_library = secure_getenv("GPUVIRT_NVML_LIBRARY"),
        };
        if (!cli.sysfs_root || !*cli.sysfs_root)
                cli.sysfs_root = "/";
        if (cli.nvml_library && !*cli.nvml_library)
                cli.nvml_library = NULL;

        int c;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "+h", options, NULL)) >= 0) {
                switch (c) {
                case OPT_SYSFS:
                        cli.sysfs_root = optarg;
                        break;
                case OPT_NVML:
                        cli.nvml_library = optarg;
                        break;
                case OPT_JSON:
                        cli.json = true;
                        break;
                case OPT_ENDPOINT:
                        cli.endpoint = optarg;
                        break;
                case OPT_TOKEN:
                        cli.token = optarg;
                        break;
                case OPT_CA:
                        cli.ca = optarg;
                        break;
                case 'h':
                        print_help(stdout);
                        return GV_EXIT_OK;
                case OPT_VERSION:
                        printf("gpuvirt %s\n", GPUVIRT_VERSION);
                        return GV_EXIT_OK;
                default:
                        return gv_cli_usage_error("unknown option '%s'", argv[optind - 1]);
                }
        }
        if (optind >= argc) {
                print_help(stderr);
                return GV_EXIT_USAGE;
        }
        const char *group = argv[optind];
        const char *verb = optind + 1 < argc ? argv[optind + 1] : NULL;
        bool group_known = false;
        const struct gv_cli_command *cmd = find_command(group, "");
        if (cmd) {
                /* a group without verbs (events): argv[0] of the command is the group */
                int ex = cmd->run(&cli, argc - optind, argv + optind);
                gv_cli_api_free(cli.api);
                return ex;
        }
        cmd = verb ? find_command(group, verb) : NULL;
        if (cmd) {
                /* argv[0] of the command is its verb, as getopt expects */
                int ex = cmd->run(&cli, argc - optind - 1, argv + optind + 1);
                gv_cli_api_free(cli.api);
                return ex;
        }
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *k = command_tables[i]; k->group; k++)
                        if (strcmp(k->group, group) == 0)
                                group_known = true;
        if (!group_known)
                return gv_cli_usage_error("unknown command '%s' (commands: host, gpu, mig, vgpu, "
                                          "vm, op, events, image, token, tenant, license, advise, "
                                          "insights, audit, top; see gpuvirt --help)",
                                          group);
        /* list the verbs of the group */
        char verbs[256] = "";
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *k = command_tables[i]; k->group; k++)
                        if (strcmp(k->group, group) == 0 && find_command(group, k->verb) == k) {
                                if (*verbs)
                                        strncat(verbs, ", ", sizeof(verbs) - strlen(verbs) - 1);
                                strncat(verbs, k->verb, sizeof(verbs) - strlen(verbs) - 1);
                        }
        if (!verb)
                return gv_cli_usage_error("'%s' needs a subcommand: %s", group, verbs);
        return gv_cli_usage_error("unknown subcommand '%s %s' (valid: %s)", group, verb, verbs);
}
