/* SPDX-License-Identifier: MIT */
/*
 * bench-inventory — how long a full inventory of a simulated host takes, beside baselines
 * measured in the same run (BENCHMARKS.md).
 *
 *   bench-inventory [--runs N] [--profile NAME] [--also PROFILE|all]... [--keep-root]
 *
 * For each profile it creates a simulated host in a fresh temporary directory and times, N times
 * each, interleaved (every round runs every measurement once, in a rotating order, so all share
 * the machine's noise):
 *
 *   inventory, cold        gv_host_open() + gv_host_free() with the host's sysfs root and NVML
 *                          library: PCI enumeration, IOMMU groups, catalog, dlopen + init of NVML,
 *                          every GPU read — what one `gpuvirt` invocation does in-process
 *   inventory, sysfs only  the same with an NVML path that does not exist (the host layer
 *                          tolerates it): the difference to the cold run is NVML's share
 *   NVML open+close        gv_nvml_open() + gv_nvml_unref(): dlopen, nvmlInit, shutdown, dlclose
 *   inventory, warm        gv_host_refresh_gpu() of every GPU of an already open host
 *   parts of the cold run  gv_pci_enumerate() alone (every PCI function, VFs included), the GPU
 *                          catalog load alone and a bare dlopen+dlclose of the NVML library, to
 *                          show where the cold run's time goes
 *   gpuvirt host inspect   the CLI as a process (fork+exec), stdout to /dev/null
 *   baselines              `ls -R ROOT/sys` (fork+exec, stdout to /dev/null), an in-process
 *                          opendir/readdir/lstat walk of the same tree, and fork+exec of `true`
 *
 * Every result is checked (GPU count, NVML reachable or not, exit status, tree size): a run that
 * measured something else fails the benchmark with exit status 1, so its smoke test (`--runs 3`)
 * proves more than "it did not crash". Times come from CLOCK_MONOTONIC.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stats.h"
#include "catalog/catalog.h"
#include "host/host.h"
#include "host/sim-profile.h"
#include "hw/nvml/nvml.h"
#include "hw/pci.h"
#include "hw/sysfs.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

#ifndef BENCH_NVML_LIB
#define BENCH_NVML_LIB ""
#endif
#ifndef BENCH_GPUVIRT_CLI
#define BENCH_GPUVIRT_CLI ""
#endif
#ifndef BENCH_BUILDTYPE
#define BENCH_BUILDTYPE "unknown"
#endif
#ifndef BENCH_SANITIZE
#define BENCH_SANITIZE "unknown"
#endif

#define DEFAULT_RUNS 100u
#define WARMUP_ROUNDS 2u

/* ---------------------------------------------------------------- options */

struct opts {
        unsigned runs;
        const char *profile;
        char **also;    /* further profiles, in the order given */
        bool keep_root;
        const char *nvml_lib;
        const char *cli;
        const char *ls;
        const char *true_bin;
};

static const char usage_text[] =
        "Usage: bench-inventory [--runs N] [--profile NAME] [--also PROFILE|all]... [--keep-root]\n"
        "\n"
        "Times a full inventory of a simulated host (sysfs + NVML) through gv_host_open(), beside\n"
        "baselines measured in the same run: `ls -R` of the same sysfs tree and an in-process\n"
        "directory walk. Prints p50, p99, min, max and mean per measurement, and ratios.\n"
        "\n"
        "  --runs N          timed rounds per profile (default 100)\n"
        "  --profile NAME    first profile (default dgx-h100)\n"
        "  --also PROFILE    also run on this profile ('all': every other one); repeatable\n"
        "  --keep-root       keep the simulated hosts and print where they are\n"
        "\n"
        "Environment: GPUVIRT_SIM_NVML_LIB (NVML simulator) and GPUVIRT_BENCH_CLI (gpuvirt)\n"
        "override the built paths.\n";

static int usage_error(const char *fmt, ...) _printf_(1, 2);
static int usage_error(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "bench-inventory: ");
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, "\nRun 'bench-inventory --help' for usage.\n");
        return 2;
}

static const char *env_or(const char *name, const char *fallback)
{
        const char *v = getenv(name);
        return v && *v ? v : fallback;
}

static const char *first_executable(const char *const *candidates)
{
        for (const char *const *c = candidates; *c; c++)
                if (access(*c, X_OK) == 0)
                        return *c;
        return NULL;
}

static int check_profile(const char *name)
{
        if (sim_profile_find(name))
                return 0;
        _cleanup_free_ char *names = sim_profile_names();
        fprintf(stderr, "bench-inventory: unknown profile '%s'; valid profiles: %s.\n", name,
                names);
        return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
        static const struct option longopts[] = {
                { "runs", required_argument, NULL, 'n' },
                { "profile", required_argument, NULL, 'p' },
                { "also", required_argument, NULL, 'a' },
                { "keep-root", no_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c, r;
        while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        if (gv_parse_u32(optarg, 10, &o->runs) < 0 || o->runs == 0 ||
                            o->runs > 1000000)
                                return usage_error("--runs needs a whole number from 1 to "
                                                   "1000000, not '%s'.", optarg);
                        break;
                case 'p':
                        if ((r = check_profile(optarg)) != 0)
                                return r;
                        o->profile = optarg;
                        break;
                case 'a':
                        if (strcmp(optarg, "all") == 0) {
                                for (const struct sim_profile *const *p = sim_profile_all(); *p;
                                     p++)
                                        if (!strv_contains(o->also, (*p)->name))
                                                strv_extend(&o->also, (*p)->name);
                                break;
                        }
                        if ((r = check_profile(optarg)) != 0)
                                return r;
                        if (!strv_contains(o->also, optarg))
                                strv_extend(&o->also, optarg);
                        break;
                case 'k':
                        o->keep_root = true;
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

/* ---------------------------------------------------------------- the tree and the walk */

struct tree_count {
        uint64_t dirs, files, links, other;
};

static uint64_t tree_total(const struct tree_count *t)
{
        return t->dirs + t->files + t->links + t->other;
}

/* opendir/readdir/lstat of every entry, descending into directories (not symlinks), like
 * `ls -R`. path is a PATH_MAX buffer holding the directory, len its length. */
static int walk(char *path, size_t len, struct tree_count *t)
{
        DIR *d = opendir(path);
        if (!d)
                return -errno;
        int r = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                size_t n = strlen(de->d_name);
                if (len + 1 + n + 1 > PATH_MAX) {
                        r = -ENAMETOOLONG;
                        break;
                }
                path[len] = '/';
                memcpy(path + len + 1, de->d_name, n + 1);
                struct stat st;
                if (lstat(path, &st) < 0) {
                        r = -errno;
                        break;
                }
                if (S_ISDIR(st.st_mode)) {
                        t->dirs++;
                        r = walk(path, len + 1 + n, t);
                        if (r < 0)
                                break;
                } else if (S_ISREG(st.st_mode)) {
                        t->files++;
                } else if (S_ISLNK(st.st_mode)) {
                        t->links++;
                } else {
                        t->other++;
                }
        }
        if (r == 0 && errno != 0)
                r = -errno;
        path[len] = '\0';
        closedir(d);
        return r;
}

static int walk_tree(const char *dir, struct tree_count *ret)
{
        char path[PATH_MAX];
        size_t len = strlen(dir);
        if (len >= sizeof(path))
                return -ENAMETOOLONG;
        memcpy(path, dir, len + 1);
        struct tree_count t = {};
        int r = walk(path, len, &t);
        if (r < 0)
                return r;
        *ret = t;
        return 0;
}

/* ---------------------------------------------------------------- processes */

/* fork + exec argv[0] with stdout (and stderr unless keep_stderr) on /dev/null; returns the exit
 * status, or -errno when the process could not be started. */
static int run_process(char *const *argv, int devnull, bool keep_stderr)
{
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                /* dup2 clears O_CLOEXEC on the copy. Only async-signal-safe calls here. */
                if (dup2(devnull, STDOUT_FILENO) < 0 ||
                    (!keep_stderr && dup2(devnull, STDERR_FILENO) < 0))
                        _exit(126);
                execv(argv[0], argv);
                _exit(127);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

/* ---------------------------------------------------------------- the measurements */

struct ctx {
        const struct opts *o;
        char *root;        /* the simulated host */
        char *sys;         /* root/sys */
        char *nvml;        /* root/usr/lib/libnvidia-ml.so.1 (symlink to the simulator) */
        char *nvml_bogus;  /* a path that does not exist */
        size_t want_gpus;  /* GPU PFs in the profile */
        size_t pci_functions; /* what the first enumeration found */
        struct tree_count tree;
        int devnull;
        char *fail;        /* the first failure, reported after the run */
};

static void fail_set(struct ctx *c, char *msg)
{
        if (c->fail)
                free(msg);
        else
                c->fail = msg;
}

static size_t count_with_uuid(const struct gv_host *h)
{
        size_t n = 0;
        for (size_t i = 0; i < h->n_gpus; i++)
                if (h->gpus[i].valid & GV_GPU_HAS_UUID)
                        n++;
        return n;
}

/* One inventory; with_nvml says which library path. The check sits between open and free:
 * a few comparisons, negligible beside the inventory. */
static uint64_t m_inventory(struct ctx *c, bool with_nvml)
{
        const struct gv_host_config cfg = {
                .sysfs_root = c->root,
                .nvml_library = with_nvml ? c->nvml : c->nvml_bogus,
        };
        struct gv_error *e = NULL;
        struct gv_host *h = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gv_host_open(&cfg, &h, &e);
        if (r >= 0) {
                size_t uuids = count_with_uuid(h);
                if (h->n_gpus != c->want_gpus)
                        fail_set(c, xasprintf("inventory found %zu GPUs, the profile has %zu",
                                              h->n_gpus, c->want_gpus));
                else if (with_nvml && (h->nvml_error || uuids != h->n_gpus))
                        fail_set(c, xasprintf("inventory with NVML read %zu of %zu GPUs' UUIDs "
                                              "(NVML: %s)", uuids, h->n_gpus,
                                              h->nvml_error ? h->nvml_error : "loaded"));
                else if (!with_nvml && (!h->nvml_error || uuids != 0))
                        fail_set(c, xasprintf("inventory with the bogus NVML path '%s' still "
                                              "reached NVML", c->nvml_bogus));
        }
        h = gv_host_free(h);
        uint64_t dt = bench_now_ns() - t0;
        if (r < 0)
                fail_set(c, xasprintf("gv_host_open failed: %s", gv_error_msg(e, r)));
        gv_error_free(e);
        return dt;
}

static uint64_t m_inventory_cold(struct ctx *c)
{
        return m_inventory(c, true);
}

static uint64_t m_inventory_sysfs(struct ctx *c)
{
        return m_inventory(c, false);
}

static uint64_t m_nvml_open(struct ctx *c)
{
        struct gv_error *e = NULL;
        struct gv_nvml *n = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gv_nvml_open(c->nvml, &n, &e);
        n = gv_nvml_unref(n);
        uint64_t dt = bench_now_ns() - t0;
        if (r < 0)
                fail_set(c, xasprintf("gv_nvml_open failed: %s", gv_error_msg(e, r)));
        gv_error_free(e);
        return dt;
}

/* The host is opened and freed outside the timed part, in the same round: keeping one host
 * open for the whole run would keep the NVML library loaded and let the cold runs skip dlopen. */
static uint64_t m_inventory_warm(struct ctx *c)
{
        const struct gv_host_config cfg = { .sysfs_root = c->root, .nvml_library = c->nvml };
        struct gv_error *e = NULL;
        struct gv_host *h = NULL;
        int r = gv_host_open(&cfg, &h, &e);
        uint64_t dt = 0;
        if (r >= 0) {
                uint64_t t0 = bench_now_ns();
                for (size_t i = 0; i < h->n_gpus && r >= 0; i++)
                        r = gv_host_refresh_gpu(h, &h->gpus[i], &e);
                dt = bench_now_ns() - t0;
                if (r >= 0 && count_with_uuid(h) != c->want_gpus)
                        fail_set(c, xasprintf("warm refresh read %zu GPUs' UUIDs, the profile "
                                              "has %zu GPUs", count_with_uuid(h), c->want_gpus));
        }
        if (r < 0)
                fail_set(c, xasprintf("warm refresh failed: %s", gv_error_msg(e, r)));
        gv_host_free(h);
        gv_error_free(e);
        return dt;
}

static uint64_t m_pci(struct ctx *c)
{
        struct gv_error *e = NULL;
        struct gv_sysfs *fs = NULL;
        struct gv_pci_inventory *inv = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gv_sysfs_new(c->root, &fs, &e);
        if (r >= 0)
                r = gv_pci_enumerate(fs, 0, &inv, &e);
        size_t n = inv ? inv->n_devices : 0, problems = inv ? inv->n_problems : 0;
        inv = gv_pci_inventory_free(inv);
        fs = gv_sysfs_free(fs);
        uint64_t dt = bench_now_ns() - t0;
        if (r < 0)
                fail_set(c, xasprintf("PCI enumeration failed: %s", gv_error_msg(e, r)));
        else if (problems > 0 || n < c->want_gpus)
                fail_set(c, xasprintf("PCI enumeration found %zu functions and %zu problems",
                                      n, problems));
        else if (c->pci_functions == 0)
                c->pci_functions = n;
        else if (n != c->pci_functions)
                fail_set(c, xasprintf("PCI enumeration found %zu functions, first %zu", n,
                                      c->pci_functions));
        gv_error_free(e);
        return dt;
}

static uint64_t m_catalog(struct ctx *c)
{
        struct gv_error *e = NULL;
        struct gv_catalog *cat = NULL;
        uint64_t t0 = bench_now_ns();
        int r = gv_catalog_load_default(&cat, &e);
        cat = gv_catalog_free(cat);
        uint64_t dt = bench_now_ns() - t0;
        if (r < 0)
                fail_set(c, xasprintf("catalog load failed: %s", gv_error_msg(e, r)));
        gv_error_free(e);
        return dt;
}

static uint64_t m_dlopen(struct ctx *c)
{
        uint64_t t0 = bench_now_ns();
        void *dl = dlopen(c->nvml, RTLD_NOW | RTLD_LOCAL);
        if (dl)
                dlclose(dl);
        uint64_t dt = bench_now_ns() - t0;
        if (!dl) {
                const char *e = dlerror();
                fail_set(c, xasprintf("dlopen('%s') failed: %s", c->nvml, e ? e : "unknown"));
        }
        return dt;
}

static uint64_t m_process(struct ctx *c, char *const *argv, const char *what)
{
        uint64_t t0 = bench_now_ns();
        int r = run_process(argv, c->devnull, false);
        uint64_t dt = bench_now_ns() - t0;
        if (r != 0)
                fail_set(c, r < 0 ? xasprintf("cannot start %s: %s", what, strerror(-r)) :
                                    xasprintf("%s exited with status %d", what, r));
        return dt;
}

static uint64_t m_cli(struct ctx *c)
{
        char *argv[] = { (char *)c->o->cli, (char *)"--sysfs-root", c->root,
                         (char *)"--nvml-library", c->nvml, (char *)"host", (char *)"inspect",
                         NULL };
        return m_process(c, argv, "'gpuvirt host inspect'");
}

static uint64_t m_ls(struct ctx *c)
{
        char *argv[] = { (char *)c->o->ls, (char *)"-R", c->sys, NULL };
        return m_process(c, argv, "'ls -R'");
}

static uint64_t m_true(struct ctx *c)
{
        char *argv[] = { (char *)c->o->true_bin, NULL };
        return m_process(c, argv, "'true'");
}

static uint64_t m_walk(struct ctx *c)
{
        struct tree_count t;
        uint64_t t0 = bench_now_ns();
        int r = walk_tree(c->sys, &t);
        uint64_t dt = bench_now_ns() - t0;
        if (r < 0)
                fail_set(c, xasprintf("walking '%s' failed: %s", c->sys, strerror(-r)));
        else if (tree_total(&t) != tree_total(&c->tree))
                fail_set(c, xasprintf("walking '%s' found %llu entries, first %llu", c->sys,
                                      (unsigned long long)tree_total(&t),
                                      (unsigned long long)tree_total(&c->tree)));
        return dt;
}

enum {
        M_COLD,
        M_SYSFS,
        M_NVML,
        M_WARM,
        M_PCI,
        M_CATALOG,
        M_DLOPEN,
        M_CLI,
        M_LS,
        M_WALK,
        M_TRUE,
        _M_MAX,
};

struct measurement {
        const char *label;
        uint64_t (*run)(struct ctx *c);
};

static const struct measurement measurements[_M_MAX] = {
        [M_COLD] = { "inventory, cold (gv_host_open+free)", m_inventory_cold },
        [M_SYSFS] = { "inventory, sysfs only (no NVML)", m_inventory_sysfs },
        [M_NVML] = { "NVML open+close only", m_nvml_open },
        [M_WARM] = { "inventory, warm (refresh all GPUs)", m_inventory_warm },
        [M_PCI] = { "part: PCI enumeration (gv_pci_enumerate)", m_pci },
        [M_CATALOG] = { "part: GPU catalog load", m_catalog },
        [M_DLOPEN] = { "part: dlopen+dlclose of NVML", m_dlopen },
        [M_CLI] = { "gpuvirt host inspect (fork+exec)", m_cli },
        [M_LS] = { "baseline: ls -R sys (fork+exec)", m_ls },
        [M_WALK] = { "baseline: walk sys in-process", m_walk },
        [M_TRUE] = { "baseline: true (fork+exec)", m_true },
};

/* ---------------------------------------------------------------- one profile */

static size_t profile_gpus(const struct sim_profile *p)
{
        size_t n = 0;
        for (size_t i = 0; i < p->n_devices; i++)
                if (p->devices[i].gpu_model)
                        n++;
        return n;
}

/* Whether the NVML library is still mapped (dlopen RTLD_NOLOAD takes a reference when it is,
 * which is dropped at once). */
static bool nvml_still_loaded(const char *path)
{
        void *dl = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
        if (!dl)
                return false;
        dlclose(dl);
        return true;
}

static void print_row(const char *label, const struct bench_stats *s)
{
        printf("  %-41s %9.3f %9.3f %9.3f %9.3f %9.3f\n", label, s->p50, s->p99, s->min, s->max,
               s->mean);
}

static void print_ratio(const char *label, double num, double den)
{
        printf("    %-48s %7.2fx\n", label, den > 0 ? num / den : 0.0);
}

static int bench_profile(const struct opts *o, const char *profile_name)
{
        const struct sim_profile *p = sim_profile_find(profile_name);
        _cleanup_free_ char *tmpl =
                xasprintf("%s/gpuvirt-bench-XXXXXX", env_or("TMPDIR", "/tmp"));
        if (!mkdtemp(tmpl)) {
                fprintf(stderr, "bench-inventory: cannot create a directory from '%s': %s; set "
                        "TMPDIR to a writable directory.\n", tmpl, strerror(errno));
                return 1;
        }
        struct ctx c = {
                .o = o,
                .root = TAKE_PTR(tmpl),
                .want_gpus = profile_gpus(p),
                .devnull = -1,
        };
        c.sys = gv_path_join(c.root, "sys");
        c.nvml = gv_path_join(c.root, "usr/lib/libnvidia-ml.so.1");
        c.nvml_bogus = gv_path_join(c.root, "usr/lib/no-such-dir/libnvidia-ml.so.1");
        uint64_t *samples[_M_MAX] = {};
        int ret = 1;

        struct gv_error *e = NULL;
        int r = sim_host_create(c.root, profile_name, o->nvml_lib, &e);
        if (r < 0) {
                fprintf(stderr, "bench-inventory: cannot create a '%s' host in '%s': %s\n",
                        profile_name, c.root, gv_error_msg(e, r));
                gv_error_free(e);
                goto out;
        }
        r = walk_tree(c.sys, &c.tree);
        if (r < 0) {
                fprintf(stderr, "bench-inventory: cannot walk '%s': %s\n", c.sys, strerror(-r));
                goto out;
        }
        c.devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (c.devnull < 0) {
                fprintf(stderr, "bench-inventory: cannot open '/dev/null': %s\n",
                        strerror(errno));
                goto out;
        }

        bool have_cli = *o->cli && access(o->cli, X_OK) == 0;
        for (size_t m = 0; m < _M_MAX; m++)
                samples[m] = xreallocarray(NULL, o->runs, sizeof(uint64_t));

        /* Warm-up rounds fill the page and dentry caches; their times are dropped. Then each
         * round runs every measurement once, starting at a different one each round. */
        unsigned rounds = WARMUP_ROUNDS + o->runs;
        for (unsigned round = 0; round < rounds && !c.fail; round++)
                for (size_t k = 0; k < _M_MAX; k++) {
                        size_t m = (round + k) % _M_MAX;
                        if (m == M_CLI && !have_cli)
                                continue;
                        uint64_t dt = measurements[m].run(&c);
                        if (round >= WARMUP_ROUNDS)
                                samples[m][round - WARMUP_ROUNDS] = dt;
                }
        if (c.fail) {
                fprintf(stderr, "bench-inventory: profile %s: %s\n", profile_name, c.fail);
                goto out;
        }
        bool unloaded = !nvml_still_loaded(c.nvml);

        struct bench_stats s[_M_MAX];
        for (size_t m = 0; m < _M_MAX; m++)
                s[m] = bench_stats_of(samples[m], o->runs);

        printf("\nprofile %s: %zu GPUs, %zu PCI functions\n", profile_name, c.want_gpus,
               c.pci_functions);
        printf("  sysfs tree: %llu entries (%llu directories, %llu files, %llu symlinks)\n",
               (unsigned long long)tree_total(&c.tree), (unsigned long long)c.tree.dirs,
               (unsigned long long)c.tree.files, (unsigned long long)c.tree.links);
        printf("  NVML library unloaded after each inventory: %s\n\n",
               unloaded ? "yes (every cold run dlopens it again)" :
                          "NO (it stays mapped: cold runs skip the loading)");
        printf("  %-41s %9s %9s %9s %9s %9s\n", "measurement (ms)", "p50", "p99", "min", "max",
               "mean");
        for (size_t m = 0; m < _M_MAX; m++) {
                if (m == M_CLI && !have_cli) {
                        printf("  %-41s (gpuvirt not built or not found at '%s')\n",
                               measurements[m].label, o->cli);
                        continue;
                }
                print_row(measurements[m].label, &s[m]);
        }

        printf("\n  ratios of p50:\n");
        print_ratio("inventory cold / ls -R", s[M_COLD].p50, s[M_LS].p50);
        print_ratio("inventory cold / in-process walk", s[M_COLD].p50, s[M_WALK].p50);
        print_ratio("inventory sysfs only / in-process walk", s[M_SYSFS].p50, s[M_WALK].p50);
        if (have_cli)
                print_ratio("gpuvirt host inspect / ls -R (both fork+exec)", s[M_CLI].p50,
                            s[M_LS].p50);
        double nvml_share = s[M_COLD].p50 - s[M_SYSFS].p50;
        printf("    %-48s %7.3f ms (%.0f%% of cold; open+close alone %.3f ms)\n",
               "NVML's share: cold - sysfs only", nvml_share,
               s[M_COLD].p50 > 0 ? 100.0 * nvml_share / s[M_COLD].p50 : 0.0, s[M_NVML].p50);
        ret = 0;
out:
        for (size_t m = 0; m < _M_MAX; m++)
                free(samples[m]);
        if (c.devnull >= 0)
                close(c.devnull);
        if (o->keep_root)
                fprintf(stderr, "bench-inventory: keeping the simulated host '%s'\n", c.root);
        else
                (void)gv_rm_rf(c.root);
        free(c.root);
        free(c.sys);
        free(c.nvml);
        free(c.nvml_bogus);
        free(c.fail);
        return ret;
}

/* ---------------------------------------------------------------- main */

static void print_machine(const struct opts *o)
{
        struct utsname u;
        if (uname(&u) < 0)
                memset(&u, 0, sizeof(u));
        char *cpu = NULL;
        _cleanup_free_ char *cpuinfo = NULL;
        if (gv_read_file("/proc/cpuinfo", 1 << 20, &cpuinfo, NULL) >= 0) {
                char *l = strstr(cpuinfo, "model name");
                char *colon = l ? strchr(l, ':') : NULL;
                if (colon) {
                        cpu = colon + 1 + strspn(colon + 1, " \t");
                        cpu[strcspn(cpu, "\n")] = '\0';
                }
        }
        printf("gpuvirt inventory benchmark\n");
        printf("machine: %ld CPUs online (%s), Linux %s %s\n", sysconf(_SC_NPROCESSORS_ONLN),
               cpu ? cpu : "unknown CPU", u.release, u.machine);
        printf("build:   %s, sanitizers %s\n", BENCH_BUILDTYPE, BENCH_SANITIZE);
        printf("method:  %u timed rounds after %u warm-up rounds; each round runs every "
               "measurement once,\n         in a rotating order; CLOCK_MONOTONIC; p50/p99 "
               "nearest-rank\n", o->runs, WARMUP_ROUNDS);
        printf("tools:   ls '%s', gpuvirt '%s'\n", o->ls, *o->cli ? o->cli : "(none)");
}

int main(int argc, char **argv)
{
        static const char *const ls_paths[] = { "/bin/ls", "/usr/bin/ls", NULL };
        static const char *const true_paths[] = { "/bin/true", "/usr/bin/true", NULL };
        struct opts o = {
                .runs = DEFAULT_RUNS,
                .profile = "dgx-h100",
                .nvml_lib = env_or("GPUVIRT_SIM_NVML_LIB", BENCH_NVML_LIB),
                .cli = env_or("GPUVIRT_BENCH_CLI", BENCH_GPUVIRT_CLI),
                .ls = first_executable(ls_paths),
                .true_bin = first_executable(true_paths),
        };
        int r = parse_opts(argc, argv, &o);
        if (r != 0) {
                strv_free(o.also);
                return r;
        }
        if (!*o.nvml_lib) {
                fprintf(stderr, "bench-inventory: the NVML simulator library was not built; set "
                        "GPUVIRT_SIM_NVML_LIB to its path.\n");
                strv_free(o.also);
                return 1;
        }
        if (!o.ls || !o.true_bin) {
                fprintf(stderr, "bench-inventory: the baselines need 'ls' and 'true' in /bin or "
                        "/usr/bin (coreutils).\n");
                strv_free(o.also);
                return 1;
        }

        print_machine(&o);
        int ret = bench_profile(&o, o.profile);
        for (char **p = o.also; ret == 0 && p && *p; p++)
                if (strcmp(*p, o.profile) != 0)
                        ret = bench_profile(&o, *p);
        strv_free(o.also);
        return ret;
}
