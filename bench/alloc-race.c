/* SPDX-License-Identifier: MIT */
/*
 * bench-alloc-race — N clients allocating and freeing GPU slices of a small pool through the
 * controller's API at once, every call recorded, the history checked for double allocations
 * (issue 10; reliability.md R8, R9; docs/reliability.md "Concurrent allocation";
 * BENCHMARKS.md "Concurrent allocation").
 *
 *   bench-alloc-race --endpoint E [--clients N] [--seconds S] [--baseline-seconds S]
 *                    [--gpu mig:PROFILE|vgpu:TYPE] [--host NAME] [--hold-ms MS]
 *                    [--store URL] [--prefix P] [--out CSV]
 *
 * The controller (E: "unix:PATH" or "http://HOST:PORT", the UNIX socket being admin without a
 * token) must already run with its hosts up; tests/reliability/test-alloc-race.sh starts a
 * simulated cluster for it.
 *
 * Each client loops until its deadline: POST /api/v1/vms?wait=120 (128 MiB, no disk, one GPU
 * request of the pool), then DELETE /api/v1/vms/NAME?wait=120. A create is the whole path that
 * reserves hardware: the controller reserves the slice in the store (one CAS batch: the host's
 * allocation document and the VM's) before it answers, then its operation defines the VM on the
 * agent (which makes the MIG GPU and compute instances or the vGPU) and starts its QEMU. There is
 * no create that stops short of the start, so the VM is started; holding it needs nothing more.
 * A 409 (no capacity) is a lost race: the client backs off 5-25 ms and tries again; 429 or 503
 * are waited out by their Retry-After.
 *
 * The history: every call with its CLOCK_MONOTONIC start and end, status, the operation's state
 * and the slice the create's operation result names (host, GPU, MIG first memory slice and size,
 * or vGPU type). A VM surely owns its slice from the moment its create was answered "succeeded"
 * until its delete was sent; two VMs whose sure intervals overlap on one MIG memory slice, or
 * more VMs than a GPU's vGPU instances at one instant (or two vGPU types on one GPU), are a
 * double allocation. Only acknowledged answers count; an interval is never widened by a guess.
 * At the end: no VM of the run is left, and with --store the store's allocation documents name
 * exactly the VMs that exist (the test script adds each agent's hardware against its VMs).
 *
 * Failures: a double allocation, any 5xx other than 503, any other unexpected status, a create
 * or delete operation that failed (a create that failed on a step's timeout, ETIMEDOUT, is
 * counted apart: a machine too busy, no invariant; its cleanup is what the end checks see), or
 * a leftover: exit 1. Usage: 2.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "stats.h"
#include "catalog/catalog.h"
#include "http/client.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/json.h"
#include "util/parse.h"

#define PROG "bench-alloc-race"
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define REQUEST_MS 180000
#define WAIT_Q "?wait=120"
#define MAX_SLICES 64u

/* ---------------------------------------------------------------- options */

struct opts {
        const char *endpoint;
        unsigned clients, seconds, baseline_seconds, hold_ms;
        const char *gpu;   /* "mig:1g.6gb" */
        const char *host;
        const char *store;
        const char *prefix;
        const char *out;
};

static const char usage_text[] =
        "Usage: " PROG " --endpoint E [--clients N] [--seconds S] [--baseline-seconds S]\n"
        "                        [--gpu mig:PROFILE|vgpu:TYPE] [--host NAME] [--hold-ms MS]\n"
        "                        [--store URL] [--prefix P] [--out CSV]\n"
        "\n"
        "N clients create and delete VMs holding a slice of a small GPU pool through the\n"
        "controller's API at once; every call is recorded and the history checked for double\n"
        "allocations. The baseline is the same loop with one client, run first.\n"
        "\n"
        "  --endpoint E          the controller: unix:PATH or http://HOST:PORT (required)\n"
        "  --clients N           parallel clients (default 16)\n"
        "  --seconds S           how long they run (default 30)\n"
        "  --baseline-seconds S  one client first for S seconds (default 10; 0: none)\n"
        "  --gpu KIND:NAME       the request: mig:PROFILE or vgpu:TYPE (default mig:1g.6gb, an\n"
        "                        A30's quarter: 8 slices on a simulated 'mixed' host)\n"
        "  --host NAME           pin the VMs to one host\n"
        "  --hold-ms MS          hold each slice up to MS ms (uniform) before freeing it\n"
        "                        (default 0)\n"
        "  --store URL           also check the store's allocation documents at the end\n"
        "  --prefix P            VM names P-CLIENT-SEQ (default 'race')\n"
        "  --out CSV             every call: phase,client,kind,vm,start_ms,end_ms,status,op,\n"
        "                        host,pci,start,size\n"
        "  --probe-store URL     only say whether this build opens URL (exit 0, or 77 and why)\n";

static int parse_uint(const char *opt, const char *arg, unsigned lo, unsigned hi, unsigned *ret)
{
        return bench_parse_uint(PROG, opt, arg, lo, hi, ret);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "endpoint", required_argument, NULL, 'e' },
                { "clients", required_argument, NULL, 'c' },
                { "seconds", required_argument, NULL, 's' },
                { "baseline-seconds", required_argument, NULL, 'b' },
                { "gpu", required_argument, NULL, 'g' },
                { "host", required_argument, NULL, 'H' },
                { "hold-ms", required_argument, NULL, 'm' },
                { "store", required_argument, NULL, 'S' },
                { "prefix", required_argument, NULL, 'p' },
                { "out", required_argument, NULL, 'o' },
                { "probe-store", required_argument, NULL, 'P' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;
        while (r == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'e': o->endpoint = optarg; break;
                case 'c': r = parse_uint("--clients", optarg, 1, 256, &o->clients); break;
                case 's': r = parse_uint("--seconds", optarg, 1, 86400, &o->seconds); break;
                case 'b':
                        r = parse_uint("--baseline-seconds", optarg, 0, 86400,
                                       &o->baseline_seconds);
                        break;
                case 'm': r = parse_uint("--hold-ms", optarg, 0, 60000, &o->hold_ms); break;
                case 'g':
                        if (strncmp(optarg, "mig:", 4) != 0 && strncmp(optarg, "vgpu:", 5) != 0)
                                return usage_error("--gpu: '%s' is not mig:PROFILE or "
                                                   "vgpu:TYPE.", optarg);
                        o->gpu = optarg;
                        break;
                case 'H': o->host = optarg; break;
                case 'S': o->store = optarg; break;
                case 'p':
                        if (!gv_name_is_valid(optarg) || strlen(optarg) > 40)
                                return usage_error("--prefix: '%s' is not a VM name of at most "
                                                   "40 characters.", optarg);
                        o->prefix = optarg;
                        break;
                case 'o': o->out = optarg; break;
                case 'P': {
                        /* Can this build open the store? 0, or 77 with the reason. */
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                        struct gv_store *s = NULL;
                        int q = gv_store_open(optarg, &s, &e);
                        gv_store_free(s);
                        if (q < 0) {
                                printf("%s\n", gv_error_msg(e, q));
                                exit(77);
                        }
                        exit(0);
                }
                case 'h':
                        fputs(usage_text, stdout);
                        exit(0);
                default:
                        return usage_error("invalid option.");
                }
        }
        if (r != 0)
                return r;
        if (optind < argc)
                return usage_error("unexpected argument '%s'.", argv[optind]);
        if (!o->endpoint)
                return usage_error("--endpoint is required (unix:PATH or http://HOST:PORT).");
        return 0;
}

/* ---------------------------------------------------------------- the history */

enum kind { K_CREATE, K_DELETE };

struct call {
        unsigned phase, client;
        enum kind kind;
        char *vm;
        uint64_t t0, t1;    /* CLOCK_MONOTONIC ns: sent, answered (the operation ended) */
        int status;         /* the HTTP status of the request (-1: no answer) */
        char op[16];        /* the operation's end state, or "" */
        char *host, *pci;   /* the create's slice */
        char *name;         /* the MIG profile or vGPU type placed */
        int alloc_mig;      /* 1 MIG (start/size meaningful), 0 vGPU */
        int start, size;
};

struct client {
        struct run *run;
        unsigned phase, id;
        uint64_t deadline;
        struct call *calls;
        size_t n, cap;
};

/* A GPU of the cluster, from GET /api/v1/gpus. */
struct gpu {
        char *host, *pci, *model;
};

struct run {
        struct opts o;
        bool mig;
        const char *what;     /* the profile or type */
        struct gv_catalog *catalog;
        struct gpu *gpus;
        size_t n_gpus;
        char *first_error;
        pthread_mutex_t mu;
        /* What the checks found. */
        unsigned long double_allocs, bad_status, failed_ops;
};

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static char *dump(const json_t *j)
{
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        return s ? s : xstrdup("(no body)");
}

static void note_error(struct run *run, const char *fmt, ...) _printf_(2, 3);
static void note_error(struct run *run, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        char *m = xvasprintf(fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&run->mu);
        if (!run->first_error && m)
                run->first_error = TAKE_PTR(m);
        pthread_mutex_unlock(&run->mu);
        free(m);
}

static struct call *call_new(struct client *cl, enum kind k, const char *vm)
{
        if (cl->n == cl->cap) {
                cl->cap = cl->cap ? 2 * cl->cap : 256;
                cl->calls = xreallocarray(cl->calls, cl->cap, sizeof(*cl->calls));
        }
        struct call *c = &cl->calls[cl->n++];
        *c = (struct call){ .phase = cl->phase, .client = cl->id, .kind = k, .vm = xstrdup(vm),
                            .status = -1, .start = -1, .size = 0 };
        return c;
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static unsigned rand_below(unsigned n)
{
        uint32_t v = 0;
        if (n == 0 || getrandom(&v, sizeof(v), 0) != sizeof(v))
                return 0;
        return v % n;
}

/* One request; the status and the reply (headers and body) for the caller. */
static int request(struct run *run, const char *method, const char *path, const char *body,
                   struct gv_http_client_reply *rep)
{
        struct gv_http_client_req rq = {
                .endpoint = run->o.endpoint, .method = method, .path = path, .body = body,
                .body_len = body ? strlen(body) : 0, .timeout_ms = REQUEST_MS,
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, rep, &e);
        if (r < 0)
                note_error(run, "%s %s: %s", method, path, gv_error_msg(e, r));
        return r;
}

/* Retry-After in milliseconds (seconds in the header), capped; 1 s when absent. */
static unsigned retry_after_ms(const struct gv_http_client_reply *rep)
{
        const char *v = gv_http_client_reply_header(rep, "retry-after");
        uint32_t s = 1;
        if (v && gv_parse_u32(v, 10, &s) < 0)
                s = 1;
        return (s > 10 ? 10 : s) * 1000u + rand_below(100);
}

/* An operation answered (200 ended, 202 running): waited for until it ends; *ret_op the end. */
static int op_wait(struct run *run, int status, json_t *op, json_t **ret_op)
{
        json_incref(op);
        while (status == 202) {
                const char *id = jstr(op, "id");
                if (!id) {
                        _cleanup_free_ char *d = dump(op);
                        note_error(run, "a 202 without an operation id: %s", d);
                        json_decref(op);
                        return -EBADMSG;
                }
                _cleanup_free_ char *path = xasprintf("/api/v1/operations/%s" WAIT_Q, id);
                struct gv_http_client_reply rep = {};
                int r = request(run, "GET", path, NULL, &rep);
                json_decref(op);
                op = NULL;
                if (r < 0)
                        return r;
                status = rep.status;
                op = rep.body ? json_loads(rep.body, 0, NULL) : NULL;
                gv_http_client_reply_done(&rep);
                if (status != 200 && status != 202) {
                        _cleanup_free_ char *d = dump(op);
                        note_error(run, "GET %s answered %d: %.500s", path, status, d);
                        json_decref(op);
                        return -EBADMSG;
                }
        }
        *ret_op = op;
        return 0;
}

/* The slice a create's operation result names: its first GPU. */
static void take_slice(struct run *run, struct call *c, const json_t *op)
{
        const json_t *pl = json_object_get(json_object_get(op, "result"), "placement");
        const json_t *g = json_array_get(json_object_get(pl, "gpus"), 0);
        const char *alloc = jstr(g, "alloc");
        c->host = jstr(pl, "host") ? xstrdup(jstr(pl, "host")) : NULL;
        c->pci = jstr(g, "pci") ? xstrdup(jstr(g, "pci")) : NULL;
        c->name = jstr(g, "name") ? xstrdup(jstr(g, "name")) : NULL;
        c->alloc_mig = alloc && (strcmp(alloc, "mig") == 0 || strcmp(alloc, "mig-vgpu") == 0);
        c->start = json_is_integer(json_object_get(g, "start"))
                           ? (int)json_integer_value(json_object_get(g, "start")) : -1;
        if (!c->alloc_mig || !c->pci || !c->host)
                return;
        /* The placement's size in memory slices: its GPU's model, its profile in the catalog. */
        for (size_t i = 0; i < run->n_gpus; i++) {
                if (strcmp(run->gpus[i].pci, c->pci) != 0 || strcmp(run->gpus[i].host, c->host))
                        continue;
                const struct gv_gpu_model *m = gv_catalog_find(run->catalog, run->gpus[i].model);
                const struct gv_mig_gi_profile *p = m && c->name
                                                            ? gv_gpu_model_find_gi_profile(m, c->name)
                                                            : NULL;
                if (p)
                        c->size = (int)p->memory_slices;
        }
}

/* One create: the slice on success; false when lost (409) or failed. */
static bool do_create(struct client *cl, const char *vm)
{
        struct run *run = cl->run;
        char gpu[160];
        if (run->mig)
                (void)snprintf(gpu, sizeof(gpu), "{\"kind\": \"mig\", \"profile\": \"%s\"}",
                               run->what);
        else
                (void)snprintf(gpu, sizeof(gpu), "{\"kind\": \"vgpu\", \"type\": \"%s\"}",
                               run->what);
        _cleanup_free_ char *host = run->o.host ? xasprintf(", \"host\": \"%s\"", run->o.host)
                                                : xstrdup("");
        _cleanup_free_ char *body = xasprintf("{\"name\": \"%s\", \"memory_mib\": 128, "
                                              "\"gpus\": [%s]%s}", vm, gpu, host);
        struct call *c = call_new(cl, K_CREATE, vm);
        struct gv_http_client_reply rep = {};
        c->t0 = bench_now_ns();
        int r = request(run, "POST", "/api/v1/vms" WAIT_Q, body, &rep);
        if (r < 0) {
                c->t1 = bench_now_ns();
                return false;
        }
        c->status = rep.status;
        json_t *j = rep.body ? json_loads(rep.body, 0, NULL) : NULL;
        unsigned backoff = 0;
        if (rep.status == 429 || rep.status == 503)
                backoff = retry_after_ms(&rep);
        gv_http_client_reply_done(&rep);
        if (c->status == 200 || c->status == 202) {
                _cleanup_json_ json_t *op = NULL;
                r = op_wait(run, c->status, j, &op);
                c->t1 = bench_now_ns();
                json_decref(j);
                if (r < 0)
                        return false;
                snprintf(c->op, sizeof(c->op), "%s", jstr(op, "state") ?: "?");
                if (strcmp(c->op, "failed") == 0 &&
                    strcmp(jstr(json_object_get(op, "error"), "errno") ?: "", "ETIMEDOUT") == 0) {
                        /* The machine too slow for a step's deadline (QEMU's first QMP answer
                         * on 2 busy cores): no invariant broken, the end checks prove the
                         * cleanup; counted apart. */
                        snprintf(c->op, sizeof(c->op), "timeout");
                        return false;
                }
                if (strcmp(c->op, "succeeded") != 0) {
                        _cleanup_free_ char *d = dump(op);
                        note_error(run, "the create of '%s' did not succeed: %.800s", vm, d);
                        return false;
                }
                take_slice(run, c, op);
                if (!c->host || !c->pci || (run->mig && (c->start < 0 || c->size <= 0))) {
                        _cleanup_free_ char *d = dump(op);
                        note_error(run, "the create of '%s' names no slice the checker knows: "
                                   "%.800s", vm, d);
                        snprintf(c->op, sizeof(c->op), "noslice");
                        return false;
                }
                return true;
        }
        c->t1 = bench_now_ns();
        if (c->status == 409)
                sleep_ms(5 + rand_below(20));
        else if (backoff)
                sleep_ms(backoff);
        else {
                _cleanup_free_ char *d = dump(j);
                note_error(run, "POST /api/v1/vms (%s) answered %d: %.800s", vm, c->status, d);
        }
        json_decref(j);
        return false;
}

/* The delete of a VM that exists (created, or failed and holding nothing): retried on 409,
 * 429 and 503 (an operation of the poller's, a rate limit) for up to 60 s. */
static bool do_delete(struct client *cl, const char *vm)
{
        struct run *run = cl->run;
        _cleanup_free_ char *path = xasprintf("/api/v1/vms/%s" WAIT_Q, vm);
        uint64_t until = bench_now_ns() + 60ull * 1000000000ull;
        for (;;) {
                struct call *c = call_new(cl, K_DELETE, vm);
                struct gv_http_client_reply rep = {};
                c->t0 = bench_now_ns();
                int r = request(run, "DELETE", path, NULL, &rep);
                if (r < 0) {
                        c->t1 = bench_now_ns();
                        return false;
                }
                c->status = rep.status;
                json_t *j = rep.body ? json_loads(rep.body, 0, NULL) : NULL;
                unsigned backoff = rep.status == 409 ? 20 + rand_below(30)
                                   : rep.status == 429 || rep.status == 503
                                           ? retry_after_ms(&rep) : 0;
                gv_http_client_reply_done(&rep);
                if (c->status == 200 || c->status == 202) {
                        _cleanup_json_ json_t *op = NULL;
                        r = op_wait(run, c->status, j, &op);
                        c->t1 = bench_now_ns();
                        json_decref(j);
                        if (r < 0)
                                return false;
                        snprintf(c->op, sizeof(c->op), "%s", jstr(op, "state") ?: "?");
                        if (strcmp(c->op, "succeeded") == 0)
                                return true;
                        _cleanup_free_ char *d = dump(op);
                        note_error(run, "the delete of '%s' did not succeed: %.800s", vm, d);
                        return false;
                }
                c->t1 = bench_now_ns();
                if (!backoff || bench_now_ns() > until) {
                        _cleanup_free_ char *d = dump(j);
                        note_error(run, "DELETE %s answered %d: %.800s", path, c->status, d);
                        json_decref(j);
                        return false;
                }
                json_decref(j);
                sleep_ms(backoff);
        }
}

static void *client_main(void *arg)
{
        struct client *cl = arg;
        struct run *run = cl->run;
        for (unsigned seq = 0; bench_now_ns() < cl->deadline; seq++) {
                _cleanup_free_ char *vm = xasprintf("%s-%u-%u-%u", run->o.prefix, cl->phase,
                                                    cl->id, seq);
                size_t before = cl->n;
                bool owned = do_create(cl, vm);
                const struct call *c = &cl->calls[before];
                /* A VM exists when the create was answered with an operation (succeeded or
                 * failed: a failed create leaves the VM, state failed): delete it. */
                bool exists = c->status == 200 || c->status == 202;
                if (owned && run->o.hold_ms)
                        sleep_ms(rand_below(run->o.hold_ms + 1));
                if (exists && !do_delete(cl, vm))
                        break;
                if (!owned && exists && strcmp(c->op, "timeout") != 0)
                        break; /* a failed create is a failure: stop, the report says why */
                if (c->status < 0)
                        break;
        }
        return NULL;
}

/* ---------------------------------------------------------------- checks */

/* A VM's sure ownership: from its create's answer to its delete's sending. */
struct own {
        const struct call *create;
        uint64_t from, to;
        int unit;           /* MIG: the memory slice; vGPU: -1 */
};

static int own_cmp(const void *a, const void *b)
{
        const struct own *x = a, *y = b;
        int r = strcmp(x->create->host, y->create->host);
        if (r == 0)
                r = strcmp(x->create->pci, y->create->pci);
        if (r == 0)
                r = (x->unit > y->unit) - (x->unit < y->unit);
        if (r == 0)
                r = (x->from > y->from) - (x->from < y->from);
        return r;
}

static bool same_gpu(const struct own *a, const struct own *b)
{
        return strcmp(a->create->host, b->create->host) == 0 &&
               strcmp(a->create->pci, b->create->pci) == 0;
}

/* The vGPU instances a GPU has for a type (GET .../vgpu-types "max_instances"), 0 unknown. */
static unsigned vgpu_cap(struct run *run, const char *host, const char *pci, const char *type)
{
        _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s/gpus/%s/vgpu-types", host, pci);
        _cleanup_json_ json_t *types = NULL;
        if (bench_call(PROG, run->o.endpoint, "GET", path, NULL, NULL, 200, 30000, &types) < 0)
                return 0;
        size_t i;
        json_t *t;
        json_array_foreach(types, i, t)
                if (jstr(t, "name") && strcmp(jstr(t, "name"), type) == 0)
                        return (unsigned)json_integer_value(json_object_get(t, "max_instances"));
        return 0;
}

/* Every acknowledged ownership interval against the others on its unit. */
static unsigned long check_history(struct run *run, struct call **all, size_t n)
{
        /* The create of each VM, its delete's sending. */
        struct own *own = NULL;
        size_t n_own = 0, cap = 0;
        for (size_t i = 0; i < n; i++) {
                const struct call *c = all[i];
                if (c->kind != K_CREATE || strcmp(c->op, "succeeded") != 0)
                        continue;
                uint64_t to = UINT64_MAX; /* never freed (the run stopped): owned to the end */
                for (size_t k = 0; k < n; k++)
                        if (all[k]->kind == K_DELETE && strcmp(all[k]->vm, c->vm) == 0) {
                                to = all[k]->t0; /* the first delete sent */
                                break;
                        }
                int units = run->mig ? c->size : 1;
                for (int u = 0; u < units; u++) {
                        if (n_own == cap) {
                                cap = cap ? 2 * cap : 1024;
                                own = xreallocarray(own, cap, sizeof(*own));
                        }
                        own[n_own++] = (struct own){ c, c->t1, to, run->mig ? c->start + u : -1 };
                }
        }
        qsort(own, n_own, sizeof(*own), own_cmp);
        unsigned long doubles = 0;
        if (run->mig) {
                /* Sorted by unit, then start: an interval that starts before the latest end so
                 * far on its unit overlaps one. */
                for (size_t i = 1, k = 0; i < n_own; i++) {
                        if (!same_gpu(&own[i], &own[k]) || own[i].unit != own[k].unit) {
                                k = i;
                                continue;
                        }
                        if (own[i].from < own[k].to) {
                                if (doubles++ < 5)
                                        fprintf(stderr, PROG ": DOUBLE ALLOCATION: %s and %s "
                                                "both own memory slice %d of %s on %s (%.3f s "
                                                "to %.3f s, and from %.3f s)\n",
                                                own[k].create->vm, own[i].create->vm,
                                                own[i].unit, own[i].create->pci,
                                                own[i].create->host, own[k].from / 1e9,
                                                own[k].to == UINT64_MAX ? -1.0
                                                                        : own[k].to / 1e9,
                                                own[i].from / 1e9);
                        }
                        if (own[i].to > own[k].to)
                                k = i;
                }
        } else {
                /* Per GPU: at no instant more owners than its instances of the type, and one
                 * type at a time (time-sliced vGPUs on a GPU are all of one type). */
                for (size_t i = 0; i < n_own;) {
                        size_t j = i;
                        while (j < n_own && same_gpu(&own[i], &own[j]))
                                j++;
                        unsigned cap_i = vgpu_cap(run, own[i].create->host, own[i].create->pci,
                                                  run->what);
                        for (size_t a = i; a < j; a++) {
                                unsigned live = 0;
                                for (size_t b = i; b < j; b++)
                                        if (own[b].from <= own[a].from &&
                                            own[a].from < own[b].to) {
                                                live++;
                                                if (strcmp(own[a].create->name ?: "",
                                                           own[b].create->name ?: "") != 0)
                                                        live = UINT32_MAX;
                                        }
                                if (cap_i && live > cap_i && doubles++ < 5)
                                        fprintf(stderr, PROG ": DOUBLE ALLOCATION: %u VMs own "
                                                "vGPUs of %s on %s at %.3f s (%u instances)\n",
                                                live, own[a].create->pci, own[a].create->host,
                                                own[a].from / 1e9, cap_i);
                        }
                        if (!cap_i) {
                                fprintf(stderr, PROG ": no max_instances of '%s' on %s: the "
                                        "vGPU check cannot count.\n", run->what,
                                        own[i].create->pci);
                                doubles++;
                        }
                        i = j;
                }
        }
        free(own);
        return doubles;
}

/* After the run: no VM of the run is left, and the store's allocation documents name only VMs
 * that exist, each with the placement its document holds. */
static int check_end(struct run *run, size_t *ret_live)
{
        _cleanup_json_ json_t *vms = NULL;
        int r = bench_call(PROG, run->o.endpoint, "GET", "/api/v1/vms", NULL, NULL, 200, 60000,
                           &vms);
        if (r < 0)
                return r;
        size_t i, left = 0;
        json_t *v;
        _cleanup_free_ char *pfx = xasprintf("%s-", run->o.prefix);
        json_array_foreach(vms, i, v) {
                const char *name = jstr(v, "name") ?: "";
                if (strncmp(name, pfx, strlen(pfx)) == 0) {
                        fprintf(stderr, PROG ": VM '%s' of the run is left (state %s).\n",
                                name, jstr(v, "state") ?: "?");
                        left++;
                }
        }
        *ret_live = json_array_size(vms);
        if (left)
                r = fail("%zu VMs of the run are left after every client's delete.", left);
        if (!run->o.store)
                return r;

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store *s = NULL;
        struct gv_store_obj *a = NULL;
        size_t n_a = 0;
        int r2 = gv_store_open(run->o.store, &s, &e);
        if (r2 >= 0)
                r2 = gv_store_list(s, GV_STORE_ALLOC, &a, &n_a, &e);
        gv_store_free(s);
        if (r2 < 0)
                return fail("Cannot read the allocation documents of '%s': %s", run->o.store,
                            gv_error_msg(e, r2));
        size_t held = 0;
        for (size_t k = 0; k < n_a; k++) {
                const char *vm;
                json_t *pl;
                json_object_foreach(json_object_get(a[k].doc, "vms"), vm, pl) {
                        held++;
                        bool found = false;
                        json_array_foreach(vms, i, v) {
                                if (strcmp(jstr(v, "name") ?: "", vm) != 0)
                                        continue;
                                found = json_equal(json_object_get(v, "placement"), pl) &&
                                        strcmp(jstr(v, "host") ?: "", a[k].key) == 0;
                        }
                        if (!found)
                                r = fail("The allocation document of host '%s' holds '%s', "
                                         "which is no VM placed there.", a[k].key, vm);
                }
        }
        size_t placed = 0;
        json_array_foreach(vms, i, v)
                placed += json_is_object(json_object_get(v, "placement"));
        if (placed != held)
                r = fail("%zu VMs hold a placement, but the allocation documents hold %zu.",
                         placed, held);
        gv_store_objs_free(a, n_a);
        return r;
}

/* ---------------------------------------------------------------- the run */

struct phase_result {
        unsigned clients, seconds;
        double wall_s;
        size_t calls, allocs;
        uint64_t *lat_alloc, *lat_lost, *lat_free;
        size_t n_alloc, n_lost, n_free;
        unsigned long status[600];
        unsigned long no_answer;
};

static int run_phase(struct run *run, unsigned phase, unsigned clients, unsigned seconds,
                     struct client **ret_cl)
{
        struct client *cl = xcalloc(clients, sizeof(*cl));
        pthread_t *th = xcalloc(clients, sizeof(*th));
        uint64_t deadline = bench_now_ns() + (uint64_t)seconds * 1000000000ull;
        unsigned started = 0;
        int r = 0;
        for (unsigned i = 0; i < clients; i++) {
                cl[i] = (struct client){ .run = run, .phase = phase, .id = i,
                                         .deadline = deadline };
                int e = pthread_create(&th[i], NULL, client_main, &cl[i]);
                if (e != 0) {
                        r = fail("pthread_create: %s.", strerror(e));
                        break;
                }
                started++;
        }
        for (unsigned i = 0; i < started; i++)
                (void)pthread_join(th[i], NULL);
        free(th);
        *ret_cl = cl;
        return r;
}

static void summarize(struct client *cl, unsigned clients, struct phase_result *pr)
{
        size_t total = 0;
        for (unsigned i = 0; i < clients; i++)
                total += cl[i].n;
        pr->lat_alloc = xcalloc(total + 1, sizeof(uint64_t));
        pr->lat_lost = xcalloc(total + 1, sizeof(uint64_t));
        pr->lat_free = xcalloc(total + 1, sizeof(uint64_t));
        uint64_t first = UINT64_MAX, last = 0;
        for (unsigned i = 0; i < clients; i++)
                for (size_t k = 0; k < cl[i].n; k++) {
                        const struct call *c = &cl[i].calls[k];
                        pr->calls++;
                        if (c->t0 < first)
                                first = c->t0;
                        if (c->t1 > last)
                                last = c->t1;
                        if (c->status < 0)
                                pr->no_answer++;
                        else if (c->status < 600)
                                pr->status[c->status]++;
                        uint64_t d = c->t1 - c->t0;
                        if (c->kind == K_CREATE && strcmp(c->op, "succeeded") == 0) {
                                pr->lat_alloc[pr->n_alloc++] = d;
                                pr->allocs++;
                        } else if (c->kind == K_CREATE && c->status == 409)
                                pr->lat_lost[pr->n_lost++] = d;
                        else if (c->kind == K_DELETE && strcmp(c->op, "succeeded") == 0)
                                pr->lat_free[pr->n_free++] = d;
                }
        pr->wall_s = last > first ? (double)(last - first) / 1e9 : 0;
}

static void print_lat(const char *what, const uint64_t *s, size_t n)
{
        if (n == 0) {
                printf("    %-28s (none)\n", what);
                return;
        }
        struct bench_stats st = bench_stats_of(s, n);
        printf("    %-28s n=%-7zu p50 %8.1f ms  p99 %8.1f ms  max %8.1f ms\n", what, n, st.p50,
               st.p99, st.max);
}

static void print_phase(const char *title, const struct phase_result *pr)
{
        printf("  %s: %u client%s, %u s\n", title, pr->clients, pr->clients == 1 ? "" : "s",
               pr->seconds);
        printf("    calls %zu, allocations %zu, %.2f allocations/s (%.1f s of calls)\n",
               pr->calls, pr->allocs, pr->wall_s > 0 ? pr->allocs / pr->wall_s : 0.0,
               pr->wall_s);
        print_lat("allocate (create succeeded)", pr->lat_alloc, pr->n_alloc);
        print_lat("lost race (409)", pr->lat_lost, pr->n_lost);
        print_lat("free (delete succeeded)", pr->lat_free, pr->n_free);
        printf("    statuses:");
        for (int s = 0; s < 600; s++)
                if (pr->status[s])
                        printf(" %d=%lu", s, pr->status[s]);
        if (pr->no_answer)
                printf(" no-answer=%lu", pr->no_answer);
        printf("\n");
}

static void phase_result_done(struct phase_result *pr)
{
        free(pr->lat_alloc);
        free(pr->lat_lost);
        free(pr->lat_free);
}

/* The GPUs (host, PCI, model) of the cluster, for the MIG sizes. */
static int load_gpus(struct run *run)
{
        _cleanup_json_ json_t *gpus = NULL;
        int r = bench_call(PROG, run->o.endpoint, "GET", "/api/v1/gpus", NULL, NULL, 200, 60000,
                           &gpus);
        if (r < 0)
                return r;
        run->n_gpus = json_array_size(gpus);
        run->gpus = xcalloc(run->n_gpus + 1, sizeof(*run->gpus));
        size_t i;
        json_t *g;
        json_array_foreach(gpus, i, g) {
                run->gpus[i].host = xstrdup(jstr(g, "host") ?: "");
                run->gpus[i].pci = xstrdup(jstr(g, "pci") ?: "");
                run->gpus[i].model = xstrdup(jstr(g, "model") ?: "");
        }
        if (run->n_gpus == 0)
                return fail("The controller at '%s' lists no GPU.", run->o.endpoint);
        return 0;
}

static void write_csv(FILE *f, struct call **all, size_t n, uint64_t t_base)
{
        fputs("phase,client,kind,vm,start_ms,end_ms,status,op,host,pci,start,size\n", f);
        for (size_t i = 0; i < n; i++) {
                const struct call *c = all[i];
                fprintf(f, "%u,%u,%s,%s,%.3f,%.3f,%d,%s,%s,%s,%d,%d\n", c->phase, c->client,
                        c->kind == K_CREATE ? "create" : "delete", c->vm,
                        (double)(c->t0 - t_base) / 1e6, (double)(c->t1 - t_base) / 1e6,
                        c->status, c->op, c->host ?: "", c->pci ?: "", c->start, c->size);
        }
}

static int call_cmp(const void *a, const void *b)
{
        const struct call *x = *(struct call *const *)a, *y = *(struct call *const *)b;
        return (x->t0 > y->t0) - (x->t0 < y->t0);
}

int main(int argc, char **argv)
{
        struct run run = {
                .o = { .clients = 16, .seconds = 30, .baseline_seconds = 10,
                       .gpu = "mig:1g.6gb", .prefix = "race" },
                .mu = PTHREAD_MUTEX_INITIALIZER,
        };
        int r = parse_opts(argc, argv, &run.o);
        if (r != 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);
        run.mig = strncmp(run.o.gpu, "mig:", 4) == 0;
        run.what = strchr(run.o.gpu, ':') + 1;

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_catalog_load_default(&run.catalog, &e);
        if (r < 0)
                return fail("Cannot load the GPU catalog: %s", gv_error_msg(e, r)), 1;
        r = load_gpus(&run);
        if (r < 0)
                return 1;

        uint64_t t_base = bench_now_ns();
        struct client *phases[2] = {};
        unsigned n_cl[2] = { run.o.baseline_seconds ? 1u : 0u, run.o.clients };
        unsigned secs[2] = { run.o.baseline_seconds, run.o.seconds };
        for (unsigned p = 0; p < 2 && r >= 0 && !run.first_error; p++)
                if (n_cl[p])
                        r = run_phase(&run, p, n_cl[p], secs[p], &phases[p]);

        /* Every call of both phases, by start time, for the checker and the CSV. */
        size_t n_all = 0;
        for (unsigned p = 0; p < 2; p++)
                for (unsigned i = 0; phases[p] && i < n_cl[p]; i++)
                        n_all += phases[p][i].n;
        struct call **all = xcalloc(n_all + 1, sizeof(*all));
        n_all = 0;
        for (unsigned p = 0; p < 2; p++)
                for (unsigned i = 0; phases[p] && i < n_cl[p]; i++)
                        for (size_t k = 0; k < phases[p][i].n; k++)
                                all[n_all++] = &phases[p][i].calls[k];
        qsort(all, n_all, sizeof(*all), call_cmp);

        run.double_allocs = check_history(&run, all, n_all);
        struct phase_result pr[2] = {};
        for (unsigned p = 0; p < 2; p++) {
                pr[p].clients = n_cl[p];
                pr[p].seconds = secs[p];
                if (phases[p])
                        summarize(phases[p], n_cl[p], &pr[p]);
                /* Answers: 200/202 an operation, 409 a lost race, 429/503 come back later;
                 * anything else (any 5xx but 503, other 4xx) is wrong. */
                for (int s = 0; s < 600; s++)
                        if (s != 200 && s != 202 && s != 409 && s != 429 && s != 503)
                                run.bad_status += pr[p].status[s];
                run.bad_status += pr[p].no_answer;
        }
        unsigned long timeouts = 0;
        for (size_t i = 0; i < n_all; i++) {
                if (strcmp(all[i]->op, "timeout") == 0)
                        timeouts++;
                else if (all[i]->op[0] && strcmp(all[i]->op, "succeeded") != 0)
                        run.failed_ops++;
        }

        size_t live = 0;
        int end = check_end(&run, &live);

        if (run.o.out) {
                FILE *f = fopen(run.o.out, "we");
                if (!f || (write_csv(f, all, n_all, t_base), fclose(f) != 0))
                        r = fail("Cannot write '%s': %s.", run.o.out, strerror(errno));
        }

        printf("gpuvirt concurrent allocation (alloc-race)\n");
        bench_print_machine();
        printf("controller: %s; request %s%s%s; hold 0-%u ms; store check %s\n",
               run.o.endpoint, run.o.gpu, run.o.host ? " on host " : "",
               run.o.host ? run.o.host : "", run.o.hold_ms, run.o.store ? run.o.store : "off");
        printf("method: each client loops POST /api/v1/vms?wait=120 (128 MiB, started) then "
               "DELETE ?wait=120; 409 = lost race (5-25 ms back-off); CLOCK_MONOTONIC; "
               "nearest-rank percentiles\n");
        if (n_cl[0])
                print_phase("baseline", &pr[0]);
        print_phase("race", &pr[1]);
        if (n_cl[0] && pr[0].n_alloc && pr[1].n_alloc && pr[0].wall_s > 0 && pr[1].wall_s > 0) {
                struct bench_stats a = bench_stats_of(pr[0].lat_alloc, pr[0].n_alloc);
                struct bench_stats b = bench_stats_of(pr[1].lat_alloc, pr[1].n_alloc);
                printf("  race / baseline: allocations/s %.2fx, allocate p50 %.2fx, p99 %.2fx\n",
                       (pr[1].allocs / pr[1].wall_s) / (pr[0].allocs / pr[0].wall_s),
                       b.p50 / a.p50, b.p99 / a.p99);
        }
        printf("  history: %zu calls checked, %lu double allocations, %lu unexpected statuses "
               "(5xx other than 503, no answer, other 4xx), %lu failed operations (%lu more "
               "failed on a step's timeout); %zu VMs live at the end, %s\n", n_all,
               run.double_allocs, run.bad_status, run.failed_ops, timeouts, live, end >= 0 ? "none of the run left" : "LEFTOVERS");
        if (run.first_error)
                fprintf(stderr, PROG ": first error: %s\n", run.first_error);

        bool ok = r >= 0 && end >= 0 && run.double_allocs == 0 && run.bad_status == 0 &&
                  run.failed_ops == 0 && !run.first_error && pr[1].allocs > 0;
        if (pr[1].allocs == 0)
                fprintf(stderr, PROG ": the race made no allocation: nothing was checked.\n");
        printf("result: %s\n", ok ? "PASS" : "FAIL");

        for (unsigned p = 0; p < 2; p++) {
                phase_result_done(&pr[p]);
                for (unsigned i = 0; phases[p] && i < n_cl[p]; i++) {
                        for (size_t k = 0; k < phases[p][i].n; k++) {
                                struct call *c = &phases[p][i].calls[k];
                                free(c->vm);
                                free(c->host);
                                free(c->pci);
                                free(c->name);
                        }
                        free(phases[p][i].calls);
                }
                free(phases[p]);
        }
        free(all);
        for (size_t i = 0; i < run.n_gpus; i++) {
                free(run.gpus[i].host);
                free(run.gpus[i].pci);
                free(run.gpus[i].model);
        }
        free(run.gpus);
        gv_catalog_free(run.catalog);
        free(run.first_error);
        return ok ? 0 : 1;
}
