/* SPDX-License-Identifier: MIT */
/*
 * kmock.c — the kernel's reactions to sysfs writes on a simulated host, as an LD_PRELOAD
 * library (the idea of libvirt's tests/virpcimock.c; our own code, docs/simulator.md).
 *
 * open()/openat() (and their 64-bit and fortified names) of a *control file* inside a simulated
 * host (a directory holding gpuvirt-sim/state.json) for writing are recorded by fd; a write()
 * to such an fd applies the kernel's effect at write() time, under the state's exclusive lock,
 * and returns the byte count or -1 with the errno the kernel gives. Everything else — other
 * paths, reads, other files of the tree — goes to the real functions untouched.
 *
 * Control files and their rules (../shared/reference/passthrough.md §1-§2, vgpu.md §2-§4):
 *   drivers/<drv>/bind      ENODEV: no such device, or driver_override names another driver,
 *                           or the driver's ids do not match, or a VF whose PF has
 *                           sriov_drivers_autoprobe=0 and no override; EBUSY: already bound
 *   drivers/<drv>/unbind    ENODEV: not bound to <drv>; EBUSY: vGPUs live on the function
 *   drivers/<drv>/new_id    "VVVV DDDD [...]": records the id and binds unbound matching devices
 *   drivers/<drv>/remove_id drops a recorded id (ENODEV if unknown)
 *   drivers_probe           bind to driver_override, else to the default driver (ENODEV: no
 *                           such device; a bound device is left alone)
 *   <bdf>/driver_override   set; "" or "\n" clears
 *   <bdf>/sriov_numvfs      0 -> N enables VFs; N -> M both nonzero EBUSY; > sriov_totalvfs
 *                           ERANGE; no PF driver ENOENT; 0 while vGPUs live on VFs EBUSY
 *   mdev_supported_types/<type>/create   UUID; EINVAL malformed, EEXIST duplicate, ENOSPC or
 *                           EBUSY when available_instances is 0 (errno of the state's rules)
 *   <uuid>/remove           "1"; EBUSY while a VM holds the vGPU
 *   nvidia/current_vgpu_type   type id selects, "0" releases; EBUSY while a VM holds it or
 *                           another type is selected; EINVAL for a type not creatable now
 * Before applying, sim_inject_take(state, "sysfs:<op>", gpu, target) may fail the write with an
 * injected errno (target: the function's BDF; the UUID for mdev_remove). After each write the
 * state is committed, which re-syncs the dynamic files.
 *
 * The library is built without sanitizers (it is preloaded into programs that may or may not
 * use them); in ASan programs run with ASAN_OPTIONS=verify_asan_link_order=0.
 */
#undef _FILE_OFFSET_BITS /* we define open and open64 both: keep the headers from renaming */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "host/sim-state.h"
#include "sysfs/sim-sysfs-tree.h"
#include "sysfs/sim-sysfs.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

#define EXPORT __attribute__((visibility("default")))

/* ---------------------------------------------------------------- real functions */

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
typedef int (*open2_fn)(const char *, int);
typedef int (*openat2_fn)(int, const char *, int);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*close_fn)(int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);

static open_fn real_open, real_open64;
static openat_fn real_openat, real_openat64;
static open2_fn real_open_2, real_open64_2;
static openat2_fn real_openat_2, real_openat64_2;
static write_fn real_write;
static close_fn real_close;
static dup_fn real_dup;
static dup2_fn real_dup2;
static dup3_fn real_dup3;

static void *next_sym(const char *name)
{
        return dlsym(RTLD_NEXT, name);
}

#define REAL(var, name)                                            \
        ({                                                         \
                if (!(var))                                        \
                        *(void **)&(var) = next_sym(name);         \
                (var);                                             \
        })

/* Set while the mock itself runs: everything it calls goes straight to the real functions. */
static __thread int in_mock;

/* ---------------------------------------------------------------- control files */

enum op {
        OP_NONE,
        OP_BIND,
        OP_UNBIND,
        OP_NEW_ID,
        OP_REMOVE_ID,
        OP_DRIVERS_PROBE,
        OP_DRIVER_OVERRIDE,
        OP_SRIOV_NUMVFS,
        OP_MDEV_CREATE,
        OP_MDEV_REMOVE,
        OP_CURRENT_VGPU_TYPE,
};

struct ctl {
        enum op op;
        char *root;
        char arg[64];  /* driver, BDF or UUID (see classify) */
        char arg2[64]; /* BDF of an mdev parent / type directory name */
};

static pthread_mutex_t fd_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ctl **fds;
static size_t n_fds;

/* The table belongs to the process that loaded the mock. A child cloned from it (the agent's
 * src/vmm/proc.c dup2()s its stdio between clone3() and exec) may have been made while another
 * thread held fd_lock or a malloc lock, and would wait for it forever: a child starts from an
 * empty table under a fresh lock and takes neither (nothing in the table is the child's). */
static pid_t fd_owner;

__attribute__((constructor)) static void fd_owner_init(void)
{
        fd_owner = getpid();
}

static void fd_lock_take(void)
{
        pid_t me = getpid();
        if (fd_owner != me) {
                (void)pthread_mutex_init(&fd_lock, NULL);
                fds = NULL;
                n_fds = 0;
                fd_owner = me;
        }
        pthread_mutex_lock(&fd_lock);
}

static void ctl_free(struct ctl *c)
{
        if (c) {
                free(c->root);
                free(c);
        }
}

static void fd_put(int fd, struct ctl *c)
{
        fd_lock_take();
        if ((size_t)fd >= n_fds) {
                size_t n = MAX((size_t)fd + 1, n_fds * 2);
                fds = xreallocarray(fds, n, sizeof(*fds));
                memset(fds + n_fds, 0, (n - n_fds) * sizeof(*fds));
                n_fds = n;
        }
        ctl_free(fds[fd]);
        fds[fd] = c;
        pthread_mutex_unlock(&fd_lock);
}

/* Copy of the fd's control entry (so a concurrent close cannot free it under us). */
static bool fd_get(int fd, struct ctl *ret)
{
        bool found = false;
        fd_lock_take();
        if (fd >= 0 && (size_t)fd < n_fds && fds[fd]) {
                *ret = *fds[fd];
                ret->root = xstrdup(fds[fd]->root);
                found = true;
        }
        pthread_mutex_unlock(&fd_lock);
        return found;
}

static void fd_drop(int fd)
{
        fd_lock_take();
        if (fd >= 0 && (size_t)fd < n_fds) {
                ctl_free(fds[fd]);
                fds[fd] = NULL;
        }
        pthread_mutex_unlock(&fd_lock);
}

/* newfd gets oldfd's entry (or none), as the descriptor now names oldfd's file. */
static void fd_copy(int oldfd, int newfd)
{
        if (newfd < 0 || oldfd == newfd)
                return;
        struct ctl c;
        if (!fd_get(oldfd, &c)) {
                fd_drop(newfd);
                return;
        }
        struct ctl *n = xmalloc(sizeof(*n));
        *n = c;
        fd_put(newfd, n);
}

static const char *const ctl_names[] = {
        "bind", "unbind", "new_id", "remove_id", "drivers_probe", "driver_override",
        "sriov_numvfs", "create", "remove", "current_vgpu_type",
};

static bool is_bdf(const char *s)
{
        struct gv_pci_addr a;
        return strchr(s, ':') && gv_parse_pci_addr(s, &a) >= 0;
}

static bool copy_arg(char *dst, size_t n, const char *src)
{
        if (strlen(src) >= n)
                return false;
        strcpy(dst, src);
        return true;
}

/* Decide whether the resolved path is a control file of a simulated host; fills c. */
static bool classify(const char *path, struct ctl *c)
{
        const char *base = strrchr(path, '/');
        if (!base)
                return false;
        base++;
        bool named = false;
        for (size_t i = 0; i < ELEMENTSOF(ctl_names); i++)
                if (strcmp(base, ctl_names[i]) == 0)
                        named = true;
        if (!named)
                return false;

        char *root = NULL;
        if (sim_root_of_path(path, &root) < 0)
                return false;
        size_t rl = strlen(root);
        const char *rel = path + rl;
        if (strncmp(path, root, rl) != 0 || *rel != '/') {
                free(root);
                return false;
        }
        rel++;
        _cleanup_strv_free_ char **comp = strv_split(rel, "/");
        size_t n = strv_length(comp);
        bool ok = false;
        c->op = OP_NONE;
        if (n == 4 && strcmp(comp[0], "sys") == 0 && strcmp(comp[1], "bus") == 0 &&
            strcmp(comp[2], "pci") == 0 && strcmp(comp[3], "drivers_probe") == 0) {
                c->op = OP_DRIVERS_PROBE;
                ok = true;
        } else if (n == 6 && strcmp(comp[0], "sys") == 0 && strcmp(comp[1], "bus") == 0 &&
                   strcmp(comp[2], "pci") == 0 && strcmp(comp[3], "drivers") == 0) {
                c->op = strcmp(base, "bind") == 0      ? OP_BIND :
                        strcmp(base, "unbind") == 0    ? OP_UNBIND :
                        strcmp(base, "new_id") == 0    ? OP_NEW_ID :
                        strcmp(base, "remove_id") == 0 ? OP_REMOVE_ID : OP_NONE;
                ok = c->op != OP_NONE && copy_arg(c->arg, sizeof(c->arg), comp[4]);
        } else if (n >= 3 && strcmp(comp[0], "sys") == 0 && strcmp(comp[1], "devices") == 0) {
                struct gv_uuid u;
                if ((strcmp(base, "driver_override") == 0 || strcmp(base, "sriov_numvfs") == 0) &&
                    is_bdf(comp[n - 2])) {
                        c->op = base[0] == 'd' ? OP_DRIVER_OVERRIDE : OP_SRIOV_NUMVFS;
                        ok = copy_arg(c->arg, sizeof(c->arg), comp[n - 2]);
                } else if (strcmp(base, "create") == 0 && n >= 5 &&
                           strcmp(comp[n - 3], "mdev_supported_types") == 0 &&
                           is_bdf(comp[n - 4])) {
                        c->op = OP_MDEV_CREATE;
                        ok = copy_arg(c->arg, sizeof(c->arg), comp[n - 4]) &&
                             copy_arg(c->arg2, sizeof(c->arg2), comp[n - 2]);
                } else if (strcmp(base, "remove") == 0 && n >= 4 &&
                           gv_parse_uuid(comp[n - 2], &u) >= 0 && is_bdf(comp[n - 3])) {
                        c->op = OP_MDEV_REMOVE;
                        ok = copy_arg(c->arg, sizeof(c->arg), comp[n - 2]) &&
                             copy_arg(c->arg2, sizeof(c->arg2), comp[n - 3]);
                } else if (strcmp(base, "current_vgpu_type") == 0 && n >= 4 &&
                           strcmp(comp[n - 2], "nvidia") == 0 && is_bdf(comp[n - 3])) {
                        c->op = OP_CURRENT_VGPU_TYPE;
                        ok = copy_arg(c->arg, sizeof(c->arg), comp[n - 3]);
                }
        }
        if (!ok) {
                free(root);
                return false;
        }
        c->root = root;
        return true;
}

/* Called after a real open succeeded or before it: is this a write-open of a control file?
 * Returns a new ctl or NULL. */
static struct ctl *ctl_for_open(int dirfd, const char *path, int flags)
{
        /* O_CREAT|O_EXCL creates a new file: never a write to an existing sysfs attribute
         * (the generator makes the tree that way inside mocked processes too). */
        if (!path || (flags & O_ACCMODE) == O_RDONLY || (flags & (O_CREAT | O_EXCL)) ==
                                                                (O_CREAT | O_EXCL))
                return NULL;
        /* cheap filter on the last component before any file system access */
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        bool named = false;
        for (size_t i = 0; i < ELEMENTSOF(ctl_names); i++)
                if (strcmp(base, ctl_names[i]) == 0)
                        named = true;
        if (!named)
                return NULL;

        char full[PATH_MAX * 2];
        if (path[0] == '/' || dirfd == AT_FDCWD) {
                if (snprintf(full, sizeof(full), "%s", path) >= (int)sizeof(full))
                        return NULL;
        } else {
                char proc[64], dir[PATH_MAX];
                snprintf(proc, sizeof(proc), "/proc/self/fd/%d", dirfd);
                ssize_t k = readlink(proc, dir, sizeof(dir) - 1);
                if (k < 0)
                        return NULL;
                dir[k] = 0;
                if (snprintf(full, sizeof(full), "%s/%s", dir, path) >= (int)sizeof(full))
                        return NULL;
        }
        char resolved[PATH_MAX];
        if (!realpath(full, resolved))
                return NULL;
        struct ctl tmp = { 0 };
        if (!classify(resolved, &tmp))
                return NULL;
        struct ctl *c = xmalloc(sizeof(*c));
        *c = tmp;
        return c;
}

/* ---------------------------------------------------------------- effects */

static int gpu_index_of(struct sim_state *s, const char *bdf)
{
        struct sim_gpu *g = sim_gpu_of_function(s, bdf);
        return g ? (int)g->index : -1;
}

static int inject(struct sim_state *s, const char *op, const char *bdf, const char *target)
{
        char call[64];
        snprintf(call, sizeof(call), "sysfs:%s", op);
        int code = sim_inject_take(s, call, bdf ? gpu_index_of(s, bdf) : -1, target);
        return code > 0 ? -code : code < 0 ? code : 0;
}

/* Strip one trailing newline (sysfs_streq semantics). */
static char *value_of(const void *buf, size_t n)
{
        char *v = xstrndup(buf, n);
        size_t l = strlen(v);
        if (l > 0 && v[l - 1] == '\n')
                v[l - 1] = 0;
        return v;
}

static bool is_vf(const char *root, const char *bdf, char **ret_pf)
{
        _cleanup_free_ char *dir = NULL;
        if (sim_sysfs_device_dir(root, bdf, &dir) < 0)
                return false;
        _cleanup_free_ char *l = gv_path_join(dir, "physfn");
        char *pf = NULL;
        if (gv_readlink_basename(l, &pf) < 0)
                return false;
        if (ret_pf)
                *ret_pf = pf;
        else
                free(pf);
        return true;
}

/* pci_device_can_probe(): a VF probes only when its PF autoprobes or it has an override. */
static bool can_probe(const char *root, const char *bdf, const char *override)
{
        _cleanup_free_ char *pf = NULL;
        if (override || !is_vf(root, bdf, &pf))
                return true;
        uint32_t ap = 1;
        (void)sim_sysfs_read_u32(root, pf, "sriov_drivers_autoprobe", &ap);
        return ap != 0;
}

static size_t vgpus_on_function(struct sim_state *s, const char *bdf)
{
        size_t n = 0;
        struct sim_gpu *g = sim_gpu_by_bdf(s, bdf);
        for (size_t i = 0; i < s->n_vgpus; i++) {
                if (strcmp(s->vgpus[i].parent_bdf, bdf) == 0)
                        n++;
                else if (g && sim_gpu_of_function(s, s->vgpus[i].parent_bdf) == g)
                        n++; /* a PF: its VFs' vGPUs too */
        }
        return n;
}

/* A GPU PF changes driver: the GPU is reset (pending MIG mode applies, vgpu.md/mig.md). */
static void reset_if_gpu(struct sim_state *s, const char *bdf)
{
        struct sim_gpu *g = sim_gpu_by_bdf(s, bdf);
        if (g)
                (void)sim_gpu_reset(s, g, NULL);
}

static int do_bind(struct sim_state *s, const char *drv, const char *bdf)
{
        _cleanup_free_ char *dir = NULL;
        if (sim_sysfs_device_dir(s->root, bdf, &dir) < 0)
                return -ENODEV;
        _cleanup_free_ char *ovr = NULL;
        int r = sim_sysfs_get_override(s->root, bdf, &ovr);
        if (r < 0)
                return -ENODEV;
        if (ovr) {
                if (strcmp(ovr, drv) != 0)
                        return -ENODEV;
        } else if (sim_sysfs_driver_matches(s, drv, bdf) <= 0)
                return -ENODEV;
        if (!can_probe(s->root, bdf, ovr))
                return -ENODEV;
        _cleanup_free_ char *cur = NULL;
        r = sim_sysfs_driver_of(s->root, bdf, &cur);
        if (r < 0)
                return r;
        if (cur)
                return -EBUSY;
        r = sim_sysfs_link_driver(s->root, bdf, drv);
        if (r < 0)
                return r;
        reset_if_gpu(s, bdf);
        return 0;
}

static int do_unbind(struct sim_state *s, const char *drv, const char *bdf)
{
        _cleanup_free_ char *cur = NULL;
        int r = sim_sysfs_driver_of(s->root, bdf, &cur);
        if (r < 0 || !cur || strcmp(cur, drv) != 0)
                return -ENODEV;
        /* The vGPU manager keeps a function whose vGPUs live (simulator rule, documented). */
        if (vgpus_on_function(s, bdf) > 0)
                return -EBUSY;
        /* The PF driver's remove disables SR-IOV: its VFs go away with it. */
        uint32_t nvfs = 0;
        if (sim_sysfs_read_u32(s->root, bdf, "sriov_numvfs", &nvfs) >= 0 && nvfs > 0) {
                r = sim_sysfs_write_attr(s->root, bdf, "sriov_numvfs", "0");
                if (r < 0)
                        return r;
        }
        r = sim_sysfs_unlink_driver(s->root, bdf);
        if (r < 0)
                return r;
        reset_if_gpu(s, bdf);
        return 0;
}

static int do_drivers_probe(struct sim_state *s, const char *bdf)
{
        _cleanup_free_ char *dir = NULL;
        if (sim_sysfs_device_dir(s->root, bdf, &dir) < 0)
                return -ENODEV;
        _cleanup_free_ char *cur = NULL;
        int r = sim_sysfs_driver_of(s->root, bdf, &cur);
        if (r < 0)
                return r;
        if (cur)
                return 0;
        _cleanup_free_ char *ovr = NULL;
        r = sim_sysfs_get_override(s->root, bdf, &ovr);
        if (r < 0)
                return r;
        if (!can_probe(s->root, bdf, ovr))
                return 0;
        if (ovr) {
                /* only a driver with that name may bind; "none" or unknown names bind nothing */
                if (sim_sysfs_driver_exists(s->root, ovr))
                        return do_bind(s, ovr, bdf);
                return 0;
        }
        const char *def = sim_sysfs_default_driver(s, bdf);
        if (def && sim_sysfs_driver_exists(s->root, def) &&
            sim_sysfs_driver_matches(s, def, bdf) > 0)
                return do_bind(s, def, bdf);
        /* otherwise a driver that took the id with new_id */
        _cleanup_free_ char *drvdir = gv_path_join(s->root, "sys/bus/pci/drivers");
        DIR *d = opendir(drvdir);
        if (!d)
                return 0;
        struct dirent *de;
        char found[256] = "";
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && !*found &&
                    sim_sysfs_driver_matches(s, de->d_name, bdf) > 0)
                        snprintf(found, sizeof(found), "%s", de->d_name);
        closedir(d);
        return *found ? do_bind(s, found, bdf) : 0;
}

static int parse_id_line(const char *v, uint16_t *vendor, uint16_t *device)
{
        _cleanup_strv_free_ char **f = strv_split(v, " \t\n");
        if (strv_length(f) < 2 || gv_parse_u16(f[0], 16, vendor) < 0 ||
            gv_parse_u16(f[1], 16, device) < 0)
                return -EINVAL;
        return 0;
}

static int do_new_id(struct sim_state *s, const char *drv, const char *v, bool add)
{
        uint16_t vendor, device;
        int r = parse_id_line(v, &vendor, &device);
        if (r < 0)
                return r;
        r = sim_sysfs_dynid(s->root, drv, vendor, device, add);
        if (r < 0 || !add)
                return r;
        /* "the driver will probe for the device and attempt to bind to it" (passthrough.md §1) */
        _cleanup_free_ char *devdir = gv_path_join(s->root, "sys/bus/pci/devices");
        DIR *d = opendir(devdir);
        if (!d)
                return 0;
        _cleanup_strv_free_ char **bdfs = NULL;
        struct dirent *de;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        strv_extend(&bdfs, de->d_name);
        closedir(d);
        STRV_FOREACH(b, bdfs) {
                _cleanup_free_ char *cur = NULL, *ovr = NULL;
                if (sim_sysfs_driver_of(s->root, *b, &cur) < 0 || cur)
                        continue;
                if (sim_sysfs_get_override(s->root, *b, &ovr) < 0 || (ovr && strcmp(ovr, drv)))
                        continue;
                if (sim_sysfs_driver_matches(s, drv, *b) > 0)
                        (void)do_bind(s, drv, *b);
        }
        return 0;
}

static int do_driver_override(const char *root, const char *bdf, const char *v)
{
        if (strlen(v) >= 4095) /* driver_set_override: at most PAGE_SIZE - 1 */
                return -EINVAL;
        return sim_sysfs_write_attr(root, bdf, "driver_override", *v ? v : "(null)");
}

static int do_sriov_numvfs(struct sim_state *s, const char *bdf, const char *v)
{
        uint16_t n;
        int r = gv_parse_u16(v, 0, &n);
        if (r < 0)
                return r; /* kstrtou16: EINVAL or ERANGE */
        uint32_t total = 0, cur = 0;
        if (sim_sysfs_read_u32(s->root, bdf, "sriov_totalvfs", &total) < 0 ||
            sim_sysfs_read_u32(s->root, bdf, "sriov_numvfs", &cur) < 0)
                return -EIO;
        if (n > total)
                return -ERANGE;
        if (n == cur)
                return 0;
        _cleanup_free_ char *drv = NULL;
        r = sim_sysfs_driver_of(s->root, bdf, &drv);
        if (r < 0)
                return r;
        /* "no driver bound to device; cannot configure SR-IOV" */
        if (!drv || (strcmp(drv, "nvidia") != 0 && strcmp(drv, "vfio-pci") != 0))
                return -ENOENT;
        if (n == 0) {
                if (vgpus_on_function(s, bdf) > 0)
                        return -EBUSY;
        } else if (cur != 0)
                return -EBUSY; /* "%d VFs already enabled. Disable before enabling %d VFs" */
        char buf[16];
        snprintf(buf, sizeof(buf), "%u", n);
        return sim_sysfs_write_attr(s->root, bdf, "sriov_numvfs", buf);
}

static int type_of_dir(const char *name, uint32_t *ret)
{
        if (!gv_startswith(name, "nvidia-"))
                return -EINVAL;
        return gv_parse_u32(name + strlen("nvidia-"), 10, ret);
}

static int do_mdev_create(struct sim_state *s, const char *parent, const char *typedir,
                          const void *buf, size_t n)
{
        /* mdev core: the value is a UUID string, optionally with one newline */
        if (n < GV_UUID_STR_LEN || n > GV_UUID_STR_LEN + 1)
                return -EINVAL;
        _cleanup_free_ char *v = value_of(buf, n);
        struct gv_uuid u;
        if (gv_parse_uuid(v, &u) < 0)
                return -EINVAL;
        char uuid[GV_UUID_STR_LEN + 1];
        gv_uuid_format(&u, uuid);
        if (sim_vgpu_by_uuid(s, uuid))
                return -EEXIST;
        uint32_t type_id;
        if (type_of_dir(typedir, &type_id) < 0)
                return -EINVAL;
        struct sim_gpu *g = sim_gpu_of_function(s, parent);
        if (!g)
                return -ENODEV;
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (strcmp(s->vgpus[i].parent_bdf, parent) == 0 && strcmp(parent, g->bdf) != 0)
                        return -ENOSPC; /* one mdev per VF (vgpu.md §2) */
        return sim_vgpu_add(s, g, type_id, uuid, parent, NULL);
}

static int do_mdev_remove(struct sim_state *s, const char *uuid, const char *v)
{
        uint64_t val;
        if (gv_parse_u64(v, 0, &val) < 0)
                return -EINVAL;
        if (val == 0)
                return 0;
        struct sim_vgpu *vg = sim_vgpu_by_uuid(s, uuid);
        if (!vg)
                return -ENODEV;
        if (vg->vm_id[0])
                return -EBUSY; /* the vendor driver fails remove() while the device is active */
        return sim_vgpu_remove(s, vg->instance);
}

static int do_current_vgpu_type(struct sim_state *s, const char *vf, const char *v)
{
        uint32_t id;
        if (gv_parse_u32(v, 10, &id) < 0)
                return -EINVAL;
        struct sim_vgpu *cur = NULL;
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (strcmp(s->vgpus[i].parent_bdf, vf) == 0)
                        cur = &s->vgpus[i];
        if (id == 0) {
                if (!cur)
                        return 0;
                /* "The VFIO device must be closed before the user can de-select the vGPU type." */
                if (cur->vm_id[0])
                        return -EBUSY;
                return sim_vgpu_remove(s, cur->instance);
        }
        if (cur)
                return cur->type_id == id ? 0 : -EBUSY;
        struct sim_gpu *g = sim_gpu_of_function(s, vf);
        if (!g)
                return -ENODEV;
        if (sim_vgpu_creatable(s, g, id) == 0)
                return -EINVAL; /* not in creatable_vgpu_types */
        struct gv_uuid u;
        char uuid[GV_UUID_STR_LEN + 1];
        int r = gv_uuid_random(&u);
        if (r < 0)
                return r;
        gv_uuid_format(&u, uuid);
        r = sim_vgpu_add(s, g, id, uuid, vf, NULL);
        return r == -ENOSPC || r == -EBUSY ? -EINVAL : r;
}

static const char *op_name(enum op op)
{
        switch (op) {
        case OP_BIND: return "bind";
        case OP_UNBIND: return "unbind";
        case OP_DRIVERS_PROBE: return "drivers_probe";
        case OP_DRIVER_OVERRIDE: return "driver_override";
        case OP_SRIOV_NUMVFS: return "sriov_numvfs";
        case OP_MDEV_CREATE: return "mdev_create";
        case OP_MDEV_REMOVE: return "mdev_remove";
        case OP_CURRENT_VGPU_TYPE: return "current_vgpu_type";
        default: return NULL;
        }
}

/* Apply one write. Returns 0 or -errno. */
static int apply(const struct ctl *c, const void *buf, size_t n)
{
        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        int r = sim_state_lock(c->root, SIM_LOCK_EXCLUSIVE, &s, NULL);
        if (r < 0)
                return -EIO;
        _cleanup_free_ char *v = value_of(buf, n);

        /* the function the write is about, and the injection target */
        const char *bdf = NULL, *target = NULL;
        switch (c->op) {
        case OP_BIND:
        case OP_UNBIND:
        case OP_DRIVERS_PROBE:
                bdf = target = v;
                break;
        case OP_DRIVER_OVERRIDE:
        case OP_SRIOV_NUMVFS:
        case OP_CURRENT_VGPU_TYPE:
        case OP_MDEV_CREATE:
                bdf = target = c->arg;
                break;
        case OP_MDEV_REMOVE:
                bdf = c->arg2;
                target = c->arg;
                break;
        default:
                break;
        }
        const char *name = op_name(c->op);
        if (name && (!bdf || is_bdf(bdf)))
                r = inject(s, name, bdf, target);
        else
                r = 0;

        if (r == 0) {
                switch (c->op) {
                case OP_BIND: r = do_bind(s, c->arg, v); break;
                case OP_UNBIND: r = do_unbind(s, c->arg, v); break;
                case OP_NEW_ID: r = do_new_id(s, c->arg, v, true); break;
                case OP_REMOVE_ID: r = do_new_id(s, c->arg, v, false); break;
                case OP_DRIVERS_PROBE: r = do_drivers_probe(s, v); break;
                case OP_DRIVER_OVERRIDE: r = do_driver_override(s->root, c->arg, v); break;
                case OP_SRIOV_NUMVFS: r = do_sriov_numvfs(s, c->arg, v); break;
                case OP_MDEV_CREATE: r = do_mdev_create(s, c->arg, c->arg2, buf, n); break;
                case OP_MDEV_REMOVE: r = do_mdev_remove(s, c->arg, v); break;
                case OP_CURRENT_VGPU_TYPE: r = do_current_vgpu_type(s, c->arg, v); break;
                default: r = -EINVAL; break;
                }
        }
        /* commit also when failing: an injected ONCE entry was consumed */
        int q = sim_state_commit(s, NULL);
        if (r == 0 && q < 0)
                r = -EIO;
        return r;
}

/* ---------------------------------------------------------------- interposed functions */

static int finish_open(int fd, int dirfd, const char *path, int flags)
{
        if (fd < 0)
                return fd;
        int saved = errno;
        in_mock++;
        struct ctl *c = ctl_for_open(dirfd, path, flags);
        if (c)
                fd_put(fd, c);
        else
                fd_drop(fd); /* a reused fd number must not keep an old entry */
        in_mock--;
        errno = saved;
        return fd;
}

/* Control files ignore O_TRUNC/O_APPEND/O_CREAT as sysfs does: the old value must survive a
 * write the kernel rejects. Only names that can be control files are touched. */
static int sysfs_flags(const char *path, int flags)
{
        if (!path || (flags & O_ACCMODE) == O_RDONLY ||
            (flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
                return flags;
        const char *base = strrchr(path, '/');
        base = base ? base + 1 : path;
        for (size_t i = 0; i < ELEMENTSOF(ctl_names); i++)
                if (strcmp(base, ctl_names[i]) == 0) {
                        int saved = errno;
                        in_mock++;
                        char resolved[PATH_MAX];
                        char *root = NULL;
                        bool inside = realpath(path, resolved) &&
                                      sim_root_of_path(resolved, &root) >= 0;
                        free(root);
                        in_mock--;
                        errno = saved;
                        return inside ? flags & ~(O_TRUNC | O_APPEND | O_CREAT) : flags;
                }
        return flags;
}

#define OPEN_BODY(realvar, name)                                                      \
        mode_t mode = 0;                                                              \
        if (flags & (O_CREAT | O_TMPFILE)) {                                          \
                va_list ap;                                                           \
                va_start(ap, flags);                                                  \
                mode = va_arg(ap, mode_t);                                            \
                va_end(ap);                                                           \
        }                                                                             \
        if (!REAL(realvar, name)) {                                                   \
                errno = ENOSYS;                                                       \
                return -1;                                                            \
        }                                                                             \
        if (in_mock)                                                                  \
                return realvar(path, flags, mode);                                    \
        flags = sysfs_flags(path, flags);                                             \
        return finish_open(realvar(path, flags, mode), AT_FDCWD, path, flags);

EXPORT int open(const char *path, int flags, ...)
{
        OPEN_BODY(real_open, "open")
}

EXPORT int open64(const char *path, int flags, ...)
{
        OPEN_BODY(real_open64, "open64")
}

#define OPENAT_BODY(realvar, name)                                                    \
        mode_t mode = 0;                                                              \
        if (flags & (O_CREAT | O_TMPFILE)) {                                          \
                va_list ap;                                                           \
                va_start(ap, flags);                                                  \
                mode = va_arg(ap, mode_t);                                            \
                va_end(ap);                                                           \
        }                                                                             \
        if (!REAL(realvar, name)) {                                                   \
                errno = ENOSYS;                                                       \
                return -1;                                                            \
        }                                                                             \
        if (in_mock || (path[0] != '/' && dirfd != AT_FDCWD))                 \
                return finish_open_at(realvar(dirfd, path, flags, mode), dirfd, path, \
                                      flags);                                         \
        flags = sysfs_flags(path, flags);                                             \
        return finish_open(realvar(dirfd, path, flags, mode), dirfd, path, flags);

static int finish_open_at(int fd, int dirfd, const char *path, int flags)
{
        if (in_mock)
                return fd;
        return finish_open(fd, dirfd, path, flags);
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
        OPENAT_BODY(real_openat, "openat")
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
        OPENAT_BODY(real_openat64, "openat64")
}

/* _FORTIFY_SOURCE variants (glibc exports them; no header declares them) */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

EXPORT int __open_2(const char *path, int flags)
{
        if (!REAL(real_open_2, "__open_2")) {
                errno = ENOSYS;
                return -1;
        }
        if (in_mock)
                return real_open_2(path, flags);
        flags = sysfs_flags(path, flags);
        return finish_open(real_open_2(path, flags), AT_FDCWD, path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
        if (!REAL(real_open64_2, "__open64_2")) {
                errno = ENOSYS;
                return -1;
        }
        if (in_mock)
                return real_open64_2(path, flags);
        flags = sysfs_flags(path, flags);
        return finish_open(real_open64_2(path, flags), AT_FDCWD, path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
        if (!REAL(real_openat_2, "__openat_2")) {
                errno = ENOSYS;
                return -1;
        }
        if (in_mock)
                return real_openat_2(dirfd, path, flags);
        return finish_open(real_openat_2(dirfd, path, flags), dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
        if (!REAL(real_openat64_2, "__openat64_2")) {
                errno = ENOSYS;
                return -1;
        }
        if (in_mock)
                return real_openat64_2(dirfd, path, flags);
        return finish_open(real_openat64_2(dirfd, path, flags), dirfd, path, flags);
}

EXPORT ssize_t write(int fd, const void *buf, size_t count)
{
        if (!REAL(real_write, "write")) {
                errno = ENOSYS;
                return -1;
        }
        if (in_mock || fd < 0)
                return real_write(fd, buf, count);
        struct ctl c;
        if (!fd_get(fd, &c))
                return real_write(fd, buf, count);
        in_mock++;
        int r = apply(&c, buf, count);
        free(c.root);
        in_mock--;
        if (r < 0) {
                errno = -r;
                return -1;
        }
        return (ssize_t)count;
}

EXPORT int close(int fd)
{
        if (!REAL(real_close, "close")) {
                errno = ENOSYS;
                return -1;
        }
        if (!in_mock && fd >= 0 && n_fds > 0) {
                int saved = errno;
                fd_drop(fd);
                errno = saved;
        }
        return real_close(fd);
}

/* A shell redirection opens the file and dup2()s it onto the target descriptor. */
EXPORT int dup(int oldfd)
{
        if (!REAL(real_dup, "dup")) {
                errno = ENOSYS;
                return -1;
        }
        int fd = real_dup(oldfd);
        if (fd >= 0 && !in_mock) {
                int saved = errno;
                fd_copy(oldfd, fd);
                errno = saved;
        }
        return fd;
}

EXPORT int dup2(int oldfd, int newfd)
{
        if (!REAL(real_dup2, "dup2")) {
                errno = ENOSYS;
                return -1;
        }
        int fd = real_dup2(oldfd, newfd);
        if (fd >= 0 && !in_mock) {
                int saved = errno;
                fd_copy(oldfd, fd);
                errno = saved;
        }
        return fd;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
        if (!REAL(real_dup3, "dup3")) {
                errno = ENOSYS;
                return -1;
        }
        int fd = real_dup3(oldfd, newfd, flags);
        if (fd >= 0 && !in_mock) {
                int saved = errno;
                fd_copy(oldfd, fd);
                errno = saved;
        }
        return fd;
}
