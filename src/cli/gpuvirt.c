/* SPDX-License-Identifier: MIT */
/*
 * gpuvirt — the command-line interface. Today it works on the local host directly (no daemon
 * yet): `gpuvirt [GLOBAL OPTIONS] GROUP VERB [ARGS]`.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config.h"
#include "util/log.h"

static const struct gv_cli_command *const command_tables[] = {
        gv_cli_host_commands,
        gv_cli_gpu_commands,
        gv_cli_mig_commands,
        gv_cli_vgpu_commands,
};

static void print_help(FILE *f)
{
        fprintf(f,
                "Usage: gpuvirt [--sysfs-root DIR] [--nvml-library PATH] [--json] COMMAND [ARGS]\n"
                "\n"
                "GPU virtualization on this host: pass-through, NVIDIA vGPU and MIG.\n"
                "\n"
                "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *c = command_tables[i]; c->group; c++) {
                        char left[64];
                        snprintf(left, sizeof(left), "%s %s %s", c->group, c->verb, c->args);
                        fprintf(f, "  %-40s %s\n", left, c->summary);
                }
        fprintf(f,
                "\n"
                "GPU is a gpuvirt index (0, 1, ...), a PCI address (0000:18:00.0) or a UUID.\n"
                "\n"
                "Global options:\n"
                "  --sysfs-root DIR       root holding sys/ (default $GPUVIRT_SYSFS_ROOT or /)\n"
                "  --nvml-library PATH    NVML library (default $GPUVIRT_NVML_LIBRARY or "
                "libnvidia-ml.so.1)\n"
                "  --json                 machine-readable output\n"
                "  -h, --help             this help;  --version  the version\n"
                "\n"
                "Exit codes: 0 ok, 1 failed, 2 usage, 3 not found, 4 refused by state, "
                "5 library or interface unavailable.\n");
}

int main(int argc, char **argv)
{
        enum { OPT_SYSFS = 0x100, OPT_NVML, OPT_JSON, OPT_VERSION };
        static const struct option options[] = {
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
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *cmd = command_tables[i]; cmd->group; cmd++) {
                        if (strcmp(cmd->group, group) != 0)
                                continue;
                        group_known = true;
                        if (verb && strcmp(cmd->verb, verb) == 0) {
                                /* argv[0] of the command is its verb, as getopt expects */
                                return cmd->run(&cli, argc - optind - 1, argv + optind + 1);
                        }
                }
        if (!group_known)
                return gv_cli_usage_error("unknown command '%s' (commands: host, gpu, mig, vgpu; "
                                          "see gpuvirt --help)", group);
        /* list the verbs of the group */
        char verbs[256] = "";
        for (size_t i = 0; i < ELEMENTSOF(command_tables); i++)
                for (const struct gv_cli_command *cmd = command_tables[i]; cmd->group; cmd++)
                        if (strcmp(cmd->group, group) == 0) {
                                if (*verbs)
                                        strncat(verbs, ", ", sizeof(verbs) - strlen(verbs) - 1);
                                strncat(verbs, cmd->verb, sizeof(verbs) - strlen(verbs) - 1);
                        }
        if (!verb)
                return gv_cli_usage_error("'%s' needs a subcommand: %s", group, verbs);
        return gv_cli_usage_error("unknown subcommand '%s %s' (valid: %s)", group, verb, verbs);
}
