/* SPDX-License-Identifier: MIT */
/*
 * bench-metrics — the controller's Prometheus scrape (`GET /metrics`) with about 10,000 series,
 * beside the same HTTP server answering a static text of the same size, in the same run
 * (issue 7, BENCHMARKS.md "Metrics scrape").
 *
 *   bench-metrics [--hosts N] [--gpus G] [--vms V] [--requests R] [--out CSV]
 *
 * Setup (untimed): a controller runs in this process on a fresh SQLite store in a temporary
 * directory (no hosts: its collector has nobody to ask), and its history is fed synthetic agent
 * samples through the internal entry point (gv_ctl_metrics() and gv_metrics_host_sample(), the
 * calls the collector makes), three rounds of N hosts, each with G GPUs and V VMs holding one
 * vGPU each: 2 + 4G + 4V series per host (N=50, G=8, V=42: 10,100 series, plus the info series
 * and host_up lines). Simulating that many VMs for real would take hundreds of QEMUs; the
 * scrape does not depend on where the samples came from. The controller's REST API is served
 * on 127.0.0.1 (src/http, the route table of api.h) and a viewer token made.
 *
 * Targets, each asked R times over TCP, one connection per request (src/http/client.c, as a
 * Prometheus scrape opens one per scrape at most), in alternating blocks of 10:
 *
 *   controller  GET /metrics with the token: authentication, the exposition written from the
 *               history under its lock, the reply
 *   static      GET /metrics on a second src/http server in this process answering the bytes
 *               of a scrape made during setup (a copy per request, as the controller makes
 *               its text per request)
 *
 * and, untimed by HTTP, the exposition writer alone (gv_controller_metrics_text()).
 * Every answer is checked: 200, and the controller's body has the setup scrape's size within
 * 1 % (values change nothing in the line count: all are fed). Exit status: 0 measured, 1 a
 * check or the setup failed, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include "stats.h"
#include "controller/api.h"
#include "controller/controller-internal.h"
#include "controller/metrics.h"
#include "http/client.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"

static const char *prog = "bench-metrics";

struct opts {
        unsigned hosts, gpus, vms, requests;
        const char *out;
};

static char *static_text;
static size_t static_len;

static int serve_static(struct gv_http_request *req, void *userdata)
{
        (void)userdata;
        char *copy = xmalloc(static_len + 1);
        memcpy(copy, static_text, static_len + 1);
        return gv_http_reply_text(req, 200, "text/plain; version=0.0.4; charset=utf-8", copy);
}

/* One host's synthetic sample: GPUs with every value, VMs with one vGPU each. */
static json_t *synthetic(const struct opts *o, unsigned h, unsigned round)
{
        json_t *gpus = json_array(), *vms = json_array();
        for (unsigned g = 0; g < o->gpus; g++) {
                char pci[16], uuid[64];
                snprintf(pci, sizeof(pci), "0000:%02x:00.0", 0x18 + g);
                snprintf(uuid, sizeof(uuid), "GPU-%08x-0000-0000-0000-%012x", h, g);
                json_array_append_new(gpus, json_pack(
                        "{s:s, s:i, s:s, s:s, s:s, s:b, s:i, s:i, s:i, s:i, s:[], s:[]}", "gpu",
                        pci, "index", g, "uuid", uuid, "model", "H100-SXM5-80GB", "mode", "vgpu",
                        "visible", 1, "util_pct", (int)((h + g + round) % 100),
                        "memory_used_mib", 17084 + g, "power_mw", 321000 + (int)round,
                        "temperature_c", 61, "vgpus", "mig"));
        }
        for (unsigned v = 0; v < o->vms; v++) {
                char name[64], pci[16];
                snprintf(name, sizeof(name), "vm-%03u-%03u", h, v);
                snprintf(pci, sizeof(pci), "0000:%02x:00.0", 0x18 + v % (o->gpus ? o->gpus : 1));
                json_array_append_new(vms, json_pack(
                        "{s:s, s:s, s:{s:f}, s:{s:i}, s:[{s:s, s:s, s:i, s:i}]}", "vm", name,
                        "phase", "running", "cpu", "util_pct", 37.5 + round, "memory",
                        "rss_mib", 3980 + (int)v, "gpus", "mode", "vgpu", "gpu", pci,
                        "util_pct", (int)((v + round) % 100), "memory_used_mib", 5000));
        }
        return json_pack("{s:I, s:i, s:i, s:{s:{s:i, s:f}, s:{s:i}}, s:o, s:o}", "timestamp_ms",
                         (json_int_t)0, "interval_ms", 1000, "seq", round + 1, "host", "cpu",
                         "cpus", 64, "util_pct", 12.5, "memory", "used_mib", 32000, "gpus", gpus,
                         "vms", vms);
}

static int get(const char *endpoint, const char *auth, size_t *ret_len, uint64_t *ret_ns)
{
        const char *headers[] = { auth, NULL };
        struct gv_http_client_req rq = { .endpoint = endpoint, .method = "GET",
                                         .path = "/metrics", .headers = auth ? headers : NULL,
                                         .timeout_ms = 10000, .max_body = 64u << 20 };
        struct gv_http_client_reply rp = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gv_http_client_send(&rq, &rp, &e);
        uint64_t t1 = bench_now_ns();
        if (r < 0)
                return bench_fail(prog, "GET %s/metrics: %s", endpoint, gv_error_msg(e, r));
        if (rp.status != 200) {
                r = bench_fail(prog, "GET %s/metrics answered %d: %.300s", endpoint, rp.status,
                               rp.body ? rp.body : "");
                gv_http_client_reply_done(&rp);
                return r;
        }
        *ret_len = rp.body_len;
        *ret_ns = t1 - t0;
        gv_http_client_reply_done(&rp);
        return 0;
}

static void print_row(FILE *csv, const char *what, const uint64_t *s, size_t n, size_t bytes)
{
        struct bench_stats st = bench_stats_of(s, n);
        printf("  %-11s p50 %7.2f ms  p99 %7.2f ms  min %7.2f  max %7.2f  (%zu samples, %zu "
               "bytes)\n", what, st.p50, st.p99, st.min, st.max, n, bytes);
        if (csv)
                fprintf(csv, "%s,%zu,%.3f,%.3f,%.3f,%.3f,%.3f\n", what, bytes, st.p50, st.p90,
                        st.p99, st.min, st.max);
}

static int parse_u(const char *opt, const char *arg, unsigned min, unsigned max, unsigned *ret)
{
        uint32_t v;
        if (gv_parse_u32(arg, 10, &v) < 0 || v < min || v > max)
                return bench_usage_error(prog, "--%s: '%s' is not %u..%u.", opt, arg, min, max);
        *ret = v;
        return 0;
}

int main(int argc, char **argv)
{
        static const struct option lo[] = {
                { "hosts", required_argument, NULL, 'H' }, { "gpus", required_argument, NULL, 'g' },
                { "vms", required_argument, NULL, 'v' },
                { "requests", required_argument, NULL, 'n' },
                { "out", required_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' },
                {},
        };
        struct opts o = { .hosts = 50, .gpus = 8, .vms = 42, .requests = 200 };
        int c;
        while ((c = getopt_long(argc, argv, "", lo, NULL)) >= 0) {
                int r = 0;
                switch (c) {
                case 'H': r = parse_u("hosts", optarg, 1, 1000, &o.hosts); break;
                case 'g': r = parse_u("gpus", optarg, 0, 16, &o.gpus); break;
                case 'v': r = parse_u("vms", optarg, 0, 500, &o.vms); break;
                case 'n': r = parse_u("requests", optarg, 10, 100000, &o.requests); break;
                case 'o': o.out = optarg; break;
                case 'h':
                        printf("%s [--hosts N] [--gpus G] [--vms V] [--requests R] [--out CSV]\n",
                               prog);
                        return 0;
                default: return bench_usage_error(prog, "unknown option");
                }
                if (r)
                        return r;
        }
        if (optind != argc)
                return bench_usage_error(prog, "unexpected argument '%s'", argv[optind]);
        size_t want_series = (size_t)o.hosts * (2 + 4 * o.gpus + 4 * o.vms);
        if (want_series > GV_METRICS_MAX_SERIES_DEFAULT)
                return bench_usage_error(prog, "%zu series is more than the history keeps "
                                         "(%d).", want_series, GV_METRICS_MAX_SERIES_DEFAULT);

        char dir[] = "/tmp/bench-metrics.XXXXXX";
        if (!mkdtemp(dir)) {
                bench_fail(prog, "mkdtemp: %m");
                return 1;
        }
        _cleanup_free_ char *url = xasprintf("sqlite:%s/gpuvirt.db", dir);
        struct gv_controller_config cc = { .store_url = url, .metrics_interval_ms = 60000 };
        struct gv_controller *ctl = NULL;
        struct gv_http_server *api_srv = NULL, *static_srv = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *tok = NULL;
        /* Declared before the first goto: a jump past a cleanup variable's initialisation
         * would free garbage at "out". */
        _cleanup_free_ char *auth = NULL, *ep_api = NULL, *ep_static = NULL;
        FILE *csv = NULL;
        int rc = 1, r;

        r = gv_controller_new(&cc, &ctl, &e);
        if (r < 0) {
                bench_fail(prog, "controller: %s", gv_error_msg(e, r));
                goto out;
        }
        struct gv_metrics *m = gv_ctl_metrics(ctl);
        /* Rounds stamped now: the exposition shows hosts heard from in the last 10 s. */
        int64_t t = gv_ctl_now_ms();
        for (unsigned round = 0; round < 3; round++) {
                gv_metrics_round_begin(m, t + round * 1000);
                for (unsigned h = 0; h < o.hosts; h++) {
                        char host[32];
                        snprintf(host, sizeof(host), "node-%03u", h);
                        _cleanup_json_ json_t *s = synthetic(&o, h, round);
                        r = gv_metrics_host_sample(m, host, s, NULL, &e);
                        if (r < 0) {
                                bench_fail(prog, "feeding: %s", gv_error_msg(e, r));
                                goto out;
                        }
                }
                gv_metrics_round_end(m);
        }
        size_t series = gv_metrics_series_count(m);
        if (series != want_series) {
                bench_fail(prog, "%zu series kept, %zu fed", series, want_series);
                goto out;
        }
        r = gv_controller_token_create(ctl, "bench", GV_ROLE_VIEWER, NULL, &tok, &e);
        if (r < 0) {
                bench_fail(prog, "token: %s", gv_error_msg(e, r));
                goto out;
        }
        auth = xasprintf("Authorization: Bearer %s",
                         json_string_value(json_object_get(tok, "token")));
        struct gv_controller_api api = { .controller = ctl };
        size_t n_routes;
        const struct gv_http_route *routes = gv_controller_api_routes(&n_routes);
        struct gv_http_config hc = { .tcp_address = "127.0.0.1:0" };
        r = gv_http_server_new(&hc, routes, n_routes, &api, &api_srv, &e);
        if (r < 0) {
                bench_fail(prog, "API server: %s", gv_error_msg(e, r));
                goto out;
        }
        static_text = gv_controller_metrics_text(ctl, &static_len);
        static const struct gv_http_route sroutes[] = { { "GET", "/metrics", serve_static, false } };
        r = gv_http_server_new(&hc, sroutes, 1, NULL, &static_srv, &e);
        if (r < 0) {
                bench_fail(prog, "static server: %s", gv_error_msg(e, r));
                goto out;
        }
        ep_api = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(api_srv));
        ep_static = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(static_srv));
        size_t lines = 0;
        for (const char *p = static_text; *p; p++)
                lines += *p == '\n';
        if (lines < series) {
                bench_fail(prog, "the exposition has %zu lines for %zu series", lines, series);
                goto out;
        }

        bench_print_machine();
        printf("bench-metrics: %zu series (%u hosts x (2 + 4 x %u GPUs + 4 x %u VMs)), "
               "exposition %zu bytes, %zu lines; %u requests per target\n", series, o.hosts,
               o.gpus, o.vms, static_len, lines, o.requests);
        if (o.out && !(csv = fopen(o.out, "we"))) {
                bench_fail(prog, "%s: %m", o.out);
                goto out;
        }
        if (csv)
                fprintf(csv, "target,bytes,p50_ms,p90_ms,p99_ms,min_ms,max_ms\n");

        uint64_t *sc = xnew0(uint64_t, o.requests), *ss = xnew0(uint64_t, o.requests);
        uint64_t *sw = xnew0(uint64_t, o.requests);
        size_t nc = 0, ns = 0, bytes_c = 0, bytes_s = 0;
        for (unsigned warm = 0; warm < 5; warm++) {
                uint64_t x;
                if (get(ep_api, auth, &bytes_c, &x) < 0 || get(ep_static, NULL, &bytes_s, &x) < 0)
                        goto done;
        }
        while (nc < o.requests || ns < o.requests) {
                for (unsigned k = 0; k < 10 && nc < o.requests; k++) {
                        if (get(ep_api, auth, &bytes_c, &sc[nc]) < 0)
                                goto done;
                        /* Values change nothing in the size: every value is fed and integral or
                         * short; allow 1 % for their digits. */
                        if (bytes_c * 100 < static_len * 99 || bytes_c * 100 > static_len * 101) {
                                bench_fail(prog, "the scrape is %zu bytes, the setup's %zu",
                                           bytes_c, static_len);
                                goto done;
                        }
                        nc++;
                }
                for (unsigned k = 0; k < 10 && ns < o.requests; k++) {
                        if (get(ep_static, NULL, &bytes_s, &ss[ns]) < 0)
                                goto done;
                        if (bytes_s != static_len) {
                                bench_fail(prog, "the static text came back %zu bytes of %zu",
                                           bytes_s, static_len);
                                goto done;
                        }
                        ns++;
                }
        }
        for (size_t i = 0; i < o.requests; i++) {
                size_t len = 0;
                uint64_t t0 = bench_now_ns();
                free(gv_controller_metrics_text(ctl, &len));
                sw[i] = bench_now_ns() - t0;
        }
        printf("scrape latency over loopback (one connection per request):\n");
        print_row(csv, "controller", sc, nc, bytes_c);
        print_row(csv, "static", ss, ns, bytes_s);
        printf("the exposition writer alone (no HTTP):\n");
        print_row(csv, "writer", sw, o.requests, static_len);
        rc = 0;
done:
        free(sc);
        free(ss);
        free(sw);
out:
        if (csv)
                fclose(csv);
        gv_http_server_free(static_srv);
        gv_http_server_free(api_srv);
        gv_controller_free(ctl);
        free(static_text);
        _cleanup_free_ char *db = xasprintf("%s/gpuvirt.db", dir);
        static const char *const sfx[] = { "", "-wal", "-shm" };
        for (size_t i = 0; i < ELEMENTSOF(sfx); i++) {
                _cleanup_free_ char *f = xasprintf("%s%s", db, sfx[i]);
                (void)unlink(f);
        }
        (void)rmdir(dir);
        return rc;
}
