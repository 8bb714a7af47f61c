/* SPDX-License-Identifier: MIT */
#include "cli/cli.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/json.h"

int gv_cli_exit_code(int r)
{
        switch (r < 0 ? -r : r) {
        case 0:
                return GV_EXIT_OK;
        case EINVAL:
        case E2BIG:
                return GV_EXIT_USAGE;
        case ENOENT:
        case ENODEV:
        case ENXIO:
                return GV_EXIT_NOT_FOUND;
        case EBUSY:
        case ENOSPC:
        case EEXIST:
        case EPERM:
        case EDQUOT:
        case ENOTEMPTY:
                return GV_EXIT_REFUSED;
        case ELIBACC:
        case EOPNOTSUPP:
        case ENOPKG:
                return GV_EXIT_UNAVAILABLE;
        default:
                return GV_EXIT_FAILURE;
        }
}

int gv_cli_fail(const struct gv_cli *cli, int r, const struct gv_error *e)
{
        int code = gv_cli_exit_code(r);
        const char *msg = gv_error_msg(e, r);
        if (cli && cli->json) {
                /* A JSON problem on stdout for programs; the exit code says the class. */
                _cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:i}", "error", msg, "errno",
                                                     gv_errno_name(r), "exit_code", code);
                if (j) {
                        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                        fputc('\n', stdout);
                }
        }
        fprintf(stderr, "error: %s\n", msg);
        return code;
}

int gv_cli_usage_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fputs("error: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
        return GV_EXIT_USAGE;
}

int gv_cli_open_host(const struct gv_cli *cli, struct gv_host **ret)
{
        struct gv_host_config cfg = {
                .sysfs_root = cli->sysfs_root,
                .nvml_library = cli->nvml_library,
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_host_open(&cfg, ret, &e);
        if (r < 0)
                return -gv_cli_fail(cli, r, e);
        return 0;
}

int gv_cli_open_gpu(const struct gv_cli *cli, const char *sel, struct gv_host **ret_h,
                    struct gv_gpu **ret_g)
{
        int r = gv_cli_open_host(cli, ret_h);
        if (r < 0)
                return -r;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_host_find_gpu(*ret_h, sel, ret_g, &e);
        if (r < 0)
                return gv_cli_fail(cli, r, e);
        return -1;
}

bool gv_cli_parse_simple(struct gv_cli *cli, int argc, char **argv, const char *usage,
                         int n_args, int *ret_index, int *ret_exit)
{
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'j':
                        cli->json = true;
                        break;
                case 'h':
                        printf("Usage: gpuvirt %s\n", usage);
                        *ret_exit = GV_EXIT_OK;
                        return false;
                default:
                        fprintf(stderr, "error: unknown option '%s'\nUsage: gpuvirt %s\n",
                                argv[optind - 1], usage);
                        *ret_exit = GV_EXIT_USAGE;
                        return false;
                }
        }
        if (argc - optind != n_args) {
                *ret_exit = gv_cli_usage_error("usage: gpuvirt %s", usage);
                return false;
        }
        *ret_index = optind;
        return true;
}
