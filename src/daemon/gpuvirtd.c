/* SPDX-License-Identifier: MIT */
/*
 * gpuvirtd — the one daemon (docs/agent.md, docs/api.md): a host agent, the controller, or both
 * in one process (all-in-one, the default).
 *
 *   gpuvirtd --state-dir DIR [--role all|agent|controller]
 *     agent:      [--socket PATH] [--listen HOST:PORT] [--sysfs-root DIR] [--nvml-library PATH]
 *                 [--qemu PATH] [--accel auto|kvm|tcg] [--stop-timeout S] [--orphan-grace S]
 *                 [--shared-storage DIR]...
 *                 [--controller URL --host-name NAME [--advertise URL]]   (role agent)
 *                 [--tls-cert FILE --tls-key FILE] [--agent-secret-file FILE]
 *     controller: [--store URL] [--api-socket PATH] [--api-listen HOST:PORT]
 *                 [--api-tls-cert FILE --api-tls-key FILE]
 *                 [--host-down-after S] [--agent-timeout S] [--migration-stall-timeout S]
 *                 [--metrics-interval MS] [--audit-retention-days DAYS|never]
 *                 [--web-dir DIR]
 *     both:       [--tls-ca FILE]   the CA that signs the other side's certificate
 *
 * The agent API is served on DIR/agent.sock (mode 0600) and optionally on TCP; the controller's
 * REST API on DIR/gpuvirt.sock (the local socket is admin) and optionally on TCP. In role all
 * the controller registers the local agent as this machine's host. An agent with --controller
 * registers there and heartbeats (token from GPUVIRT_TOKEN), sending its secret (register.h):
 * its TCP listener answers only requests that carry it. With a certificate and key the TCP
 * listeners speak TLS 1.3 only (docs/tls.md). SIGTERM/SIGINT stop the daemon;
 * running VMs keep running and are re-adopted by the next start. Prints "gpuvirtd: ready on
 * ..." lines to stdout when it serves.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/api.h"
#include "agent/register.h"
#include "agent/sampler.h"
#include "daemon/config.h"
#include "controller/api.h"
#include "controller/controller.h"
#include "controller/metrics.h"
#include "http/client.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

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
        fprintf(f, "gpuvirtd [--config FILE] --state-dir DIR [--role all|agent|controller]\n"
                   "  agent:      [--socket PATH] [--listen HOST:PORT] [--sysfs-root DIR]\n"
                   "              [--nvml-library PATH] [--qemu PATH] [--accel auto|kvm|tcg]\n"
                   "              [--stop-timeout SECONDS] [--orphan-grace SECONDS]\n"
                   "              [--shared-storage DIR]...\n"
                   "              [--controller URL --host-name NAME [--advertise URL]]\n"
                   "              [--sample-interval MS]\n"
                   "              [--tls-cert FILE --tls-key FILE] [--agent-secret-file FILE]\n"
                   "              [--qemu-user USER] [--qemu-sandbox on|off] [--cgroup-root DIR]\n"
                   "              [--console-log-max BYTES]\n"
                   "  controller: [--store URL] [--api-socket PATH] [--api-listen HOST:PORT]\n"
                   "              [--api-tls-cert FILE --api-tls-key FILE]\n"
                   "              [--host-down-after SECONDS] [--agent-timeout SECONDS]\n"
                   "              [--migration-stall-timeout SECONDS] [--web-dir DIR]\n"
                   "              [--audit-retention-days DAYS|never] [--api-rate N] [--api-burst N]\n"
                   "              [--api-max-inflight N]\n"
                   "  both:       [--tls-ca FILE] (the CA of the other side's certificate)\n");
}

struct daemon {
        const char *role;
        struct gv_agent_config agent;
        const char *accel;
        const char *socket_path, *listen_addr;
        const char *controller_url, *host_name, *advertise;
        const char *store_url, *api_socket, *api_listen;
        const char *web_dir;          /* the dashboard's files (docs/dashboard.md) */
        const char *tls_cert, *tls_key;         /* the agent's TCP listener */
        const char *api_tls_cert, *api_tls_key; /* the controller's */
        const char *tls_ca;                     /* trusted for https peers */
        const char *agent_secret_file;          /* NULL: STATE/agent.secret */
        int host_down_after_ms;
        int agent_timeout_ms, migration_stall_ms;
        int metrics_interval_ms;
        unsigned api_rate, api_burst; /* requests a second per token, and at once; 0: defaults */
        unsigned api_max_inflight;    /* requests served at once; 0: the controller's default */
        int audit_retention_days;     /* 0: the controller's default (90); -1: kept forever */
        char **shared_storage;        /* --shared-storage, canonical (agent.shared_storage) */
        /* running */
        char *agent_sock;
        char *agent_secret;
        struct gv_agent_api agent_api;
        struct gv_http_server *agent_srv;
        struct gv_registrar *registrar;
        struct gv_controller *ctl;
        struct gv_controller_api ctl_api;
        struct gv_http_server *ctl_srv;
};

static const struct option opts[] = {
        { "state-dir", required_argument, NULL, 'd' },
        { "role", required_argument, NULL, 'R' },
        { "socket", required_argument, NULL, 's' },
        { "listen", required_argument, NULL, 'l' },
        { "sysfs-root", required_argument, NULL, 'r' },
        { "nvml-library", required_argument, NULL, 'n' },
        { "qemu", required_argument, NULL, 'q' },
        { "accel", required_argument, NULL, 'a' },
        { "stop-timeout", required_argument, NULL, 't' },
        { "orphan-grace", required_argument, NULL, 'g' },
        { "shared-storage", required_argument, NULL, 'H' },
        { "controller", required_argument, NULL, 'C' },
        { "host-name", required_argument, NULL, 'N' },
        { "advertise", required_argument, NULL, 'A' },
        { "store", required_argument, NULL, 'S' },
        { "api-socket", required_argument, NULL, 'P' },
        { "api-listen", required_argument, NULL, 'L' },
        { "host-down-after", required_argument, NULL, 'D' },
        { "agent-timeout", required_argument, NULL, 'T' },
        { "migration-stall-timeout", required_argument, NULL, 'M' },
        { "sample-interval", required_argument, NULL, 'I' },
        { "metrics-interval", required_argument, NULL, 'X' },
        { "web-dir", required_argument, NULL, 'W' },
        { "tls-cert", required_argument, NULL, 'c' },
        { "tls-key", required_argument, NULL, 'k' },
        { "api-tls-cert", required_argument, NULL, 'E' },
        { "api-tls-key", required_argument, NULL, 'K' },
        { "tls-ca", required_argument, NULL, 'Y' },
        { "agent-secret-file", required_argument, NULL, 'Z' },
        { "qemu-user", required_argument, NULL, 1001 },
        { "qemu-sandbox", required_argument, NULL, 1002 },
        { "cgroup-root", required_argument, NULL, 1003 },
        { "console-log-max", required_argument, NULL, 1004 },
        { "audit-retention-days", required_argument, NULL, 1100 },
        { "api-rate", required_argument, NULL, 1101 },
        { "api-burst", required_argument, NULL, 1102 },
        { "api-max-inflight", required_argument, NULL, 1103 },
        { "config", required_argument, NULL, 'F' },
        { "help", no_argument, NULL, 'h' },
        {},
};

#define DEFAULT_CONFIG "/etc/gpuvirt/gpuvirtd.conf"

static int parse_seconds(const char *opt, const char *arg, uint32_t min, uint32_t max,
                         uint32_t *ret)
{
        if (gv_parse_u32(arg, 10, ret) < 0 || *ret < min || *ret > max) {
                fprintf(stderr, "gpuvirtd: --%s: '%s' is not %u..%u seconds.\n", opt, arg, min,
                        max);
                return -EINVAL;
        }
        return 0;
}

static int parse_args(int argc, char **argv, struct daemon *d)
{
        int c;
        uint32_t s;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'd': d->agent.state_dir = optarg; break;
                case 'R': d->role = optarg; break;
                case 's': d->socket_path = optarg; break;
                case 'l': d->listen_addr = optarg; break;
                case 'r': d->agent.sysfs_root = optarg; break;
                case 'n': d->agent.nvml_library = optarg; break;
                case 'q': d->agent.qemu_binary = optarg; break;
                case 'a': d->accel = optarg; break;
                case 't':
                        if (parse_seconds("stop-timeout", optarg, 1, 3600, &s) < 0)
                                return -EINVAL;
                        d->agent.stop_timeout_ms = (int)s * 1000;
                        break;
                case 'g':
                        /* Hardware no VM owns is removed after this long (docs/agent.md,
                         * "Reconcile"); 0: at once. */
                        if (parse_seconds("orphan-grace", optarg, 0, 86400, &s) < 0)
                                return -EINVAL;
                        d->agent.orphan_grace_ms = s ? (int)s * 1000 : -1;
                        break;
                case 'H': {
                        /* A directory both hosts of a live migration see (docs/agent.md,
                         * "Migration"); repeatable. Kept canonical: disks are compared by
                         * their real paths. */
                        _cleanup_free_ char *real = NULL;
                        struct stat st;
                        if (optarg[0] != '/' || !(real = realpath(optarg, NULL)) ||
                            stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
                                fprintf(stderr, "gpuvirtd: --shared-storage: '%s' is not an "
                                                "absolute path to a directory.\n", optarg);
                                return -EINVAL;
                        }
                        strv_consume(&d->shared_storage, TAKE_PTR(real));
                        break;
                }
                case 'C': d->controller_url = optarg; break;
                case 'N': d->host_name = optarg; break;
                case 'A': d->advertise = optarg; break;
                case 'S': d->store_url = optarg; break;
                case 'P': d->api_socket = optarg; break;
                case 'L': d->api_listen = optarg; break;
                case 'D':
                        if (parse_seconds("host-down-after", optarg, 1, 86400, &s) < 0)
                                return -EINVAL;
                        d->host_down_after_ms = (int)s * 1000;
                        break;
                case 'T':
                        if (parse_seconds("agent-timeout", optarg, 1, 3600, &s) < 0)
                                return -EINVAL;
                        d->agent_timeout_ms = (int)s * 1000;
                        break;
                case 'M':
                        if (parse_seconds("migration-stall-timeout", optarg, 1, 86400, &s) < 0)
                                return -EINVAL;
                        d->migration_stall_ms = (int)s * 1000;
                        break;
                case 'I': {
                        /* The metrics sampler's period (docs/agent.md, "Metrics"). */
                        uint32_t ms;
                        if (gv_parse_u32(optarg, 10, &ms) < 0 || ms < GV_SAMPLER_INTERVAL_MIN_MS ||
                            ms > GV_SAMPLER_INTERVAL_MAX_MS) {
                                fprintf(stderr, "gpuvirtd: --sample-interval: '%s' is not %d..%d "
                                                "milliseconds.\n", optarg,
                                        GV_SAMPLER_INTERVAL_MIN_MS, GV_SAMPLER_INTERVAL_MAX_MS);
                                return -EINVAL;
                        }
                        d->agent.sample_interval_ms = (int)ms;
                        break;
                }
                case 'W': d->web_dir = optarg; break;
                case 'c': d->tls_cert = optarg; break;
                case 'k': d->tls_key = optarg; break;
                case 'E': d->api_tls_cert = optarg; break;
                case 'K': d->api_tls_key = optarg; break;
                case 'Y': d->tls_ca = optarg; break;
                case 'Z': d->agent_secret_file = optarg; break;
                case 'X': {
                        /* The controller's metrics collection period (docs/api.md, "Metrics"). */
                        uint32_t ms;
                        if (gv_parse_u32(optarg, 10, &ms) < 0 || ms < GV_METRICS_INTERVAL_MIN_MS ||
                            ms > GV_METRICS_INTERVAL_MAX_MS) {
                                fprintf(stderr, "gpuvirtd: --metrics-interval: '%s' is not %d..%d "
                                                "milliseconds.\n", optarg,
                                        GV_METRICS_INTERVAL_MIN_MS, GV_METRICS_INTERVAL_MAX_MS);
                                return -EINVAL;
                        }
                        d->metrics_interval_ms = (int)ms;
                        break;
                }
                case 1100: {
                        /* How long audit records are kept (docs/audit.md); "never": forever. */
                        uint32_t days;
                        if (strcmp(optarg, "never") == 0) {
                                d->audit_retention_days = -1;
                                break;
                        }
                        if (gv_parse_u32(optarg, 10, &days) < 0 || days < 1 || days > 36500) {
                                fprintf(stderr, "gpuvirtd: --audit-retention-days: '%s' is not "
                                                "1..36500 days or never.\n", optarg);
                                return -EINVAL;
                        }
                        d->audit_retention_days = (int)days;
                        break;
                }
                case 1101:
                case 1102: {
                        /* Requests per token (docs/security.md, "Limits"). */
                        uint32_t v;
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v < 1 || v > 1000000) {
                                fprintf(stderr, "gpuvirtd: --%s: '%s' is not 1..1000000.\n",
                                        c == 1101 ? "api-rate" : "api-burst", optarg);
                                return -EINVAL;
                        }
                        if (c == 1101)
                                d->api_rate = v;
                        else
                                d->api_burst = v;
                        break;
                }
                case 1103: {
                        /* Requests in flight (docs/configuration.md; R17). */
                        uint32_t v;
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v < 2 || v > 4096) {
                                fprintf(stderr, "gpuvirtd: --api-max-inflight: '%s' is not "
                                                "2..4096.\n", optarg);
                                return -EINVAL;
                        }
                        d->api_max_inflight = v;
                        break;
                }
                /* QEMU's confinement (docs/qemu-confinement.md). */
                case 1001: d->agent.qemu_user = optarg; break;
                case 1002:
                        if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0) {
                                fprintf(stderr, "gpuvirtd: --qemu-sandbox: '%s' is not on or "
                                                "off.\n", optarg);
                                return -EINVAL;
                        }
                        d->agent.qemu_sandbox = optarg;
                        break;
                case 1003: d->agent.cgroup_root = optarg; break;
                case 1004: {
                        /* Bytes per console log file (console.log and console.log.1). */
                        uint32_t b;
                        if (gv_parse_u32(optarg, 10, &b) < 0 || b < 1024 || b > (1u << 30)) {
                                fprintf(stderr, "gpuvirtd: --console-log-max: '%s' is not "
                                                "1024..1073741824 bytes.\n", optarg);
                                return -EINVAL;
                        }
                        d->agent.console_log_max = b;
                        break;
                }
                case 'F': break; /* read before (config_argv) */
                case 'h': usage(stdout); exit(0);
                default: usage(stderr); return -EINVAL;
                }
        }
        if (!d->agent.state_dir || optind != argc) {
                usage(stderr);
                return -EINVAL;
        }
        if (strcmp(d->role, "all") != 0 && strcmp(d->role, "agent") != 0 &&
            strcmp(d->role, "controller") != 0) {
                fprintf(stderr, "gpuvirtd: --role: '%s' is not all, agent or controller.\n",
                        d->role);
                return -EINVAL;
        }
        if (strcmp(d->accel, "auto") != 0 && (int)gv_accel_from_string(d->accel) < 0) {
                fprintf(stderr, "gpuvirtd: --accel: '%s' is not auto, kvm or tcg.\n", d->accel);
                return -EINVAL;
        }
        if (d->controller_url && strcmp(d->role, "agent") != 0) {
                fprintf(stderr, "gpuvirtd: --controller is for --role agent (in role all the "
                                "controller runs in this process).\n");
                return -EINVAL;
        }
        if (!d->tls_cert != !d->tls_key) {
                fprintf(stderr, "gpuvirtd: --%s needs --%s too (a certificate and its key).\n",
                        d->tls_cert ? "tls-cert" : "tls-key", d->tls_cert ? "tls-key" : "tls-cert");
                return -EINVAL;
        }
        if (!d->api_tls_cert != !d->api_tls_key) {
                fprintf(stderr, "gpuvirtd: --%s needs --%s too (a certificate and its key).\n",
                        d->api_tls_cert ? "api-tls-cert" : "api-tls-key",
                        d->api_tls_cert ? "api-tls-key" : "api-tls-cert");
                return -EINVAL;
        }
        if (d->tls_cert && !d->listen_addr) {
                fprintf(stderr, "gpuvirtd: --tls-cert is for the agent's TCP listener; give "
                                "--listen HOST:PORT too.\n");
                return -EINVAL;
        }
        if (d->api_tls_cert && !d->api_listen) {
                fprintf(stderr, "gpuvirtd: --api-tls-cert is for the controller's TCP listener; "
                                "give --api-listen HOST:PORT too.\n");
                return -EINVAL;
        }
        d->agent.accel = d->accel;
        d->agent.shared_storage = (const char *const *)d->shared_storage;
        return 0;
}

static int start_agent(struct daemon *d, struct gv_error **err)
{
        _cleanup_free_ char *ops = gv_path_join(d->agent.state_dir, "ops");
        size_t n_routes;
        const struct gv_http_route *routes = gv_agent_api_routes(&n_routes);
        int r = gv_oplog_open(ops, &d->agent_api.oplog, err);

        if (r >= 0)
                r = gv_agent_new(&d->agent, &d->agent_api.agent, err);
        if (r >= 0)
                r = gv_oplog_recover(d->agent_api.oplog, recover_op, NULL, err);
        if (r < 0)
                return r;
        /* The journal keeps a day of finished operations, at most 10,000 (oplog.h); api.c
         * prunes again as operations finish. */
        (void)gv_oplog_prune(d->agent_api.oplog, GV_OPLOG_KEEP_S, GV_OPLOG_KEEP_MAX, NULL);
        for (const char *const *w = gv_oplog_warnings(d->agent_api.oplog); *w; w++)
                fprintf(stderr, "gpuvirtd: %s\n", *w);
        d->agent_sock = d->socket_path ? xstrdup(d->socket_path)
                                       : gv_path_join(d->agent.state_dir, "agent.sock");
        if (d->listen_addr || d->controller_url) {
                /* The TCP listener takes only requests with the agent's secret, which exists
                 * from the start: it is never open. */
                _cleanup_free_ char *def = gv_path_join(d->agent.state_dir, "agent.secret");
                r = gv_agent_secret_load(d->agent_secret_file ? d->agent_secret_file : def,
                                         !d->agent_secret_file, &d->agent_secret, err);
                if (r < 0)
                        return r;
                d->agent_api.secret = d->agent_secret;
        }
        struct gv_http_config hc = { .unix_path = d->agent_sock, .tcp_address = d->listen_addr,
                                     .tls_cert_file = d->tls_cert, .tls_key_file = d->tls_key,
                                     .tcp_authorize = gv_agent_api_authorize };
        r = gv_http_server_new(&hc, routes, n_routes, &d->agent_api, &d->agent_srv, err);
        if (r < 0)
                return r;
        const char *scheme = d->tls_cert ? "https://" : "http://";
        printf("gpuvirtd: ready on unix:%s%s%s%s (accel %s)\n", d->agent_sock,
               d->listen_addr ? " and " : "", d->listen_addr ? scheme : "",
               d->listen_addr ? d->listen_addr : "",
               d->agent_api.agent->qemu.reason ? d->agent_api.agent->qemu.reason : "no QEMU");
        fflush(stdout);
        if (d->controller_url) {
                _cleanup_free_ char *ep = NULL;
                if (!d->advertise)
                        ep = d->listen_addr ? xasprintf("%s%s", scheme, d->listen_addr)
                                            : xasprintf("unix:%s", d->agent_sock);
                const char *adv = d->advertise ? d->advertise : ep;
                /* The library never logs: the daemon says where secrets would travel in
                 * clear. */
                if (gv_startswith(d->controller_url, "http://") &&
                    !gv_endpoint_is_local(d->controller_url))
                        fprintf(stderr, "gpuvirtd: warning: registering with %s over plain "
                                        "http: the agent's secret and the token travel in "
                                        "clear; give the controller a certificate and use "
                                        "https:// (docs/tls.md).\n", d->controller_url);
                if (gv_startswith(adv, "http://") && !gv_endpoint_is_local(adv))
                        fprintf(stderr, "gpuvirtd: warning: the controller reaches this agent "
                                        "at %s over plain http, so the agent's secret "
                                        "travels in clear on every call; give the agent "
                                        "--tls-cert and --tls-key (docs/tls.md).\n", adv);
                struct gv_registrar_config rc = {
                        .controller = d->controller_url,
                        .token = secure_getenv("GPUVIRT_TOKEN"),
                        .name = d->host_name,
                        .endpoint = adv,
                        .secret = d->agent_secret,
                };
                r = gv_registrar_start(&rc, &d->registrar, err);
        }
        return r;
}

static int start_controller(struct daemon *d, struct gv_error **err)
{
        _cleanup_free_ char *store = d->store_url
                                             ? xstrdup(d->store_url)
                                             : xasprintf("sqlite:%s/gpuvirt.db",
                                                         d->agent.state_dir);
        _cleanup_free_ char *sock = d->api_socket
                                            ? xstrdup(d->api_socket)
                                            : gv_path_join(d->agent.state_dir, "gpuvirt.sock");
        _cleanup_free_ char *images = gv_path_join(d->agent.state_dir, "images");
        struct gv_controller_config cc = { .store_url = store,
                                           .host_down_after_ms = d->host_down_after_ms,
                                           .agent_timeout_ms = d->agent_timeout_ms,
                                           .migration_stall_ms = d->migration_stall_ms,
                                           .metrics_interval_ms = d->metrics_interval_ms,
                                           .audit_retention_days = d->audit_retention_days,
                                           .api_rate = d->api_rate,
                                           .api_burst = d->api_burst,
                                           .api_max_inflight = d->api_max_inflight,
                                           .image_dir = images };
        size_t n_routes;
        const struct gv_http_route *routes = gv_controller_api_routes(&n_routes);
        int r = gv_controller_new(&cc, &d->ctl, err);

        if (r < 0)
                return r;
        d->ctl_api.controller = d->ctl;
        d->ctl_api.web_dir = d->web_dir;
        /* Uploads are written next to where they are kept, so keeping one is a rename. */
        r = gv_mkdir_p(images, 0700);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot create '%s': %s.", images, strerror(-r));
        struct gv_http_config hc = { .unix_path = sock, .tcp_address = d->api_listen,
                                     .upload_dir = images,
                                     .max_body = GV_CONTROLLER_API_MAX_BODY,
                                     /* Room past the in-flight cap, so that the requests over
                                      * it are answered 503 rather than left unaccepted. */
                                     .max_connections = 4 * gv_controller_inflight_max(d->ctl),
                                     .tls_cert_file = d->api_tls_cert,
                                     .tls_key_file = d->api_tls_key };
        r = gv_http_server_new(&hc, routes, n_routes, &d->ctl_api, &d->ctl_srv, err);
        if (r < 0)
                return r;
        if (d->agent_api.agent) {
                /* All-in-one: this machine's agent is the cluster's first host. */
                _cleanup_json_ json_t *h = NULL;
                _cleanup_free_ char *ep = xasprintf("unix:%s", d->agent_sock);
                char hn[256] = "localhost";
                const char *name = d->host_name;
                if (!name) {
                        (void)gethostname(hn, sizeof(hn) - 1);
                        name = hn;
                }
                r = gv_controller_host_register_agent(d->ctl, name, ep, d->agent_secret, &h,
                                                      err);
                if (r < 0)
                        return gv_error_wrap(err, r, "registering the local agent as host '%s'"
                                             " (--host-name sets another name)", name);
        }
        printf("gpuvirtd: controller ready on unix:%s%s%s (store %s)\n", sock,
               d->api_listen ? (d->api_tls_cert ? " and https://" : " and http://") : "",
               d->api_listen ? d->api_listen : "", store);
        fflush(stdout);
        return 0;
}

static void stop_all(struct daemon *d)
{
        gv_http_server_free(d->ctl_srv);
        gv_controller_free(d->ctl);
        gv_registrar_stop(d->registrar);
        gv_http_server_free(d->agent_srv);
        gv_agent_free(d->agent_api.agent);
        gv_oplog_free(d->agent_api.oplog);
        free(d->agent_sock);
        if (d->agent_secret)
                explicit_bzero(d->agent_secret, strlen(d->agent_secret));
        free(d->agent_secret);
        strv_free(d->shared_storage);
}

/* argv with the configuration file's settings first: --config FILE, or DEFAULT_CONFIG when it
 * exists. The command line's own options come after them and so win. */
static int config_argv(int argc, char **argv, char ***ret, struct gv_error **err)
{
        _cleanup_strv_free_ char **out = NULL, **known = NULL;
        const char *path = NULL;
        int r;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
                        path = argv[i + 1];
                else if (strncmp(argv[i], "--config=", 9) == 0)
                        path = argv[i] + 9;
        }
        if (!path && gv_file_exists(DEFAULT_CONFIG) > 0)
                path = DEFAULT_CONFIG;
        strv_extend(&out, argv[0]);
        if (path) {
                for (const struct option *o = opts; o->name; o++)
                        if (o->has_arg == required_argument && strcmp(o->name, "config") != 0)
                                strv_extend(&known, o->name);
                r = gv_daemon_config_load(path, (const char *const *)known, &out, err);
                if (r < 0)
                        return r;
        }
        for (int i = 1; i < argc; i++)
                strv_extend(&out, argv[i]);
        *ret = TAKE_PTR(out);
        return 0;
}

int main(int argc, char **argv)
{
        /* As the CLI: a simulated host's environment (gpuvirt-sim exec) names its root and
         * NVML; the options win. */
        const char *env_root = secure_getenv("GPUVIRT_SYSFS_ROOT");
        struct daemon d = {
                .role = "all",
                .accel = "auto",
                .agent = { .sysfs_root = env_root && env_root[0] ? env_root : "/",
                           .nvml_library = secure_getenv("GPUVIRT_NVML_LIBRARY") },
        };
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        sigset_t mask;
        int r, sig;

        _cleanup_strv_free_ char **args = NULL;
        r = config_argv(argc, argv, &args, &err);
        if (r < 0) {
                fprintf(stderr, "gpuvirtd: %s\n", gv_error_msg(err, r));
                return 2;
        }
        if (parse_args((int)strv_length(args), args, &d) < 0) {
                strv_free(d.shared_storage);
                return 2;
        }
        /* Signals are taken synchronously by this thread; every other thread (the HTTP
         * servers', the supervisor, the controller's) inherits the blocked mask. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &mask, NULL);
        signal(SIGPIPE, SIG_IGN);

        /* Every https peer (agents for the controller, the controller for an agent) is
         * verified against this CA; without it, against the system's trust store. */
        if (d.tls_ca)
                gv_http_client_set_ca_file(d.tls_ca);
        r = gv_mkdir_p(d.agent.state_dir, 0700);
        if (r < 0) {
                fprintf(stderr, "gpuvirtd: cannot create '%s': %s\n", d.agent.state_dir,
                        strerror(-r));
                return 1;
        }
        if (strcmp(d.role, "controller") != 0)
                r = start_agent(&d, &err);
        if (r >= 0 && strcmp(d.role, "agent") != 0)
                r = start_controller(&d, &err);
        if (r < 0) {
                fprintf(stderr, "gpuvirtd: %s\n", gv_error_msg(err, r));
                stop_all(&d);
                return 1;
        }
        for (;;) {
                sig = sigwaitinfo(&mask, NULL);
                if (sig == SIGTERM || sig == SIGINT)
                        break;
        }
        stop_all(&d);
        return 0;
}
