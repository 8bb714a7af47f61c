/* SPDX-License-Identifier: MIT */
/*
 * bench-migrate — live migration through gpuvirt beside a bare QMP migration of the same pair
 * of QEMU command lines, and a host drain, in the same run on a simulated cluster (issue 6,
 * "Benchmark"; BENCHMARKS.md "Live migration").
 *
 *   bench-migrate [--runs N] [--drain-vms N] [--memory-mib M] [--accel tcg|kvm|auto]
 *                 [--daemon PATH] [--sim PATH] [--cluster-script PATH] [--out CSV] [--keep-dir]
 *                 [--bare-poll]
 *
 * Setup (untimed): `contrib/sim-cluster.sh start DIR --hosts 2` (two simulated dgx-h100 hosts,
 * node-a and node-b, one controller and one agent per host, all on loopback, QEMU on TCG), and
 * on node-a the VM 'bench-big': 1 vCPU, --memory-mib (default 1024) MiB, no disk and so no
 * guest (SeaBIOS finds nothing to boot and waits), one vGPU H100XM-20C (on simulated hosts the
 * agent gives QEMU an emulated stand-in device for it, QEMU's 'edu'). One untimed warm-up move
 * node-a -> node-b gives the two command lines the bare side runs: the source's as node-a's
 * agent started it (with -S, then cont) and the destination's as node-b's agent started it
 * (with -incoming defer), both from the agents' GET /v1/vms/bench-big "argv", their run
 * directories (QMP socket, console socket, pidfile) replaced by the benchmark's own.
 *
 * Then N rounds (default 5; after one untimed bare warm-up), each one move per side, the side
 * that goes first alternating from round to round:
 *
 *   gpuvirt  POST /api/v1/vms/bench-big/migrate?wait=120 {"to": the other host} on the
 *            controller's UNIX socket, from sending it to the 200 whose operation "succeeded"
 *            (the direction alternates: node-b -> node-a, node-a -> node-b, ...). Downtime,
 *            transfer time and RAM moved are the operation's result (QEMU's own downtime and
 *            total-time from the source's last query-migrate). Then, untimed: the controller
 *            says running on the target with no move left, the target's agent runs it, the
 *            source's agent answers 404 for it.
 *   bare     the work any live move of a vGPU VM needs, by hand. Untimed: the source's vGPU
 *            made (`gpuvirt-sim exec --root NODE -- gpuvirt vgpu create GPU H100XM-20C`, on
 *            the GPU the agent used there), its QEMU spawned, QMP, cont, running. Timed: the
 *            destination's vGPU made the same way, its QEMU spawned, QMP connect,
 *            migrate-set-capabilities and migrate-incoming tcp:127.0.0.1:0 (gv_migrate_incoming,
 *            as the destination agent does), capabilities, downtime-limit 300 ms and
 *            max-bandwidth 1 TiB/s (no cap) and migrate on the source (gv_migrate_setup and
 *            gv_migrate_start, as the source agent does), QEMU's MIGRATION event with a final
 *            status on the source and RESUME on the destination, query-status there answering
 *            "running"; then (after an untimed query-migrate for QEMU's figures) 'quit' on the
 *            source's QMP connection, its exit waited for, its vGPU removed (`gpuvirt vgpu
 *            destroy`), as the source agent's release does. With --bare-poll: query-migrate on
 *            the source every 1 ms until completed, query-status on the destination every 1 ms
 *            until running (on 2 CPUs with TCG the 1 ms queries slow the transfer itself).
 *            Downtime and transfer time: the source's query-migrate once the destination runs
 *            (QEMU 7.2 says "completed" a moment before it fills them in). Context rows: the
 *            earlier baseline "bare QMP only" (destination spawn -> running: no vGPU, the
 *            source left running), each step, and per round, untimed, what a CLI call costs
 *            with no work (`gpuvirt --version`) and with the host scan every call makes
 *            (`gpuvirt vgpu types GPU`): the CLI opens the whole host each time, the agent
 *            keeps its inventory, so the report also prints the like-for-like overhead less
 *            two such scans (an estimate).
 *
 * After the rounds the controller's event log (its store, read once the cluster stopped,
 * millisecond times) splits each gpuvirt move into its steps (the operation's progress marks
 * in src/controller/migrate.c: 10 preparing the target, 30 transfer started, 92 target runs).
 *
 * Drain (--drain-vms N, default 20, 0 skips it): N VMs of 128 MiB on node-a, alternately a
 * time-sliced vGPU H100XM-20C and a MIG-backed vGPU H100XM-1-10C, then POST
 * /api/v1/hosts/node-a/drain?wait=600 from sending to its 200 "succeeded" (wall time), per-VM
 * downtime and move time from the drain's vm.migrate operations' results. Checked: the drain
 * moved all N, every VM runs on node-b, node-a's agent holds none.
 *
 * The cluster is stopped and the directory removed on every exit, SIGINT, SIGTERM and SIGHUP
 * included (--keep-dir keeps the stopped cluster's files).
 *
 * Exit status: 0 measured (whatever the verdicts), 1 a step or a check failed, 2 usage, 77
 * nothing to measure (gpuvirtd, gpuvirt-sim, QEMU, bash, curl or jq not there).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common.h"
#include "stats.h"
#include "config.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/migrate.h"
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
#ifndef BENCH_GPUVIRT_SIM
#define BENCH_GPUVIRT_SIM GPUVIRT_BUILD_ROOT "/sim/tool/gpuvirt-sim"
#endif
#ifndef BENCH_GPUVIRT_CLI
#define BENCH_GPUVIRT_CLI GPUVIRT_BUILD_ROOT "/src/cli/gpuvirt"
#endif

#define PROG "bench-migrate"
/* common.h, with this program's name */
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)

#define VM_NAME "bench-big"
#define VGPU_TYPE "H100XM-20C"
#define MIG_VGPU_TYPE "H100XM-1-10C"
#define DEFAULT_RUNS 5u
#define DEFAULT_DRAIN 20u
#define MAX_DRAIN 40u            /* node-b's 8 GPUs: 20 of each type fill 5 + 3 of them */
#define DEFAULT_MEMORY_MIB 1024u
#define DRAIN_MEMORY_MIB 128u
#define SCRIPT_START_MS 180000
#define SCRIPT_STOP_MS 60000
#define REQUEST_MS 180000        /* ?wait=120 and a margin */
#define DRAIN_WAIT_S 600
#define QMP_MS 10000
#define MIGRATE_MS 120000        /* the bare transfer and the destination's start */
#define EXIT_WAIT_MS 10000
#define POLL_US 1000             /* the bare side's query-migrate / query-status interval */
#define DOWNTIME_LIMIT_MS 300u   /* what the agent sets (GV_MIGRATE_DOWNTIME_DEFAULT_MS) */
#define NO_CAP_BYTES ((uint64_t)1048576u << 20) /* the agent's "no cap": 1 TiB/s */

static const char *const host_name[2] = { "node-a", "node-b" };

/* ---------------------------------------------------------------- measures */

enum {
        M_GV_TOTAL,      /* POST migrate?wait -> 200 succeeded */
        M_BARE_TOTAL,    /* dst vGPU made -> dst running -> src quit, exited, vGPU removed */
        M_GV_DOWN,       /* the operation's result: QEMU's downtime */
        M_BARE_DOWN,     /* the source's query-migrate downtime */
        M_BARE_QMP_ONLY, /* destination spawn -> destination running (the old baseline) */
        M_GV_TRANSFER,   /* the operation's result: QEMU's total-time */
        M_BARE_TRANSFER, /* the source's query-migrate total-time */
        M_GV_ELAPSED,    /* the operation's own elapsed_ms */
        M_BARE_VGPU,     /* `gpuvirt vgpu create` for the destination */
        M_BARE_PREPARED, /* dst vGPU made -> migrate-incoming listening */
        M_BARE_QMP,      /* destination spawn -> its QMP answers */
        M_BARE_LISTEN,   /* destination spawn -> migrate-incoming listening */
        M_BARE_RUN,      /* source completed -> destination running */
        M_BARE_RELEASE,  /* destination running -> source quit, exited, vGPU removed */
        M_BARE_QUIT,     /* source quit -> exited */
        M_BARE_UNVGPU,   /* `gpuvirt vgpu destroy` for the source */
        M_BARE_CLI,      /* untimed aside: `gpuvirt-sim exec -- gpuvirt --version` */
        M_BARE_TYPES,    /* untimed aside: `gpuvirt vgpu types GPU` (the CLI's host scan) */
        N_MEASURES,
};
static const char *const measure_csv[N_MEASURES] = {
        "gpuvirt_total", "bare_total", "gpuvirt_downtime", "bare_downtime", "bare_qmp_only",
        "gpuvirt_transfer", "bare_transfer", "gpuvirt_op_elapsed", "bare_vgpu_create",
        "bare_prepared", "bare_qmp_ready", "bare_listening", "bare_completed_to_running",
        "bare_release", "bare_quit_to_exit", "bare_vgpu_destroy", "bare_cli_floor",
        "bare_cli_vgpu_types",
};
static const char *const measure_row[N_MEASURES] = {
        "gpuvirt: POST migrate?wait -> succeeded",
        "bare: dst vGPU, migrate, src quit + vGPU gone",
        "gpuvirt downtime (QEMU's, op result)",
        "bare downtime (QEMU's query-migrate)",
        "bare QMP only: dst spawn -> dst running",
        "gpuvirt transfer (QEMU total-time)",
        "bare transfer (QEMU total-time)",
        "gpuvirt: the operation's elapsed_ms",
        "bare: dst `gpuvirt vgpu create`",
        "bare: dst vGPU + spawn -> listening",
        "bare: dst spawn -> QMP ready",
        "bare: dst spawn -> listening",
        "bare: completed -> dst running",
        "bare: dst running -> src released",
        "bare: src quit -> QEMU exited",
        "bare: src `gpuvirt vgpu destroy`",
        "`gpuvirt-sim exec -- gpuvirt --version`",
        "`... gpuvirt vgpu types GPU` (read only)",
};

/* The gpuvirt move split by the controller's event log. */
enum { P_RESERVE, P_OPSTART, P_PREPARE, P_TRANSFER, P_SWITCH, P_RELEASE, P_ANSWER, N_PHASES };
static const char *const phase_row[N_PHASES] = {
        "request -> reserved (vm.migration)",
        "reserved -> op runs, target GPU ready (10%)",
        "-> target prepared (30%): incoming",
        "-> transfer seen done, target runs (92%)",
        "-> ownership switched (vm.migrated)",
        "-> source released (operation.done)",
        "operation.done -> 200 received",
};

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned runs, drain_vms, memory_mib;
        const char *daemon, *sim, *script, *accel, *out;
        bool keep_dir, bare_poll;
};

static const char usage_text[] =
        "Usage: " PROG " [--runs N] [--drain-vms N] [--memory-mib M] [--accel tcg|kvm|auto]\n"
        "                     [--daemon PATH] [--sim PATH] [--cluster-script PATH] [--out CSV]\n"
        "                     [--keep-dir] [--bare-poll]\n"
        "\n"
        "Live migration of a 1 GiB vGPU VM through gpuvirt (POST /api/v1/vms/NAME/migrate?wait)\n"
        "beside a bare QMP migration of the same two QEMU command lines, interleaved in one run\n"
        "on a simulated two-host cluster (contrib/sim-cluster.sh); then a drain of N VMs.\n"
        "\n"
        "  --runs N             timed moves per side (default 5), after one warm-up each\n"
        "  --drain-vms N        VMs in the drain (default 20, at most 40; 0: no drain)\n"
        "  --memory-mib M       the migrated VM's memory (default 1024)\n"
        "  --accel A            the agents' --accel (default tcg)\n"
        "  --daemon PATH        gpuvirtd to run (default: the built one; env GPUVIRT_BENCH_DAEMON)\n"
        "  --sim PATH           gpuvirt-sim to run (default: the built one)\n"
        "  --cluster-script P   sim-cluster.sh (default: the source tree's contrib/)\n"
        "  --out CSV            write every sample: round,measure,ms\n"
        "  --keep-dir           keep the stopped cluster's directory (logs, store, states)\n"
        "  --bare-poll          the bare side polls query-migrate and query-status every 1 ms\n"
        "                       instead of waiting for QEMU's MIGRATION and RESUME events\n";

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "runs", required_argument, NULL, 'n' },
                { "drain-vms", required_argument, NULL, 'd' },
                { "memory-mib", required_argument, NULL, 'm' },
                { "accel", required_argument, NULL, 'a' },
                { "daemon", required_argument, NULL, 'D' },
                { "sim", required_argument, NULL, 's' },
                { "cluster-script", required_argument, NULL, 'S' },
                { "out", required_argument, NULL, 'o' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "bare-poll", no_argument, NULL, 'p' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (gv_parse_u32(optarg, 10, &o->runs) < 0 || o->runs == 0 ||
                            o->runs > 1000)
                                return usage_error("--runs needs a whole number from 1 to 1000, "
                                                   "not '%s'.", optarg);
                        break;
                case 'd':
                        if (gv_parse_u32(optarg, 10, &o->drain_vms) < 0 ||
                            o->drain_vms > MAX_DRAIN)
                                return usage_error("--drain-vms needs a whole number from 0 to "
                                                   "%u (what node-b's 8 GPUs take), not '%s'.",
                                                   MAX_DRAIN, optarg);
                        break;
                case 'm':
                        if (gv_parse_u32(optarg, 10, &o->memory_mib) < 0 ||
                            o->memory_mib < 64 || o->memory_mib > 65536)
                                return usage_error("--memory-mib needs a whole number from 64 "
                                                   "to 65536, not '%s'.", optarg);
                        break;
                case 'a':
                        if (strcmp(optarg, "tcg") != 0 && strcmp(optarg, "kvm") != 0 &&
                            strcmp(optarg, "auto") != 0)
                                return usage_error("--accel: '%s' is not tcg, kvm or auto.",
                                                   optarg);
                        o->accel = optarg;
                        break;
                case 'D': o->daemon = optarg; break;
                case 's': o->sim = optarg; break;
                case 'S': o->script = optarg; break;
                case 'o': o->out = optarg; break;
                case 'k': o->keep_dir = true; break;
                case 'p': o->bare_poll = true; break;
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

struct bare {
        char **argv;     /* the agent's, its run directory replaced */
        char *qmp;       /* its QMP socket */
        struct gv_proc proc;
        int host;        /* the simulated host it runs on (0 node-a, 1 node-b) */
        char *gpu;       /* the GPU the agent gave the VM there (its config's gpus[0].gpu) */
        char *vgpu;      /* the vGPU the bare side made for it (a VF address), while it exists */
};
enum { BARE_SRC, BARE_DST };

struct ctx {
        struct opts o;
        char *command;        /* the command line, as run */
        char *dir;            /* the run's directory (mkdtemp) */
        char *cl;             /* DIR/cluster: the simulated cluster */
        char *script_log;     /* DIR/sim-cluster.log: the script's own output */
        char *ctl;            /* "unix:DIR/cluster/gpuvirt.sock" */
        char *agent[2];       /* node-a's and node-b's agents: "unix:STATE/agent.sock" */
        char *root[2];        /* node-a's and node-b's simulated host roots */
        bool cluster_started; /* stop it on the way out */
        int on;               /* the host bench-big runs on (0 node-a, 1 node-b) */
        bool big_exists;
        char *qemu_version, *accel_reason;

        struct bare bare[2];
        char *bare_log;

        uint64_t *samples[N_MEASURES];
        size_t n[N_MEASURES];
        uint64_t ram_gv, ram_bare; /* bytes moved, last round */
        /* Per timed gpuvirt round: CLOCK_REALTIME ms at the POST and at its 200, the op id. */
        int64_t *sent_ms, *done_ms;
        char **op_ids;
        size_t n_gv;

        /* The drain. */
        unsigned drain_created;
        uint64_t drain_create_ns, drain_ns;
        uint64_t *drain_down, *drain_move; /* per VM, ns */
        size_t n_drain;
        FILE *csv;
};

static int64_t realtime_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_us(long us)
{
        struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000 };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
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

static char *dump(const json_t *j)
{
        char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
        return s ? s : xstrdup("(no body)");
}

/* ---------------------------------------------------------------- cleanup on a signal */

/* What the signal handler needs, prepared before anything is started: fork, execve, waitpid,
 * kill and _exit are async-signal-safe, malloc is not. */
static char *sig_stop_argv[4];
static char *sig_rm_argv[5];
static volatile sig_atomic_t sig_stop_armed, sig_rm_armed;
static volatile sig_atomic_t sig_bare_pid[2];
/* The process group of `sim-cluster.sh start` and the daemons it starts (--same-group). */
static volatile sig_atomic_t sig_cluster_pgid;

static void sig_run(char *const argv[])
{
        pid_t pid = fork();
        if (pid == 0) {
                sigset_t none;
                sigemptyset(&none);
                sigprocmask(SIG_SETMASK, &none, NULL);
                execv(argv[0], argv);
                _exit(127);
        }
        if (pid > 0)
                while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                        ;
}

static void on_signal(int sig)
{
        static const char msg[] = PROG ": interrupted; stopping the cluster and removing its "
                                  "directory.\n";
        (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
        for (int i = 0; i < 2; i++)
                if (sig_bare_pid[i] > 0)
                        (void)kill((pid_t)sig_bare_pid[i], SIGKILL);
        /* The start script (maybe still creating hosts) and the daemons: gone before the stop
         * looks for QEMUs and rm removes their files. The script is our child: reap it. */
        pid_t pg = (pid_t)sig_cluster_pgid;
        if (pg > 0 && killpg(pg, SIGKILL) == 0) {
                for (int i = 0; i < 200; i++) {
                        (void)waitpid(pg, NULL, WNOHANG);
                        if (killpg(pg, 0) < 0)
                                break;
                        struct timespec ts = { .tv_nsec = 10 * 1000000L };
                        (void)nanosleep(&ts, NULL);
                }
        }
        if (sig_stop_armed)
                sig_run(sig_stop_argv);
        if (sig_rm_armed)
                sig_run(sig_rm_argv);
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

/* ---------------------------------------------------------------- the cluster script */

/* Run sim-cluster.sh with args, its output appended to the script log. own_group: in a
 * session and process group of its own, which the daemons it starts keep (--same-group), so
 * that an interrupted run can kill them all at once (on_signal). */
static int run_script(struct ctx *c, char *const args[], int timeout_ms, bool own_group)
{
        _cleanup_strv_free_ char **argv = NULL;
        strv_extend(&argv, c->o.script);
        for (char *const *a = args; *a; a++)
                strv_extend(&argv, *a);
        _cleanup_close_ int log = open(c->script_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                       0600);
        if (log < 0)
                return fail("Cannot open '%s': %s.", c->script_log, strerror(errno));
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log, .stderr_fd = log,
                                    .new_session = own_group };
        struct gv_proc p = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int status = -1;
        int r = gv_proc_spawn(argv, &so, &p, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));
        if (own_group)
                sig_cluster_pgid = p.pid;
        r = gv_proc_wait(&p, timeout_ms, &status, &e);
        if (r == 0) {
                (void)gv_proc_signal(&p, SIGKILL, NULL);
                (void)gv_proc_wait(&p, EXIT_WAIT_MS, NULL, NULL);
        }
        gv_proc_close(&p);
        _cleanup_free_ char *cmd = strv_join(argv, " ");
        if (r <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fail("'%s' %s.", cmd, r < 0    ? gv_error_msg(e, r)
                                      : r == 0 ? "timed out"
                                               : "failed");
                bench_print_log_tail("sim-cluster.sh's output", c->script_log, 3000);
                return -EIO;
        }
        return 0;
}

/* "KEY=VALUE" of cluster.env (values written with printf %q: a URL needs no quoting). */
static char *env_value(const char *env, const char *key)
{
        size_t kl = strlen(key);
        for (const char *l = env; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                if (strncmp(l, key, kl) == 0 && l[kl] == '=')
                        return xstrndup(l + kl + 1, strcspn(l + kl + 1, "\n"));
        }
        return NULL;
}

static int cluster_start(struct ctx *c)
{
        char *args[] = { "start", c->cl, "--hosts", "2", "--profiles", "dgx-h100", "--accel",
                         (char *)c->o.accel, "--same-group", NULL };
        c->cluster_started = true;
        sig_stop_armed = 1;
        int r = run_script(c, args, SCRIPT_START_MS, true);
        if (r < 0)
                return r;
        _cleanup_free_ char *envf = gv_path_join(c->cl, "cluster.env"), *env = NULL;
        if (gv_read_file(envf, 1 << 20, &env, NULL) < 0)
                return fail("sim-cluster.sh started but wrote no '%s'.", envf);
        /* The agents' local UNIX sockets: their TCP APIs want the secret only the controller
         * has (docs/tls.md), and a local socket is what a host's own tools use. */
        _cleanup_free_ char *st_a = env_value(env, "NODE_A_STATE");
        _cleanup_free_ char *st_b = env_value(env, "NODE_B_STATE");
        c->agent[0] = st_a ? xasprintf("unix:%s/agent.sock", st_a) : NULL;
        c->agent[1] = st_b ? xasprintf("unix:%s/agent.sock", st_b) : NULL;
        c->root[0] = env_value(env, "NODE_A_ROOT");
        c->root[1] = env_value(env, "NODE_B_ROOT");
        if (!c->agent[0] || !c->agent[1] || !c->root[0] || !c->root[1])
                return fail("'%s' names no NODE_A_STATE, NODE_B_STATE, NODE_A_ROOT or "
                            "NODE_B_ROOT.", envf);
        c->ctl = xasprintf("unix:%s/gpuvirt.sock", c->cl);
        _cleanup_json_ json_t *hosts = NULL;
        r = bench_call(PROG, c->ctl, "GET", "/api/v1/hosts", NULL, NULL, 200, REQUEST_MS, &hosts);
        if (r < 0)
                return r;
        size_t i;
        json_t *h;
        unsigned up = 0;
        json_array_foreach(hosts, i, h) {
                if (jstr_is(h, "state", "up"))
                        up++;
                if (!c->accel_reason && jstr(h, "accel_reason"))
                        c->accel_reason = xstrdup(jstr(h, "accel_reason"));
        }
        if (up != 2) {
                _cleanup_free_ char *d = dump(hosts);
                return fail("The cluster started but not both hosts are up: %s", d);
        }
        return 0;
}

static void cluster_stop(struct ctx *c)
{
        if (!c->cluster_started)
                return;
        char *args[] = { "stop", c->cl, NULL };
        if (run_script(c, args, SCRIPT_STOP_MS, false) < 0)
                fprintf(stderr, PROG ": the cluster in '%s' may not be stopped; "
                        "'%s stop %s' stops it.\n", c->cl, c->o.script, c->cl);
        c->cluster_started = false;
        sig_stop_armed = 0;
        sig_cluster_pgid = 0;
}

/* ---------------------------------------------------------------- API helpers */

static int ctl_call(struct ctx *c, const char *method, const char *path, const char *body,
                    int want, json_t **ret)
{
        return bench_call(PROG, c->ctl, method, path, body, NULL, want, REQUEST_MS, ret);
}

static int agent_call(struct ctx *c, int host, const char *path, int want, json_t **ret)
{
        return bench_call(PROG, c->agent[host], "GET", path, NULL, NULL, want, REQUEST_MS, ret);
}

/* An operation answered 200 must have succeeded; otherwise say why. */
static int op_succeeded(const char *what, const json_t *op)
{
        if (jstr_is(op, "state", "succeeded"))
                return 0;
        _cleanup_free_ char *d = dump(op);
        return fail("%s did not succeed: %s", what, d);
}

static int create_vm(struct ctx *c, const char *name, unsigned memory_mib, const char *type,
                     const char *host)
{
        _cleanup_json_ json_t *op = NULL;
        _cleanup_free_ char *body = xasprintf(
                "{\"name\": \"%s\", \"vcpus\": 1, \"memory_mib\": %u, \"gpus\": [{\"kind\": "
                "\"vgpu\", \"type\": \"%s\"}], \"host\": \"%s\"}", name, memory_mib, type, host);
        int r = ctl_call(c, "POST", "/api/v1/vms?wait=120", body, 200, &op);
        if (r < 0)
                return r;
        _cleanup_free_ char *what = xasprintf("The create of VM '%s'", name);
        return op_succeeded(what, op);
}

/* The controller has `name` running on `host` with no move left, that host's agent runs it
 * (returned in *ret_vm when asked), the other host's agent does not know it. */
static int check_placed(struct ctx *c, const char *name, int host, json_t **ret_vm)
{
        _cleanup_json_ json_t *v = NULL, *a = NULL, *gone = NULL;
        _cleanup_free_ char *cpath = xasprintf("/api/v1/vms/%s", name);
        _cleanup_free_ char *apath = xasprintf("/v1/vms/%s", name);
        int r = ctl_call(c, "GET", cpath, NULL, 200, &v);
        if (r < 0)
                return r;
        if (!jstr_is(v, "state", "running") || !jstr_is(v, "host", host_name[host]) ||
            (json_object_get(v, "migration") && !json_is_null(json_object_get(v, "migration")))) {
                _cleanup_free_ char *d = dump(v);
                return fail("The controller does not have VM '%s' running on %s with no move "
                            "left: %s", name, host_name[host], d);
        }
        r = agent_call(c, host, apath, 200, &a);
        if (r < 0)
                return r;
        if (!jstr_is(a, "phase", "running") || !json_is_integer(json_object_get(a, "pid"))) {
                _cleanup_free_ char *d = dump(a);
                return fail("%s's agent does not run VM '%s': %s", host_name[host], name, d);
        }
        r = agent_call(c, 1 - host, apath, 404, &gone);
        if (r < 0)
                return fail("%s's agent still knows VM '%s' after its move away.",
                            host_name[1 - host], name);
        if (ret_vm)
                *ret_vm = TAKE_PTR(a);
        return 0;
}

/* ---------------------------------------------------------------- the bare side */

/* "path=..." of a QEMU -chardev socket option, ",," unescaped. */
static char *chardev_path(const char *opt)
{
        const char *p = strstr(opt, "path=");
        if (!p)
                return NULL;
        p += 5;
        char *out = xmalloc(strlen(p) + 1), *o = out;
        for (; *p; p++) {
                if (*p == ',' && p[1] != ',')
                        break;
                if (*p == ',')
                        p++;
                *o++ = *p;
        }
        *o = '\0';
        return out;
}

static char *replace_all(const char *s, const char *from, const char *to)
{
        size_t fl = strlen(from), tl = strlen(to), n = 0;
        for (const char *p = strstr(s, from); p; p = strstr(p + fl, from))
                n++;
        char *out = xmalloc(strlen(s) + n * (tl > fl ? tl - fl : 0) + 1), *o = out;
        const char *p = s;
        for (const char *q = strstr(p, from); q; p = q + fl, q = strstr(p, from)) {
                memcpy(o, p, (size_t)(q - p));
                o += q - p;
                memcpy(o, to, tl);
                o += tl;
        }
        strcpy(o, p);
        return out;
}

/* The bare copy of an agent's QEMU argv (from its GET /v1/vms/NAME on `host`): its run
 * directory (the QMP socket's) replaced by DIR/bare-WHO/ everywhere. need: an argument it must
 * hold. Also the GPU the agent made its vGPU on, where the bare side makes its own. */
static int take_argv(struct ctx *c, const json_t *vm, int host, const char *who,
                     const char *need, struct bare *b)
{
        const json_t *a = json_object_get(vm, "argv"), *v;
        const json_t *g0 = json_array_get(json_object_get(json_object_get(vm, "config"), "gpus"),
                                          0);
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *qmp = NULL;
        size_t i;

        if (!jstr(g0, "gpu") || !jstr_is(g0, "type", VGPU_TYPE)) {
                _cleanup_free_ char *d = dump(vm);
                return fail("%s's agent names no GPU for the " VGPU_TYPE " vGPU of VM '" VM_NAME
                            "' (config.gpus[0].gpu), where the bare side makes its own: %s",
                            host_name[host], d);
        }
        b->host = host;
        b->gpu = xstrdup(jstr(g0, "gpu"));

        json_array_foreach(a, i, v) {
                if (!json_is_string(v))
                        return fail("The agent's \"argv\"[%zu] is not a string.", i);
                strv_extend(&argv, json_string_value(v));
        }
        if (strv_length(argv) < 2) {
                _cleanup_free_ char *d = dump(vm);
                return fail("The agent's GET /v1/vms/" VM_NAME " has no \"argv\" (the QEMU "
                            "command it ran), which the bare side needs: %s", d);
        }
        for (char **p = argv; *p && p[1]; p++)
                if (strcmp(*p, "-chardev") == 0 && strstr(p[1], "id=qmp,"))
                        qmp = chardev_path(p[1]);
        if (!qmp || !strrchr(qmp, '/'))
                return fail("The %s argv has no '-chardev socket,id=qmp,path=DIR/...'.", who);
        if (!strv_contains(argv, need)) {
                _cleanup_free_ char *d = strv_join(argv, " ");
                return fail("The %s argv lacks '%s': %s", who, need, d);
        }
        /* Keep the '/' so that ".../run2" does not match ".../run". */
        _cleanup_free_ char *run = xstrndup(qmp, (size_t)(strrchr(qmp, '/') - qmp + 1));
        _cleanup_free_ char *mine = xasprintf("%s/bare-%s/", c->dir, who);
        if (mkdir(mine, 0700) < 0 && errno != EEXIST)
                return fail("Cannot create '%s': %s.", mine, strerror(errno));
        for (char **p = argv; *p; p++)
                strv_consume(&b->argv, replace_all(*p, run, mine));
        b->qmp = replace_all(qmp, run, mine);
        return 0;
}

static void bare_kill(struct bare *b, int which)
{
        if (b->proc.pidfd < 0)
                return;
        sig_bare_pid[which] = 0;
        (void)gv_proc_signal(&b->proc, SIGKILL, NULL);
        (void)gv_proc_wait(&b->proc, EXIT_WAIT_MS, NULL, NULL);
        gv_proc_close(&b->proc);
}

/* `gpuvirt-sim exec --root ROOT -- gpuvirt ARGS...` on the simulated host `host`, as an
 * administrator (or a script) would run the CLI there: the same host library calls the agent
 * makes, against the same simulated sysfs and NVML. stdout to `out` (NULL: discarded), stderr
 * to the bare log. *ret_ns: from fork to its exit. */
static int run_cli(struct ctx *c, int host, const char *const args[], const char *out,
                   uint64_t *ret_ns)
{
        _cleanup_strv_free_ char **argv = NULL;
        strv_extend(&argv, c->o.sim);
        strv_extend(&argv, "exec");
        strv_extend(&argv, "--root");
        strv_extend(&argv, c->root[host]);
        strv_extend(&argv, "--");
        strv_extend(&argv, BENCH_GPUVIRT_CLI);
        for (const char *const *a = args; *a; a++)
                strv_extend(&argv, *a);
        _cleanup_close_ int log = open(c->bare_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                       0600);
        _cleanup_close_ int ofd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)
                                      : -1;
        if (log < 0 || (out && ofd < 0))
                return fail("Cannot open '%s': %s.", log < 0 ? c->bare_log : out,
                            strerror(errno));
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = ofd, .stderr_fd = log };
        struct gv_proc p = GV_PROC_NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int status = -1;
        uint64_t t0 = bench_now_ns();
        int r = gv_proc_spawn(argv, &so, &p, &e);
        if (r >= 0)
                r = gv_proc_wait(&p, QMP_MS, &status, &e);
        uint64_t t1 = bench_now_ns();
        if (r == 0) {
                (void)gv_proc_signal(&p, SIGKILL, NULL);
                (void)gv_proc_wait(&p, EXIT_WAIT_MS, NULL, NULL);
        }
        gv_proc_close(&p);
        if (r <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *cmd = strv_join(argv, " ");
                fail("'%s' %s.", cmd, r < 0    ? gv_error_msg(e, r)
                                      : r == 0 ? "timed out"
                                               : "failed");
                bench_print_log_tail("its stderr (the bare log)", c->bare_log, 1000);
                return -EIO;
        }
        if (ret_ns)
                *ret_ns = t1 - t0;
        return 0;
}

/* The vGPU a bare QEMU stands for: `gpuvirt vgpu create GPU TYPE --json` on its host (what
 * the agent's attach_vgpu() does in-process: the type checked, a free VF's current_vgpu_type
 * written), its id kept for the destroy. */
static int bare_vgpu_create(struct ctx *c, int which, uint64_t *ret_ns)
{
        struct bare *b = &c->bare[which];
        const char *const args[] = { "vgpu", "create", b->gpu, VGPU_TYPE, "--json", NULL };
        _cleanup_free_ char *out = gv_path_join(c->dir, "bare-vgpu.json"), *text = NULL;
        _cleanup_json_ json_t *j = NULL;
        int r = run_cli(c, b->host, args, out, ret_ns);
        if (r < 0)
                return r;
        if (gv_read_file(out, 1 << 16, &text, NULL) < 0 ||
            !(j = json_loads(text, 0, NULL)) || !jstr(j, "id"))
                return fail("`gpuvirt vgpu create %s " VGPU_TYPE " --json` on %s printed no "
                            "\"id\": '%s'", b->gpu, host_name[b->host], text ? text : "");
        b->vgpu = xstrdup(jstr(j, "id"));
        return 0;
}

/* Its release: `gpuvirt vgpu destroy ID` (the agent's gv_agent_gpus_release()). */
static int bare_vgpu_destroy(struct ctx *c, int which, uint64_t *ret_ns)
{
        struct bare *b = &c->bare[which];
        if (!b->vgpu)
                return 0;
        const char *const args[] = { "vgpu", "destroy", b->vgpu, NULL };
        int r = run_cli(c, b->host, args, NULL, ret_ns);
        if (r >= 0) {
                free(b->vgpu);
                b->vgpu = NULL;
        }
        return r;
}

/* After a failure: both QEMUs gone, then their vGPUs (a vGPU cannot go while held). */
static void bare_cleanup(struct ctx *c)
{
        for (int i = 0; i < 2; i++)
                bare_kill(&c->bare[i], i);
        for (int i = 0; i < 2; i++)
                if (c->bare[i].vgpu && bare_vgpu_destroy(c, i, NULL) < 0)
                        fprintf(stderr, PROG ": vGPU '%s' on %s may be left.\n",
                                c->bare[i].vgpu, host_name[c->bare[i].host]);
}

static int bare_spawn(struct ctx *c, int which)
{
        struct bare *b = &c->bare[which];
        (void)unlink(b->qmp); /* no stale socket for gv_qmp_connect() to knock on */
        _cleanup_close_ int log = open(c->bare_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                       0600);
        if (log < 0)
                return fail("Cannot open '%s': %s.", c->bare_log, strerror(errno));
        /* As the agent runs QEMU: stdio off, stderr to a log, a session of its own. */
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = -1, .stderr_fd = log,
                                    .new_session = true };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_spawn(b->argv, &so, &b->proc, &e);
        if (r < 0)
                return fail("Cannot start the bare %s QEMU: %s",
                            which == BARE_SRC ? "source" : "destination", gv_error_msg(e, r));
        sig_bare_pid[which] = b->proc.pid;
        return 0;
}

static int wait_status(struct gv_qmp *q, const char *want, uint64_t t0, struct gv_error **err)
{
        for (;;) {
                _cleanup_free_ char *st = NULL;
                int r = gv_qmp_query_status(q, QMP_MS, &st, err);
                if (r < 0)
                        return r;
                if (strcmp(st, want) == 0)
                        return 0;
                if (bench_now_ns() - t0 > (uint64_t)MIGRATE_MS * 1000000u)
                        return gv_error_set(err, ETIMEDOUT, "QEMU is still '%s', not '%s', "
                                            "after %d ms.", st, want, MIGRATE_MS);
                sleep_us(POLL_US);
        }
}

/* Until an event of `kind` (MIGRATION: one whose status is final) or MIGRATE_MS after t0. */
static int wait_event(struct gv_qmp *q, enum gv_qmp_event_kind kind, uint64_t t0,
                      struct gv_error **err)
{
        for (;;) {
                int64_t left = MIGRATE_MS - (int64_t)((bench_now_ns() - t0) / 1000000u);
                if (left <= 0)
                        return gv_error_set(err, ETIMEDOUT, "No %s event within %d ms.",
                                            gv_qmp_event_kind_to_string(kind), MIGRATE_MS);
                struct gv_qmp_event ev = { 0 };
                int r = gv_qmp_wait_event(q, kind, (int)left, &ev, err);
                if (r < 0)
                        return r;
                const char *st = jstr(ev.data, "status");
                bool done = kind != GV_QMP_EVENT_MIGRATION ||
                            (st && gv_migrate_status_is_final(gv_migrate_status_from_string(st)));
                gv_qmp_event_done(&ev);
                if (done)
                        return 0;
        }
}

struct bare_result {
        uint64_t total, qmp_only, vgpu, prepared, qmp, listen, run, release, quit, unvgpu,
                cli, types; /* ns */
        int64_t downtime_ms, transfer_ms;
        uint64_t ram;
};

/* A bare QEMU that exited by itself: reaped, forgotten. */
static void bare_exited(struct bare *b, int which)
{
        sig_bare_pid[which] = 0;
        gv_proc_close(&b->proc);
}

/* One bare move, the work any live move of a vGPU VM needs, done by hand: the source with its
 * vGPU started (untimed); then, timed, the destination's vGPU made (`gpuvirt vgpu create`),
 * its QEMU spawned and listening, the transfer, the destination running, the source quit over
 * its QMP connection, its exit waited for and its vGPU removed (`gpuvirt vgpu destroy`). The
 * destination is killed and its vGPU removed afterwards, untimed; after a failure both QEMUs
 * and both vGPUs. */
static int bare_move(struct ctx *c, struct bare_result *ret)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *sq = NULL, *dq = NULL;
        _cleanup_(gv_migrate_info_done) struct gv_migrate_info info = { 0 };
        _cleanup_free_ char *uri = NULL;
        const struct gv_migrate_params params = { .downtime_limit_ms = DOWNTIME_LIMIT_MS,
                                                  .max_bandwidth = NO_CAP_BYTES };
        const char *step = "starting the source";
        struct bare_result b = { 0 };
        uint64_t t0 = 0, ts = 0, tq = 0, tl = 0, tc = 0, t1 = 0, tr = 0, tx = 0, t2 = 0;

        /* Untimed: the source runs with its vGPU, as the agent's does (-S, then cont). */
        int r = bare_vgpu_create(c, BARE_SRC, NULL);
        if (r >= 0)
                r = bare_spawn(c, BARE_SRC);
        if (r < 0) {
                bare_cleanup(c);
                return r;
        }
        r = gv_qmp_connect(c->bare[BARE_SRC].qmp, QMP_MS, &sq, &e);
        if (r >= 0)
                r = gv_qmp_execute(sq, "cont", NULL, QMP_MS, NULL, &e);
        if (r >= 0)
                r = wait_status(sq, "running", bench_now_ns(), &e);
        if (r >= 0 && !c->qemu_version)
                c->qemu_version = xstrdup(gv_qmp_qemu_version(sq));

        /* Timed: the destination's vGPU, then its QEMU. */
        if (r >= 0) {
                step = "making the destination's vGPU";
                t0 = bench_now_ns();
                r = bare_vgpu_create(c, BARE_DST, &b.vgpu);
        }
        if (r >= 0) {
                step = "starting the destination";
                ts = bench_now_ns();
                r = bare_spawn(c, BARE_DST);
        }
        if (r >= 0) {
                r = gv_qmp_connect(c->bare[BARE_DST].qmp, QMP_MS, &dq, &e);
                tq = bench_now_ns();
        }
        if (r >= 0) {
                step = "listening on the destination";
                r = gv_migrate_incoming(dq, "tcp:127.0.0.1:0", QMP_MS, &uri, &e);
                tl = bench_now_ns();
        }
        if (r >= 0) {
                step = "starting the transfer";
                r = gv_migrate_setup(sq, &params, QMP_MS, &e);
        }
        if (r >= 0)
                r = gv_migrate_start(sq, uri, QMP_MS, &e);
        if (r >= 0 && !c->o.bare_poll) {
                /* QEMU's own word, no query competing with the transfer for its main loop. */
                step = "following the transfer";
                r = wait_event(sq, GV_QMP_EVENT_MIGRATION, ts, &e);
                if (r >= 0)
                        r = gv_migrate_query(sq, QMP_MS, &info, &e);
        }
        while (r >= 0 && c->o.bare_poll) {
                step = "following the transfer";
                gv_migrate_info_done(&info);
                r = gv_migrate_query(sq, QMP_MS, &info, &e);
                if (r < 0 || gv_migrate_status_is_final(info.status))
                        break;
                if (bench_now_ns() - ts > (uint64_t)MIGRATE_MS * 1000000u) {
                        r = gv_error_set(&e, ETIMEDOUT, "the transfer is still '%s' after %d ms",
                                         info.status_name, MIGRATE_MS);
                        break;
                }
                sleep_us(POLL_US);
        }
        if (r >= 0 && info.status != GV_MIGRATE_COMPLETED)
                r = gv_error_set(&e, EIO, "the transfer ended '%s': %s", info.status_name,
                                 info.error_desc ? info.error_desc : "no reason given");
        if (r >= 0) {
                tc = bench_now_ns();
                step = "waiting for the destination to run";
                if (!c->o.bare_poll)
                        r = wait_event(dq, GV_QMP_EVENT_RESUME, ts, &e);
                if (r >= 0)
                        r = wait_status(dq, "running", ts, &e);
                t1 = bench_now_ns();
        }
        /* Not timed (the clock stops at t1 and starts again at tr): QEMU 7.2 says "completed"
         * a moment before it fills in total-time and downtime (migration_completion() sets the
         * state, migration_calculate_complete() the times), so a 1 ms poll can read them as 0:
         * the figures come from a query after the destination runs. */
        for (int k = 0; r >= 0 && k < 100 && info.total_time_ms <= 0; k++) {
                if (k > 0)
                        sleep_us(POLL_US);
                gv_migrate_info_done(&info);
                r = gv_migrate_query(sq, QMP_MS, &info, &e);
        }

        /* Timed: the source let go of, as the source agent's release does (quit, the exit
         * waited for, the vGPU removed), on the QMP connection the migration used. */
        if (r >= 0) {
                step = "quitting the source";
                tr = bench_now_ns();
                r = gv_qmp_execute(sq, "quit", NULL, QMP_MS, NULL, &e);
                if (r == -ECONNRESET) /* QEMU may close before its answer is read */
                        r = 0;
        }
        if (r >= 0) {
                int status = -1;
                r = gv_proc_wait(&c->bare[BARE_SRC].proc, EXIT_WAIT_MS, &status, &e);
                if (r == 0)
                        r = gv_error_set(&e, ETIMEDOUT, "the source QEMU did not exit within "
                                         "%d ms of 'quit'", EXIT_WAIT_MS);
                else if (r > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
                        r = gv_error_set(&e, EIO, "the source QEMU ended with wait status 0x%x "
                                         "after 'quit', not exit 0", (unsigned)status);
                tx = bench_now_ns();
                if (r > 0) {
                        bare_exited(&c->bare[BARE_SRC], BARE_SRC);
                        r = 0;
                }
        }
        sq = gv_qmp_free(sq);
        if (r >= 0) {
                step = "removing the source's vGPU";
                r = bare_vgpu_destroy(c, BARE_SRC, &b.unvgpu);
                t2 = bench_now_ns();
        }
        dq = gv_qmp_free(dq);
        /* Untimed: the destination goes, then its vGPU; what a failure left goes too. */
        bare_kill(&c->bare[BARE_DST], BARE_DST);
        if (r >= 0)
                r = bare_vgpu_destroy(c, BARE_DST, NULL);
        if (r >= 0)
                r = run_cli(c, c->bare[BARE_DST].host, (const char *const[]){ "--version", NULL },
                            NULL, &b.cli);
        if (r >= 0)
                r = run_cli(c, c->bare[BARE_DST].host,
                            (const char *const[]){ "vgpu", "types", c->bare[BARE_DST].gpu, NULL },
                            NULL, &b.types);
        if (r < 0) {
                if (e)
                        fail("Bare migration, %s: %s", step, gv_error_msg(e, r));
                bench_print_log_tail("the bare QEMUs' stderr", c->bare_log, 2000);
                bare_cleanup(c);
                return -EIO;
        }
        if (info.downtime_ms < 0 || info.total_time_ms < 0)
                return fail("The bare source's query-migrate completed without 'downtime' or "
                            "'total-time'.");
        b.total = (t1 - t0) + (t2 - tr);
        b.qmp_only = t1 - ts;
        b.prepared = tl - t0;
        b.qmp = tq - ts;
        b.listen = tl - ts;
        b.run = t1 - tc;
        b.release = t2 - tr;
        b.quit = tx - tr;
        b.downtime_ms = info.downtime_ms;
        b.transfer_ms = info.total_time_ms;
        b.ram = info.ram_transferred;
        *ret = b;
        return 0;
}

/* ---------------------------------------------------------------- the gpuvirt side */

struct gv_result {
        uint64_t total;   /* ns */
        int64_t downtime_ms, transfer_ms, elapsed_ms;
        uint64_t ram;
        int64_t sent_ms, done_ms;
        char *op_id;
};

static int result_ms(const json_t *res, const char *key, int64_t *ret)
{
        const json_t *v = json_object_get(res, key);
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
                _cleanup_free_ char *d = dump(res);
                return fail("The move's result has no '%s' (a whole number): %s", key, d);
        }
        *ret = json_integer_value(v);
        return 0;
}

/* One move of bench-big to the other host through the controller, then the untimed checks. */
static int gv_move(struct ctx *c, struct gv_result *ret)
{
        int to = 1 - c->on;
        _cleanup_json_ json_t *op = NULL;
        _cleanup_free_ char *body = xasprintf("{\"to\": \"%s\"}", host_name[to]);
        int64_t sent = realtime_ms();
        uint64_t t0 = bench_now_ns();
        int r = ctl_call(c, "POST", "/api/v1/vms/" VM_NAME "/migrate?wait=120", body, 200, &op);
        uint64_t t1 = bench_now_ns();
        int64_t done = realtime_ms();
        if (r >= 0)
                r = op_succeeded("The move of VM '" VM_NAME "'", op);
        if (r < 0)
                return r;
        const json_t *res = json_object_get(op, "result");
        if (!jstr_is(res, "mode", "live") || !jstr_is(res, "from", host_name[c->on]) ||
            !jstr_is(res, "to", host_name[to])) {
                _cleanup_free_ char *d = dump(op);
                return fail("The move's result is not a live move from %s to %s: %s",
                            host_name[c->on], host_name[to], d);
        }
        struct gv_result g = { .total = t1 - t0, .sent_ms = sent, .done_ms = done };
        int64_t ram = 0;
        if ((r = result_ms(res, "downtime_ms", &g.downtime_ms)) < 0 ||
            (r = result_ms(res, "transfer_ms", &g.transfer_ms)) < 0 ||
            (r = result_ms(res, "elapsed_ms", &g.elapsed_ms)) < 0 ||
            (r = result_ms(res, "ram_transferred", &ram)) < 0)
                return r;
        g.ram = (uint64_t)ram;
        c->on = to;
        if ((r = check_placed(c, VM_NAME, to, NULL)) < 0)
                return r;
        g.op_id = xstrdup(jstr(op, "id") ? jstr(op, "id") : "?");
        *ret = g;
        return 0;
}

/* ---------------------------------------------------------------- the rounds */

static void record(struct ctx *c, int m, unsigned round, uint64_t ns)
{
        c->samples[m][c->n[m]++] = ns;
        if (c->csv)
                fprintf(c->csv, "%u,%s,%.3f\n", round, measure_csv[m],
                        (double)ns / BENCH_NSEC_PER_MSEC);
}

static uint64_t ms_ns(int64_t ms)
{
        return (uint64_t)(ms > 0 ? ms : 0) * 1000000u;
}

static int round_gv(struct ctx *c, unsigned round)
{
        struct gv_result g = { 0 };
        int r = gv_move(c, &g);
        if (r < 0)
                return r;
        if (round == 0) {
                free(g.op_id);
                return 0;
        }
        record(c, M_GV_TOTAL, round, g.total);
        record(c, M_GV_DOWN, round, ms_ns(g.downtime_ms));
        record(c, M_GV_TRANSFER, round, ms_ns(g.transfer_ms));
        record(c, M_GV_ELAPSED, round, ms_ns(g.elapsed_ms));
        c->ram_gv = g.ram;
        c->sent_ms[c->n_gv] = g.sent_ms;
        c->done_ms[c->n_gv] = g.done_ms;
        c->op_ids[c->n_gv++] = g.op_id;
        return 0;
}

static int round_bare(struct ctx *c, unsigned round)
{
        struct bare_result b = { 0 };
        int r = bare_move(c, &b);
        if (r < 0 || round == 0)
                return r;
        record(c, M_BARE_TOTAL, round, b.total);
        record(c, M_BARE_DOWN, round, ms_ns(b.downtime_ms));
        record(c, M_BARE_QMP_ONLY, round, b.qmp_only);
        record(c, M_BARE_TRANSFER, round, ms_ns(b.transfer_ms));
        record(c, M_BARE_VGPU, round, b.vgpu);
        record(c, M_BARE_PREPARED, round, b.prepared);
        record(c, M_BARE_QMP, round, b.qmp);
        record(c, M_BARE_LISTEN, round, b.listen);
        record(c, M_BARE_RUN, round, b.run);
        record(c, M_BARE_RELEASE, round, b.release);
        record(c, M_BARE_QUIT, round, b.quit);
        record(c, M_BARE_UNVGPU, round, b.unvgpu);
        record(c, M_BARE_CLI, round, b.cli);
        record(c, M_BARE_TYPES, round, b.types);
        c->ram_bare = b.ram;
        return 0;
}

/* Setup: bench-big on node-a, its command line; the warm-up move to node-b and the
 * destination's command line; one warm-up bare move. */
static int migrate_setup(struct ctx *c)
{
        _cleanup_json_ json_t *src = NULL, *dst = NULL;
        int r = create_vm(c, VM_NAME, c->o.memory_mib, VGPU_TYPE, host_name[0]);
        if (r < 0)
                return r;
        c->big_exists = true;
        c->on = 0;
        if ((r = check_placed(c, VM_NAME, 0, &src)) < 0)
                return r;
        if ((r = take_argv(c, src, 0, "src", "-S", &c->bare[BARE_SRC])) < 0)
                return r;
        if ((r = round_gv(c, 0)) < 0) {
                fprintf(stderr, PROG ": the warm-up move through gpuvirt failed.\n");
                return r;
        }
        if ((r = agent_call(c, c->on, "/v1/vms/" VM_NAME, 200, &dst)) < 0)
                return r;
        if ((r = take_argv(c, dst, c->on, "dst", "-incoming", &c->bare[BARE_DST])) < 0)
                return r;
        c->bare_log = gv_path_join(c->dir, "bare-qemu.log");
        if ((r = round_bare(c, 0)) < 0)
                fprintf(stderr, PROG ": the warm-up bare move failed.\n");
        return r;
}

static int migrate_rounds(struct ctx *c)
{
        int r = 0;
        for (unsigned i = 1; r >= 0 && i <= c->o.runs; i++) {
                bool gv_first = i % 2 == 1;
                for (int k = 0; r >= 0 && k < 2; k++) {
                        bool gv = (k == 0) == gv_first;
                        r = gv ? round_gv(c, i) : round_bare(c, i);
                        if (r < 0)
                                fprintf(stderr, PROG ": the %s move of round %u failed.\n",
                                        gv ? "gpuvirt" : "bare", i);
                }
        }
        if (r >= 0) {
                _cleanup_json_ json_t *op = NULL;
                r = ctl_call(c, "DELETE", "/api/v1/vms/" VM_NAME "?wait=120", NULL, 200, &op);
                if (r >= 0)
                        r = op_succeeded("The delete of VM '" VM_NAME "'", op);
                if (r >= 0)
                        c->big_exists = false;
        }
        return r;
}

/* ---------------------------------------------------------------- the drain */

static char *drain_vm_name(unsigned i)
{
        return xasprintf("bench-d%02u", i + 1);
}

static int drain(struct ctx *c)
{
        unsigned n = c->o.drain_vms;
        int r = 0;
        uint64_t t0 = bench_now_ns();
        for (unsigned i = 0; r >= 0 && i < n; i++) {
                _cleanup_free_ char *name = drain_vm_name(i);
                r = create_vm(c, name, DRAIN_MEMORY_MIB, i % 2 ? MIG_VGPU_TYPE : VGPU_TYPE,
                              host_name[0]);
                if (r >= 0)
                        c->drain_created++;
        }
        if (r < 0)
                return r;
        c->drain_create_ns = bench_now_ns() - t0;

        _cleanup_json_ json_t *op = NULL, *ops = NULL, *vms = NULL, *left = NULL;
        _cleanup_free_ char *path = xasprintf("/api/v1/hosts/%s/drain?wait=%d", host_name[0],
                                              DRAIN_WAIT_S);
        t0 = bench_now_ns();
        r = bench_call(PROG, c->ctl, "POST", path, "{}", NULL, 200,
                       (DRAIN_WAIT_S + 60) * 1000, &op);
        c->drain_ns = bench_now_ns() - t0;
        if (r >= 0)
                r = op_succeeded("The drain of node-a", op);
        if (r < 0)
                return r;
        const json_t *res = json_object_get(op, "result");
        if (json_integer_value(json_object_get(res, "done")) != (json_int_t)n ||
            json_integer_value(json_object_get(res, "failed")) != 0 ||
            !json_is_true(json_object_get(res, "empty"))) {
                _cleanup_free_ char *d = dump(op);
                return fail("The drain did not move all %u VMs: %s", n, d);
        }

        /* Every VM runs on node-b; node-a's agent holds none. */
        if ((r = ctl_call(c, "GET", "/api/v1/vms", NULL, 200, &vms)) < 0)
                return r;
        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *name = drain_vm_name(i);
                const json_t *v;
                size_t k;
                bool ok = false;
                json_array_foreach(vms, k, v)
                        if (jstr_is(v, "name", name))
                                ok = jstr_is(v, "host", host_name[1]) &&
                                     jstr_is(v, "state", "running");
                if (!ok)
                        return fail("After the drain VM '%s' does not run on %s.", name,
                                    host_name[1]);
        }
        if ((r = agent_call(c, 0, "/v1/vms", 200, &left)) < 0)
                return r;
        if (json_array_size(left) != 0) {
                _cleanup_free_ char *d = dump(left);
                return fail("After the drain node-a's agent still holds VMs: %s", d);
        }

        /* The drain's moves: the newest vm.migrate operation of each VM. */
        _cleanup_free_ char *lpath = xasprintf("/api/v1/operations?limit=%u", n + 100);
        if ((r = ctl_call(c, "GET", lpath, NULL, 200, &ops)) < 0)
                return r;
        c->drain_down = xcalloc(n, sizeof(uint64_t));
        c->drain_move = xcalloc(n, sizeof(uint64_t));
        for (unsigned i = 0; i < n; i++) {
                _cleanup_free_ char *name = drain_vm_name(i);
                _cleanup_free_ char *target = xasprintf("vm/%s", name);
                const json_t *o, *found = NULL;
                size_t k;
                json_array_foreach(ops, k, o)
                        if (!found && jstr_is(o, "kind", "vm.migrate") &&
                            jstr_is(o, "target", target))
                                found = o; /* newest first */
                if (!found)
                        return fail("No vm.migrate operation for VM '%s' after the drain.", name);
                _cleanup_free_ char *what = xasprintf("The drain's move of '%s'", name);
                if ((r = op_succeeded(what, found)) < 0)
                        return r;
                const json_t *mr = json_object_get(found, "result");
                int64_t down, el;
                if ((r = result_ms(mr, "downtime_ms", &down)) < 0 ||
                    (r = result_ms(mr, "elapsed_ms", &el)) < 0)
                        return r;
                if (!jstr_is(mr, "mode", "live") || !jstr_is(mr, "to", host_name[1])) {
                        _cleanup_free_ char *d = dump(found);
                        return fail("The drain's move of '%s' is not live to %s: %s", name,
                                    host_name[1], d);
                }
                c->drain_down[c->n_drain] = ms_ns(down);
                c->drain_move[c->n_drain++] = ms_ns(el);
                if (c->csv) {
                        fprintf(c->csv, "%u,drain_vm_downtime,%" PRId64 "\n", i + 1, down);
                        fprintf(c->csv, "%u,drain_vm_move,%" PRId64 "\n", i + 1, el);
                }
        }
        if (c->csv)
                fprintf(c->csv, "0,drain_wall,%.3f\n", (double)c->drain_ns / BENCH_NSEC_PER_MSEC);
        return 0;
}

/* ---------------------------------------------------------------- the event-log split */

struct phases {
        uint64_t *ns[N_PHASES];
        size_t n;
};

static int64_t progress_of(const struct gv_store_event *ev)
{
        const json_t *p = json_object_get(ev->data, "progress");
        return json_is_integer(p) ? json_integer_value(p) : -1;
}

/* From the store the controller left (read after it stopped): per timed gpuvirt move, the
 * times of its steps. */
static int split_phases(struct ctx *c, struct phases *ph)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *url = xasprintf("sqlite:%s/controller/gpuvirt.db", c->cl);
        struct gv_store *s = NULL;
        struct gv_store_event *ev = NULL;
        size_t n_ev = 0;
        int r = gv_store_open(url, &s, &e);
        if (r >= 0)
                r = gv_store_events(s, 0, 10000000, &ev, &n_ev, &e);
        gv_store_free(s);
        if (r < 0)
                return fail("Cannot read the controller's event log in '%s': %s", url,
                            gv_error_msg(e, r));
        for (int p = 0; p < N_PHASES; p++)
                ph->ns[p] = xcalloc(c->n_gv ? c->n_gv : 1, sizeof(uint64_t));
        r = 0;
        for (size_t i = 0; i < c->n_gv && r >= 0; i++) {
                _cleanup_free_ char *opsubj = xasprintf("operation/%s", c->op_ids[i]);
                int64_t t[N_PHASES + 1] = { c->sent_ms[i], -1, -1, -1, -1, -1, -1,
                                            c->done_ms[i] };
                for (size_t k = 0; k < n_ev; k++) {
                        const struct gv_store_event *x = &ev[k];
                        /* Both clocks are CLOCK_REALTIME in whole ms: this move's events
                         * lie between its POST and its 200, the previous move's before. */
                        if (x->time < c->sent_ms[i] || x->time > c->done_ms[i])
                                continue;
                        if (strcmp(x->subject, "vm/" VM_NAME) == 0) {
                                if (strcmp(x->type, "vm.migration") == 0 && t[1] < 0 &&
                                    jstr_is(x->data, "state", "preparing"))
                                        t[1] = x->time;
                                else if (strcmp(x->type, "vm.migrated") == 0 && t[5] < 0)
                                        t[5] = x->time;
                        } else if (strcmp(x->subject, opsubj) == 0) {
                                int64_t p = progress_of(x);
                                if (strcmp(x->type, "operation.done") == 0)
                                        t[6] = x->time;
                                else if (p == 10 && t[2] < 0)
                                        t[2] = x->time;
                                else if (p == 30 && t[3] < 0)
                                        t[3] = x->time;
                                else if (p >= 92 && t[4] < 0)
                                        t[4] = x->time;
                        }
                }
                for (int p = 1; p <= N_PHASES - 1; p++)
                        if (t[p] < 0)
                                r = fail("The event log lacks step %d ('%s') of operation "
                                         "'%s'; src/controller/migrate.c's progress marks may "
                                         "have changed.", p, phase_row[p - 1], c->op_ids[i]);
                for (int p = 0; r >= 0 && p < N_PHASES; p++)
                        ph->ns[p][ph->n] = ms_ns(t[p + 1] - t[p]);
                if (r >= 0)
                        ph->n++;
        }
        gv_store_events_free(ev, n_ev);
        return r;
}

/* ---------------------------------------------------------------- report */

static void print_row(const char *name, const struct bench_stats *s)
{
        printf("  %-44s %9.3f %9.3f %9.3f %9.3f %9.3f\n", name, s->p50, s->p90, s->max, s->min,
               s->mean);
}

static void report(struct ctx *c, const struct phases *ph)
{
        struct bench_stats st[N_MEASURES];
        for (int m = 0; m < N_MEASURES; m++)
                st[m] = bench_stats_of(c->samples[m], c->n[m]);

        printf("gpuvirt live migration benchmark\n");
        bench_print_machine();
        printf("build:   %s, sanitizers %s\n", BENCH_BUILDTYPE, BENCH_SANITIZE);
        printf("qemu:    %s; accel %s\n", c->qemu_version ? c->qemu_version : "?",
               c->accel_reason ? c->accel_reason : c->o.accel);
        printf("command: %s\n", c->command);
        printf("cluster: contrib/sim-cluster.sh, 2 simulated dgx-h100 hosts (node-a, node-b), a "
               "controller and one agent per host\n         (gpuvirtd '%s'), loopback, "
               "store sqlite\n", c->o.daemon);
        printf("VM:      '" VM_NAME "': 1 vCPU, %u MiB, no disk and no guest (SeaBIOS, nothing "
               "to boot), one vGPU " VGPU_TYPE "\n         (the simulator's stand-in device, "
               "QEMU 'edu')\n", c->o.memory_mib);
        printf("method:  %u timed rounds after a warm-up move per side; per round one move per "
               "side, the first side alternating;\n         gpuvirt alternates node-b -> node-a "
               "and back; bare: the agents' two QEMU command lines (source\n         -S then "
               "cont, destination -incoming defer) and their vGPUs made and removed with\n"
               "         `gpuvirt-sim exec --root HOST -- gpuvirt vgpu create|destroy`, timed from "
               "the destination's vGPU\n         to its 'running' plus the source's quit, exit "
               "and vGPU removal (the query for QEMU's figures\n         between them untimed), "
               "%s;\n         CLOCK_MONOTONIC; nearest-rank percentiles\n",
               c->o.runs, c->o.bare_poll ? "query-migrate/query-status every 1 ms (--bare-poll)"
                                         : "waiting for QEMU's MIGRATION and RESUME events");

        printf("\n  migration of the %u MiB VM (ms)                  p50       p90       max"
               "       min      mean\n", c->o.memory_mib);
        for (int m = 0; m < N_MEASURES; m++) {
                if (m == M_BARE_QMP_ONLY)
                        printf("  context\n");
                print_row(measure_row[m], &st[m]);
        }
        if (ph && ph->n > 0) {
                printf("  the gpuvirt move by the controller's event log (1 ms resolution)\n");
                for (int p = 0; p < N_PHASES; p++) {
                        struct bench_stats s = bench_stats_of(ph->ns[p], ph->n);
                        print_row(phase_row[p], &s);
                }
        }
        printf("  RAM moved per move: gpuvirt %.1f MiB, bare %.1f MiB (zero pages are sent as "
               "flags)\n", (double)c->ram_gv / 1048576.0, (double)c->ram_bare / 1048576.0);

        double over = st[M_GV_TOTAL].p50 - st[M_BARE_TOTAL].p50;
        double over_q = st[M_GV_TOTAL].p50 - st[M_BARE_QMP_ONLY].p50;
        printf("\n  orchestration overhead at p50, like for like (bare with vGPUs and the "
               "source's release):\n    %+.3f ms (gpuvirt %.3f - bare %.3f); target <= 50 ms: "
               "%s\n", over, st[M_GV_TOTAL].p50, st[M_BARE_TOTAL].p50,
               over <= 50.0 ? "met" : "MISSED");
        printf("  against bare QMP only (no vGPU, the source left running; the earlier "
               "baseline):\n    %+.3f ms (gpuvirt %.3f - bare QMP only %.3f); target <= 50 ms: "
               "%s\n", over_q, st[M_GV_TOTAL].p50, st[M_BARE_QMP_ONLY].p50,
               over_q <= 50.0 ? "met" : "MISSED");
        /* The CLI builds the whole host's inventory on every call (the agent keeps its own):
         * what a read-only call costs beyond starting the process, twice (create, destroy). */
        double scan = st[M_BARE_TYPES].p50 - st[M_BARE_CLI].p50;
        printf("  like for like less the CLI's cold host scan (2 x (vgpu types - --version) = "
               "%.1f ms; an estimate):\n    %+.3f ms (gpuvirt %.3f - bare %.3f)\n", 2 * scan,
               over + 2 * scan, st[M_GV_TOTAL].p50, st[M_BARE_TOTAL].p50 - 2 * scan);
        double gd = st[M_GV_DOWN].p50, bd = st[M_BARE_DOWN].p50, dd = gd - bd;
        const char *dv = dd <= 0.1 * bd ? "met"
                         : dd <= 1.0    ? "met within QEMU's 1 ms resolution"
                                        : "MISSED";
        printf("  downtime at p50: gpuvirt %.0f ms, bare %.0f ms (%+.0f ms); target within "
               "10 %% of bare: %s\n", gd, bd, dd, dv);
        printf("  checks: %zu gpuvirt moves 'succeeded', each VM then running on its target "
               "(controller and agent) and gone\n          from its source's agent; %zu bare "
               "moves 'completed' with the destination 'running', the source QEMU\n          "
               "exited 0 after 'quit', both vGPUs made and removed by the CLI\n", c->n[M_GV_TOTAL],
               c->n[M_BARE_TOTAL]);

        if (c->n_drain) {
                struct bench_stats dn = bench_stats_of(c->drain_down, c->n_drain);
                struct bench_stats mv = bench_stats_of(c->drain_move, c->n_drain);
                uint64_t sum = 0;
                for (size_t i = 0; i < c->n_drain; i++)
                        sum += c->drain_move[i];
                printf("\n  drain of %zu VMs (%u MiB each; %zu vGPU " VGPU_TYPE ", %zu MIG-backed "
                       "vGPU " MIG_VGPU_TYPE ") from node-a to node-b\n", c->n_drain,
                       DRAIN_MEMORY_MIB, (c->n_drain + 1) / 2, c->n_drain / 2);
                printf("    wall time, POST drain?wait -> succeeded: %.3f ms (%.3f ms per VM; "
                       "the %zu creates before it took %.3f ms)\n",
                       (double)c->drain_ns / BENCH_NSEC_PER_MSEC,
                       (double)c->drain_ns / BENCH_NSEC_PER_MSEC / (double)c->n_drain,
                       c->n_drain, (double)c->drain_create_ns / BENCH_NSEC_PER_MSEC);
                printf("                                              p50       p90       max"
                       "       min      mean\n");
                print_row("per-VM downtime (QEMU's, op result)", &dn);
                print_row("per-VM move (the op's elapsed_ms)", &mv);
                printf("    moves one after another: their sum %.3f ms is %.0f %% of the wall "
                       "time\n", (double)sum / BENCH_NSEC_PER_MSEC,
                       100.0 * (double)sum / (double)c->drain_ns);
                printf("  checks: the drain 'succeeded' with all %zu moved live, each VM "
                       "running on node-b, node-a's agent empty\n", c->n_drain);
        }
}

/* ---------------------------------------------------------------- main */

static void ctx_done(struct ctx *c)
{
        bare_cleanup(c);
        for (int i = 0; i < 2; i++) {
                strv_free(c->bare[i].argv);
                free(c->bare[i].qmp);
                free(c->bare[i].gpu);
                free(c->bare[i].vgpu);
        }
        cluster_stop(c);
}

static void ctx_free(struct ctx *c)
{
        if (c->dir) {
                if (c->o.keep_dir)
                        fprintf(stderr, PROG ": kept '%s' (cluster/ with its logs/, the bare "
                                "QEMUs' log).\n", c->dir);
                else
                        (void)gv_rm_rf(c->dir);
                sig_rm_armed = 0;
        }
        free(c->command);
        free(c->dir);
        free(c->cl);
        free(c->script_log);
        free(c->ctl);
        free(c->agent[0]);
        free(c->agent[1]);
        free(c->root[0]);
        free(c->root[1]);
        free(c->qemu_version);
        free(c->accel_reason);
        free(c->bare_log);
        for (int m = 0; m < N_MEASURES; m++)
                free(c->samples[m]);
        free(c->sent_ms);
        free(c->done_ms);
        for (size_t i = 0; i < c->n_gv; i++)
                free(c->op_ids[i]);
        free(c->op_ids);
        free(c->drain_down);
        free(c->drain_move);
        if (c->csv)
                (void)fclose(c->csv);
        free(sig_stop_argv[0]);
        free(sig_stop_argv[2]);
        free(sig_rm_argv[3]);
}

static char *command_line(int argc, char **argv)
{
        _cleanup_strv_free_ char **l = NULL;
        for (int i = 0; i < argc; i++)
                strv_extend(&l, argv[i]);
        return strv_join(l, " ");
}

int main(int argc, char **argv)
{
        struct ctx c = {
                .o = { .runs = DEFAULT_RUNS, .drain_vms = DEFAULT_DRAIN,
                       .memory_mib = DEFAULT_MEMORY_MIB, .accel = "tcg" },
                .bare = { { .proc = GV_PROC_NULL }, { .proc = GV_PROC_NULL } },
        };
        int r = parse_opts(argc, argv, &c.o);
        if (r != 0)
                return r;
        c.o.daemon = bench_daemon_path(c.o.daemon, "GPUVIRT_BENCH_DAEMON", BENCH_GPUVIRTD);
        if (!c.o.sim)
                c.o.sim = BENCH_GPUVIRT_SIM;
        if (!c.o.script)
                c.o.script = GPUVIRT_SOURCE_ROOT "/contrib/sim-cluster.sh";
        r = bench_need((const char *const[]){ "gpuvirtd", c.o.daemon, "gpuvirt-sim", c.o.sim,
                                              "sim-cluster.sh", c.o.script, NULL },
                       (const char *const[]){ "qemu-system-x86_64", "bash", "curl", "jq", NULL });
        if (r != 0)
                return r;
        c.command = command_line(argc, argv);

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-migrate-XXXXXX",
                                               tmp && *tmp ? tmp : "/tmp");
        /* Before anything exists to clean up, the handler's argv is ready. */
        install_signals();
        if (!mkdtemp(templ)) {
                fprintf(stderr, PROG ": cannot create a directory '%s': %s.\n", templ,
                        strerror(errno));
                free(c.command);
                return 1;
        }
        c.dir = TAKE_PTR(templ);
        c.cl = gv_path_join(c.dir, "cluster");
        c.script_log = gv_path_join(c.dir, "sim-cluster.log");
        sig_stop_argv[0] = xstrdup(c.o.script);
        sig_stop_argv[1] = "stop";
        sig_stop_argv[2] = xstrdup(c.cl);
        sig_rm_argv[0] = "/bin/rm";
        sig_rm_argv[1] = "-rf";
        sig_rm_argv[2] = "--";
        sig_rm_argv[3] = xstrdup(c.dir);
        sig_rm_armed = !c.o.keep_dir;

        for (int m = 0; m < N_MEASURES; m++)
                c.samples[m] = xcalloc(c.o.runs, sizeof(uint64_t));
        c.sent_ms = xcalloc(c.o.runs, sizeof(int64_t));
        c.done_ms = xcalloc(c.o.runs, sizeof(int64_t));
        c.op_ids = xcalloc(c.o.runs, sizeof(char *));
        if (c.o.out) {
                c.csv = fopen(c.o.out, "we");
                if (!c.csv) {
                        fprintf(stderr, PROG ": cannot write '%s': %s.\n", c.o.out,
                                strerror(errno));
                        ctx_free(&c);
                        return 1;
                }
                fputs("round,measure,ms\n", c.csv);
        }
        /* sim-cluster.sh runs these binaries. */
        setenv("GPUVIRTD", c.o.daemon, 1);
        setenv("GPUVIRT_SIM", c.o.sim, 1);
        setenv("GPUVIRT", BENCH_GPUVIRT_CLI, 1);

        r = cluster_start(&c);
        if (r >= 0)
                r = migrate_setup(&c);
        if (r >= 0)
                r = migrate_rounds(&c);
        if (r >= 0 && c.o.drain_vms > 0)
                r = drain(&c);
        if (r < 0 && c.cl) {
                _cleanup_free_ char *ctl_log = gv_path_join(c.cl, "logs", "controller.log");
                _cleanup_free_ char *a_log = gv_path_join(c.cl, "logs", "node-a.log");
                _cleanup_free_ char *b_log = gv_path_join(c.cl, "logs", "node-b.log");
                bench_print_log_tail("the controller's log", ctl_log, 2000);
                bench_print_log_tail("node-a's agent log", a_log, 2000);
                bench_print_log_tail("node-b's agent log", b_log, 2000);
        }
        ctx_done(&c);
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
                free(ph.ns[p]);
        ctx_free(&c);
        return r >= 0 ? 0 : 1;
}
