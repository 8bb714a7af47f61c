/* SPDX-License-Identifier: MIT */
/*
 * cli.h — what every command of `gpuvirt` shares: global options, opening the host, printing
 * errors, exit codes. One file per command group (cmd-*.c), dispatched from the table in
 * gpuvirt.c.
 *
 * Exit codes (docs/cli.md):
 *   0 success
 *   1 the operation failed (hardware or library error)
 *   2 usage error: bad arguments, unknown command, name or profile
 *   3 not found: no such GPU, GPU instance or vGPU
 *   4 refused: the current state forbids it (GPU busy or full, impossible layout, IOMMU group)
 *   5 unavailable: a needed library or kernel interface is missing (e.g. NVML), or the
 *     controller cannot be reached
 *   6 not allowed: the controller refused the token (HTTP 401) or its role (HTTP 403)
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "host/host.h"
#include "util/error.h"

enum {
        GV_EXIT_OK = 0,
        GV_EXIT_FAILURE = 1,
        GV_EXIT_USAGE = 2,
        GV_EXIT_NOT_FOUND = 3,
        GV_EXIT_REFUSED = 4,
        GV_EXIT_UNAVAILABLE = 5,
        GV_EXIT_NOT_ALLOWED = 6,
};

struct gv_cli_api;

struct gv_cli {
        const char *sysfs_root;
        const char *nvml_library;
        bool json;
        const char *endpoint;   /* --endpoint (API commands; client.h) */
        const char *token;      /* --token */
        const char *ca;         /* --ca: an https controller's CA (client.h) */
        struct gv_cli_api *api; /* resolved on the first API call, freed by main */
        /* Set around an upload: the request body's progress (client.c passes it on). */
        void (*on_sent)(void *userdata, uint64_t sent, uint64_t total);
        void *on_sent_userdata;
};

struct gv_cli_command {
        const char *group;   /* "host", "gpu", "mig", "vgpu" */
        const char *verb;    /* "inspect", "set-mode", ... */
        const char *args;    /* usage text after the verb */
        const char *summary;
        int (*run)(struct gv_cli *cli, int argc, char **argv);
};

/* Print "error: <msg>" (and the hint lines already in msg) and map errno to an exit code. */
int gv_cli_fail(const struct gv_cli *cli, int r, const struct gv_error *e);
int gv_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int gv_cli_exit_code(int r);
int gv_cli_open_host(const struct gv_cli *cli, struct gv_host **ret);
/* Open the host and find the GPU named by sel. Returns -1 to go on (both set), or the exit
 * code to return after printing the error. */
int gv_cli_open_gpu(const struct gv_cli *cli, const char *sel, struct gv_host **ret_h,
                    struct gv_gpu **ret_g);
/* Parse a command's own options when it has only --json and -h, and check it got exactly
 * n_args positional arguments. Returns true to go on with *ret_index the first positional
 * argument; false to exit at once with *ret_exit (help printed, or a usage error). */
bool gv_cli_parse_simple(struct gv_cli *cli, int argc, char **argv, const char *usage,
                         int n_args, int *ret_index, int *ret_exit);

extern const struct gv_cli_command gv_cli_host_commands[];
extern const struct gv_cli_command gv_cli_gpu_commands[];
extern const struct gv_cli_command gv_cli_mig_commands[];
extern const struct gv_cli_command gv_cli_vgpu_commands[];
/* The controller's API (client.h): cmd-cluster.c, cmd-vm.c, cmd-op.c, cmd-image.c,
 * cmd-token.c. The cluster table also holds the HOST/GPU forms of local commands and hands a
 * bare GPU on to the local table. */
extern const struct gv_cli_command gv_cli_cluster_commands[];
extern const struct gv_cli_command gv_cli_vm_commands[];
extern const struct gv_cli_command gv_cli_op_commands[];
extern const struct gv_cli_command gv_cli_image_commands[];
extern const struct gv_cli_command gv_cli_token_commands[];
extern const struct gv_cli_command gv_cli_license_commands[]; /* cmd-license.c */
