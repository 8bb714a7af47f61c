/* SPDX-License-Identifier: MIT */
/*
 * bench-recovery — how long a controller with 1,000 VMs takes to come back after SIGKILL
 * (issue 10, BENCHMARKS.md "Controller recovery"): until it answers the API, until every VM's
 * state has been observed again from its agent, until it accepts a new create; beside a cold
 * start of the same controller on an empty store and the read of the 1,000 VM documents from
 * the store, in the same run.
 *
 *   bench-recovery [--vms N] [--hosts H] [--rounds R] [--running K] [--store URL]
 *                  [--cluster-script PATH] [--keep-dir]
 *
 * Setup (untimed): contrib/sim-cluster.sh start DIR --hosts H (simulated 'l40s-4' hosts, 2,000
 * vCPUs each); K VMs (default 3) created through the API and running (real QEMU on TCG); N VMs
 * (default 1,000) defined, not started, on the agents (POST /v1/vms on each agent's UNIX socket:
 * 1 vCPU, 128 MiB, no GPU, no disk) and written into the store while the controller is down
 * (their documents, placed on their hosts, and each host's allocation document, as vms.c writes
 * them), then the controller is started and waited for until it observed them all.
 *
 * Each round: the controller is SIGKILLed, then (untimed) the seeded VMs' states are set to
 * "unknown" in the store, so that their observation from the agents is visible; the controller is started again with its argv as it
 * was (read from /proc before the kill) and timed from the spawn to: GET /api/v1/health's 200;
 * GET /api/v1/vms listing all N seeded VMs "defined" (each observed from its agent again; the
 * model rebuilt, every host polled); POST /api/v1/vms (a CPU-only VM) answered 202/200.
 * The running VMs' QEMU pids must be the same afterwards (I4: recovery stops no running VM).
 *
 * Baselines in the same run: the same controller binary started cold on an empty store (its
 * own state directory and socket), timed to its first 200 from health; and the read of the
 * N VM documents from the store (gv_store_list, the controller's own first step).
 *
 * Exit status: 0 measured, 1 a check failed, 2 usage, 77 nothing to measure.
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
#include <sys/wait.h>
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

#ifndef BENCH_GPUVIRTD
#define BENCH_GPUVIRTD GPUVIRT_BUILD_ROOT "/src/daemon/gpuvirtd"
#endif
#ifndef BENCH_GPUVIRT_SIM
#define BENCH_GPUVIRT_SIM GPUVIRT_BUILD_ROOT "/sim/tool/gpuvirt-sim"
#endif
#ifndef BENCH_GPUVIRT_CLI
#define BENCH_GPUVIRT_CLI GPUVIRT_BUILD_ROOT "/src/cli/gpuvirt"
#endif

#define PROG "bench-recovery"
#define fail(...) bench_fail(PROG, __VA_ARGS__)
#define usage_error(...) bench_usage_error(PROG, __VA_ARGS__)
#define REQUEST_MS 120000
#define PHASE_MS 300000ull

struct opts {
        unsigned vms, hosts, rounds, running;
        const char *store, *script;
        bool keep_dir;
};

struct ctx {
        struct opts o;
        char *dir, *cl, *ctl, *script_log, *store_url;
        char **agents;        /* "unix:.../agent.sock" per host */
        char **host_names;
        char **ctl_argv;      /* the controller's argv, for its restarts */
        struct gv_proc ctl_proc;
        pid_t ctl_pid;        /* the controller now (the script's, then ours) */
        pid_t *qemu_pids;     /* the running VMs' */
        unsigned op_seq;
};

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "vms", required_argument, NULL, 'n' },
                { "hosts", required_argument, NULL, 'H' },
                { "rounds", required_argument, NULL, 'r' },
                { "running", required_argument, NULL, 'R' },
                { "store", required_argument, NULL, 'S' },
                { "cluster-script", required_argument, NULL, 'c' },
                { "keep-dir", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        uint32_t v;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v < 1 || v > 20000)
                                return usage_error("--vms: 1 to 20000, not '%s'.", optarg);
                        o->vms = v;
                        break;
                case 'H':
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v < 1 || v > 8)
                                return usage_error("--hosts: 1 to 8, not '%s'.", optarg);
                        o->hosts = v;
                        break;
                case 'r':
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v < 1 || v > 100)
                                return usage_error("--rounds: 1 to 100, not '%s'.", optarg);
                        o->rounds = v;
                        break;
                case 'R':
                        if (gv_parse_u32(optarg, 10, &v) < 0 || v > 16)
                                return usage_error("--running: 0 to 16, not '%s'.", optarg);
                        o->running = v;
                        break;
                case 'S': o->store = optarg; break;
                case 'c': o->script = optarg; break;
                case 'k': o->keep_dir = true; break;
                case 'h':
                        printf("Usage: " PROG " [--vms N] [--hosts H] [--rounds R] [--running K]"
                               " [--store URL]\n                      [--cluster-script PATH] "
                               "[--keep-dir]\n\nRecovery of a controller with N VMs (default "
                               "1000) after SIGKILL, beside a cold start on an\nempty store and "
                               "the read of the N VM documents (BENCHMARKS.md).\n  --store URL  "
                               "the controller's store (default: SQLite in its state dir), e.g.\n"
                               "               a postgresql:// URL from tests/common/"
                               "pg-server.sh\n");
                        exit(0);
                default:
                        return usage_error("invalid option.");
                }
        }
        if (optind < argc)
                return usage_error("unexpected argument '%s'.", argv[optind]);
        return 0;
}

static int script(struct ctx *c, char *const args[])
{
        _cleanup_strv_free_ char **argv = NULL;
        strv_extend(&argv, c->o.script);
        for (char *const *a = args; *a; a++)
                strv_extend(&argv, *a);
        _cleanup_free_ char *out = NULL, *errout = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_run(argv, 300000, 1 << 20, &out, &errout, &e);
        if (r < 0) {
                _cleanup_free_ char *cmd = strv_join(argv, " ");
                return fail("'%s' failed: %s\n%s%s", cmd, gv_error_msg(e, r), out ?: "",
                            errout ?: "");
        }
        return 0;
}

static char *env_value(const char *env, const char *key)
{
        size_t kl = strlen(key);
        for (const char *l = env; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
                if (strncmp(l, key, kl) == 0 && l[kl] == '=')
                        return xstrndup(l + kl + 1, strcspn(l + kl + 1, "\n"));
        return NULL;
}

/* The controller's argv from /proc (before it is killed), for identical restarts. */
static int read_argv(pid_t pid, char ***ret)
{
        _cleanup_free_ char *path = xasprintf("/proc/%d/cmdline", (int)pid), *buf = NULL;
        size_t len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return fail("Cannot open '%s': %s.", path, strerror(errno));
        buf = xmalloc(65536);
        ssize_t n;
        while ((n = read(fd, buf + len, 65535 - len)) > 0)
                len += (size_t)n;
        close(fd);
        buf[len] = 0;
        char **argv = NULL;
        for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
                strv_extend(&argv, buf + i);
        if (!argv)
                return fail("'%s' is empty.", path);
        *ret = argv;
        return 0;
}

static int agent_call(struct ctx *c, unsigned h, const char *method, const char *path,
                      const char *body, int want, json_t **ret)
{
        char hdr[64];
        (void)snprintf(hdr, sizeof(hdr), "Operation-Id: bench-recovery-%d-%u", (int)getpid(),
                       ++c->op_seq);
        return bench_call(PROG, c->agents[h], method, path, body, hdr, want, REQUEST_MS, ret);
}

static void seed_name(char *buf, size_t n, unsigned i)
{
        (void)snprintf(buf, n, "rec-%05u", i);
}

/* N VMs defined on the agents, round robin. */
static int seed_agents(struct ctx *c)
{
        for (unsigned i = 0; i < c->o.vms; i++) {
                char name[32];
                uint8_t u[16];
                seed_name(name, sizeof(name), i);
                if (getrandom(u, sizeof(u), 0) != (ssize_t)sizeof(u))
                        return fail("getrandom: %s.", strerror(errno));
                u[6] = (u[6] & 0x0f) | 0x40;
                u[8] = (u[8] & 0x3f) | 0x80;
                _cleanup_free_ char *def = xasprintf(
                        "{\"name\": \"%s\", \"uuid\": \"%02x%02x%02x%02x-%02x%02x-%02x%02x-"
                        "%02x%02x-%02x%02x%02x%02x%02x%02x\", \"vcpus\": 1, \"memory_mib\": 128,"
                        " \"gpus\": [], \"disks\": []}", name, u[0], u[1], u[2], u[3], u[4], u[5],
                        u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
                int r = agent_call(c, i % c->o.hosts, "POST", "/v1/vms", def, 201, NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static json_t *placement_of(const char *host)
{
        return json_pack("{s:s, s:s, s:[]}", "host", host, "policy", "gpuvirt", "gpus");
}

/* The seeded VMs' documents and the hosts' allocation documents (the controller is down):
 * first created, later only their state set to "unknown". */
static int seed_store(struct ctx *c, bool first)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store *s = NULL;
        int r = gv_store_open(c->store_url, &s, &e);
        if (r < 0)
                return fail("Cannot open the store '%s': %s", c->store_url, gv_error_msg(e, r));
        for (unsigned i = 0; r >= 0 && i < c->o.vms; i++) {
                char name[32];
                seed_name(name, sizeof(name), i);
                const char *host = c->host_names[i % c->o.hosts];
                struct gv_store_obj old = {};
                _cleanup_json_ json_t *doc = NULL;
                struct gv_store_write w = { .kind = GV_STORE_VM, .key = name };
                if (first) {
                        doc = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:i, s:i}, s:o, s:n, "
                                        "s:I}", "name", name, "uuid",
                                        "00000000-0000-4000-8000-000000000000", "state",
                                        "unknown", "host", host, "spec", "name", name, "vcpus",
                                        1, "memory_mib", 128, "placement", placement_of(host),
                                        "error", "created_at", (json_int_t)time(NULL));
                        w.op = GV_STORE_CREATE;
                } else {
                        r = gv_store_get(s, GV_STORE_VM, name, &old, &e);
                        if (r < 0)
                                break;
                        doc = json_deep_copy(old.doc);
                        json_object_set_new(doc, "state", json_string("unknown"));
                        w.op = GV_STORE_UPDATE;
                        w.generation = old.generation;
                        gv_store_obj_done(&old);
                }
                w.doc = doc;
                r = gv_store_write(s, &w, 1, &e);
        }
        for (unsigned h = 0; first && r >= 0 && h < c->o.hosts; h++) {
                struct gv_store_obj a = {};
                _cleanup_json_ json_t *doc = NULL;
                struct gv_store_write w = { .kind = GV_STORE_ALLOC, .key = c->host_names[h] };
                if (gv_store_get(s, GV_STORE_ALLOC, c->host_names[h], &a, NULL) >= 0) {
                        doc = json_deep_copy(a.doc);
                        w.op = GV_STORE_UPDATE;
                        w.generation = a.generation;
                } else {
                        doc = json_pack("{s:{}}", "vms");
                        w.op = GV_STORE_CREATE;
                }
                gv_store_obj_done(&a);
                for (unsigned i = h; i < c->o.vms; i += c->o.hosts) {
                        char name[32];
                        seed_name(name, sizeof(name), i);
                        json_object_set_new(json_object_get(doc, "vms"), name,
                                            placement_of(c->host_names[h]));
                }
                w.doc = doc;
                r = gv_store_write(s, &w, 1, &e);
        }
        gv_store_free(s);
        if (r < 0)
                return fail("Cannot seed the store: %s", gv_error_msg(e, r));
        return 0;
}

static int ctl_kill(struct ctx *c)
{
        if (c->ctl_proc.pidfd >= 0) {
                (void)gv_proc_signal(&c->ctl_proc, SIGKILL, NULL);
                (void)gv_proc_wait(&c->ctl_proc, 10000, NULL, NULL);
                gv_proc_close(&c->ctl_proc);
        } else if (c->ctl_pid > 0) {
                (void)kill(c->ctl_pid, SIGKILL);
                for (int i = 0; i < 500 && kill(c->ctl_pid, 0) == 0; i++)
                        sleep_ms(10);
        }
        c->ctl_pid = 0;
        return 0;
}

static int ctl_spawn(struct ctx *c, char **argv, struct gv_proc *p)
{
        _cleanup_free_ char *log = gv_path_join(c->cl, "logs", "controller.log");
        _cleanup_close_ int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = fd, .stderr_fd = fd };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_proc_spawn(argv, &so, p, &e);
        if (r < 0)
                return fail("%s", gv_error_msg(e, r));
        return 0;
}

/* Until GET path on endpoint answers 200 and pred holds (NULL: any 200). */
static int wait_until(struct ctx *c, const char *endpoint, const char *method, const char *path,
                      const char *body, bool (*pred)(struct ctx *, const json_t *, int),
                      uint64_t t0, uint64_t *ret_ns)
{
        (void)c;
        for (;;) {
                int status = 0;
                json_t *j = NULL;
                _cleanup_json_ json_t *b = body ? json_loads(body, 0, NULL) : NULL;
                struct gv_error *e = NULL;
                int r = gv_http_client_request(endpoint, method, path, b, 10000, &status, &j, &e);
                gv_error_free(e);
                bool ok = r >= 0 && (pred ? pred(c, j, status) : status == 200);
                json_decref(j);
                if (ok) {
                        *ret_ns = bench_now_ns() - t0;
                        return 0;
                }
                if (bench_now_ns() - t0 > PHASE_MS * 1000000ull)
                        return fail("%s %s did not answer as awaited within %llu s (last "
                                    "status %d).", method, path, PHASE_MS / 1000, status);
                sleep_ms(5);
        }
}

static bool all_observed(struct ctx *c, const json_t *vms, int status)
{
        if (status != 200)
                return false;
        unsigned n = 0;
        size_t i;
        json_t *v;
        json_array_foreach(vms, i, v)
                if (strncmp(jstr(v, "name") ?: "", "rec-", 4) == 0 &&
                    strcmp(jstr(v, "state") ?: "", "defined") == 0)
                        n++;
        return n == c->o.vms;
}

static unsigned create_seq;
static bool create_accepted(struct ctx *c, const json_t *op, int status)
{
        (void)c;
        (void)op;
        return status == 202 || status == 200;
}

static int running_pids(struct ctx *c, pid_t *ret)
{
        for (unsigned i = 0; i < c->o.running; i++) {
                _cleanup_free_ char *path = xasprintf("/v1/vms/run-%u", i);
                _cleanup_json_ json_t *vm = NULL;
                int r = agent_call(c, i % c->o.hosts, "GET", path, NULL, 200, &vm);
                if (r < 0)
                        return r;
                if (strcmp(jstr(vm, "phase") ?: "", "running") != 0)
                        return fail("VM run-%u is not running on its agent.", i);
                ret[i] = (pid_t)json_integer_value(json_object_get(vm, "pid"));
        }
        return 0;
}

int main(int argc, char **argv)
{
        struct ctx c = { .o = { .vms = 1000, .hosts = 4, .rounds = 3, .running = 3 },
                         .ctl_proc = GV_PROC_NULL };
        int r = parse_opts(argc, argv, &c.o);
        if (r != 0)
                return r;
        const char *daemon = bench_daemon_path(NULL, "GPUVIRT_BENCH_DAEMON", BENCH_GPUVIRTD);
        if (!c.o.script)
                c.o.script = GPUVIRT_SOURCE_ROOT "/contrib/sim-cluster.sh";
        r = bench_need((const char *const[]){ "gpuvirtd", daemon, "gpuvirt-sim",
                                              BENCH_GPUVIRT_SIM, "sim-cluster.sh", c.o.script,
                                              NULL },
                       (const char *const[]){ "qemu-system-x86_64", "bash", "curl", "jq", NULL });
        if (r != 0)
                return r;
        (void)signal(SIGPIPE, SIG_IGN);
        setenv("GPUVIRTD", daemon, 1);
        setenv("GPUVIRT_SIM", BENCH_GPUVIRT_SIM, 1);
        setenv("GPUVIRT", BENCH_GPUVIRT_CLI, 1);

        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *templ = xasprintf("%s/bench-recovery-XXXXXX", tmp && *tmp ? tmp
                                                                                     : "/tmp");
        if (!mkdtemp(templ))
                return fail("mkdtemp '%s': %s.", templ, strerror(errno)), 1;
        c.dir = TAKE_PTR(templ);
        c.cl = gv_path_join(c.dir, "cluster");
        c.ctl = xasprintf("unix:%s/gpuvirt.sock", c.cl);
        uint64_t *t_api = xcalloc(c.o.rounds, sizeof(uint64_t));
        uint64_t *t_obs = xcalloc(c.o.rounds, sizeof(uint64_t));
        uint64_t *t_create = xcalloc(c.o.rounds, sizeof(uint64_t));
        uint64_t t_cold = 0, t_read = 0;
        c.qemu_pids = xcalloc(c.o.running + 1, sizeof(pid_t));
        pid_t *after = xcalloc(c.o.running + 1, sizeof(pid_t));

        /* The cluster, its controller on the store asked for. */
        char hosts[8], cpus[] = "2000";
        (void)snprintf(hosts, sizeof(hosts), "%u", c.o.hosts);
        _cleanup_strv_free_ char **args = NULL;
        {
                const char *const a[] = { "start", c.cl, "--hosts", hosts, "--profiles",
                                          "l40s-4", "--cpus", cpus, "--memory-gib", "2000",
                                          "--accel", "tcg", NULL };
                for (size_t i = 0; a[i]; i++)
                        strv_extend(&args, a[i]);
        }
        if (c.o.store) {
                _cleanup_free_ char *conf = gv_path_join(c.dir, "controller.conf");
                _cleanup_free_ char *text = xasprintf("store = %s\n", c.o.store);
                if (gv_write_file(conf, text, GV_WRITE_CREATE) < 0)
                        r = fail("Cannot write '%s'.", conf);
                strv_extend(&args, "--controller-config");
                strv_extend(&args, conf);
                c.store_url = xstrdup(c.o.store);
        } else {
                c.store_url = xasprintf("sqlite:%s/controller/gpuvirt.db", c.cl);
        }
        if (r >= 0)
                r = script(&c, args);
        _cleanup_free_ char *env = NULL;
        if (r >= 0) {
                _cleanup_free_ char *envf = gv_path_join(c.cl, "cluster.env");
                if (gv_read_file(envf, 1 << 20, &env, NULL) < 0)
                        r = fail("No '%s'.", envf);
        }
        if (r >= 0) {
                static const char *const names[] = { "NODE_A", "NODE_B", "NODE_C", "NODE_D",
                                                     "NODE_E", "NODE_F", "NODE_G", "NODE_H" };
                static const char *const lower[] = { "node-a", "node-b", "node-c", "node-d",
                                                     "node-e", "node-f", "node-g", "node-h" };
                c.agents = xcalloc(c.o.hosts + 1, sizeof(char *));
                c.host_names = xcalloc(c.o.hosts + 1, sizeof(char *));
                for (unsigned h = 0; h < c.o.hosts; h++) {
                        _cleanup_free_ char *k = xasprintf("%s_STATE", names[h]);
                        _cleanup_free_ char *st = env_value(env, k);
                        c.agents[h] = xasprintf("unix:%s/agent.sock", st ?: "?");
                        c.host_names[h] = xstrdup(lower[h]);
                }
                _cleanup_free_ char *pid = env_value(env, "CONTROLLER_PID");
                uint32_t p = 0;
                if (!pid || gv_parse_u32(pid, 10, &p) < 0)
                        r = fail("cluster.env names no CONTROLLER_PID.");
                c.ctl_pid = (pid_t)p;
        }
        /* The running VMs, through the API. */
        for (unsigned i = 0; r >= 0 && i < c.o.running; i++) {
                _cleanup_free_ char *body = xasprintf("{\"name\": \"run-%u\", \"memory_mib\": "
                                                      "128, \"host\": \"%s\"}", i,
                                                      c.host_names[i % c.o.hosts]);
                _cleanup_json_ json_t *op = NULL;
                r = bench_call(PROG, c.ctl, "POST", "/api/v1/vms?wait=120", body, NULL, 200,
                               REQUEST_MS, &op);
                if (r >= 0 && strcmp(jstr(op, "state") ?: "", "succeeded") != 0)
                        r = fail("The create of run-%u did not succeed.", i);
        }
        if (r >= 0)
                r = running_pids(&c, c.qemu_pids);
        if (r >= 0)
                r = seed_agents(&c);
        if (r >= 0)
                r = read_argv(c.ctl_pid, &c.ctl_argv);
        if (r >= 0)
                r = ctl_kill(&c);
        if (r >= 0)
                r = seed_store(&c, true);
        /* The read of the N documents, the controller's first step at a start. */
        if (r >= 0) {
                struct gv_store *s = NULL;
                struct gv_store_obj *v = NULL;
                size_t n = 0;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                uint64_t t0 = bench_now_ns();
                r = gv_store_open(c.store_url, &s, &e);
                if (r >= 0)
                        r = gv_store_list(s, GV_STORE_VM, &v, &n, &e);
                t_read = bench_now_ns() - t0;
                gv_store_objs_free(v, n);
                gv_store_free(s);
                if (r < 0)
                        r = fail("Cannot read the VMs: %s", gv_error_msg(e, r));
                else if (n < c.o.vms)
                        r = fail("The store holds %zu VMs, fewer than %u.", n, c.o.vms);
        }
        /* Warm-up start: the controller learns the seeded VMs. */
        uint64_t ns, t0;
        if (r >= 0) {
                t0 = bench_now_ns();
                r = ctl_spawn(&c, c.ctl_argv, &c.ctl_proc);
                if (r >= 0)
                        r = wait_until(&c, c.ctl, "GET", "/api/v1/vms", NULL, all_observed, t0,
                                       &ns);
        }
        for (unsigned k = 0; r >= 0 && k < c.o.rounds; k++) {
                ctl_kill(&c);
                r = seed_store(&c, false);
                if (r < 0)
                        break;
                t0 = bench_now_ns();
                r = ctl_spawn(&c, c.ctl_argv, &c.ctl_proc);
                if (r >= 0)
                        r = wait_until(&c, c.ctl, "GET", "/api/v1/health", NULL, NULL, t0,
                                       &t_api[k]);
                /* A new create accepted (asked from the moment the API answers). */
                _cleanup_free_ char *body = xasprintf("{\"name\": \"new-%u\", \"memory_mib\": "
                                                      "128}", create_seq++);
                if (r >= 0)
                        r = wait_until(&c, c.ctl, "POST", "/api/v1/vms", body, create_accepted,
                                       t0, &t_create[k]);
                if (r >= 0)
                        r = wait_until(&c, c.ctl, "GET", "/api/v1/vms", NULL, all_observed, t0,
                                       &t_obs[k]);
                _cleanup_free_ char *del = xasprintf("/api/v1/vms/new-%u?wait=120",
                                                     create_seq - 1);
                _cleanup_free_ char *opw = xasprintf("/api/v1/vms/new-%u", create_seq - 1);
                if (r >= 0) {
                        /* The create's operation ends before the delete. */
                        for (int i = 0; i < 1200; i++) {
                                _cleanup_json_ json_t *vm = NULL;
                                if (bench_call(PROG, c.ctl, "GET", opw, NULL, NULL, 200,
                                               REQUEST_MS, &vm) < 0)
                                        break;
                                const char *st = jstr(vm, "state") ?: "";
                                if (strcmp(st, "pending") && strcmp(st, "starting"))
                                        break;
                                sleep_ms(100);
                        }
                        r = bench_call(PROG, c.ctl, "DELETE", del, NULL, NULL, 200, REQUEST_MS,
                                       NULL);
                }
                if (r >= 0)
                        r = running_pids(&c, after);
                for (unsigned i = 0; r >= 0 && i < c.o.running; i++)
                        if (after[i] != c.qemu_pids[i])
                                r = fail("I4: run-%u's QEMU changed from pid %d to %d across "
                                         "the recovery.", i, (int)c.qemu_pids[i],
                                         (int)after[i]);
        }
        /* Baseline: a cold start on an empty store. */
        if (r >= 0) {
                _cleanup_free_ char *sd = gv_path_join(c.dir, "cold");
                _cleanup_free_ char *sock = gv_path_join(c.dir, "cold.sock");
                _cleanup_free_ char *ep = xasprintf("unix:%s", sock);
                char *cold[] = { (char *)daemon, "--role", "controller", "--state-dir", sd,
                                 "--api-socket", sock, NULL };
                struct gv_proc p = GV_PROC_NULL;
                t0 = bench_now_ns();
                r = ctl_spawn(&c, cold, &p);
                if (r >= 0)
                        r = wait_until(&c, ep, "GET", "/api/v1/health", NULL, NULL, t0, &t_cold);
                if (p.pidfd >= 0) {
                        (void)gv_proc_signal(&p, SIGKILL, NULL);
                        (void)gv_proc_wait(&p, 10000, NULL, NULL);
                        gv_proc_close(&p);
                }
        }

        /* Teardown: our controller, then the cluster (its QEMUs, agents). */
        if (c.ctl_proc.pidfd >= 0) {
                (void)gv_proc_signal(&c.ctl_proc, SIGTERM, NULL);
                if (gv_proc_wait(&c.ctl_proc, 10000, NULL, NULL) == 0)
                        (void)gv_proc_signal(&c.ctl_proc, SIGKILL, NULL);
                gv_proc_close(&c.ctl_proc);
        } else if (c.ctl_pid > 0)
                ctl_kill(&c);
        char *stop[] = { "stop", c.cl, NULL };
        (void)script(&c, stop);
        if (r < 0) {
                _cleanup_free_ char *log = gv_path_join(c.cl, "logs", "controller.log");
                bench_print_log_tail("the controller's log", log, 3000);
        }

        if (r >= 0) {
                struct bench_stats a = bench_stats_of(t_api, c.o.rounds);
                struct bench_stats o = bench_stats_of(t_obs, c.o.rounds);
                struct bench_stats n2 = bench_stats_of(t_create, c.o.rounds);
                printf("gpuvirt controller recovery after SIGKILL\n");
                bench_print_machine();
                printf("cluster: contrib/sim-cluster.sh, %u simulated l40s-4 hosts; %u VMs "
                       "defined (not started) on the agents, %u running (QEMU on TCG); store "
                       "%s\n", c.o.hosts, c.o.vms, c.o.running,
                       c.o.store ? "postgresql" : "sqlite");
                printf("method: %u rounds of SIGKILL, every seeded VM set 'unknown' in the "
                       "store, the same argv spawned; times from the spawn (CLOCK_MONOTONIC), "
                       "median (p50) and max of the rounds\n", c.o.rounds);
                printf("  %-52s %9s %9s\n", "(ms)", "p50", "max");
                printf("  %-52s %9.1f %9.1f\n", "after SIGKILL: API answers (health 200)", a.p50,
                       a.max);
                printf("  %-52s %9.1f %9.1f\n", "after SIGKILL: all VM states observed again",
                       o.p50, o.max);
                printf("  %-52s %9.1f %9.1f\n", "after SIGKILL: a new create accepted", n2.p50,
                       n2.max);
                printf("  baseline\n");
                printf("  %-52s %9.1f\n", "cold start, empty store: API answers",
                       (double)t_cold / BENCH_NSEC_PER_MSEC);
                printf("  %-52s %9.1f\n", "read of the VM documents from the store (one list)",
                       (double)t_read / BENCH_NSEC_PER_MSEC);
                printf("  checks: %u running VMs kept their QEMU pids through %u kills (I4); "
                       "every round saw all %u VMs observed again\n", c.o.running, c.o.rounds,
                       c.o.vms);
        }
        if (c.o.keep_dir)
                fprintf(stderr, PROG ": kept '%s'.\n", c.dir);
        else
                (void)gv_rm_rf(c.dir);
        free(t_api);
        free(t_obs);
        free(t_create);
        free(after);
        free(c.qemu_pids);
        strv_free(c.agents);
        strv_free(c.host_names);
        strv_free(c.ctl_argv);
        free(c.dir);
        free(c.cl);
        free(c.ctl);
        free(c.script_log);
        free(c.store_url);
        return r >= 0 ? 0 : 1;
}
