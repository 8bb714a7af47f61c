/* SPDX-License-Identifier: MIT */
/*
 * bench-create — create-to-running latency of a vGPU VM through the controller beside the
 * same VM defined and started on the agent directly, in the same run, on a simulated host
 * (issue 5, BENCHMARKS.md).
 *
 *   bench-create [--runs N] [--daemon PATH] [--sim PATH] [--accel tcg|kvm|auto] [--out CSV]
 *                [--keep-dir]
 *
 * Setup (untimed): a simulated DGX H100 (`gpuvirt-sim create --profile dgx-h100`) and one
 * gpuvirtd in role all on it (`gpuvirt-sim exec -- gpuvirtd --role all --accel tcg
 * --host-name bench-host`): the controller and the agent in one process, the agent registered
 * as the controller's host. Ready once GET /api/v1/hosts/bench-host says "up" with 8 GPUs.
 *
 * Each round (after one untimed warm-up round) times one create per side, the side that goes
 * first alternating from round to round so both share the machine's noise:
 *
 *   controller  `POST /api/v1/vms?wait=60` on the controller's UNIX socket (admin) with
 *               {"name", "memory_mib": 128, "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]},
 *               no disk, from sending to its 200 with the operation "succeeded" (the controller
 *               validates, places, reserves in the store, then its operation defines and starts
 *               the VM on the agent and marks it running). Then, untimed: GET
 *               /api/v1/vms/NAME must say "running" with a vGPU placement, the agent's GET
 *               /v1/vms/NAME "phase": "running" with a vGPU in "hw" and a live QEMU; `DELETE
 *               /api/v1/vms/NAME?wait=60` must succeed, after which both APIs answer 404 and
 *               the QEMU is gone.
 *   agent       the definition the controller sends (src/controller/vms.c, agent_definition:
 *               name, uuid, 1 vCPU, 128 MiB, the vGPU on the GPU the controller's warm-up
 *               create was placed on, no disks) straight to the agent's UNIX socket: from
 *               sending `POST /v1/vms` to the 200 of `POST /v1/vms/NAME/start`, each with an
 *               Operation-Id. Then, untimed, the same checks, `POST .../kill` and `DELETE`.
 *
 * Context rows (not part of the comparison): the agent's define alone, and each side's delete.
 * After the run the controller's event log (in its store, millisecond times) splits each
 * controller create into: request -> vm.created (auth, validation, placement, reservation
 * committed), -> vm.state "starting" (the operation's thread and the agent's define), ->
 * "running" (the agent's start), -> the 200 received (operation succeeded, waiter woken).
 *
 * Output: p50/p90/p99/min/max/mean per side (nearest rank) and the controller's overhead.
 * Exit status: 0 measured, 1 a check failed, 2 usage, 77 nothing to measure (gpuvirtd,
 * gpuvirt-sim or QEMU not there).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

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
#ifndef BENCH_GPUVIRT_SIM
#define BENCH_GPUVIRT_SIM GPUVIRT_BUILD_ROOT "/sim/tool/gpuvirt-sim"
#endif

#define PROG "bench-create"
/* common.h, with this program's name */
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define HOST_NAME "bench-host"
#define VGPU_TYPE "H100XM-20C"
#define DEFAULT_RUNS 30u
#define READY_MS 60000
#define REQUEST_MS 120000
#define EXIT_WAIT_MS 10000

enum { SIDE_CTL, SIDE_AGENT, N_SIDES };
static const char *const side_name[N_SIDES] = { "controller", "agent" };

enum {
        M_CTL = SIDE_CTL,     /* POST /api/v1/vms?wait=60 -> 200 succeeded */
        M_AGENT = SIDE_AGENT, /* POST /v1/vms + POST /v1/vms/NAME/start -> 200 */
        M_AGENT_DEFINE,       /* POST /v1/vms alone */
        M_CTL_DELETE,         /* DELETE /api/v1/vms/NAME?wait=60 -> 200 succeeded */
        M_AGENT_DELETE,       /* POST kill + DELETE on the agent */
        N_MEASURES,
};
static const char *const measure_csv[N_MEASURES] = {
        "controller_create", "agent_create", "agent_define", "controller_delete",
        "agent_delete",
};
static const char *const measure_row[N_MEASURES] = {
        "controller: POST ?wait -> succeeded",
        "agent: define + start -> 200",
        "  agent: define alone",
        "controller: DELETE ?wait -> done",
        "agent: kill + delete",
};

/* The controller's create split by its event log (milliseconds of CLOCK_REALTIME). */
enum { P_RESERVE, P_DEFINE, P_START, P_ANSWER, N_PHASES };
static const char *const phase_row[N_PHASES] = {
        "request -> vm.created (reserved)",
        "vm.created -> starting (define)",
        "starting -> running (agent start)",
        "running -> 200 received",
};

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned runs;
        const char *daemon;
        const char *sim;
        const char *accel;
        const char *out;
        bool keep_dir;
};

static const char usage_text[] =
        "Usage: " PROG " [--runs N] [--daemon PATH] [--sim PATH] [--accel tcg|kvm|auto]\n"
        "                    [--out CSV] [--keep-dir]\n"
        "\n"
        "Create-to-running latency of a vGPU VM through the controller (POST /api/v1/vms?wait)\n"
        "beside the same VM defined and started on the agent directly, interleaved in one run\n"
        "on a simulated DGX H100 with gpuvirtd in role all.\n"
        "\n"
        "  --runs N        timed creates per side (default 30), after one warm-up round\n"
        "  --daemon PATH   gpuvirtd to run (default: the built one; env GPUVIRT_BENCH_DAEMON)\n"
        "  --sim PATH      gpuvirt-sim to run (default: the built one)\n"
        "  --accel A       the agent's --accel (default tcg)\n"
        "  --out CSV       write every sample: round,measure,first,ms\n"
        "  --keep-dir      keep the simulated host, the state directory and the daemon's log\n";

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "runs", required_argument, NULL, 'n' },
                { "daemon", required_argument, NULL, 'D' },
                { "sim", required_argument, NULL, 's' },
                { "accel", required_argument, NULL, 'a' },
                { "out", required_argument, NULL, 'o' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (gv_parse_u32(optarg, 10, &o->runs) < 0 || o->runs == 0 ||
                            o->runs > 10000)
                                return usage_error("--runs needs a whole number from 1 to "
                                                   "10000, not '%s'.", optarg);
                        break;
                case 'D': o->daemon = optarg; break;
                case 's': o->sim = optarg; break;
                case 'a':
                        if (strcmp(optarg, "tcg") != 0 && strcmp(optarg, "kvm") != 0 &&
                            strcmp(optarg, "auto") != 0)
                                return usage_error("--accel: '%s' is not tcg, kvm or auto.",
                                                   optarg);
                        o->accel = optarg;
                        break;
                case 'o': o->out = optarg; break;
                case 'k': o->keep_dir = true; break;
                case 'h':
                        fputs(usage_text, stdout);
                        exit(0);
                default:
                        return usage_error("invalid option.");
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'.", argv[optind]);
        return 0;
}

/* ---------------------------------------------------------------- the run's context */

struct ctx {
        struct opts o;
        char *dir, *root, *state, *log, *store_url;
        char *ctl;            /* "unix:STATE/gpuvirt.sock" */
        char *agent;          /* "unix:STATE/agent.sock" */
        struct gv_proc daemon;
        unsigned op_seq;
        char *pci;            /* the GPU of the controller's warm-up placement */
        char *accel_reason;   /* the host's "accel_reason" */
        char *qemu_version;

        /* What each side leaves until its delete, for the cleanup after a failure. */
        char *ctl_vm, *agent_vm;
        struct gv_proc qemu;  /* the QEMU of the VM being checked, adopted */

        /* Per timed round: CLOCK_REALTIME ms at the controller's POST and when its 200 came,
         * and the operation's id, for the event-log split. */
        int64_t *ctl_sent_ms, *ctl_done_ms;
        char **ctl_names;

        uint64_t *samples[N_MEASURES];
        size_t n[N_MEASURES];
        FILE *csv;
};

static int64_t realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------- HTTP */

/* One request; *ret_json (may be NULL) gets the body as JSON (NULL when empty). opid: an
 * Operation-Id header (the agent's mutations). Fails when the exchange fails or the status is
 * not `want`, quoting the body. */
static int call(struct ctx *c, const char *endpoint, const char *method, const char *path,
                const char *body, bool opid, int want, json_t **ret_json)
{
        char hdr[64];
        (void)snprintf(hdr, sizeof(hdr), "Operation-Id: bench-create-%ld-%u", (long)getpid(),
                       ++c->op_seq);
        return bench_call(PROG, endpoint, method, path, body, opid ? hdr : NULL, want,
                          REQUEST_MS, ret_json);
}

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static bool jstr_is(const json_t *o, const char *key, const char *want)
{
        const char *s = jstr(o, key);
        return s && strcmp(s, want) == 0;
}

/* ---------------------------------------------------------------- setup */

static int daemon_start(struct ctx *c)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *out = NULL, *errout = NULL;
        char *create[] = { (char *)c->o.sim, "create", "--profile", "dgx-h100", "--root", c->root,
                           NULL };
        int r = gv_proc_run(create, 120000, 1 << 16, &out, &errout, &e);
        if (r < 0)
                return fail("Cannot create the simulated host: %s", gv_error_msg(e, r));

        _cleanup_close_ int log = open(c->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (log < 0)
                return fail("Cannot create '%s': %s.", c->log, strerror(errno));
        char *argv[] = { (char *)c->o.sim, "exec", "--root", c->root, "--", (char *)c->o.daemon,
                         "--role", "all", "--state-dir", c->state, "--accel",
                         (char *)c->o.accel, "--host-name", HOST_NAME, "--qemu-user", "root",
                         NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log, .stderr_fd = log };
        r = gv_proc_spawn(argv, &so, &c->daemon, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));

        /* Ready when the controller lists the host up with its eight GPUs. */
        uint64_t deadline = bench_now_ns() + (uint64_t)READY_MS * 1000000u;
        for (;;) {
                int status = 0;
                _cleanup_json_ json_t *h = NULL;
                struct gv_error *e2 = NULL;
                r = gv_http_client_request(c->ctl, "GET", "/api/v1/hosts/" HOST_NAME, NULL, 5000,
                                           &status, &h, &e2);
                gv_error_free(e2);
                if (r >= 0 && status == 200 && jstr_is(h, "state", "up") &&
                    json_array_size(json_object_get(h, "gpus")) == 8) {
                        c->accel_reason = xstrdup(jstr(h, "accel_reason") ?: "?");
                        return 0;
                }
                if (!gv_proc_alive(&c->daemon)) {
                        bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                        return fail("'%s' exited before the controller listed host '"
                                    HOST_NAME "'.", c->o.daemon);
                }
                if (bench_now_ns() > deadline) {
                        bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                        return fail("The controller did not list host '" HOST_NAME "' up with "
                                    "8 GPUs within %d ms (last status %d).", READY_MS, status);
                }
                (void)nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
        }
}

/* ---------------------------------------------------------------- checks */

/* The agent's VM is running with a vGPU, its QEMU alive: adopt it (by the argv's -name) so
 * that its exit can be awaited after the delete. */
static int check_agent_running(struct ctx *c, const char *name)
{
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s", name);
        _cleanup_json_ json_t *vm = NULL;
        int r = call(c, c->agent, "GET", path, NULL, false, 200, &vm);
        if (r < 0)
                return r;
        bool vgpu = false;
        size_t i;
        json_t *v;
        json_array_foreach(json_object_get(vm, "hw"), i, v)
                vgpu |= jstr_is(v, "kind", "vgpu");
        /* The -name argument ("guest=NAME,..."): one whole argv element, gv_proc_adopt's
         * marker against a recycled pid. */
        const json_t *argv = json_object_get(vm, "argv");
        const char *marker = NULL;
        json_array_foreach(argv, i, v)
                if (json_is_string(v) && strcmp(json_string_value(v), "-name") == 0)
                        marker = json_string_value(json_array_get(argv, i + 1));
        json_t *pid = json_object_get(vm, "pid");
        if (!jstr_is(vm, "phase", "running") || !vgpu || !json_is_integer(pid) || !marker) {
                _cleanup_free_ char *dump = json_dumps(vm, JSON_COMPACT);
                return fail("The agent's GET %s does not say running with a vGPU in \"hw\", a "
                            "pid and an argv with -name: %.3000s", path, dump ? dump : "?");
        }
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_proc_adopt((pid_t)json_integer_value(pid), marker, &c->qemu, &e);
        if (r < 0)
                return fail("The agent says VM '%s' runs, but its QEMU is not there: %s", name,
                            gv_error_msg(e, r));
        return 0;
}

/* After a delete: both APIs forget the VM and its QEMU is gone. */
static int check_gone(struct ctx *c, const char *name, bool on_controller)
{
        _cleanup_free_ char *apath = xasprintf("/v1/vms/%s", name);
        int r = call(c, c->agent, "GET", apath, NULL, false, 404, NULL);
        if (r >= 0 && on_controller) {
                _cleanup_free_ char *cpath = xasprintf("/api/v1/vms/%s", name);
                r = call(c, c->ctl, "GET", cpath, NULL, false, 404, NULL);
        }
        if (r < 0)
                return fail("VM '%s' is still known after its delete.", name);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_proc_wait(&c->qemu, EXIT_WAIT_MS, NULL, &e);
        if (r <= 0)
                return fail("The QEMU of VM '%s' (pid %d) still runs %d ms after its delete%s%s",
                            name, c->qemu.pid, EXIT_WAIT_MS, r < 0 ? ": " : ".",
                            r < 0 ? gv_error_msg(e, r) : "");
        gv_proc_close(&c->qemu);
        return 0;
}

/* ---------------------------------------------------------------- the two sides */

static int op_succeeded(const json_t *op, const char *what)
{
        if (!jstr_is(op, "state", "succeeded")) {
                _cleanup_free_ char *dump = json_dumps(op, JSON_COMPACT);
                return fail("%s answered an operation that did not succeed: %.3000s", what,
                            dump ? dump : "?");
        }
        return 0;
}

static int round_ctl(struct ctx *c, unsigned round, uint64_t *ret_ns, uint64_t *ret_del_ns)
{
        _cleanup_free_ char *name = xasprintf("bench-ctl-%u", round);
        _cleanup_free_ char *body = xasprintf("{\"name\": \"%s\", \"memory_mib\": 128, \"gpus\": "
                                              "[{\"kind\": \"vgpu\", \"type\": \"" VGPU_TYPE
                                              "\"}]}", name);
        _cleanup_free_ char *path = xasprintf("/api/v1/vms/%s", name);
        _cleanup_free_ char *del = xasprintf("/api/v1/vms/%s?wait=60", name);
        _cleanup_json_ json_t *op = NULL, *vm = NULL, *dop = NULL;
        int r;

        int64_t sent = realtime_ms();
        uint64_t t0 = bench_now_ns();
        r = call(c, c->ctl, "POST", "/api/v1/vms?wait=60", body, false, 200, &op);
        uint64_t t1 = bench_now_ns();
        int64_t done = realtime_ms();
        free(c->ctl_vm);
        c->ctl_vm = xstrdup(name);
        if (r >= 0)
                r = op_succeeded(op, "POST /api/v1/vms?wait=60");
        if (r < 0) {
                bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                return r;
        }
        if ((r = call(c, c->ctl, "GET", path, NULL, false, 200, &vm)) < 0)
                return r;
        const json_t *g0 = json_array_get(json_object_get(json_object_get(vm, "placement"),
                                                          "gpus"), 0);
        if (!jstr_is(vm, "state", "running") || !jstr_is(g0, "alloc", "vgpu") || !jstr(g0, "pci")) {
                _cleanup_free_ char *dump = json_dumps(vm, JSON_COMPACT);
                return fail("The create succeeded but GET %s does not say running with a vGPU "
                            "placement: %.3000s", path, dump ? dump : "?");
        }
        if (!c->pci)
                c->pci = xstrdup(jstr(g0, "pci"));
        if ((r = check_agent_running(c, name)) < 0)
                return r;

        uint64_t d0 = bench_now_ns();
        r = call(c, c->ctl, "DELETE", del, NULL, false, 200, &dop);
        uint64_t d1 = bench_now_ns();
        if (r >= 0)
                r = op_succeeded(dop, "DELETE /api/v1/vms/NAME?wait=60");
        if (r >= 0)
                r = check_gone(c, name, true);
        if (r < 0)
                return r;
        free(c->ctl_vm);
        c->ctl_vm = NULL;
        if (round > 0) {
                c->ctl_sent_ms[round - 1] = sent;
                c->ctl_done_ms[round - 1] = done;
                c->ctl_names[round - 1] = TAKE_PTR(name);
        }
        *ret_ns = t1 - t0;
        *ret_del_ns = d1 - d0;
        return 0;
}

static int round_agent(struct ctx *c, unsigned round, uint64_t *ret_ns, uint64_t *ret_def_ns,
                       uint64_t *ret_del_ns)
{
        _cleanup_free_ char *name = xasprintf("bench-agent-%u", round);
        _cleanup_free_ char *start = xasprintf("/v1/vms/%s/start", name);
        _cleanup_free_ char *kill = xasprintf("/v1/vms/%s/kill", name);
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s", name);
        uint8_t u[16];
        int r;

        if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
                return fail("getrandom: %s.", strerror(errno));
        u[6] = (u[6] & 0x0f) | 0x40;
        u[8] = (u[8] & 0x3f) | 0x80;
        /* agent_definition()'s shape (src/controller/vms.c), keys in its order. */
        _cleanup_free_ char *def = xasprintf(
                "{\"name\": \"%s\", \"uuid\": \"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x\", \"vcpus\": 1, \"memory_mib\": 128, \"gpus\": "
                "[{\"mode\": \"vgpu\", \"type\": \"" VGPU_TYPE "\", \"gpu\": \"%s\"}], "
                "\"disks\": []}", name, u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
                u[9], u[10], u[11], u[12], u[13], u[14], u[15], c->pci);

        uint64_t t0 = bench_now_ns();
        r = call(c, c->agent, "POST", "/v1/vms", def, true, 201, NULL);
        uint64_t ta = bench_now_ns();
        free(c->agent_vm);
        c->agent_vm = xstrdup(name);
        if (r >= 0)
                r = call(c, c->agent, "POST", start, NULL, true, 200, NULL);
        uint64_t t1 = bench_now_ns();
        if (r < 0) {
                bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                return r;
        }
        if ((r = check_agent_running(c, name)) < 0)
                return r;
        uint64_t d0 = bench_now_ns();
        r = call(c, c->agent, "POST", kill, NULL, true, 200, NULL);
        if (r >= 0)
                r = call(c, c->agent, "DELETE", path, NULL, true, 200, NULL);
        uint64_t d1 = bench_now_ns();
        if (r >= 0)
                r = check_gone(c, name, false);
        if (r < 0)
                return r;
        free(c->agent_vm);
        c->agent_vm = NULL;
        *ret_ns = t1 - t0;
        *ret_def_ns = ta - t0;
        *ret_del_ns = d1 - d0;
        return 0;
}

/* ---------------------------------------------------------------- the run */

static void record(struct ctx *c, int m, unsigned round, int first, uint64_t ns)
{
        c->samples[m][c->n[m]++] = ns;
        if (c->csv) {
                fprintf(c->csv, "%u,%s,", round, measure_csv[m]);
                if (first >= 0)
                        fprintf(c->csv, "%d", first);
                fprintf(c->csv, ",%.3f\n", (double)ns / BENCH_NSEC_PER_MSEC);
        }
}

/* One round: both sides, `first` first. Round 0 is the warm-up: not recorded; the controller
 * goes first there, so that its placement names the GPU the agent side uses. */
static int run_round(struct ctx *c, unsigned round, int first)
{
        for (int k = 0; k < N_SIDES; k++) {
                int side = k == 0 ? first : 1 - first;
                uint64_t ns = 0, def = 0, del = 0;
                int r = side == SIDE_CTL ? round_ctl(c, round, &ns, &del)
                                         : round_agent(c, round, &ns, &def, &del);
                if (r < 0) {
                        fprintf(stderr, PROG ": the %s create failed in %s %u.\n",
                                side_name[side], round ? "round" : "the warm-up round", round);
                        return r;
                }
                if (round == 0)
                        continue;
                record(c, side, round, k == 0, ns);
                record(c, side == SIDE_CTL ? M_CTL_DELETE : M_AGENT_DELETE, round, -1, del);
                if (side == SIDE_AGENT)
                        record(c, M_AGENT_DEFINE, round, -1, def);
        }
        return 0;
}

/* ---------------------------------------------------------------- the event-log split */

struct phases {
        uint64_t *ms[N_PHASES]; /* in nanoseconds, for bench_stats_of */
        size_t n;
};

/* From the store the daemon left (read after it stopped): per timed controller round, the
 * times of vm.created, vm.state starting and running of its VM. */
static int split_phases(struct ctx *c, struct phases *ph)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store *s = NULL;
        struct gv_store_event *ev = NULL;
        size_t n_ev = 0;
        int r = gv_store_open(c->store_url, &s, &e);
        if (r >= 0)
                r = gv_store_events(s, 0, 1000000, &ev, &n_ev, &e);
        gv_store_free(s);
        if (r < 0)
                return fail("Cannot read the controller's event log in '%s': %s", c->store_url,
                            gv_error_msg(e, r));
        for (int p = 0; p < N_PHASES; p++)
                ph->ms[p] = xcalloc(c->o.runs, sizeof(uint64_t));
        for (unsigned i = 0; i < c->o.runs; i++) {
                _cleanup_free_ char *subj = xasprintf("vm/%s", c->ctl_names[i]);
                int64_t created = -1, starting = -1, running = -1;
                for (size_t k = 0; k < n_ev; k++) {
                        if (strcmp(ev[k].subject, subj) != 0)
                                continue;
                        const char *st = jstr(ev[k].data, "state");
                        if (strcmp(ev[k].type, "vm.created") == 0 && created < 0)
                                created = ev[k].time;
                        else if (strcmp(ev[k].type, "vm.state") == 0 && st &&
                                 strcmp(st, "starting") == 0 && starting < 0)
                                starting = ev[k].time;
                        else if (strcmp(ev[k].type, "vm.state") == 0 && st &&
                                 strcmp(st, "running") == 0 && running < 0)
                                running = ev[k].time;
                }
                if (created < 0 || starting < 0 || running < 0) {
                        gv_store_events_free(ev, n_ev);
                        return fail("The event log lacks vm.created, or vm.state starting or "
                                    "running, for '%s'.", subj);
                }
                int64_t t[N_PHASES + 1] = { c->ctl_sent_ms[i], created, starting, running,
                                            c->ctl_done_ms[i] };
                for (int p = 0; p < N_PHASES; p++) {
                        int64_t d = t[p + 1] - t[p];
                        ph->ms[p][ph->n] = (uint64_t)(d > 0 ? d : 0) * 1000000u;
                }
                ph->n++;
        }
        gv_store_events_free(ev, n_ev);
        return 0;
}

/* ---------------------------------------------------------------- report */

static void print_machine(struct ctx *c)
{
        printf("gpuvirt create-to-running benchmark\n");
        bench_print_machine();
        printf("build:   %s, sanitizers %s\n", BENCH_BUILDTYPE, BENCH_SANITIZE);
        printf("qemu:    %s; accel %s\n", c->qemu_version ? c->qemu_version : "?",
               c->accel_reason ? c->accel_reason : "?");
        printf("daemon:  '%s' --role all on a simulated dgx-h100 (host '" HOST_NAME "'), store "
               "sqlite\n", c->o.daemon);
        printf("VM:      1 vCPU, 128 MiB, no disk, one vGPU " VGPU_TYPE " (on %s)\n",
               c->pci ? c->pci : "?");
        printf("method:  %u timed rounds after 1 warm-up round; each round creates one VM per "
               "side, the first side\n         alternating, and deletes it (untimed for the "
               "comparison); CLOCK_MONOTONIC; nearest-rank percentiles\n", c->o.runs);
}

static void print_row(const char *name, const struct bench_stats *s)
{
        printf("  %-36s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, s->p50, s->p90, s->p99,
               s->min, s->max, s->mean);
}

static void report(struct ctx *c, const struct phases *ph)
{
        struct bench_stats st[N_MEASURES];
        for (int m = 0; m < N_MEASURES; m++)
                st[m] = bench_stats_of(c->samples[m], c->n[m]);
        print_machine(c);
        printf("\n  create latency (ms)                        p50       p90       p99       min"
               "       max      mean\n");
        for (int m = 0; m < N_MEASURES; m++) {
                if (m == M_AGENT_DEFINE)
                        printf("  context\n");
                print_row(measure_row[m], &st[m]);
        }
        if (ph && ph->n > 0) {
                printf("  the controller's create by its event log (1 ms resolution)\n");
                for (int p = 0; p < N_PHASES; p++) {
                        struct bench_stats s = bench_stats_of(ph->ms[p], ph->n);
                        print_row(phase_row[p], &s);
                }
        }
        printf("\n  controller overhead at p50: %+.3f ms (%.2fx the agent-only create); at p99: "
               "%+.3f ms (%.2fx)\n", st[M_CTL].p50 - st[M_AGENT].p50,
               st[M_CTL].p50 / st[M_AGENT].p50, st[M_CTL].p99 - st[M_AGENT].p99,
               st[M_CTL].p99 / st[M_AGENT].p99);
        printf("  checks: %zu controller creates answered 'succeeded' with the VM running on a "
               "vGPU (controller and agent), %zu agent creates running with a vGPU; every QEMU "
               "gone and every VM forgotten after its delete\n", c->n[M_CTL], c->n[M_AGENT]);
}

/* ---------------------------------------------------------------- teardown */

static void cleanup(struct ctx *c)
{
        bool up = c->daemon.pidfd >= 0 && gv_proc_alive(&c->daemon);
        if (up && c->ctl_vm) {
                _cleanup_free_ char *p = xasprintf("/api/v1/vms/%s?wait=60", c->ctl_vm);
                (void)call(c, c->ctl, "DELETE", p, NULL, false, 200, NULL);
        }
        if (up && c->agent_vm) {
                _cleanup_free_ char *k = xasprintf("/v1/vms/%s/kill", c->agent_vm);
                _cleanup_free_ char *p = xasprintf("/v1/vms/%s", c->agent_vm);
                (void)call(c, c->agent, "POST", k, NULL, true, 200, NULL);
                (void)call(c, c->agent, "DELETE", p, NULL, true, 200, NULL);
        }
        if (c->qemu.pidfd >= 0) {
                if (gv_proc_wait(&c->qemu, up ? 5000 : 0, NULL, NULL) == 0) {
                        (void)gv_proc_signal(&c->qemu, SIGKILL, NULL);
                        (void)gv_proc_wait(&c->qemu, EXIT_WAIT_MS, NULL, NULL);
                }
                gv_proc_close(&c->qemu);
        }
        if (c->daemon.pidfd >= 0) {
                (void)gv_proc_signal(&c->daemon, SIGTERM, NULL);
                if (gv_proc_wait(&c->daemon, 10000, NULL, NULL) == 0) {
                        fprintf(stderr, PROG ": gpuvirtd did not stop within 10 s of SIGTERM; "
                                "killing it.\n");
                        (void)gv_proc_signal(&c->daemon, SIGKILL, NULL);
                        (void)gv_proc_wait(&c->daemon, EXIT_WAIT_MS, NULL, NULL);
                }
                gv_proc_close(&c->daemon);
        }
}

static void ctx_done(struct ctx *c)
{
        if (c->dir) {
                if (c->o.keep_dir)
                        fprintf(stderr, PROG ": kept '%s' (root/, state/, gpuvirtd.log).\n",
                                c->dir);
                else
                        (void)gv_rm_rf(c->dir);
        }
        free(c->dir);
        free(c->root);
        free(c->state);
        free(c->log);
        free(c->store_url);
        free(c->ctl);
        free(c->agent);
        free(c->pci);
        free(c->accel_reason);
        free(c->qemu_version);
        free(c->ctl_vm);
        free(c->agent_vm);
        free(c->ctl_sent_ms);
        free(c->ctl_done_ms);
        for (unsigned i = 0; c->ctl_names && i < c->o.runs; i++)
                free(c->ctl_names[i]);
        free(c->ctl_names);
        for (int m = 0; m < N_MEASURES; m++)
                free(c->samples[m]);
        if (c->csv)
                (void)fclose(c->csv);
}

static void qemu_version(struct ctx *c)
{
        char *argv[] = { "qemu-system-x86_64", "--version", NULL };
        _cleanup_free_ char *out = NULL;
        if (gv_proc_run(argv, 10000, 4096, &out, NULL, NULL) >= 0 && out)
                c->qemu_version = xstrndup(out, strcspn(out, "\n"));
}

int main(int argc, char **argv)
{
        struct ctx c = {
                .o = { .runs = DEFAULT_RUNS, .accel = "tcg" },
                .daemon = GV_PROC_NULL,
                .qemu = GV_PROC_NULL,
        };
        int r = parse_opts(argc, argv, &c.o);
        if (r != 0)
                return r;
        c.o.daemon = bench_daemon_path(c.o.daemon, "GPUVIRT_BENCH_DAEMON", BENCH_GPUVIRTD);
        if (!c.o.sim)
                c.o.sim = BENCH_GPUVIRT_SIM;
        r = bench_need((const char *const[]){ "gpuvirtd", c.o.daemon, "gpuvirt-sim", c.o.sim,
                                              NULL },
                       (const char *const[]){ "qemu-system-x86_64", NULL });
        if (r != 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-create-XXXXXX",
                                               tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(templ)) {
                fprintf(stderr, PROG ": cannot create a directory '%s': %s.\n", templ,
                        strerror(errno));
                return 1;
        }
        c.dir = TAKE_PTR(templ);
        c.root = gv_path_join(c.dir, "root");
        c.state = gv_path_join(c.dir, "state");
        c.log = gv_path_join(c.dir, "gpuvirtd.log");
        c.store_url = xasprintf("sqlite:%s/gpuvirt.db", c.state);
        c.ctl = xasprintf("unix:%s/gpuvirt.sock", c.state);
        c.agent = xasprintf("unix:%s/agent.sock", c.state);
        c.ctl_sent_ms = xcalloc(c.o.runs, sizeof(int64_t));
        c.ctl_done_ms = xcalloc(c.o.runs, sizeof(int64_t));
        c.ctl_names = xcalloc(c.o.runs, sizeof(char *));
        for (int m = 0; m < N_MEASURES; m++)
                c.samples[m] = xcalloc(c.o.runs, sizeof(uint64_t));
        if (c.o.out) {
                c.csv = fopen(c.o.out, "we");
                if (!c.csv) {
                        fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out,
                                strerror(errno));
                        ctx_done(&c);
                        return 1;
                }
                fputs("round,measure,first,ms\n", c.csv);
        }
        qemu_version(&c);

        r = daemon_start(&c);
        if (r >= 0)
                r = run_round(&c, 0, SIDE_CTL);
        for (unsigned i = 1; r >= 0 && i <= c.o.runs; i++)
                r = run_round(&c, i, i % 2 ? SIDE_AGENT : SIDE_CTL);
        cleanup(&c);
        struct phases ph = {};
        if (r >= 0 && split_phases(&c, &ph) < 0)
                r = -EIO;
        if (r >= 0 && c.csv && fflush(c.csv) != 0) {
                fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out, strerror(errno));
                r = -EIO;
        }
        if (r >= 0)
                report(&c, &ph);
        for (int p = 0; p < N_PHASES; p++)
                free(ph.ms[p]);
        ctx_done(&c);
        return r >= 0 ? 0 : 1;
}
