/* SPDX-License-Identifier: MIT */
/*
 * bench-sampler — what the agent's metrics sampler costs at 8 GPUs and 50 VMs: the agent's
 * CPU while it samples every second beside the same agent, with the same VMs, when it does
 * not sample, in the same run (issue 7, "Benchmark"; BENCHMARKS.md "Sampler cost").
 *
 *   bench-sampler [--vms N] [--seconds S] [--rounds R] [--settle S] [--sample-interval MS]
 *                 [--poll-ms MS] [--accel tcg|kvm|auto] [--daemon PATH] [--sim PATH]
 *                 [--out CSV] [--keep-dir]
 *
 * Setup (untimed): a simulated DGX H100 (`gpuvirt-sim create --profile dgx-h100`), one gpuvirtd
 * in role agent on it (`gpuvirt-sim exec -- gpuvirtd --role agent --accel tcg`), GPUs 4-7 put
 * in MIG mode (POST /v1/gpus/N/mode), then N VMs (default 50) defined and started on the agent:
 * 1 vCPU, 128 MiB, no disk (no guest: SeaBIOS finds nothing to boot and waits), alternately a
 * time-sliced vGPU H100XM-10C on GPUs 0-3 and a MIG-backed vGPU H100XM-1-10C on GPUs 4-7, so
 * that every sample reads 8 GPUs, their vGPU and MIG instances and attributes each to its VM.
 * Checked: a sample lists the N VMs running, each with its one GPU of the right mode and the
 * values the simulator gives it.
 *
 * Then R rounds (default 2), each with one window per mode, the mode that goes first
 * alternating from round to round:
 *
 *   sampling  the agent restarted with --sample-interval MS (default 1000, the agent's default)
 *   idle      the agent restarted with --sample-interval 3600000 (the largest the agent takes:
 *             one sample at start, none in the window)
 *
 * A restart is SIGTERM (the VMs keep running), wait, start again; the new agent re-adopts the
 * N QEMUs. Once GET /v1/metrics lists the N VMs running, --settle seconds (default 3) pass, then
 * the window: S seconds (default 30) between two reads of /proc/PID/stat (utime + stime: every
 * thread the agent has or had) and of /proc/PID/task/TID/stat for each thread. During both
 * windows the benchmark asks GET /v1/metrics every --poll-ms (default 500) on the agent's UNIX
 * socket, the same way, so the answering cost is in both and cancels in the difference; in
 * the sampling window each new sample's "duration_us" (the sampler's own timing of one sample)
 * is kept. Checked per window: sampling, the sample's seq advanced by at least half the
 * window's worth of samples; idle, it did not move; every QEMU alive at the end.
 *
 * Per thread: the sampler's thread is found by its name when it has one containing "sampler";
 * it has none yet (every agent thread is "gpuvirtd" but libmicrohttpd's "MHD-listen"), so it is
 * taken by start order: gv_agent_new (src/agent/vm.c) starts the supervisor thread and then
 * the sampler, so the sampler is the third thread (TIDs ordered by their distance from the
 * main thread's modulo pid_max, as they wrap); the report says which way it was found.
 * Threads that came and went in the window (libmicrohttpd's thread per connection, answering
 * the polls) show as the process's CPU less its lasting threads'.
 *
 * Output: the agent's CPU in % of one core per mode (per window and over all), the
 * difference (the sampler's cost), CPU per sample, duration_us p50/p90/p99/max, per-thread
 * CPU. The simulated host, the state directory, the agent and every QEMU are removed on every
 * exit, SIGINT, SIGTERM and SIGHUP included (--keep-dir keeps the directory).
 *
 * Exit status: 0 measured, 1 a step or a check failed, 2 usage, 77 nothing to measure
 * (gpuvirtd, gpuvirt-sim or QEMU not there).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "stats.h"
#include "config.h"
#include "http/client.h"
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

#define PROG "bench-sampler"
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define VGPU_TYPE "H100XM-10C"   /* 8 per GPU: GPUs 0-3 hold up to 32 */
#define MIG_TYPE "H100XM-1-10C"  /* 7 GPU instances per GPU: GPUs 4-7 hold up to 28 */
#define MAX_VMS 56u              /* alternating, the MIG side (28) is the limit */
#define IDLE_INTERVAL_MS 3600000u /* the agent's largest --sample-interval */
#define READY_MS 60000
#define REQUEST_MS 60000
#define EXIT_WAIT_MS 10000

enum { MODE_SAMPLING, MODE_IDLE, N_MODES };
static const char *const mode_name[N_MODES] = { "sampling", "idle" };

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned vms, seconds, rounds, settle, interval_ms, poll_ms;
        const char *daemon, *sim, *accel, *out;
        bool keep_dir;
};

static const char usage_text[] =
        "Usage: " PROG " [--vms N] [--seconds S] [--rounds R] [--settle S]\n"
        "                     [--sample-interval MS] [--poll-ms MS] [--accel tcg|kvm|auto]\n"
        "                     [--daemon PATH] [--sim PATH] [--out CSV] [--keep-dir]\n"
        "\n"
        "The agent's CPU (% of one core) while its metrics sampler runs beside the same agent\n"
        "with the same VMs not sampling, in one run, on a simulated DGX H100 with N guest-less\n"
        "VMs holding vGPUs and MIG-backed vGPUs.\n"
        "\n"
        "  --vms N               VMs (default 50, at most 56), alternately vGPU and MIG-backed\n"
        "  --seconds S           each measured window (default 30)\n"
        "  --rounds R            windows per mode (default 2), the first mode alternating\n"
        "  --settle S            seconds between the agent's restart and a window (default 3)\n"
        "  --sample-interval MS  the sampling agent's interval (default 1000)\n"
        "  --poll-ms MS          GET /v1/metrics every MS in both windows (default 500)\n"
        "  --accel A             the agent's --accel (default tcg)\n"
        "  --daemon PATH         gpuvirtd to run (default: the built one; env "
        "GPUVIRT_BENCH_DAEMON)\n"
        "  --sim PATH            gpuvirt-sim to run (default: the built one)\n"
        "  --out CSV             one line per window: round,mode,seconds,cpu_pct,"
        "sampler_thread_pct,samples\n"
        "  --keep-dir            keep the simulated host, the state directory and the logs\n";

static int parse_uint(const char *opt, const char *arg, unsigned lo, unsigned hi, unsigned *ret)
{
        return bench_parse_uint(PROG, opt, arg, lo, hi, ret);
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "vms", required_argument, NULL, 'v' },
                { "seconds", required_argument, NULL, 's' },
                { "rounds", required_argument, NULL, 'r' },
                { "settle", required_argument, NULL, 'S' },
                { "sample-interval", required_argument, NULL, 'i' },
                { "poll-ms", required_argument, NULL, 'p' },
                { "accel", required_argument, NULL, 'a' },
                { "daemon", required_argument, NULL, 'D' },
                { "sim", required_argument, NULL, 'm' },
                { "out", required_argument, NULL, 'o' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r = 0;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'v': r = parse_uint("--vms", optarg, 1, MAX_VMS, &o->vms); break;
                case 's': r = parse_uint("--seconds", optarg, 1, 3600, &o->seconds); break;
                case 'r': r = parse_uint("--rounds", optarg, 1, 100, &o->rounds); break;
                case 'S': r = parse_uint("--settle", optarg, 0, 600, &o->settle); break;
                case 'i':
                        /* The agent's own range (docs/agent.md "Metrics"), less the idle
                         * side's value: a sampling window must sample. */
                        r = parse_uint("--sample-interval", optarg, 100, 60000,
                                       &o->interval_ms);
                        break;
                case 'p': r = parse_uint("--poll-ms", optarg, 50, 60000, &o->poll_ms); break;
                case 'a':
                        if (strcmp(optarg, "tcg") != 0 && strcmp(optarg, "kvm") != 0 &&
                            strcmp(optarg, "auto") != 0)
                                return usage_error("--accel: '%s' is not tcg, kvm or auto.",
                                                   optarg);
                        o->accel = optarg;
                        break;
                case 'D': o->daemon = optarg; break;
                case 'm': o->sim = optarg; break;
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
        if (o->seconds * 1000u < 2 * o->interval_ms)
                return usage_error("--seconds %u is shorter than two samples at "
                                   "--sample-interval %u ms; give a longer window.", o->seconds,
                                   o->interval_ms);
        return 0;
}

/* ---------------------------------------------------------------- per-thread CPU */

struct thread_cpu {
        pid_t tid;
        uint32_t order;  /* (tid - pid) mod pid_max: the order the threads were started in */
        char comm[32];
        uint64_t ticks; /* utime + stime */
};

/* utime + stime and the name from a /proc/.../stat line ("PID (COMM) S ..."; the name may
 * hold spaces and parentheses, the last ')' ends it). */
static int parse_stat(const char *path, char *comm, size_t comm_size, uint64_t *ret_ticks)
{
        _cleanup_free_ char *s = NULL;
        int r = gv_read_file(path, 4096, &s, NULL);
        if (r < 0)
                return r;
        char *open = strchr(s, '('), *close = strrchr(s, ')');
        if (!open || !close || close < open)
                return -EBADMSG;
        if (comm)
                (void)snprintf(comm, comm_size, "%.*s", (int)(close - open - 1), open + 1);
        /* After ')': field 3 (state) is token 0, utime (14) token 11, stime (15) token 12. */
        char *save = NULL, *tok = strtok_r(close + 1, " ", &save);
        uint64_t ut = 0, st = 0;
        for (int i = 0; tok && i <= 12; i++, tok = strtok_r(NULL, " ", &save)) {
                if (i == 11 && gv_parse_u64(tok, 10, &ut) < 0)
                        return -EBADMSG;
                if (i == 12) {
                        if (gv_parse_u64(tok, 10, &st) < 0)
                                return -EBADMSG;
                        *ret_ticks = ut + st;
                        return 0;
                }
        }
        return -EBADMSG;
}

struct snapshot {
        uint64_t ns;       /* CLOCK_MONOTONIC */
        uint64_t ticks;    /* the process: every thread, exited ones included */
        struct thread_cpu *t;
        size_t n;
};

/* By start order: TIDs are handed out upwards and wrap at pid_max (32768 by default, soon
 * reached on a busy machine), so the distance from the main thread's TID modulo pid_max is the
 * order the threads were made in, where the raw TID is not. */
static int cmp_order(const void *a, const void *b)
{
        const struct thread_cpu *x = a, *y = b;
        return (x->order > y->order) - (x->order < y->order);
}

static uint32_t pid_max(void)
{
        _cleanup_free_ char *s = NULL;
        uint32_t v;
        if (gv_read_line("/proc/sys/kernel/pid_max", &s) < 0 || gv_parse_u32(s, 10, &v) < 0 ||
            v == 0)
                return 4194304; /* the kernel's largest */
        return v;
}

static int snapshot_take(pid_t pid, struct snapshot *ret)
{
        char path[64];
        struct snapshot s = {};
        (void)snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
        DIR *d = opendir(path);
        if (!d)
                return fail("Cannot read '%s': %s.", path, strerror(errno));
        struct dirent *de;
        size_t cap = 0;
        uint32_t pmax = pid_max();
        while ((de = readdir(d))) {
                uint32_t tid;
                if (gv_parse_u32(de->d_name, 10, &tid) < 0)
                        continue;
                char p[96];
                struct thread_cpu t = { .tid = (pid_t)tid,
                                        .order = (uint32_t)(((int64_t)tid - pid + pmax) %
                                                            pmax) };
                (void)snprintf(p, sizeof(p), "/proc/%d/task/%u/stat", (int)pid, tid);
                if (parse_stat(p, t.comm, sizeof(t.comm), &t.ticks) < 0)
                        continue; /* it exited meanwhile */
                if (s.n == cap) {
                        cap = cap ? 2 * cap : 16;
                        s.t = xreallocarray(s.t, cap, sizeof(*s.t));
                }
                s.t[s.n++] = t;
        }
        (void)closedir(d);
        (void)snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int r = parse_stat(path, NULL, 0, &s.ticks);
        s.ns = bench_now_ns();
        if (r < 0) {
                free(s.t);
                return fail("Cannot read '%s': %s.", path, strerror(-r));
        }
        qsort(s.t, s.n, sizeof(*s.t), cmp_order);
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- the run's context */

#define MAX_THREADS 16

struct window {
        unsigned round;
        int mode;
        double seconds;
        uint64_t ticks;            /* the agent's CPU in the window */
        uint64_t sampler_ticks;    /* the sampler thread's, when found */
        bool sampler_found;
        unsigned samples;          /* the sample's seq moved by this much */
        /* lasting threads in start order: rank -> ticks; names of the sampling window's */
        size_t n_threads;
        uint64_t thread_ticks[MAX_THREADS];
        char thread_comm[MAX_THREADS][32];
        uint64_t exited_ticks;     /* process less its lasting threads */
};

struct ctx {
        struct opts o;
        char *dir, *root, *state, *log, *endpoint;
        struct gv_proc agent;
        unsigned agent_interval;
        unsigned op_seq;
        long hz;
        char *qemu_version, *accel_reason;
        pid_t *qemu;               /* per VM */
        size_t n_vms;              /* defined */
        const char *sampler_how;   /* "by name 'X'" or "by creation order" */
        uint64_t *durations;       /* ns (duration_us * 1000), sampling windows */
        size_t n_durations, cap_durations;
        struct window *w;
        size_t n_w;
        FILE *csv;
};

/* ---------------------------------------------------------------- cleanup on a signal */

/* What the handler needs, set up before anything starts: kill, fork, execv, waitpid and _exit
 * are async-signal-safe, malloc is not. */
static volatile sig_atomic_t sig_agent_pid;
static volatile sig_atomic_t sig_qemu_pid[MAX_VMS];
static char *sig_rm_argv[4];
static volatile sig_atomic_t sig_rm_armed;

static void on_signal(int sig)
{
        static const char msg[] = PROG ": interrupted; killing the agent and its VMs and "
                                  "removing the directory.\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        if (sig_agent_pid > 0)
                (void)kill((pid_t)sig_agent_pid, SIGKILL);
        for (unsigned i = 0; i < MAX_VMS; i++)
                if (sig_qemu_pid[i] > 0)
                        (void)kill((pid_t)sig_qemu_pid[i], SIGKILL);
        /* This process is the subreaper of every QEMU: reap what is ours, briefly. */
        for (int i = 0; i < 100; i++) {
                while (waitpid(-1, NULL, WNOHANG) > 0)
                        ;
                struct timespec ts = { .tv_nsec = 10 * 1000000L };
                (void)nanosleep(&ts, NULL);
        }
        if (sig_rm_armed) {
                pid_t pid = fork();
                if (pid == 0) {
                        sigset_t none;
                        sigemptyset(&none);
                        sigprocmask(SIG_SETMASK, &none, NULL);
                        execv(sig_rm_argv[0], sig_rm_argv);
                        _exit(127);
                }
                if (pid > 0)
                        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                                ;
        }
        _exit(128 + sig);
}

static void install_signals(void)
{
        struct sigaction sa = { .sa_handler = on_signal };
        sigfillset(&sa.sa_mask);
        (void)sigaction(SIGINT, &sa, NULL);
        (void)sigaction(SIGTERM, &sa, NULL);
        (void)sigaction(SIGHUP, &sa, NULL);
        (void)signal(SIGPIPE, SIG_IGN);
}

/* ---------------------------------------------------------------- HTTP */

static int call(struct ctx *c, const char *method, const char *path, const char *body,
                bool opid, int want, json_t **ret_json)
{
        char hdr[64];
        (void)snprintf(hdr, sizeof(hdr), "Operation-Id: bench-sampler-%ld-%u", (long)getpid(),
                       ++c->op_seq);
        return bench_call(PROG, c->endpoint, method, path, body, opid ? hdr : NULL, want,
                          REQUEST_MS, ret_json);
}

/* GET /v1/metrics, quietly: 0 and the sample, or <0 (not answering yet). */
static int metrics_get(struct ctx *c, json_t **ret)
{
        struct gv_http_client_req rq = { .endpoint = c->endpoint, .method = "GET",
                                         .path = "/v1/metrics", .timeout_ms = REQUEST_MS };
        struct gv_http_client_reply rp = {};
        struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rp, &e);
        gv_error_free(e);
        if (r < 0)
                return r;
        json_t *j = NULL;
        if (rp.status == 200 && rp.body)
                j = json_loadb(rp.body, rp.body_len, 0, NULL);
        gv_http_client_reply_done(&rp);
        if (!j)
                return -EAGAIN;
        *ret = j;
        return 0;
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

static char *vm_name(unsigned i)
{
        return xasprintf("s%02u", i);
}

/* ---------------------------------------------------------------- the agent */

static int agent_start(struct ctx *c, unsigned interval_ms)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_close_ int log = open(c->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (log < 0)
                return fail("Cannot open '%s': %s.", c->log, strerror(errno));
        char interval[16];
        (void)snprintf(interval, sizeof(interval), "%u", interval_ms);
        char *argv[] = { (char *)c->o.sim, "exec", "--root", c->root, "--", (char *)c->o.daemon,
                         "--role", "agent", "--state-dir", c->state, "--accel",
                         (char *)c->o.accel, "--stop-timeout", "2", "--sample-interval",
                         interval, "--qemu-user", "root", NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log, .stderr_fd = log };
        int r = gv_proc_spawn(argv, &so, &c->agent, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));
        sig_agent_pid = c->agent.pid;
        c->agent_interval = interval_ms;
        return 0;
}

static int agent_stop(struct ctx *c)
{
        if (c->agent.pidfd < 0)
                return 0;
        int status = -1, r = 0;
        (void)gv_proc_signal(&c->agent, SIGTERM, NULL);
        if (gv_proc_wait(&c->agent, EXIT_WAIT_MS, &status, NULL) == 0) {
                (void)gv_proc_signal(&c->agent, SIGKILL, NULL);
                (void)gv_proc_wait(&c->agent, EXIT_WAIT_MS, NULL, NULL);
                r = fail("gpuvirtd did not stop within %d ms of SIGTERM; killed it.",
                         EXIT_WAIT_MS);
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                r = fail("gpuvirtd did not exit 0 on SIGTERM (wait status %d).", status);
        }
        gv_proc_close(&c->agent);
        sig_agent_pid = 0;
        return r;
}

/* Wait until a sample lists `want_vms` VMs running (all of them adopted after a restart). */
static int agent_ready(struct ctx *c, size_t want_vms, json_t **ret)
{
        uint64_t deadline = bench_now_ns() + (uint64_t)READY_MS * 1000000u;
        for (;;) {
                json_t *m = NULL;
                if (metrics_get(c, &m) >= 0) {
                        size_t running = 0, i;
                        json_t *v;
                        json_array_foreach(json_object_get(m, "vms"), i, v)
                                running += jstr_is(v, "phase", "running");
                        if (running == want_vms &&
                            json_array_size(json_object_get(m, "vms")) == want_vms) {
                                if (ret)
                                        *ret = m;
                                else
                                        json_decref(m);
                                return 0;
                        }
                        json_decref(m);
                }
                if (!gv_proc_alive(&c->agent)) {
                        bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                        return fail("'%s' exited before it answered GET /v1/metrics with %zu "
                                    "VMs running.", c->o.daemon, want_vms);
                }
                if (bench_now_ns() > deadline) {
                        bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                        return fail("The agent did not answer GET /v1/metrics with %zu VMs "
                                    "running within %d ms.", want_vms, READY_MS);
                }
                (void)nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
        }
}

/* ---------------------------------------------------------------- setup */

static int host_setup(struct ctx *c)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *out = NULL;
        char *create[] = { (char *)c->o.sim, "create", "--profile", "dgx-h100", "--root", c->root,
                           NULL };
        int r = gv_proc_run(create, 120000, 1 << 16, &out, NULL, &e);
        if (r < 0)
                return fail("Cannot create the simulated host: %s", gv_error_msg(e, r));
        if ((r = agent_start(c, c->o.interval_ms)) < 0 || (r = agent_ready(c, 0, NULL)) < 0)
                return r;

        _cleanup_json_ json_t *host = NULL;
        if ((r = call(c, "GET", "/v1/host", NULL, false, 200, &host)) < 0)
                return r;
        c->accel_reason = xstrdup(jstr(json_object_get(host, "qemu"), "reason") ?: "?");
        json_t *gpus = json_object_get(host, "gpus");
        if (json_array_size(gpus) != 8)
                return fail("The simulated dgx-h100 host has %zu GPUs, not 8.",
                            json_array_size(gpus));
        for (unsigned g = 0; g < 8; g++) {
                const char *want = g < 4 ? "vgpu" : "mig";
                if (jstr_is(json_array_get(gpus, g), "mode", want))
                        continue;
                _cleanup_free_ char *path = xasprintf("/v1/gpus/%u/mode", g);
                _cleanup_free_ char *body = xasprintf("{\"mode\": \"%s\"}", want);
                _cleanup_json_ json_t *ans = NULL;
                if ((r = call(c, "POST", path, body, true, 200, &ans)) < 0)
                        return r;
                if (!jstr_is(ans, "mode", want))
                        return fail("POST %s did not answer mode '%s'.", path, want);
        }
        return 0;
}

static int vms_create(struct ctx *c)
{
        c->qemu = xcalloc(c->o.vms, sizeof(pid_t));
        for (unsigned i = 0; i < c->o.vms; i++) {
                _cleanup_free_ char *name = vm_name(i);
                bool mig = i % 2;
                unsigned gpu = (mig ? 4 : 0) + (i / 2) % 4;
                _cleanup_free_ char *def = xasprintf(
                        "{\"name\": \"%s\", \"vcpus\": 1, \"memory_mib\": 128, \"gpus\": "
                        "[{\"mode\": \"%s\", \"type\": \"%s\", \"gpu\": \"%u\"}], \"disks\": []}",
                        name, mig ? "mig-vgpu" : "vgpu", mig ? MIG_TYPE : VGPU_TYPE, gpu);
                _cleanup_free_ char *start = xasprintf("/v1/vms/%s/start", name);
                _cleanup_free_ char *get = xasprintf("/v1/vms/%s", name);
                _cleanup_json_ json_t *vm = NULL;
                int r = call(c, "POST", "/v1/vms", def, true, 201, NULL);
                if (r < 0)
                        return r;
                c->n_vms++;
                if ((r = call(c, "POST", start, NULL, true, 200, NULL)) < 0 ||
                    (r = call(c, "GET", get, NULL, false, 200, &vm)) < 0)
                        return r;
                json_t *pid = json_object_get(vm, "pid");
                if (!jstr_is(vm, "phase", "running") || !json_is_integer(pid) ||
                    json_integer_value(pid) <= 0)
                        return fail("VM '%s' is not running with a pid after its start.", name);
                c->qemu[i] = (pid_t)json_integer_value(pid);
                sig_qemu_pid[i] = c->qemu[i];
        }
        return 0;
}

/* Every VM in the sample: running, with its one GPU of the right mode and values from the
 * simulator (the attribution path ran): a vGPU's utilization, a GPU instance's memory. */
static int check_sample(struct ctx *c, const json_t *m)
{
        size_t i;
        json_t *v;
        unsigned ok = 0;
        json_array_foreach(json_object_get(m, "vms"), i, v) {
                json_t *g = json_array_get(json_object_get(v, "gpus"), 0);
                const char *name = jstr(v, "vm");
                uint32_t idx;
                if (!name || name[0] != 's' || gv_parse_u32(name + 1, 10, &idx) < 0 ||
                    idx >= c->o.vms || json_array_size(json_object_get(v, "gpus")) != 1)
                        continue;
                bool mig = idx % 2;
                if (!jstr_is(v, "phase", "running"))
                        continue;
                if (mig ? jstr_is(g, "mode", "mig-vgpu") &&
                                  json_is_integer(json_object_get(g, "memory_used_mib"))
                        : jstr_is(g, "mode", "vgpu") &&
                                  json_is_integer(json_object_get(g, "util_pct")))
                        ok++;
        }
        if (ok != c->o.vms) {
                _cleanup_free_ char *d = json_dumps(json_object_get(m, "vms"), JSON_COMPACT);
                return fail("Only %u of %u VMs have their GPU and its values in the sample: "
                            "%.2000s", ok, c->o.vms, d ? d : "?");
        }
        return 0;
}

static int setup_checked(struct ctx *c)
{
        int r = host_setup(c);
        if (r >= 0)
                r = vms_create(c);
        if (r < 0)
                return r;
        /* The sample taken after the last start has every VM with its GPU; wait for it. */
        uint64_t deadline = bench_now_ns() + 20ull * 1000000000u;
        for (;;) {
                _cleanup_json_ json_t *m = NULL;
                if ((r = agent_ready(c, c->o.vms, &m)) < 0)
                        return r;
                if (check_sample(c, m) >= 0)
                        return 0;
                if (bench_now_ns() > deadline)
                        return check_sample(c, m);
                (void)nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000000 }, NULL);
        }
}

static int qemus_alive(struct ctx *c)
{
        for (unsigned i = 0; i < c->o.vms; i++) {
                char p[64], st[64];
                uint64_t t;
                (void)snprintf(p, sizeof(p), "/proc/%d/stat", (int)c->qemu[i]);
                if (parse_stat(p, st, sizeof(st), &t) < 0) {
                        bench_print_log_tail("gpuvirtd's log", c->log, 3000);
                        return fail("The QEMU of VM 's%02u' (pid %d) is gone.", i,
                                    (int)c->qemu[i]);
                }
        }
        return 0;
}

/* ---------------------------------------------------------------- a window */

static void duration_add(struct ctx *c, uint64_t us)
{
        if (c->n_durations == c->cap_durations) {
                c->cap_durations = c->cap_durations ? 2 * c->cap_durations : 256;
                c->durations = xreallocarray(c->durations, c->cap_durations,
                                             sizeof(uint64_t));
        }
        c->durations[c->n_durations++] = us * 1000u;
}

/* The sampler thread in a snapshot (in start order): a thread named like it, else the third
 * (the second thread gv_agent_new starts, after the main thread and the supervisor). -1 when
 * neither. */
static ssize_t sampler_index(struct ctx *c, const struct snapshot *s)
{
        for (size_t i = 0; i < s->n; i++)
                if (strstr(s->t[i].comm, "sampler")) {
                        c->sampler_how = "by its name";
                        return (ssize_t)i;
                }
        if (s->n >= 3 && strcmp(s->t[2].comm, "gpuvirtd") == 0) {
                c->sampler_how = "by start order (it is unnamed: the third thread)";
                return 2;
        }
        return -1;
}

static int window(struct ctx *c, unsigned round, int mode)
{
        unsigned interval = mode == MODE_SAMPLING ? c->o.interval_ms : IDLE_INTERVAL_MS;
        int r = agent_stop(c);
        if (r >= 0)
                r = agent_start(c, interval);
        if (r >= 0)
                r = agent_ready(c, c->o.vms, NULL);
        if (r < 0)
                return r;
        (void)nanosleep(&(struct timespec){ .tv_sec = c->o.settle }, NULL);

        struct snapshot a = {}, b = {};
        int64_t seq0 = -1, seq_last = -1;
        if ((r = snapshot_take(c->agent.pid, &a)) < 0)
                return r;
        uint64_t end = a.ns + (uint64_t)c->o.seconds * 1000000000u;
        for (;;) {
                json_t *m = NULL;
                if (metrics_get(c, &m) < 0) {
                        free(a.t);
                        return fail("GET /v1/metrics failed during the %s window.",
                                    mode_name[mode]);
                }
                json_t *seq = json_object_get(m, "seq"), *dur = json_object_get(m, "duration_us");
                if (!json_is_integer(seq) || !json_is_integer(dur) ||
                    json_integer_value(dur) < 0) {
                        json_decref(m);
                        free(a.t);
                        return fail("The sample has no integer \"seq\" and \"duration_us\".");
                }
                int64_t s = json_integer_value(seq);
                if (seq0 < 0)
                        seq0 = s;
                if (s != seq_last && mode == MODE_SAMPLING && seq_last >= 0)
                        duration_add(c, (uint64_t)json_integer_value(dur));
                seq_last = s;
                json_decref(m);
                uint64_t now = bench_now_ns();
                if (now >= end)
                        break;
                uint64_t wait = MIN((uint64_t)c->o.poll_ms * 1000000u, end - now);
                (void)nanosleep(&(struct timespec){ .tv_sec = (time_t)(wait / 1000000000u),
                                                    .tv_nsec = (long)(wait % 1000000000u) },
                                NULL);
        }
        r = snapshot_take(c->agent.pid, &b);
        if (r < 0) {
                free(a.t);
                return r;
        }

        struct window w = { .round = round, .mode = mode,
                            .seconds = (double)(b.ns - a.ns) / 1e9,
                            .ticks = b.ticks - a.ticks,
                            .samples = (unsigned)(seq_last - seq0) };
        /* Lasting threads, in start order. */
        uint64_t lasting = 0;
        ssize_t si = sampler_index(c, &b);
        for (size_t i = 0; i < b.n; i++) {
                struct thread_cpu *t0 = bsearch(&b.t[i], a.t, a.n, sizeof(*a.t), cmp_order);
                if (!t0)
                        continue;
                uint64_t d = b.t[i].ticks - t0->ticks;
                lasting += d;
                if ((ssize_t)i == si) {
                        w.sampler_found = true;
                        w.sampler_ticks = d;
                }
                if (w.n_threads < MAX_THREADS) {
                        w.thread_ticks[w.n_threads] = d;
                        (void)snprintf(w.thread_comm[w.n_threads], sizeof(w.thread_comm[0]),
                                       "%s%s", b.t[i].comm,
                                       (ssize_t)i == si ? " (sampler)"
                                       : b.t[i].tid == c->agent.pid ? " (main)" : "");
                        w.n_threads++;
                }
        }
        w.exited_ticks = w.ticks > lasting ? w.ticks - lasting : 0;
        free(a.t);
        free(b.t);

        /* The checks: the sampler sampled (or did not), the VMs lived. */
        unsigned expect = (unsigned)(w.seconds * 1000.0 / c->o.interval_ms);
        if (mode == MODE_SAMPLING && w.samples < (expect + 1) / 2)
                return fail("The sampling agent took %u samples in %.1f s at %u ms; at least %u "
                            "were expected.", w.samples, w.seconds, c->o.interval_ms,
                            (expect + 1) / 2);
        if (mode == MODE_IDLE && w.samples != 0)
                return fail("The idle agent (--sample-interval %u) took %u samples in its "
                            "window.", IDLE_INTERVAL_MS, w.samples);
        if ((r = qemus_alive(c)) < 0)
                return r;
        c->w = xreallocarray(c->w, c->n_w + 1, sizeof(*c->w));
        c->w[c->n_w++] = w;
        double pct = (double)w.ticks / (double)c->hz / w.seconds * 100.0;
        fprintf(stderr, PROG ": round %u %-8s %.1f s: agent %.2f %% of a core, %u samples\n",
                round, mode_name[mode], w.seconds, pct, w.samples);
        if (c->csv) {
                fprintf(c->csv, "%u,%s,%.3f,%.4f,", round, mode_name[mode], w.seconds, pct);
                if (w.sampler_found)
                        fprintf(c->csv, "%.4f", (double)w.sampler_ticks / (double)c->hz /
                                                        w.seconds * 100.0);
                fprintf(c->csv, ",%u\n", w.samples);
        }
        return 0;
}

/* ---------------------------------------------------------------- report */

static double pct_of(struct ctx *c, uint64_t ticks, double seconds)
{
        return seconds > 0 ? (double)ticks / (double)c->hz / seconds * 100.0 : 0;
}

static void report(struct ctx *c)
{
        uint64_t ticks[N_MODES] = {}, sticks[N_MODES] = {}, exited[N_MODES] = {};
        double secs[N_MODES] = {}, lo[N_MODES], hi[N_MODES];
        unsigned samples = 0;
        bool sfound = true;
        for (int m = 0; m < N_MODES; m++)
                lo[m] = 1e9, hi[m] = 0;
        for (size_t i = 0; i < c->n_w; i++) {
                const struct window *w = &c->w[i];
                double p = pct_of(c, w->ticks, w->seconds);
                ticks[w->mode] += w->ticks;
                sticks[w->mode] += w->sampler_ticks;
                exited[w->mode] += w->exited_ticks;
                secs[w->mode] += w->seconds;
                lo[w->mode] = MIN(lo[w->mode], p);
                hi[w->mode] = MAX(hi[w->mode], p);
                sfound &= w->sampler_found;
                if (w->mode == MODE_SAMPLING)
                        samples += w->samples;
        }
        double pct[N_MODES];
        for (int m = 0; m < N_MODES; m++)
                pct[m] = pct_of(c, ticks[m], secs[m]);

        printf("gpuvirt metrics sampler cost benchmark\n");
        bench_print_machine();
        printf("build:   %s, sanitizers %s\n", BENCH_BUILDTYPE, BENCH_SANITIZE);
        printf("qemu:    %s; accel %s\n", c->qemu_version ? c->qemu_version : "?",
               c->accel_reason ? c->accel_reason : "?");
        printf("agent:   '%s' --role agent on a simulated dgx-h100 (8 GPUs: 0-3 vgpu, 4-7 mig)\n",
               c->o.daemon);
        printf("VMs:     %u running, 1 vCPU, 128 MiB, no disk; alternately a vGPU " VGPU_TYPE
               " (GPUs 0-3) and a MIG-backed vGPU " MIG_TYPE " (GPUs 4-7)\n", c->o.vms);
        printf("method:  %u rounds of one %u s window per mode, the first mode alternating; the "
               "agent restarted\n         before each (sampling: --sample-interval %u; idle: "
               "--sample-interval %u, no sample\n         in the window), %u s settle; CPU = "
               "utime+stime of /proc/PID/stat (CLK_TCK %ld);\n         GET /v1/metrics every "
               "%u ms in both windows\n", c->o.rounds, c->o.seconds, c->o.interval_ms,
               IDLE_INTERVAL_MS, c->o.settle, c->hz, c->o.poll_ms);

        printf("\n  agent CPU, %% of one core          all windows    min    max\n");
        for (int m = 0; m < N_MODES; m++)
                printf("  %-34s %8.3f %8.3f %6.3f\n",
                       m == MODE_SAMPLING ? "sampling (every interval)" : "idle (no sampling)",
                       pct[m], lo[m], hi[m]);
        double diff = pct[MODE_SAMPLING] - pct[MODE_IDLE];
        printf("  %-34s %+8.3f\n", "difference: the sampler's cost", diff);
        if (samples > 0) {
                double per_sample_ms = (double)(ticks[MODE_SAMPLING] - MIN(ticks[MODE_SAMPLING],
                                               (uint64_t)((double)ticks[MODE_IDLE] *
                                                          secs[MODE_SAMPLING] /
                                                          secs[MODE_IDLE]))) /
                                       (double)c->hz * 1000.0 / samples;
                printf("  CPU per sample (difference / %u samples): %.3f ms\n", samples,
                       per_sample_ms);
        }
        if (c->n_durations > 0) {
                struct bench_stats s = bench_stats_of(c->durations, c->n_durations);
                printf("\n  one sample's duration_us (%zu samples)   p50 %.0f us   p90 %.0f us   "
                       "p99 %.0f us   max %.0f us   mean %.0f us\n", c->n_durations,
                       s.p50 * 1000, s.p90 * 1000, s.p99 * 1000, s.max * 1000, s.mean * 1000);
        }
        if (sfound)
                printf("\n  sampler thread (found %s): sampling %.3f %%, idle %.3f %% of a "
                       "core\n", c->sampler_how ? c->sampler_how : "?",
                       pct_of(c, sticks[MODE_SAMPLING], secs[MODE_SAMPLING]),
                       pct_of(c, sticks[MODE_IDLE], secs[MODE_IDLE]));
        else
                printf("\n  sampler thread: not found (no thread named like it, and the third "
                       "thread is not 'gpuvirtd')\n");

        /* Per thread, in start order (the agent starts the same threads in the same order). */
        printf("\n  per thread, by start order           sampling %%   idle %%\n");
        size_t nt = SIZE_MAX;
        for (size_t i = 0; i < c->n_w; i++)
                nt = MIN(nt, c->w[i].n_threads);
        for (size_t k = 0; nt != SIZE_MAX && k < nt; k++) {
                uint64_t t[N_MODES] = {};
                const char *name = "?";
                for (size_t i = 0; i < c->n_w; i++) {
                        t[c->w[i].mode] += c->w[i].thread_ticks[k];
                        if (c->w[i].mode == MODE_SAMPLING)
                                name = c->w[i].thread_comm[k];
                }
                printf("  #%zu %-32s %10.3f %8.3f\n", k + 1, name,
                       pct_of(c, t[MODE_SAMPLING], secs[MODE_SAMPLING]),
                       pct_of(c, t[MODE_IDLE], secs[MODE_IDLE]));
        }
        printf("  %-35s %10.3f %8.3f\n", "threads that exited (connections)",
               pct_of(c, exited[MODE_SAMPLING], secs[MODE_SAMPLING]),
               pct_of(c, exited[MODE_IDLE], secs[MODE_IDLE]));
        printf("\n  checks: %u VMs running with their vGPU or GPU instance attributed in the "
               "sample; every sampling window advanced seq (%u samples in all), no idle window "
               "did; every QEMU alive after each window\n", c->o.vms, samples);
}

/* ---------------------------------------------------------------- teardown */

static void cleanup(struct ctx *c)
{
        /* The agent kills its VMs' QEMUs (it releases their hardware); what is left is killed
         * by pid, checked against the VM's name so that a recycled pid is spared. */
        if (c->agent.pidfd >= 0 && gv_proc_alive(&c->agent))
                for (size_t i = 0; i < c->n_vms; i++) {
                        _cleanup_free_ char *name = vm_name((unsigned)i);
                        _cleanup_free_ char *p = xasprintf("/v1/vms/%s/kill", name);
                        (void)call(c, "POST", p, NULL, true, 200, NULL);
                }
        (void)agent_stop(c);
        for (size_t i = 0; c->qemu && i < c->n_vms; i++) {
                if (c->qemu[i] <= 0)
                        continue;
                _cleanup_free_ char *name = vm_name((unsigned)i);
                _cleanup_free_ char *marker = xasprintf("guest=%s,debug-threads=on", name);
                struct gv_proc q = GV_PROC_NULL;
                if (gv_proc_adopt(c->qemu[i], marker, &q, NULL) >= 0) {
                        (void)gv_proc_signal(&q, SIGKILL, NULL);
                        (void)gv_proc_wait(&q, EXIT_WAIT_MS, NULL, NULL);
                        gv_proc_close(&q);
                }
                sig_qemu_pid[i] = 0;
        }
        while (waitpid(-1, NULL, WNOHANG) > 0)
                ;
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
        sig_rm_armed = 0;
        free(c->dir);
        free(c->root);
        free(c->state);
        free(c->log);
        free(c->endpoint);
        free(c->qemu_version);
        free(c->accel_reason);
        free(c->qemu);
        free(c->durations);
        free(c->w);
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
                .o = { .vms = 50, .seconds = 30, .rounds = 2, .settle = 3, .interval_ms = 1000,
                       .poll_ms = 500, .accel = "tcg" },
                .agent = GV_PROC_NULL,
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
        c.hz = sysconf(_SC_CLK_TCK);
        if (c.hz <= 0)
                c.hz = 100;

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-sampler-XXXXXX",
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
        c.endpoint = xasprintf("unix:%s/agent.sock", c.state);
        /* The handler's rm, prepared now (no malloc in a handler). */
        sig_rm_argv[0] = "/bin/rm";
        sig_rm_argv[1] = "-rf";
        sig_rm_argv[2] = c.dir;
        sig_rm_armed = !c.o.keep_dir;
        install_signals();
        /* QEMUs outlive the agent that started them (their own session); after a restart they
         * are reparented here rather than to an init that may never reap them. */
        (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        if (c.o.out) {
                c.csv = fopen(c.o.out, "we");
                if (!c.csv) {
                        fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out,
                                strerror(errno));
                        ctx_done(&c);
                        return 1;
                }
                fputs("round,mode,seconds,cpu_pct,sampler_thread_pct,samples\n", c.csv);
        }
        qemu_version(&c);

        r = setup_checked(&c);
        for (unsigned i = 1; r >= 0 && i <= c.o.rounds; i++) {
                int first = i % 2 ? MODE_SAMPLING : MODE_IDLE;
                r = window(&c, i, first);
                if (r >= 0)
                        r = window(&c, i, 1 - first);
        }
        cleanup(&c);
        if (r >= 0 && c.csv && fflush(c.csv) != 0) {
                fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out, strerror(errno));
                r = -EIO;
        }
        if (r >= 0)
                report(&c);
        ctx_done(&c);
        return r >= 0 ? 0 : 1;
}
