/* SPDX-License-Identifier: MIT */
/*
 * bench-vm-start — VM start latency through the agent (API call -> QMP `running`) beside the
 * same qemu-system-x86_64 command started by hand, in the same run (issue 4, BENCHMARKS.md).
 *
 *   bench-vm-start [--runs N] [--agent PATH] [--out CSV] [--target-ms MS] [--enforce-target]
 *                  [--keep-dir]
 *
 * It starts gpuvirtd on a fresh state directory and a UNIX socket under $TMPDIR, defines one
 * VM without GPUs or disks ({"name": "bench-vm", "vcpus": 1, "memory_mib": 128}), and runs one
 * untimed warm-up round and then N rounds (default 50). Each round times one start per side,
 * the side that goes first alternating from round to round so both share the machine's noise:
 *
 *   agent    from sending `POST /v1/vms/bench-vm/start` to receiving its 200 (the agent starts
 *            QEMU with -S, connects QMP, sends `cont` and waits for `running`). Then, untimed:
 *            `GET /v1/vms/bench-vm` must say "phase": "running" and name as "pid" the QEMU
 *            of the argv's -pidfile, alive and with the VM's -name marker; `POST .../kill`
 *            must answer 200 and that QEMU must be gone within 10 s.
 *   by hand  the argv the agent reports in `GET /v1/vms/bench-vm` ("argv"), with the agent's
 *            run directory (QMP socket, console socket, pidfile) replaced by one of ours: from
 *            before gv_proc_spawn() (fork+exec) to query-status answering "running", through
 *            gv_qmp_connect() (greeting, capabilities), `cont` and query-status. Then, untimed:
 *            SIGKILL and reap.
 *
 * Context rows, not part of the verdict: by hand, fork -> QMP ready (what QEMU's own start
 * costs before `cont`); per round a third start, by hand with a connect loop that retries every
 * 0.1 ms instead of gv_qmp_connect()'s backoff (what that backoff costs both sides); the agent's
 * GET of the VM's status after each start (one API round trip:
 * connect, HTTP, JSON); and per round a durable write of a 1 KiB file in the state directory's
 * file system (write, fsync, rename, fsync of the directory), the way the agent writes its
 * operation journal and state files, several times per start.
 *
 * Output: p50/p90/p99/min/max/mean per side (nearest rank: with 50 runs p99 is the maximum),
 * the overhead (agent p50 - by-hand p50) and the verdict against the target (30 ms). Exit
 * status: 0 measured (whatever the verdict), 1 a check failed (a start that did not reach
 * running, a QEMU that outlived its kill, an agent error), 2 usage, 3 target missed with
 * --enforce-target, 77 nothing to measure (gpuvirtd or QEMU not installed or built).
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
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
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/proc.h"
#include "vmm/qmp.h"

#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif
#ifndef BENCH_SANITIZE
#define BENCH_SANITIZE "unknown"
#endif
#ifndef BENCH_GPUVIRTD
#define BENCH_GPUVIRTD GPUVIRT_BUILD_ROOT "/src/daemon/gpuvirtd"
#endif

#define PROG "bench-vm-start"
/* common.h, with this program's name */
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define VM_NAME "bench-vm"
#define DEFAULT_RUNS 50u
#define DEFAULT_TARGET_MS 30.0

/* Generous limits: the smoke test runs under ASan+UBSan, possibly on TCG, on 2 CPUs. */
#define AGENT_READY_MS 15000
#define REQUEST_MS 60000
#define QMP_MS 30000
#define EXIT_WAIT_MS 10000

enum { SIDE_AGENT, SIDE_HAND, N_SIDES };
static const char *const side_name[N_SIDES] = { "agent", "by hand" };

/* What is recorded: the two starts, and context for reading them. */
enum {
        M_AGENT = SIDE_AGENT, /* POST start -> 200 */
        M_HAND = SIDE_HAND,   /* fork -> query-status "running" */
        M_HAND_QMP,           /* by hand: fork -> QMP ready (greeting, capabilities) */
        M_TIGHT,              /* by hand, connecting every 0.1 ms: fork -> "running" */
        M_TIGHT_QMP,          /* the same: fork -> QMP ready */
        M_AGENT_GET,          /* GET /v1/vms/NAME after the start: the API's round trip */
        M_DURABLE,            /* write+fsync+rename+fsync(dir) of a small file, as the agent's
                               * journal and state files are written */
        N_MEASURES,
};
static const char *const measure_csv[N_MEASURES] = {
        "agent_start", "hand_start", "hand_qmp_ready", "hand_tight_start",
        "hand_tight_qmp_ready", "agent_get", "durable_write",
};
static const char *const measure_row[N_MEASURES] = {
        "agent: POST start -> 200",
        "by hand: fork -> running",
        "  by hand: fork -> QMP ready",
        "by hand, connect every 0.1 ms",
        "  the same: fork -> QMP ready",
        "agent: GET status round trip",
        "durable write (fsync, rename, dir)",
};

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned runs;
        const char *agent;
        const char *out;
        double target_ms;
        bool enforce;
        bool keep_dir;
};

static const char usage_text[] =
        "Usage: " PROG " [--runs N] [--agent PATH] [--out CSV] [--target-ms MS]\n"
        "                      [--enforce-target] [--keep-dir]\n"
        "\n"
        "VM start latency through gpuvirtd (POST /v1/vms/NAME/start until its 200, i.e. QMP\n"
        "'running') beside the same qemu-system-x86_64 argv started by hand (fork+exec, QMP\n"
        "cont, query-status 'running'), interleaved in one run. Prints p50/p90/p99/max per side\n"
        "and the agent's overhead at p50 against the target.\n"
        "\n"
        "  --runs N           timed starts per side (default 50), after one warm-up round\n"
        "  --agent PATH       gpuvirtd to run (default: the built one; env GPUVIRT_BENCH_AGENT)\n"
        "  --out CSV          write every sample: round,measure,first,ms (first: 1 when that\n"
        "                     side started first in its round)\n"
        "  --target-ms MS     overhead target at p50 (default 30)\n"
        "  --enforce-target   exit 3 when the overhead misses the target\n"
        "  --keep-dir         keep the state directory and logs and print where they are\n";

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "runs", required_argument, NULL, 'n' },
                { "agent", required_argument, NULL, 'a' },
                { "out", required_argument, NULL, 'o' },
                { "target-ms", required_argument, NULL, 't' },
                { "enforce-target", no_argument, NULL, 'e' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        uint32_t u;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (gv_parse_u32(optarg, 10, &o->runs) < 0 || o->runs == 0 ||
                            o->runs > 100000)
                                return usage_error("--runs needs a whole number from 1 to "
                                                   "100000, not '%s'.", optarg);
                        break;
                case 'a':
                        o->agent = optarg;
                        break;
                case 'o':
                        o->out = optarg;
                        break;
                case 't':
                        if (gv_parse_u32(optarg, 10, &u) < 0 || u > 1000000)
                                return usage_error("--target-ms needs a whole number of "
                                                   "milliseconds from 0 to 1000000, not '%s'.",
                                                   optarg);
                        o->target_ms = u;
                        break;
                case 'e':
                        o->enforce = true;
                        break;
                case 'k':
                        o->keep_dir = true;
                        break;
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

/* ---------------------------------------------------------------- timing and statistics */

/* ---------------------------------------------------------------- the run's context */

struct ctx {
        struct opts o;
        char *dir;            /* our temporary directory */
        char *endpoint;       /* "unix:DIR/agent.sock" */
        char *agent_log;
        struct gv_proc agent;
        unsigned op_seq;      /* Operation-Id counter */
        bool vm_defined;

        /* From the agent's GET /v1/vms/NAME, read after the warm-up start. */
        char **agent_argv;
        char *agent_pidfile;  /* the -pidfile of the agent's argv */
        char *marker;         /* the -name argument: one whole argv element, for gv_proc_adopt */
        char **hand_argv;     /* agent_argv with the agent's run dir replaced by hand_dir */
        char *hand_dir;
        char *hand_qmp;
        char *hand_log;
        char *accel;          /* the -accel (or -machine accel=) of the argv, "?" when absent */
        char *qemu_version;   /* from the by-hand QMP greeting */

        struct gv_proc agent_qemu; /* the agent's QEMU of the current round, adopted */
        struct gv_proc hand_qemu;

        uint64_t *samples[N_MEASURES];
        size_t n[N_MEASURES];
        FILE *csv;
};

/* ---------------------------------------------------------------- talking to the agent */

/* One request; *ret_json (may be NULL) gets the body parsed as JSON (NULL when empty). An
 * Operation-Id header goes with every mutation. Fails when the exchange fails or the status
 * is not `want`, with the problem body in the message. */
static int agent_call(struct ctx *c, const char *method, const char *path, const char *body,
                      int want, json_t **ret_json)
{
        char opid[64];
        bool mutation = strcmp(method, "GET") != 0;
        (void)snprintf(opid, sizeof(opid), "Operation-Id: bench-%ld-%u", (long)getpid(),
                       ++c->op_seq);
        return bench_call(PROG, c->endpoint, method, path, body, mutation ? opid : NULL, want,
                          REQUEST_MS, ret_json);
}

static int agent_start_daemon(struct ctx *c)
{
        _cleanup_free_ char *state = gv_path_join_many(c->dir, "state", NULL);
        _cleanup_free_ char *sock = gv_path_join_many(c->dir, "agent.sock", NULL);
        c->endpoint = xasprintf("unix:%s", sock);
        c->agent_log = gv_path_join_many(c->dir, "agent.log", NULL);
        if (mkdir(state, 0700) < 0)
                return fail("Cannot create '%s': %s.", state, strerror(errno));

        _cleanup_close_ int log = open(c->agent_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                       0600);
        if (log < 0)
                return fail("Cannot create '%s': %s.", c->agent_log, strerror(errno));
        char *argv[] = { (char *)c->o.agent, "--role", "agent", "--state-dir", state, "--socket",
                         sock, "--qemu-user", "root", NULL };
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log, .stderr_fd = log };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_spawn(argv, &so, &c->agent, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));

        /* Ready when it answers HTTP on the socket: any status (404 for the VM not defined
         * yet). */
        uint64_t deadline = bench_now_ns() + (uint64_t)AGENT_READY_MS * 1000000u;
        for (;;) {
                int status = 0;
                struct gv_error *e2 = NULL;
                r = gv_http_client_request(c->endpoint, "GET", "/v1/vms/" VM_NAME, NULL, 2000,
                                           &status,
                                           NULL, &e2);
                if (r >= 0)
                        return 0;
                if (!gv_proc_alive(&c->agent)) {
                        fail("'%s' exited before answering on '%s': %s", c->o.agent, sock,
                             gv_error_msg(e2, r));
                        gv_error_free(e2);
                        bench_print_log_tail("the agent's log", c->agent_log, 2000);
                        return -EIO;
                }
                if (bench_now_ns() > deadline) {
                        fail("'%s' did not answer on '%s' within %d ms: %s", c->o.agent, sock,
                             AGENT_READY_MS, gv_error_msg(e2, r));
                        gv_error_free(e2);
                        bench_print_log_tail("the agent's log", c->agent_log, 2000);
                        return -ETIMEDOUT;
                }
                gv_error_free(e2);
                (void)nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
        }
}

/* The agent's word for it: "phase": "running" (src/agent/vm.c, status_json()). */
static bool says_running(const json_t *vm)
{
        const json_t *v = json_object_get(vm, "phase");
        return json_is_string(v) && strcmp(json_string_value(v), "running") == 0;
}

/* The value of ",path=" in a -chardev argument, with QEMU's ",," unescaped. */
static char *chardev_path(const char *arg)
{
        const char *p = strstr(arg, ",path=");
        if (!p)
                return NULL;
        p += strlen(",path=");
        char *out = xmalloc(strlen(p) + 1), *o = out;
        for (; *p; p++) {
                if (*p == ',') {
                        if (p[1] != ',')
                                break;
                        p++;
                }
                *o++ = *p;
        }
        *o = '\0';
        return out;
}

/* s with every occurrence of from replaced by to. */
static char *replace_all(const char *s, const char *from, const char *to)
{
        size_t fl = strlen(from), tl = strlen(to), n = 0;
        for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
                n++;
        char *out = xmalloc(strlen(s) + n * tl + 1), *o = out;
        for (const char *p = s, *q; ; p = q + fl) {
                q = strstr(p, from);
                if (!q) {
                        strcpy(o, p);
                        break;
                }
                memcpy(o, p, (size_t)(q - p));
                o += q - p;
                memcpy(o, to, tl);
                o += tl;
        }
        return out;
}

/* Read the argv from GET /v1/vms/NAME (the VM is running) and derive the by-hand argv. */
static int take_argv(struct ctx *c, const json_t *vm)
{
        const json_t *a = json_object_get(vm, "argv");
        if (!json_is_array(a) || json_array_size(a) < 2) {
                _cleanup_free_ char *dump = json_dumps(vm, JSON_COMPACT);
                return fail("GET /v1/vms/" VM_NAME " has no \"argv\" array (the QEMU command "
                            "the agent ran), which the by-hand side needs: %s", dump);
        }
        size_t i;
        const json_t *v;
        json_array_foreach(a, i, v) {
                if (!json_is_string(v))
                        return fail("\"argv\"[%zu] of GET /v1/vms/" VM_NAME " is not a string.",
                                    i);
                strv_extend(&c->agent_argv, json_string_value(v));
        }

        _cleanup_free_ char *qmp = NULL;
        for (char **p = c->agent_argv; *p && p[1]; p++) {
                if (strcmp(*p, "-chardev") == 0 && strstr(p[1], "id=qmp,"))
                        qmp = chardev_path(p[1]);
                else if (strcmp(*p, "-pidfile") == 0 && !c->agent_pidfile)
                        c->agent_pidfile = xstrdup(p[1]);
                else if (strcmp(*p, "-name") == 0 && !c->marker)
                        c->marker = xstrdup(p[1]);
                else if (strcmp(*p, "-accel") == 0 && !c->accel)
                        c->accel = xstrdup(p[1]);
        }
        if (!qmp || !c->agent_pidfile || !c->marker)
                return fail("The agent's argv lacks %s; cannot repeat it by hand.",
                            !qmp ? "a '-chardev socket,id=qmp,path=...'" :
                            !c->agent_pidfile ? "'-pidfile'" : "'-name'");
        if (!c->accel)
                c->accel = xstrdup("?");

        /* The agent's run directory is the QMP socket's; ours replaces it everywhere, so the
         * by-hand QEMU shares no socket or pidfile with the agent's. */
        _cleanup_free_ char *run = xstrdup(qmp);
        char *slash = strrchr(run, '/');
        if (!slash || slash == run)
                return fail("The agent's QMP socket '%s' is not in a directory of its own.", qmp);
        slash[1] = '\0'; /* keep the '/' so that ".../run2" does not match ".../run" */
        c->hand_dir = gv_path_join_many(c->dir, "hand", NULL);
        if (mkdir(c->hand_dir, 0700) < 0)
                return fail("Cannot create '%s': %s.", c->hand_dir, strerror(errno));
        _cleanup_free_ char *to = xasprintf("%s/", c->hand_dir);
        for (char **p = c->agent_argv; *p; p++)
                strv_consume(&c->hand_argv, replace_all(*p, run, to));
        c->hand_qmp = replace_all(qmp, run, to);
        c->hand_log = gv_path_join_many(c->dir, "hand-qemu.log", NULL);
        return 0;
}

/* The agent's QEMU, by the argv's pidfile and -name marker. */
static int adopt_agent_qemu(struct ctx *c, const json_t *vm)
{
        pid_t pid;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_pidfile_read(c->agent_pidfile, &pid, &e);
        if (r >= 0)
                r = gv_proc_adopt(pid, c->marker, &c->agent_qemu, &e);
        if (r < 0)
                return fail("The agent said the VM runs, but its QEMU is not there: %s",
                            gv_error_msg(e, r));
        /* The status names the same process ("pid" is null only when QEMU is gone). */
        const json_t *jp = json_object_get(vm, "pid");
        if (!json_is_integer(jp) || json_integer_value(jp) != pid)
                return fail("GET /v1/vms/" VM_NAME " says pid %s, but QEMU's pidfile '%s' "
                            "says %d.", json_is_integer(jp) ? "another" : "none",
                            c->agent_pidfile, (int)pid);
        return 0;
}

/* One timed start through the agent, then the untimed checks and kill. */
static int round_agent(struct ctx *c, uint64_t *ret_ns, uint64_t *ret_get_ns)
{
        int r;
        uint64_t t0 = bench_now_ns();
        r = agent_call(c, "POST", "/v1/vms/" VM_NAME "/start", NULL, 200, NULL);
        uint64_t t1 = bench_now_ns();
        if (r < 0) {
                bench_print_log_tail("the agent's log", c->agent_log, 2000);
                return r;
        }

        _cleanup_(json_decrefp) json_t *vm = NULL;
        uint64_t g0 = bench_now_ns();
        r = agent_call(c, "GET", "/v1/vms/" VM_NAME, NULL, 200, &vm);
        uint64_t g1 = bench_now_ns();
        if (r < 0)
                return r;
        if (!json_is_object(vm) || !says_running(vm)) {
                _cleanup_free_ char *dump = vm ? json_dumps(vm, JSON_COMPACT) : NULL;
                return fail("The start answered 200 but GET /v1/vms/" VM_NAME " does not say "
                            "\"running\": %s", dump ? dump : "(no body)");
        }
        if (!c->agent_argv && (r = take_argv(c, vm)) < 0)
                return r;
        if ((r = adopt_agent_qemu(c, vm)) < 0)
                return r;

        r = agent_call(c, "POST", "/v1/vms/" VM_NAME "/kill", NULL, 200, NULL);
        if (r < 0)
                return r;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_proc_wait(&c->agent_qemu, EXIT_WAIT_MS, NULL, &e);
        if (r < 0)
                return fail("Waiting for the agent's QEMU: %s", gv_error_msg(e, r));
        if (r == 0)
                return fail("The agent's QEMU (pid %d) still runs %d ms after the kill "
                            "answered 200.", c->agent_qemu.pid, EXIT_WAIT_MS);
        gv_proc_close(&c->agent_qemu);
        *ret_ns = t1 - t0;
        *ret_get_ns = g1 - g0;
        return 0;
}

/* ---------------------------------------------------------------- by hand */

static int hand_kill(struct ctx *c)
{
        if (c->hand_qemu.pidfd < 0)
                return 0;
        (void)gv_proc_signal(&c->hand_qemu, SIGKILL, NULL);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_wait(&c->hand_qemu, EXIT_WAIT_MS, NULL, &e);
        if (r <= 0)
                return fail("The by-hand QEMU (pid %d) did not exit after SIGKILL: %s",
                            c->hand_qemu.pid, r < 0 ? gv_error_msg(e, r) : "timed out");
        gv_proc_close(&c->hand_qemu);
        return 0;
}

/* Connect to QEMU's monitor socket, retrying every 0.1 ms while it does not exist or refuses:
 * a connect loop with no backoff, to see what gv_qmp_connect()'s backoff (1 ms doubling to
 * 50 ms, src/vmm/qmp.c) costs a start. Then gv_qmp_open_fd() for the greeting. */
static int connect_tight(const char *path, struct gv_qmp **ret, struct gv_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof(sa.sun_path))
                return gv_error_set(err, ENAMETOOLONG, "'%s' is too long for a socket.", path);
        strcpy(sa.sun_path, path);
        uint64_t deadline = bench_now_ns() + (uint64_t)QMP_MS * 1000000u;
        for (;;) {
                int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return gv_error_set(err, errno, "socket(): %s", strerror(errno));
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return gv_qmp_open_fd(fd, QMP_MS, ret, err);
                int k = errno;
                (void)close(fd);
                if ((k != ENOENT && k != ECONNREFUSED) || bench_now_ns() > deadline)
                        return gv_error_set(err, k, "Cannot connect to '%s': %s.", path,
                                            strerror(k));
                (void)nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 }, NULL);
        }
}

static int round_hand(struct ctx *c, bool tight, uint64_t *ret_ns, uint64_t *ret_qmp_ns)
{
        /* Untimed: no stale socket for gv_qmp_connect() to knock on. */
        (void)unlink(c->hand_qmp);
        _cleanup_close_ int log = open(c->hand_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                       0600);
        if (log < 0)
                return fail("Cannot open '%s': %s.", c->hand_log, strerror(errno));
        /* As the agent runs QEMU: stdio off, stderr to a log, a session of its own. */
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = log,
                                    .new_session = true };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_free_ char *status = NULL;
        int r;

        uint64_t t0 = bench_now_ns();
        r = gv_proc_spawn(c->hand_argv, &so, &c->hand_qemu, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));
        r = tight ? connect_tight(c->hand_qmp, &q, &e) : gv_qmp_connect(c->hand_qmp, QMP_MS, &q,
                                                                        &e);
        uint64_t tq = bench_now_ns();
        if (r >= 0)
                r = gv_qmp_execute(q, "cont", NULL, QMP_MS, NULL, &e);
        while (r >= 0) {
                free(status);
                status = NULL;
                r = gv_qmp_query_status(q, QMP_MS, &status, &e);
                if (r < 0 || strcmp(status, "running") == 0)
                        break;
                if (bench_now_ns() - t0 > (uint64_t)QMP_MS * 1000000u) {
                        r = gv_error_set(&e, ETIMEDOUT, "status still '%s' after %d ms",
                                         status, QMP_MS);
                        break;
                }
        }
        uint64_t t1 = bench_now_ns();
        if (r < 0) {
                fail("By hand: %s", gv_error_msg(e, r));
                bench_print_log_tail("the by-hand QEMU's stderr", c->hand_log, 2000);
                (void)hand_kill(c);
                return -EIO;
        }
        if (!c->qemu_version)
                c->qemu_version = xstrdup(gv_qmp_qemu_version(q));
        q = gv_qmp_free(q);
        if ((r = hand_kill(c)) < 0)
                return r;
        *ret_ns = t1 - t0;
        *ret_qmp_ns = tq - t0;
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

/* What one durable small-file write costs on the state directory's file system: the agent
 * writes its journal and state files so (write, fsync, rename, fsync of the directory). */
static int durable_write(struct ctx *c, uint64_t *ret_ns)
{
        char buf[1024];
        memset(buf, 'x', sizeof(buf));
        _cleanup_free_ char *tmp = gv_path_join_many(c->dir, "durable.tmp", NULL);
        _cleanup_free_ char *dst = gv_path_join_many(c->dir, "durable.json", NULL);
        uint64_t t0 = bench_now_ns();
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || fsync(fd) < 0 ||
            rename(tmp, dst) < 0)
                return fail("A durable write of '%s' failed: %s.", dst, strerror(errno));
        _cleanup_close_ int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return fail("Cannot fsync '%s': %s.", c->dir, strerror(errno));
        *ret_ns = bench_now_ns() - t0;
        return 0;
}

/* One round: both sides, `first` first, then the durable write. warmup: not recorded. */
static int run_round(struct ctx *c, unsigned round, int first, bool warmup)
{
        int r;
        for (int k = 0; k < N_SIDES; k++) {
                int side = k == 0 ? first : 1 - first;
                uint64_t ns = 0, extra = 0;
                r = side == SIDE_AGENT ? round_agent(c, &ns, &extra)
                                       : round_hand(c, false, &ns, &extra);
                if (r < 0) {
                        fprintf(stderr, PROG ": %s start failed in %s %u.\n", side_name[side],
                                warmup ? "the warm-up round" : "round", round);
                        return r;
                }
                if (ns == 0 || extra == 0)
                        return fail("%s start measured 0 ns in round %u.", side_name[side],
                                    round);
                if (warmup)
                        continue;
                record(c, side, round, k == 0, ns);
                record(c, side == SIDE_AGENT ? M_AGENT_GET : M_HAND_QMP, round, -1, extra);
        }
        uint64_t ns = 0, qmp_ns = 0;
        if ((r = round_hand(c, true, &ns, &qmp_ns)) < 0) {
                fprintf(stderr, PROG ": the by-hand start with a tight connect loop failed in "
                        "round %u.\n", round);
                return r;
        }
        if (!warmup) {
                record(c, M_TIGHT, round, -1, ns);
                record(c, M_TIGHT_QMP, round, -1, qmp_ns);
        }
        if ((r = durable_write(c, &ns)) < 0)
                return r;
        if (!warmup)
                record(c, M_DURABLE, round, -1, ns);
        return 0;
}

static void print_machine(struct ctx *c)
{
        bench_print_machine();
        printf("build:   %s, sanitizers %s\n", BENCH_BUILDTYPE, BENCH_SANITIZE);
        printf("qemu:    '%s' %s, accel %s, VM: 1 vCPU, 128 MiB, no disks, no GPUs\n",
               c->hand_argv[0], c->qemu_version ? c->qemu_version : "?", c->accel);
        _cleanup_free_ char *av = strv_join(c->hand_argv, " ");
        printf("argv:    %s\n         (the agent's, from GET /v1/vms/" VM_NAME ", its run "
               "directory replaced by ours for the by-hand side)\n", av);
        printf("agent:   '%s'\n", c->o.agent);
        printf("method:  %u timed rounds after 1 warm-up round; each round starts the VM once "
               "per side,\n         the first side alternating, then once by hand with the "
               "tight connect loop;\n         CLOCK_MONOTONIC; nearest-rank percentiles\n",
               c->o.runs);
}

static void print_row(const char *name, const struct bench_stats *s)
{
        printf("  %-34s %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, s->p50, s->p90, s->p99,
               s->min, s->max, s->mean);
}

static int report(struct ctx *c)
{
        struct bench_stats st[N_MEASURES];
        for (int m = 0; m < N_MEASURES; m++)
                st[m] = bench_stats_of(c->samples[m], c->n[m]);

        print_machine(c);
        printf("\n  start latency (ms)                       p50       p90       p99       min"
               "       max      mean\n");
        for (int m = 0; m < N_MEASURES; m++) {
                if (m == M_TIGHT)
                        printf("  context (not part of the verdict)\n");
                print_row(measure_row[m], &st[m]);
        }

        double over = st[SIDE_AGENT].p50 - st[SIDE_HAND].p50;
        bool met = over <= c->o.target_ms;
        printf("\n  agent overhead at p50: %+.3f ms (%.2fx the by-hand start); at p99: %+.3f ms\n",
               over, st[SIDE_AGENT].p50 / st[SIDE_HAND].p50,
               st[SIDE_AGENT].p99 - st[SIDE_HAND].p99);
        printf("  target: overhead <= %.0f ms at p50: %s\n", c->o.target_ms,
               met ? "MET" : "MISSED");
        printf("  checks: %zu agent starts reached 'running' (GET and a live QEMU), %zu by-hand "
               "starts answered query-status 'running'; every QEMU gone after its kill\n",
               c->n[SIDE_AGENT], c->n[SIDE_HAND]);
        if (!met && c->o.enforce)
                return 3;
        return 0;
}

/* Untimed teardown, also after a failure: no QEMU and no agent outlive the benchmark. */
static void cleanup(struct ctx *c)
{
        (void)hand_kill(c);
        if (c->vm_defined && c->agent.pidfd >= 0 && gv_proc_alive(&c->agent)) {
                /* A VM left running by a failed round: kill it, then delete the definition. */
                (void)agent_call(c, "POST", "/v1/vms/" VM_NAME "/kill", NULL, 200, NULL);
                (void)agent_call(c, "DELETE", "/v1/vms/" VM_NAME, NULL, 200, NULL);
        }
        if (c->agent_qemu.pidfd < 0 && c->agent_pidfile && c->marker) {
                pid_t pid;
                if (gv_pidfile_read(c->agent_pidfile, &pid, NULL) >= 0)
                        (void)gv_proc_adopt(pid, c->marker, &c->agent_qemu, NULL);
        }
        if (c->agent_qemu.pidfd >= 0) {
                (void)gv_proc_signal(&c->agent_qemu, SIGKILL, NULL);
                (void)gv_proc_wait(&c->agent_qemu, EXIT_WAIT_MS, NULL, NULL);
                gv_proc_close(&c->agent_qemu);
        }
        if (c->agent.pidfd >= 0) {
                (void)gv_proc_signal(&c->agent, SIGTERM, NULL);
                if (gv_proc_wait(&c->agent, 5000, NULL, NULL) == 0) {
                        (void)gv_proc_signal(&c->agent, SIGKILL, NULL);
                        (void)gv_proc_wait(&c->agent, EXIT_WAIT_MS, NULL, NULL);
                }
                gv_proc_close(&c->agent);
        }
}

static void ctx_done(struct ctx *c)
{
        if (c->dir) {
                if (c->o.keep_dir)
                        fprintf(stderr, PROG ": kept '%s' (agent.log, state/, hand/).\n",
                                c->dir);
                else
                        (void)gv_rm_rf(c->dir);
        }
        free(c->dir);
        free(c->endpoint);
        free(c->agent_log);
        strv_free(c->agent_argv);
        strv_free(c->hand_argv);
        free(c->agent_pidfile);
        free(c->marker);
        free(c->hand_dir);
        free(c->hand_qmp);
        free(c->hand_log);
        free(c->accel);
        free(c->qemu_version);
        for (int m = 0; m < N_MEASURES; m++)
                free(c->samples[m]);
        if (c->csv)
                (void)fclose(c->csv);
}

int main(int argc, char **argv)
{
        struct ctx c = {
                .o = { .runs = DEFAULT_RUNS, .target_ms = DEFAULT_TARGET_MS },
                .agent = GV_PROC_NULL,
                .agent_qemu = GV_PROC_NULL,
                .hand_qemu = GV_PROC_NULL,
        };
        int r = parse_opts(argc, argv, &c.o);
        if (r != 0)
                return r;
        c.o.agent = bench_daemon_path(c.o.agent, "GPUVIRT_BENCH_AGENT", BENCH_GPUVIRTD);
        r = bench_need((const char *const[]){ "gpuvirtd", c.o.agent, NULL },
                       (const char *const[]){ "qemu-system-x86_64", NULL });
        if (r != 0)
                return r;

        /* A write to the agent's socket after it died must fail, not kill us. */
        (void)signal(SIGPIPE, SIG_IGN);

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-vm-start-XXXXXX",
                                               tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(templ)) {
                fprintf(stderr, PROG ": cannot create a directory '%s': %s.\n", templ,
                        strerror(errno));
                return 1;
        }
        c.dir = TAKE_PTR(templ);
        for (int m = 0; m < N_MEASURES; m++)
                c.samples[m] = xreallocarray(NULL, c.o.runs, sizeof(uint64_t));
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

        r = agent_start_daemon(&c);
        if (r >= 0) {
                r = agent_call(&c, "POST", "/v1/vms",
                               "{\"name\": \"" VM_NAME "\", \"vcpus\": 1, \"memory_mib\": 128}",
                               201, NULL);
                c.vm_defined = r >= 0;
        }
        /* The warm-up round goes agent first: its GET gives the argv the by-hand side runs. */
        if (r >= 0)
                r = run_round(&c, 0, SIDE_AGENT, true);
        for (unsigned i = 1; r >= 0 && i <= c.o.runs; i++)
                r = run_round(&c, i, i % 2 ? SIDE_HAND : SIDE_AGENT, false);
        if (r >= 0) {
                r = agent_call(&c, "DELETE", "/v1/vms/" VM_NAME, NULL, 200, NULL);
                c.vm_defined = r < 0;
        }
        cleanup(&c);
        int ret = 1;
        if (r >= 0 && c.csv && fflush(c.csv) != 0) {
                fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out, strerror(errno));
                r = -EIO;
        }
        if (r >= 0)
                ret = report(&c);
        ctx_done(&c);
        return ret;
}
