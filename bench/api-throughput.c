/* SPDX-License-Identifier: MIT */
/*
 * bench-api — throughput of the controller's `GET /api/v1/vms` with 1,000 VMs in its store,
 * measured with wrk on loopback, beside a trivial libmicrohttpd server that answers the same
 * bytes as the ceiling of this machine, in the same run (issue 5, BENCHMARKS.md).
 *
 *   bench-api [--vms N] [--duration S] [--connections C] [--threads T] [--rounds R]
 *             [--daemon PATH] [--out CSV] [--keep-dir]
 *
 * Setup (untimed): the N VM documents are written straight into a fresh SQLite store through
 * src/store (one batch), shaped as src/controller/vms.c writes them for a running VM with one
 * vGPU (H100XM-20C, four per GPU, eight GPUs per host: hosts node-000, node-001, ...), with the
 * per-host allocation documents that go with them. Creating them through the API would need
 * hosts with that much capacity and would start N QEMUs; the list answer does not depend on how
 * the documents got there. Then `gpuvirtd --role controller` starts on that store with a UNIX
 * socket and a TCP listener on 127.0.0.1 (a port picked free by the benchmark: gpuvirtd prints
 * the address it was given, not the port it bound), an admin token is created on the UNIX
 * socket (POST /api/v1/tokens), and one `GET /api/v1/vms` over TCP with that token must answer
 * the N VMs written.
 *
 * Each round then runs wrk (`wrk -t T -c C -d S --latency`, with the token in an Authorization
 * header and a Lua `done` hook that prints exact counts and percentiles) once per target, the
 * order rotating from round to round:
 *
 *   controller  GET /api/v1/vms on gpuvirtd (route, token check: one store read, list of the N
 *               VMs from SQLite, JSON documents, serialisation)
 *   ceiling     the same GET on a libmicrohttpd server in this process that answers the bytes
 *               the controller answered (same Content-Type and X-Request-Id headers), with the
 *               threading mode src/http/server.c uses (internal polling thread, a thread per
 *               connection, poll) and the same connection limit and timeout
 *   health      context: GET /api/v1/health on gpuvirtd (no token, no store): what a request
 *               costs the controller's HTTP layer without the list
 *
 * Every run is checked: wrk must report no socket error, no timeout and no non-2xx answer, the
 * bytes per answer must cover the body, and gpuvirtd must still run. The CPU time of the server
 * (gpuvirtd from /proc/PID/stat, the ceiling from this process's rusage) and of wrk per request
 * are reported beside the rates, since wrk and the server share the machine's CPUs.
 *
 * Exit status: 0 measured, 1 a check failed or the setup failed, 2 usage, 77 nothing to measure
 * (wrk or gpuvirtd not there).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#include "common.h"
#include "stats.h"
#include "config.h"
#include "http/client.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/proc.h"

#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif
#ifndef BENCH_SANITIZE
#define BENCH_SANITIZE "unknown"
#endif
#ifndef BENCH_GPUVIRTD
#define BENCH_GPUVIRTD GPUVIRT_BUILD_ROOT "/src/daemon/gpuvirtd"
#endif

#define PROG "bench-api"
/* common.h, with this program's name */
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define DAEMON_READY_MS 15000
#define REQUEST_MS 60000
#define VMS_PER_GPU 4u
#define GPUS_PER_HOST 8u
/* The connection limit and idle timeout of src/http/server.h's defaults, for the ceiling. */
#define CEILING_MAX_CONNECTIONS 64u
#define CEILING_TIMEOUT_S 60u

enum { T_CONTROLLER, T_CEILING, T_HEALTH, N_TARGETS };
static const char *const target_name[N_TARGETS] = { "controller", "ceiling", "health" };
static const char *const target_row[N_TARGETS] = {
        "controller: GET /api/v1/vms",
        "ceiling: libmicrohttpd, same bytes",
        "controller: GET /api/v1/health",
};

/* The DGX H100 profile's GPUs (sim/host/sim-profile.c), for PCI addresses of the right shape. */
static const char *const gpu_pci[GPUS_PER_HOST] = {
        "0000:18:00.0", "0000:2a:00.0", "0000:3a:00.0", "0000:5d:00.0",
        "0000:9a:00.0", "0000:ab:00.0", "0000:ba:00.0", "0000:db:00.0",
};

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned vms;
        unsigned duration_s;
        unsigned connections;
        unsigned threads;
        unsigned rounds;
        const char *daemon;
        const char *out;
        bool keep_dir;
};

static const char usage_text[] =
        "Usage: " PROG " [--vms N] [--duration S] [--connections C] [--threads T]\n"
        "                 [--rounds R] [--daemon PATH] [--out CSV] [--keep-dir]\n"
        "\n"
        "Requests per second of the controller's GET /api/v1/vms with N VMs in its store (wrk\n"
        "on loopback) beside a trivial libmicrohttpd server answering the same bytes, in one run.\n"
        "\n"
        "  --vms N           VMs written into the store (default 1000)\n"
        "  --duration S      seconds per wrk run (default 10)\n"
        "  --connections C   wrk connections (default 16)\n"
        "  --threads T       wrk threads (default 2; at most C)\n"
        "  --rounds R        rounds, each running wrk once per target (default 3)\n"
        "  --daemon PATH     gpuvirtd to run (default: the built one; env GPUVIRT_BENCH_DAEMON)\n"
        "  --out CSV         write one line per wrk run\n"
        "  --keep-dir        keep the state directory and the daemon's log\n";

static int parse_count(const char *opt, const char *arg, uint32_t min, uint32_t max,
                       unsigned *ret)
{
        uint32_t u;
        if (gv_parse_u32(arg, 10, &u) < 0 || u < min || u > max)
                return usage_error("--%s needs a whole number from %u to %u, not '%s'.", opt,
                                   min, max, arg);
        *ret = u;
        return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "vms", required_argument, NULL, 'v' },
                { "duration", required_argument, NULL, 'd' },
                { "connections", required_argument, NULL, 'c' },
                { "threads", required_argument, NULL, 't' },
                { "rounds", required_argument, NULL, 'r' },
                { "daemon", required_argument, NULL, 'D' },
                { "out", required_argument, NULL, 'o' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'v': r = parse_count("vms", optarg, 1, 100000, &o->vms); break;
                case 'd': r = parse_count("duration", optarg, 1, 3600, &o->duration_s); break;
                case 'c': r = parse_count("connections", optarg, 1, 1000, &o->connections); break;
                case 't': r = parse_count("threads", optarg, 1, 64, &o->threads); break;
                case 'r': r = parse_count("rounds", optarg, 1, 100, &o->rounds); break;
                case 'D': o->daemon = optarg; break;
                case 'o': o->out = optarg; break;
                case 'k': o->keep_dir = true; break;
                case 'h':
                        fputs(usage_text, stdout);
                        exit(0);
                default:
                        return usage_error("invalid option.");
                }
                if (r != 0)
                        return r;
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'.", argv[optind]);
        if (o->threads > o->connections)
                return usage_error("--threads %u is more than --connections %u; wrk needs a "
                                   "connection per thread at least.", o->threads,
                                   o->connections);
        return 0;
}

/* ---------------------------------------------------------------- the run's context */

struct wrk_result {
        uint64_t requests, bytes, duration_us;
        uint64_t err_connect, err_read, err_write, err_status, err_timeout;
        double p50_ms, p90_ms, p99_ms, max_ms, mean_ms;
        double rps;
        double server_cpu_us; /* per request */
        double wrk_cpu_us;    /* per request */
};

struct ctx {
        struct opts o;
        char *dir;
        char *state;
        char *log;
        char *script;
        char *unix_endpoint;   /* "unix:DIR/state/gpuvirt.sock" */
        char *tcp_endpoint;    /* "http://127.0.0.1:PORT" */
        char *auth_header;     /* "Authorization: Bearer gvt_..." */
        struct gv_proc daemon;

        char *body;            /* the controller's GET /api/v1/vms answer, as sent */
        size_t body_len;
        size_t compact_len;    /* the same JSON without indentation */
        struct MHD_Daemon *ceiling;
        uint16_t ceiling_port;
        unsigned long ceiling_seq;

        struct wrk_result *res[N_TARGETS]; /* per round */
        FILE *csv;
};

/* ---------------------------------------------------------------- the store */

/* A VM document as src/controller/vms.c writes it for a VM with one vGPU that reached running
 * (gv_controller_vm_create, then vm_set_state "running"). */
static json_t *vm_doc(unsigned k, const char *name, const char *host, json_t **ret_placement)
{
        unsigned gpu = (k / VMS_PER_GPU) % GPUS_PER_HOST;
        char uuid[37];
        /* Deterministic, version-4 shaped: the benchmark's store is the same from run to run. */
        (void)snprintf(uuid, sizeof(uuid), "%08x-%04x-4%03x-8%03x-%012x", 0xbe5c0000u + k,
                       k & 0xffffu, k & 0xfffu, (k >> 12) & 0xfffu, k * 2654435761u);
        _cleanup_free_ char *gname = xasprintf("%s/%u", host, gpu);
        json_t *pl = json_pack("{s:s, s:s, s:[{s:s, s:i, s:s, s:s, s:i, s:s, s:i, s:i}]}",
                               "host", host, "policy", "gpuvirt", "gpus", "gpu", gname, "index",
                               (int)gpu, "pci", gpu_pci[gpu], "alloc", "vgpu", "type_index", 2,
                               "name", "H100XM-20C", "start", 0, "milli", 251);
        json_t *doc = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:i, s:i, s:[{s:s, s:s}]}, s:O, "
                                "s:n, s:I}",
                                "name", name, "uuid", uuid, "state", "running", "host", host,
                                "spec", "name", name, "vcpus", 1, "memory_mib", 128, "gpus",
                                "kind", "vgpu", "type", "H100XM-20C", "placement", pl, "error",
                                "created_at", (json_int_t)1718000000 + k);
        *ret_placement = pl;
        return doc;
}

static char *vm_name(unsigned k)
{
        return xasprintf("bench-vm-%05u", k);
}

/* N VM documents and their hosts' allocation documents, in one batch. */
static int fill_store(struct ctx *c)
{
        _cleanup_free_ char *url = xasprintf("sqlite:%s/gpuvirt.db", c->state);
        struct gv_store *s = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        unsigned per_host = VMS_PER_GPU * GPUS_PER_HOST;
        unsigned n_hosts = (c->o.vms + per_host - 1) / per_host;
        size_t n_w = (size_t)c->o.vms + n_hosts;
        struct gv_store_write *w = xcalloc(n_w, sizeof(*w));
        json_t **docs = xcalloc(n_w, sizeof(*docs));
        char **keys = xcalloc(n_w, sizeof(*keys));
        json_t **allocs = xcalloc(n_hosts, sizeof(*allocs));
        int r;

        for (unsigned h = 0; h < n_hosts; h++)
                allocs[h] = json_pack("{s:{}}", "vms");
        for (unsigned k = 0; k < c->o.vms; k++) {
                unsigned h = k / per_host;
                _cleanup_free_ char *host = xasprintf("node-%03u", h);
                json_t *pl;
                keys[k] = vm_name(k);
                docs[k] = vm_doc(k, keys[k], host, &pl);
                json_object_set_new(json_object_get(allocs[h], "vms"), keys[k], pl);
                w[k] = (struct gv_store_write){ .op = GV_STORE_CREATE, .kind = GV_STORE_VM,
                                                .key = keys[k], .doc = docs[k] };
        }
        for (unsigned h = 0; h < n_hosts; h++) {
                size_t i = c->o.vms + h;
                keys[i] = xasprintf("node-%03u", h);
                docs[i] = allocs[h];
                w[i] = (struct gv_store_write){ .op = GV_STORE_CREATE, .kind = GV_STORE_ALLOC,
                                                .key = keys[i], .doc = docs[i] };
        }
        r = gv_store_open(url, &s, &e);
        if (r >= 0)
                r = gv_store_write(s, w, n_w, &e);
        if (r < 0)
                fail("Cannot write %u VMs into '%s': %s", c->o.vms, url, gv_error_msg(e, r));
        gv_store_free(s);
        for (size_t i = 0; i < n_w; i++) {
                json_decref(docs[i]);
                free(keys[i]);
        }
        free(w);
        free(docs);
        free(keys);
        free(allocs);
        return r < 0 ? -EIO : 0;
}

/* ---------------------------------------------------------------- gpuvirtd */

/* A TCP port on 127.0.0.1 that was free a moment ago (gpuvirtd cannot report the port it
 * bound for ":0"; a race with another process is retried by the caller). */
static int free_port(uint16_t *ret)
{
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return fail("Cannot find a free TCP port on 127.0.0.1: %s.", strerror(errno));
        *ret = ntohs(sa.sin_port);
        return 0;
}

/* One request with raw reply; fails unless the status is `want`. */
static int call(const char *endpoint, const char *method, const char *path, const char *body,
                const char *header, int want, struct gv_http_client_reply *ret)
{
        const char *headers[] = { header, NULL };
        struct gv_http_client_req rq = {
                .endpoint = endpoint,
                .method = method,
                .path = path,
                .body = body,
                .body_len = body ? strlen(body) : 0,
                .headers = header ? headers : NULL,
                .timeout_ms = REQUEST_MS,
                .max_body = 256u << 20,
        };
        struct gv_http_client_reply rp = {};
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rp, &e);
        if (r < 0)
                return fail("%s %s on %s: %s", method, path, endpoint, gv_error_msg(e, r));
        if (rp.status != want) {
                fail("%s %s on %s answered %d, not %d: %.2000s", method, path, endpoint,
                     rp.status, want, rp.body && *rp.body ? rp.body : "(no body)");
                gv_http_client_reply_done(&rp);
                return -EIO;
        }
        *ret = rp;
        return 0;
}

static int daemon_start_once(struct ctx *c, uint16_t port, bool *ret_port_taken)
{
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%u", port);
        _cleanup_free_ char *sock = gv_path_join(c->state, "gpuvirt.sock");
        _cleanup_close_ int log = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log < 0)
                return fail("Cannot create '%s': %s.", c->log, strerror(errno));
        /* The per-token rate limit (docs/security.md) lifted: this measures serving, and wrk's
         * one token would otherwise be answered 429 past 50 requests a second. */
        char *argv[] = { (char *)c->o.daemon, "--role", "controller", "--state-dir", c->state,
                         "--api-socket", sock, "--api-listen", listen, "--api-rate", "1000000",
                         "--api-burst", "1000000", NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log, .stderr_fd = log };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_spawn(argv, &so, &c->daemon, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));
        free(c->unix_endpoint);
        free(c->tcp_endpoint);
        c->unix_endpoint = xasprintf("unix:%s", sock);
        c->tcp_endpoint = xasprintf("http://127.0.0.1:%u", port);

        /* Ready when the health route answers on both listeners. */
        uint64_t deadline = bench_now_ns() + (uint64_t)DAEMON_READY_MS * 1000000u;
        for (;;) {
                int s1 = 0, s2 = 0;
                struct gv_error *e2 = NULL;
                r = gv_http_client_request(c->unix_endpoint, "GET", "/api/v1/health", NULL,
                                           2000, &s1, NULL, &e2);
                if (r >= 0)
                        r = gv_http_client_request(c->tcp_endpoint, "GET", "/api/v1/health",
                                                   NULL, 2000, &s2, NULL, &e2);
                if (r >= 0 && s1 == 200 && s2 == 200)
                        return 0;
                if (r >= 0) {
                        gv_error_free(e2);
                        bench_print_log_tail("gpuvirtd's log", c->log, 2000);
                        return fail("GET /api/v1/health answered %d (UNIX) and %d (TCP), not "
                                    "200.", s1, s2);
                }
                if (!gv_proc_alive(&c->daemon)) {
                        _cleanup_free_ char *l = NULL;
                        (void)gv_read_file(c->log, 1 << 20, &l, NULL);
                        gv_proc_close(&c->daemon);
                        if (l && strstr(l, "Address already in use")) {
                                gv_error_free(e2);
                                *ret_port_taken = true;
                                return -EADDRINUSE;
                        }
                        fail("'%s' exited before answering: %s", c->o.daemon,
                             gv_error_msg(e2, r));
                        gv_error_free(e2);
                        bench_print_log_tail("gpuvirtd's log", c->log, 2000);
                        return -EIO;
                }
                if (bench_now_ns() > deadline) {
                        fail("'%s' did not answer on %s within %d ms: %s", c->o.daemon,
                             c->tcp_endpoint, DAEMON_READY_MS, gv_error_msg(e2, r));
                        gv_error_free(e2);
                        bench_print_log_tail("gpuvirtd's log", c->log, 2000);
                        return -ETIMEDOUT;
                }
                gv_error_free(e2);
                (void)nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
        }
}

static int daemon_start(struct ctx *c)
{
        for (int tries = 0; tries < 5; tries++) {
                uint16_t port = 0;
                bool taken = false;
                int r = free_port(&port);
                if (r < 0)
                        return r;
                r = daemon_start_once(c, port, &taken);
                if (r >= 0 || !taken)
                        return r;
        }
        return fail("Every free port picked was taken before gpuvirtd could bind it (5 tries).");
}

/* An admin token, made on the UNIX socket (admin without a token, docs/api.md). */
static int make_token(struct ctx *c)
{
        struct gv_http_client_reply rp;
        int r = call(c->unix_endpoint, "POST", "/api/v1/tokens",
                     "{\"name\": \"bench-api\", \"role\": \"admin\"}", NULL, 201, &rp);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *j = json_loads(rp.body, 0, NULL);
        const char *tok = json_string_value(json_object_get(j, "token"));
        if (!tok || strncmp(tok, "gvt_", 4) != 0) {
                fail("POST /api/v1/tokens answered no \"token\" starting 'gvt_': %.500s",
                     rp.body);
                gv_http_client_reply_done(&rp);
                return -EIO;
        }
        c->auth_header = xasprintf("Authorization: Bearer %s", tok);
        gv_http_client_reply_done(&rp);
        return 0;
}

/* GET /api/v1/vms over TCP with the token: the N VMs written, in key order, as written. Keeps
 * the answer's bytes for the ceiling. */
static int check_vms(struct ctx *c, bool keep)
{
        struct gv_http_client_reply rp;
        int r = call(c->tcp_endpoint, "GET", "/api/v1/vms", NULL, c->auth_header, 200, &rp);
        if (r < 0)
                return r;
        json_error_t je;
        _cleanup_json_ json_t *a = json_loadb(rp.body, rp.body_len, 0, &je);
        if (!json_is_array(a)) {
                gv_http_client_reply_done(&rp);
                return fail("GET /api/v1/vms did not answer a JSON array (%s).",
                            a ? "another JSON value" : je.text);
        }
        if (json_array_size(a) != c->o.vms) {
                gv_http_client_reply_done(&rp);
                return fail("GET /api/v1/vms answered %zu VMs, not the %u written.",
                            json_array_size(a), c->o.vms);
        }
        for (unsigned k = 0; k < c->o.vms; k++) {
                const json_t *v = json_array_get(a, k);
                _cleanup_free_ char *want = vm_name(k);
                const char *name = json_string_value(json_object_get(v, "name"));
                const char *state = json_string_value(json_object_get(v, "state"));
                json_t *gen = json_object_get(v, "generation");
                if (!name || strcmp(name, want) != 0 || !state || strcmp(state, "running") != 0 ||
                    json_integer_value(gen) != 1 ||
                    !json_is_object(json_object_get(v, "placement"))) {
                        _cleanup_free_ char *dump = json_dumps(v, JSON_COMPACT);
                        gv_http_client_reply_done(&rp);
                        return fail("GET /api/v1/vms: element %u is not VM '%s' as written "
                                    "(running, generation 1, a placement): %.1000s", k, want,
                                    dump ? dump : "?");
                }
        }
        if (keep) {
                const char *ct = gv_http_client_reply_header(&rp, "content-type");
                if (!ct || strncmp(ct, "application/json", 16) != 0) {
                        gv_http_client_reply_done(&rp);
                        return fail("GET /api/v1/vms answered Content-Type '%s', not "
                                    "application/json.", ct ? ct : "(none)");
                }
                _cleanup_free_ char *compact = json_dumps(a, JSON_COMPACT);
                c->compact_len = compact ? strlen(compact) : 0;
                c->body = TAKE_PTR(rp.body);
                c->body_len = rp.body_len;
        } else if (rp.body_len != c->body_len) {
                fail("GET /api/v1/vms answered %zu bytes now, %zu at the start.", rp.body_len,
                     c->body_len);
                gv_http_client_reply_done(&rp);
                return -EIO;
        }
        gv_http_client_reply_done(&rp);
        return 0;
}

/* utime + stime of a process in microseconds, from /proc/PID/stat. */
static int proc_cpu_us(pid_t pid, uint64_t *ret)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/stat", (int)pid);
        _cleanup_free_ char *s = NULL;
        if (gv_read_file(path, 4096, &s, NULL) < 0)
                return fail("Cannot read '%s': %s.", path, strerror(errno));
        /* Fields after the command (which may hold spaces) start after the last ')'. */
        char *p = strrchr(s, ')');
        _cleanup_(strv_freep) char **f = p ? strv_split(p + 1, " \n") : NULL;
        uint64_t ut, st;
        /* After ')': state is field 3; utime and stime are fields 14 and 15 (proc(5)). */
        if (strv_length(f) < 13 || gv_parse_u64(f[11], 10, &ut) < 0 ||
            gv_parse_u64(f[12], 10, &st) < 0)
                return fail("Cannot read the CPU times in '%s'.", path);
        long hz = sysconf(_SC_CLK_TCK);
        *ret = (ut + st) * 1000000u / (uint64_t)(hz > 0 ? hz : 100);
        return 0;
}

static uint64_t rusage_us(int who)
{
        struct rusage ru;
        if (getrusage(who, &ru) < 0)
                return 0;
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* ---------------------------------------------------------------- the ceiling */

static enum MHD_Result ceiling_access(void *cls, struct MHD_Connection *conn, const char *url,
                                      const char *method, const char *version,
                                      const char *upload_data, size_t *upload_data_size,
                                      void **con_cls)
{
        struct ctx *c = cls;
        (void)url, (void)version, (void)upload_data;
        if (!*con_cls) {
                /* The first call sees only the headers, as in src/http/server.c. */
                *con_cls = c;
                return MHD_YES;
        }
        if (*upload_data_size) {
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (strcmp(method, "GET") != 0)
                return MHD_NO;
        struct MHD_Response *resp = MHD_create_response_from_buffer(c->body_len, c->body,
                                                                    MHD_RESPMEM_PERSISTENT);
        if (!resp)
                return MHD_NO;
        char id[24];
        (void)snprintf(id, sizeof(id), "%lu",
                       __atomic_add_fetch(&c->ceiling_seq, 1, __ATOMIC_RELAXED));
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        (void)MHD_add_response_header(resp, "X-Request-Id", id);
        enum MHD_Result r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return r;
}

static int ceiling_start(struct ctx *c)
{
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int one = 1;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
            bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
                int k = errno;
                if (fd >= 0)
                        (void)close(fd);
                return fail("Cannot listen on 127.0.0.1 for the ceiling server: %s.",
                            strerror(k));
        }
        c->ceiling_port = ntohs(sa.sin_port);
        /* The flags and options of src/http/server.c's start_daemon(). */
        c->ceiling = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
                                              MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL,
                                      0, NULL, NULL, ceiling_access, c,
                                      MHD_OPTION_LISTEN_SOCKET, fd,
                                      MHD_OPTION_CONNECTION_LIMIT, CEILING_MAX_CONNECTIONS,
                                      MHD_OPTION_CONNECTION_TIMEOUT, CEILING_TIMEOUT_S,
                                      MHD_OPTION_END);
        if (!c->ceiling) {
                (void)close(fd);
                return fail("Cannot start the libmicrohttpd ceiling server.");
        }
        /* It answers the same bytes. */
        _cleanup_free_ char *ep = xasprintf("http://127.0.0.1:%u", c->ceiling_port);
        struct gv_http_client_reply rp;
        int r = call(ep, "GET", "/api/v1/vms", NULL, c->auth_header, 200, &rp);
        if (r < 0)
                return r;
        bool same = rp.body_len == c->body_len && memcmp(rp.body, c->body, c->body_len) == 0;
        gv_http_client_reply_done(&rp);
        if (!same)
                return fail("The ceiling server does not answer the controller's bytes.");
        return 0;
}

/* ---------------------------------------------------------------- wrk */

/* wrk's done() hook: exact counts and percentiles (microseconds) on one line. */
static const char wrk_script[] =
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        "  io.write(string.format(\"GVBENCH %d %d %d %d %d %d %d %d %d %d %d %d %d\\n\",\n"
        "    summary.requests, summary.bytes, summary.duration,\n"
        "    e.connect, e.read, e.write, e.status, e.timeout,\n"
        "    latency:percentile(50), latency:percentile(90), latency:percentile(99),\n"
        "    latency.max, math.floor(latency.mean * 1000)))\n"
        "end\n";

static int parse_wrk(const char *out, struct wrk_result *w)
{
        const char *line = strstr(out, "GVBENCH ");
        if (!line)
                return -EBADMSG;
        _cleanup_free_ char *l = xstrndup(line + 8, strcspn(line + 8, "\n"));
        _cleanup_(strv_freep) char **f = strv_split(l, " ");
        uint64_t v[13];
        if (strv_length(f) != 13)
                return -EBADMSG;
        for (int i = 0; i < 13; i++)
                if (gv_parse_u64(f[i], 10, &v[i]) < 0)
                        return -EBADMSG;
        *w = (struct wrk_result){
                .requests = v[0], .bytes = v[1], .duration_us = v[2],
                .err_connect = v[3], .err_read = v[4], .err_write = v[5], .err_status = v[6],
                .err_timeout = v[7],
                .p50_ms = (double)v[8] / 1000.0, .p90_ms = (double)v[9] / 1000.0,
                .p99_ms = (double)v[10] / 1000.0, .max_ms = (double)v[11] / 1000.0,
                .mean_ms = (double)v[12] / 1000000.0, /* printed in nanoseconds */
        };
        w->rps = w->duration_us ? (double)w->requests * 1e6 / (double)w->duration_us : 0;
        return 0;
}

static int run_wrk(struct ctx *c, int t, unsigned duration_s, struct wrk_result *ret)
{
        _cleanup_free_ char *url = NULL;
        if (t == T_CEILING)
                url = xasprintf("http://127.0.0.1:%u/api/v1/vms", c->ceiling_port);
        else
                url = xasprintf("%s/api/v1/%s", c->tcp_endpoint, t == T_HEALTH ? "health" : "vms");
        _cleanup_free_ char *th = xasprintf("%u", c->o.threads);
        _cleanup_free_ char *co = xasprintf("%u", c->o.connections);
        _cleanup_free_ char *du = xasprintf("%us", duration_s);
        char *argv[] = { "wrk", "-t", th, "-c", co, "-d", du, "--latency", "--timeout", "30s",
                         "-s", c->script, "-H", c->auth_header, url, NULL };
        _cleanup_free_ char *out = NULL, *errout = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        uint64_t srv0 = 0, srv1 = 0;
        int r;

        if (t == T_CEILING)
                srv0 = rusage_us(RUSAGE_SELF);
        else if ((r = proc_cpu_us(c->daemon.pid, &srv0)) < 0)
                return r;
        uint64_t wrk0 = rusage_us(RUSAGE_CHILDREN);
        r = gv_proc_run(argv, (int)(duration_s + 60) * 1000, 1 << 20, &out, &errout, &e);
        uint64_t wrk1 = rusage_us(RUSAGE_CHILDREN);
        if (t == T_CEILING)
                srv1 = rusage_us(RUSAGE_SELF);
        else if (gv_proc_alive(&c->daemon) && proc_cpu_us(c->daemon.pid, &srv1) < 0)
                return -EIO;
        if (r < 0)
                return fail("wrk against %s: %s", url, gv_error_msg(e, r));
        if (!gv_proc_alive(&c->daemon)) {
                bench_print_log_tail("gpuvirtd's log", c->log, 2000);
                return fail("gpuvirtd exited during the wrk run against %s.", url);
        }
        struct wrk_result w;
        if (parse_wrk(out, &w) < 0)
                return fail("wrk against %s printed no result line of our script: %.2000s%s",
                            url, out, errout ? errout : "");
        if (w.requests == 0)
                return fail("wrk against %s completed no request.", url);
        if (w.err_connect || w.err_read || w.err_write || w.err_status || w.err_timeout)
                return fail("wrk against %s: %" PRIu64 " requests, errors: connect %" PRIu64
                            ", read %" PRIu64 ", write %" PRIu64 ", non-2xx/3xx answers %"
                            PRIu64 ", timeouts %" PRIu64 ".", url, w.requests, w.err_connect,
                            w.err_read, w.err_write, w.err_status, w.err_timeout);
        if (t != T_HEALTH && w.bytes / w.requests < c->body_len)
                return fail("wrk against %s read %" PRIu64 " bytes per answer, less than the "
                            "%zu of the body.", url, w.bytes / w.requests, c->body_len);
        w.server_cpu_us = (double)(srv1 - srv0) / (double)w.requests;
        w.wrk_cpu_us = (double)(wrk1 - wrk0) / (double)w.requests;
        *ret = w;
        return 0;
}

/* ---------------------------------------------------------------- report */

static void print_machine(struct ctx *c)
{
        printf("gpuvirt API throughput benchmark\n");
        bench_print_machine();
        printf("build:   %s, sanitizers %s; libmicrohttpd %s\n", BENCH_BUILDTYPE,
               BENCH_SANITIZE, MHD_get_version());
        printf("daemon:  '%s' --role controller, store sqlite (%u VMs written into it by the "
               "benchmark)\n", c->o.daemon, c->o.vms);
        printf("answer:  %zu bytes of JSON for %u VMs (%.0f per VM; %zu without indentation)\n",
               c->body_len, c->o.vms, (double)c->body_len / c->o.vms, c->compact_len);
        printf("method:  %u rounds; each runs 'wrk -t %u -c %u -d %us --latency' once per "
               "target, in a rotating order,\n         after a 1 s warm-up run of each; "
               "loopback TCP; admin bearer token on every request\n", c->o.rounds,
               c->o.threads, c->o.connections, c->o.duration_s);
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;
        return (x > y) - (x < y);
}

/* The round whose requests/s is the median (the lower one of an even count). */
static const struct wrk_result *median_run(const struct wrk_result *w, unsigned n)
{
        _cleanup_free_ double *v = xreallocarray(NULL, n, sizeof(double));
        for (unsigned i = 0; i < n; i++)
                v[i] = w[i].rps;
        qsort(v, n, sizeof(double), cmp_double);
        double m = v[(n - 1) / 2];
        for (unsigned i = 0; i < n; i++)
                if (w[i].rps == m)
                        return &w[i];
        return &w[0];
}

static void print_run(const char *name, const struct wrk_result *w)
{
        printf("  %-36s %10.0f %8.3f %8.3f %8.3f %8.3f %8.0f %9.1f %8.1f\n", name, w->rps,
               w->p50_ms, w->p90_ms, w->p99_ms, w->max_ms,
               (double)w->bytes / (double)w->requests, w->server_cpu_us, w->wrk_cpu_us);
}

static void report(struct ctx *c)
{
        static const char head[] =
                "                                        requests/s  p50 ms   p90 ms   p99 ms"
                "   max ms  B/answer  srv CPU   wrk CPU\n"
                "                                                                            "
                "               us/req    us/req\n";
        print_machine(c);
        printf("\n");
        for (unsigned i = 0; i < c->o.rounds; i++) {
                printf("round %u\n%s", i + 1, i == 0 ? head : "");
                for (int t = 0; t < N_TARGETS; t++)
                        print_run(target_row[t], &c->res[t][i]);
        }
        const struct wrk_result *m[N_TARGETS];
        for (int t = 0; t < N_TARGETS; t++)
                m[t] = median_run(c->res[t], c->o.rounds);
        printf("\nmedian round (by requests/s)\n%s", head);
        for (int t = 0; t < N_TARGETS; t++)
                print_run(target_row[t], m[t]);
        printf("\n  controller / ceiling: %.4fx the requests/s (1/%.0f), %.2fx the p50 latency, "
               "%.2fx the p99;\n  %.1fx the server CPU per request (%.1f us against %.1f us)\n",
               m[T_CONTROLLER]->rps / m[T_CEILING]->rps,
               m[T_CEILING]->rps / m[T_CONTROLLER]->rps,
               m[T_CONTROLLER]->p50_ms / m[T_CEILING]->p50_ms,
               m[T_CONTROLLER]->p99_ms / m[T_CEILING]->p99_ms,
               m[T_CONTROLLER]->server_cpu_us / m[T_CEILING]->server_cpu_us,
               m[T_CONTROLLER]->server_cpu_us, m[T_CEILING]->server_cpu_us);
        printf("  per VM in the list: %.2f us of controller CPU (list minus health, over %u "
               "VMs)\n", (m[T_CONTROLLER]->server_cpu_us - m[T_HEALTH]->server_cpu_us) /
                                 c->o.vms, c->o.vms);
        printf("  checks: GET /api/v1/vms answered the %u VMs written (names, states, "
               "generations) before and after the runs and the same number of bytes; every wrk "
               "run had no socket error, timeout or non-2xx answer\n", c->o.vms);
}

/* ---------------------------------------------------------------- the run */

static int run(struct ctx *c)
{
        int r;
        if (mkdir(c->state, 0700) < 0)
                return fail("Cannot create '%s': %s.", c->state, strerror(errno));
        if ((r = gv_write_file(c->script, wrk_script, GV_WRITE_CREATE)) < 0)
                return fail("Cannot write '%s': %s.", c->script, strerror(-r));
        if ((r = fill_store(c)) < 0)
                return r;
        if ((r = daemon_start(c)) < 0)
                return r;
        if ((r = make_token(c)) < 0 || (r = check_vms(c, true)) < 0 ||
            (r = ceiling_start(c)) < 0)
                return r;

        /* Warm-up: threads, caches, SQLite's page cache. */
        for (int t = 0; t < N_TARGETS; t++) {
                struct wrk_result w;
                if ((r = run_wrk(c, t, 1, &w)) < 0)
                        return r;
        }
        for (unsigned i = 0; i < c->o.rounds; i++) {
                for (int k = 0; k < N_TARGETS; k++) {
                        int t = (int)((i + (unsigned)k) % N_TARGETS);
                        struct wrk_result *w = &c->res[t][i];
                        if ((r = run_wrk(c, t, c->o.duration_s, w)) < 0) {
                                fprintf(stderr, PROG ": the %s run of round %u failed.\n",
                                        target_name[t], i + 1);
                                return r;
                        }
                        if (c->csv)
                                fprintf(c->csv, "%u,%s,%d,%" PRIu64 ",%.1f,%.3f,%.3f,%.3f,%.3f,"
                                        "%.0f,%.2f,%.2f\n", i + 1, target_name[t], k == 0,
                                        w->requests, w->rps, w->p50_ms, w->p90_ms, w->p99_ms,
                                        w->max_ms, (double)w->bytes / (double)w->requests,
                                        w->server_cpu_us, w->wrk_cpu_us);
                }
        }
        return check_vms(c, false);
}

static void ctx_done(struct ctx *c)
{
        if (c->ceiling)
                MHD_stop_daemon(c->ceiling);
        if (c->daemon.pidfd >= 0) {
                (void)gv_proc_signal(&c->daemon, SIGTERM, NULL);
                if (gv_proc_wait(&c->daemon, 10000, NULL, NULL) == 0) {
                        fprintf(stderr, PROG ": gpuvirtd did not stop within 10 s of SIGTERM; "
                                "killing it.\n");
                        (void)gv_proc_signal(&c->daemon, SIGKILL, NULL);
                        (void)gv_proc_wait(&c->daemon, 10000, NULL, NULL);
                }
                gv_proc_close(&c->daemon);
        }
        if (c->dir) {
                if (c->o.keep_dir)
                        fprintf(stderr, PROG ": kept '%s' (state/, gpuvirtd.log).\n", c->dir);
                else
                        (void)gv_rm_rf(c->dir);
        }
        free(c->dir);
        free(c->state);
        free(c->log);
        free(c->script);
        free(c->unix_endpoint);
        free(c->tcp_endpoint);
        free(c->auth_header);
        free(c->body);
        for (int t = 0; t < N_TARGETS; t++)
                free(c->res[t]);
        if (c->csv)
                (void)fclose(c->csv);
}

int main(int argc, char **argv)
{
        struct ctx c = {
                .o = { .vms = 1000, .duration_s = 10, .connections = 16, .threads = 2,
                       .rounds = 3 },
                .daemon = GV_PROC_NULL,
        };
        int r = parse_opts(argc, argv, &c.o);
        if (r != 0)
                return r;
        c.o.daemon = bench_daemon_path(c.o.daemon, "GPUVIRT_BENCH_DAEMON", BENCH_GPUVIRTD);
        r = bench_need((const char *const[]){ "gpuvirtd", c.o.daemon, NULL },
                       (const char *const[]){ "wrk", NULL });
        if (r != 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-api-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(templ)) {
                fprintf(stderr, PROG ": cannot create a directory '%s': %s.\n", templ,
                        strerror(errno));
                return 1;
        }
        c.dir = TAKE_PTR(templ);
        c.state = gv_path_join(c.dir, "state");
        c.log = gv_path_join(c.dir, "gpuvirtd.log");
        c.script = gv_path_join(c.dir, "report.lua");
        for (int t = 0; t < N_TARGETS; t++)
                c.res[t] = xcalloc(c.o.rounds, sizeof(struct wrk_result));
        if (c.o.out) {
                c.csv = fopen(c.o.out, "we");
                if (!c.csv) {
                        fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out,
                                strerror(errno));
                        ctx_done(&c);
                        return 1;
                }
                fputs("round,target,first,requests,rps,p50_ms,p90_ms,p99_ms,max_ms,"
                      "bytes_per_answer,server_cpu_us_per_req,wrk_cpu_us_per_req\n", c.csv);
        }
        r = run(&c);
        if (r >= 0 && c.csv && fflush(c.csv) != 0) {
                fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out, strerror(errno));
                r = -EIO;
        }
        if (r >= 0)
                report(&c);
        ctx_done(&c);
        return r >= 0 ? 0 : 1;
}
