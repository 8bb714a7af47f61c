/* SPDX-License-Identifier: MIT */
/*
 * gpuvirtd — the host agent (docs/agent.md).
 *
 *   gpuvirtd --state-dir DIR [--socket PATH] [--listen HOST:PORT] [--sysfs-root DIR]
 *            [--nvml-library PATH] [--qemu PATH] [--accel auto|kvm|tcg] [--stop-timeout S]
 *            [--orphan-grace S]
 *
 * Serves the agent API on a UNIX socket (default DIR/agent.sock, mode 0600) and optionally on
 * TCP. SIGTERM/SIGINT stop the agent; running VMs keep running and are re-adopted by the next
 * start. Prints one line "gpuvirtd: ready on ..." to stdout when it serves.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/api.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"

/* An operation the previous agent died in the middle of: the agent's own start-up has already
 * finished or rolled back what it was doing to the VM (gv_agent_new), and every VM operation is
 * idempotent, so the journal forgets it and a retry with the same id runs it again. */
static int recover_op(const char *id, const char *method, const char *path, unsigned *ret_status,
                      json_t **ret_body, void *userdata)
{
        (void)id, (void)method, (void)path, (void)ret_status, (void)ret_body, (void)userdata;
        return 0;
}

static void usage(FILE *f)
{
        fprintf(f, "gpuvirtd --state-dir DIR [--socket PATH] [--listen HOST:PORT]\n"
                   "         [--sysfs-root DIR] [--nvml-library PATH] [--qemu PATH]\n"
                   "         [--accel auto|kvm|tcg] [--stop-timeout SECONDS]\n"
                   "         [--orphan-grace SECONDS]\n");
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                { "state-dir", required_argument, NULL, 'd' },
                { "socket", required_argument, NULL, 's' },
                { "listen", required_argument, NULL, 'l' },
                { "sysfs-root", required_argument, NULL, 'r' },
                { "nvml-library", required_argument, NULL, 'n' },
                { "qemu", required_argument, NULL, 'q' },
                { "accel", required_argument, NULL, 'a' },
                { "stop-timeout", required_argument, NULL, 't' },
                { "orphan-grace", required_argument, NULL, 'g' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        /* As the CLI: a simulated host's environment (gpuvirt-sim exec) names its root and
         * NVML; the options win. */
        const char *env_root = secure_getenv("GPUVIRT_SYSFS_ROOT");
        struct gv_agent_config cfg = { .sysfs_root = env_root && env_root[0] ? env_root : "/",
                                       .nvml_library = secure_getenv("GPUVIRT_NVML_LIBRARY") };
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        _cleanup_free_ char *sock = NULL, *ops = NULL;
        const char *socket_path = NULL, *listen_addr = NULL, *accel = "auto";
        struct gv_agent_api api = { 0 };
        struct gv_http_server *srv = NULL;
        sigset_t mask;
        int c, r, sig;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'd': cfg.state_dir = optarg; break;
                case 's': socket_path = optarg; break;
                case 'l': listen_addr = optarg; break;
                case 'r': cfg.sysfs_root = optarg; break;
                case 'n': cfg.nvml_library = optarg; break;
                case 'q': cfg.qemu_binary = optarg; break;
                case 'a': accel = optarg; break;
                case 't': {
                        uint32_t s;
                        if (gv_parse_u32(optarg, 10, &s) < 0 || s < 1 || s > 3600) {
                                fprintf(stderr, "gpuvirtd: --stop-timeout: '%s' is not 1..3600 "
                                                "seconds.\n", optarg);
                                return 2;
                        }
                        cfg.stop_timeout_ms = (int)s * 1000;
                        break;
                }
                case 'g': {
                        /* Hardware no VM owns is removed after this long (docs/agent.md,
                         * "Reconcile"); 0: at once. */
                        uint32_t s;
                        if (gv_parse_u32(optarg, 10, &s) < 0 || s > 86400) {
                                fprintf(stderr, "gpuvirtd: --orphan-grace: '%s' is not 0..86400 "
                                                "seconds.\n", optarg);
                                return 2;
                        }
                        cfg.orphan_grace_ms = s ? (int)s * 1000 : -1;
                        break;
                }
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (!cfg.state_dir || optind != argc) {
                usage(stderr);
                return 2;
        }
        cfg.accel = accel;
        if (strcmp(accel, "auto") != 0 && (int)gv_accel_from_string(accel) < 0) {
                fprintf(stderr, "gpuvirtd: --accel: '%s' is not auto, kvm or tcg.\n", accel);
                return 2;
        }
        /* Signals are taken synchronously by this thread; every other thread (the HTTP
         * server's, the supervisor) inherits the blocked mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        r = gv_mkdir_p(cfg.state_dir, 0700);
        if (r < 0) {
                fprintf(stderr, "gpuvirtd: cannot create '%s': %s\n", cfg.state_dir, strerror(-r));
                return 1;
        }
        ops = gv_path_join(cfg.state_dir, "ops");
        r = gv_oplog_open(ops, &api.oplog, &err);
        if (r < 0)
                goto fail;
        r = gv_agent_new(&cfg, &api.agent, &err);
        if (r < 0)
                goto fail;
        r = gv_oplog_recover(api.oplog, recover_op, NULL, &err);
        if (r < 0)
                goto fail;
        /* The journal keeps a week of finished operations, at most 100,000. */
        (void)gv_oplog_prune(api.oplog, 7 * 24 * 3600, 100000, NULL);
        for (const char *const *w = gv_oplog_warnings(api.oplog); *w; w++)
                fprintf(stderr, "gpuvirtd: %s\n", *w);
        sock = socket_path ? xstrdup(socket_path) : gv_path_join(cfg.state_dir, "agent.sock");
        {
                size_t n_routes;
                const struct gv_http_route *routes = gv_agent_api_routes(&n_routes);
                struct gv_http_config hc = { .unix_path = sock, .tcp_address = listen_addr };
                r = gv_http_server_new(&hc, routes, n_routes, &api, &srv, &err);
                if (r < 0)
                        goto fail;
        }
        printf("gpuvirtd: ready on unix:%s%s%s (accel %s)\n", sock, listen_addr ? " and " : "",
               listen_addr ? listen_addr : "",
               api.agent->qemu.reason ? api.agent->qemu.reason : "no QEMU");
        fflush(stdout);
        for (;;) {
                sig = sigwaitinfo(&mask, NULL);
                if (sig == SIGTERM || sig == SIGINT)
                        break;
        }
        gv_http_server_free(srv);
        gv_agent_free(api.agent);
        gv_oplog_free(api.oplog);
        return 0;
fail:
        fprintf(stderr, "gpuvirtd: %s\n", gv_error_msg(err, r));
        gv_http_server_free(srv);
        gv_agent_free(api.agent);
        gv_oplog_free(api.oplog);
        return 1;
}
