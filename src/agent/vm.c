/* SPDX-License-Identifier: MIT */
/*
 * vm.c — the agent's VMs: definitions and state on disk, start/stop/kill/delete, status, and
 * re-adoption of running QEMUs after a restart (agent.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/sampler.h"
#include "agent/console.h"
#include "hw/sysfs.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/enum-table.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/strv.h"
#include "vmm/cloud-init.h"
#include "vmm/confine.h"
#include "vmm/disk.h"
#include "vmm/migrate.h"
#include "vmm/qmp.h"

static const char *const phase_table[_GV_VM_PHASE_MAX] = {
        [GV_VM_DEFINED] = "defined",   [GV_VM_STARTING] = "starting",
        [GV_VM_RUNNING] = "running",   [GV_VM_STOPPING] = "stopping",
        [GV_VM_STOPPED] = "stopped",   [GV_VM_CRASHED] = "crashed",
        [GV_VM_INCOMING] = "incoming", [GV_VM_MIGRATING] = "migrating",
        [GV_VM_MIGRATED] = "migrated",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_phase, enum gv_vm_phase, phase_table);

bool gv_vm_phase_has_qemu(enum gv_vm_phase p)
{
        return p == GV_VM_STARTING || p == GV_VM_RUNNING || p == GV_VM_STOPPING ||
               p == GV_VM_INCOMING || p == GV_VM_MIGRATING || p == GV_VM_MIGRATED;
}

static const char *const stop_how_table[_GV_VM_STOP_MAX] = {
        [GV_VM_STOP_NONE] = "none",
        [GV_VM_STOP_GUEST] = "guest-poweroff",
        [GV_VM_STOP_ACPI] = "acpi-powerdown",
        [GV_VM_STOP_QUIT] = "qmp-quit",
        [GV_VM_STOP_KILL] = "sigkill",
        [GV_VM_STOP_CRASH] = "crash",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_stop_how, enum gv_vm_stop_how, stop_how_table);

#define QMP_CONNECT_MS 15000
#define QMP_COMMAND_MS 5000
#define RUNNING_WAIT_MS 10000
#define QUIT_WAIT_MS 5000
#define STATE_MAX (1u << 20)
#define LOG_TAIL 2000

static int64_t now_s(void)
{
        return (int64_t)time(NULL);
}

static char *run_path(const struct gv_agent_vm *vm, const char *file)
{
        return gv_path_join(vm->run_dir, file);
}

/* The last bytes of QEMU's stderr, for error messages ("" when none). */
static char *qemu_log_tail(const struct gv_agent_vm *vm)
{
        _cleanup_free_ char *path = gv_path_join(vm->log_dir, "qemu.log"), *text = NULL;
        size_t len = 0;

        if (gv_read_file(path, 1 << 20, &text, &len) < 0 || !len)
                return xstrdup("");
        while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
                text[--len] = '\0';
        const char *start = len > LOG_TAIL ? text + len - LOG_TAIL : text;
        /* The last line is usually the reason ("qemu-system-x86_64: -device ...: ..."). */
        const char *nl = strrchr(start, '\n');
        return xstrdup(nl ? nl + 1 : start);
}

/* ---- state on disk ---- */

/* text + "\n" to path atomically (a temporary file renamed over it), fsync'd when `sync`, mode
 * 0600 from its creation: the VM's directory lets a confined QEMU's user through to run/ and
 * disks/, and the definition (cloud-init user data included) is not that user's to read. */
static int write_private(const char *path, const char *text, bool sync)
{
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        _cleanup_free_ char *data = xasprintf("%s\n", text);
        size_t len = strlen(data), off = 0;
        int fd, r = 0;

        (void)unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        while (off < len && r == 0) {
                ssize_t n = write(fd, data + off, len - off);
                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n > 0)
                        off += (size_t)n;
        }
        if (r == 0 && sync && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

static json_t *hw_json(const struct gv_hw *hw)
{
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(gv_hw_kind_to_string(hw->kind)));
        json_object_set_new(o, "gpu", json_string(hw->gpu));
        if (hw->kind == GV_HW_VGPU || hw->kind == GV_HW_TAP)
                json_object_set_new(o, "id", json_string(hw->id));
        if (hw->kind == GV_HW_MIG_GI)
                json_object_set_new(o, "gi", json_integer(hw->gi));
        return o;
}

static json_t *device_json(const struct gv_vm_device *d)
{
        json_t *o = json_object();
        json_object_set_new(o, "kind", json_string(gv_vm_dev_kind_to_string(d->kind)));
        if (d->n_functions) {
                json_t *f = json_array();
                for (size_t i = 0; i < d->n_functions; i++)
                        json_array_append_new(f, json_string(d->functions[i]));
                json_object_set_new(o, "functions", f);
        }
        if (d->sysfsdev)
                json_object_set_new(o, "sysfsdev", json_string(d->sysfsdev));
        if (d->standin_for)
                json_object_set_new(o, "standin_for", json_string(d->standin_for));
        json_object_set_new(o, "migration", json_boolean(d->migration));
        return o;
}

static json_t *status_json(struct gv_agent *a, struct gv_agent_vm *vm);

int gv_agent_vm_save(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err)
{
        _cleanup_json_ json_t *j = json_object();
        _cleanup_free_ char *path = gv_path_join(vm->dir, "state.json"), *text = NULL;
        json_t *hw = json_array(), *dev = json_array();
        int r;

        json_object_set_new(j, "phase", json_string(gv_vm_phase_to_string(vm->phase)));
        json_object_set_new(j, "want_running", json_boolean(vm->want_running));
        json_object_set_new(j, "pid", json_integer(vm->proc.pidfd >= 0 ? vm->proc.pid : 0));
        json_object_set_new(j, "started_at", json_integer(vm->started_at));
        for (size_t i = 0; i < vm->n_hw; i++)
                json_array_append_new(hw, hw_json(&vm->hw[i]));
        json_object_set_new(j, "hw", hw);
        for (size_t i = 0; i < vm->n_devices; i++)
                json_array_append_new(dev, device_json(&vm->devices[i]));
        json_object_set_new(j, "devices", dev);
        if (vm->last_error)
                json_object_set_new(j, "last_error", json_string(vm->last_error));
        json_object_set_new(j, "last_stop", json_string(gv_vm_stop_how_to_string(vm->last_stop)));
        if (vm->migration_uri)
                json_object_set_new(j, "migration_uri", json_string(vm->migration_uri));
        if (vm->incoming)
                json_object_set_new(j, "incoming", json_true());
        if (vm->confinement)
                json_object_set(j, "confinement", vm->confinement);
        text = gv_json_dumps_pretty(j);
        /* Atomic (a killed agent leaves the old or the new file) but not fsync'd: what this file
         * holds — a QEMU pid, the mdevs, GPU instances and vfio bindings made for it — does not
         * outlive a power loss either, and an unreadable state.json after one loads as a
         * stopped VM (vm_load). The definition, config.json, is fsync'd. A start without GPUs
         * made 7 fsyncs, now 4: the operation journal's (BENCHMARKS.md, VM start). */
        r = write_private(path, text, false);
        /* What status answers while an operation holds the VM's lock (gv_agent_vm_status). */
        json_t *snap = status_json(a, vm), *old;
        pthread_mutex_lock(&vm->cache_lock);
        old = vm->status_cache;
        vm->status_cache = snap;
        pthread_mutex_unlock(&vm->cache_lock);
        json_decref(old);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot write '%s': %s.", path, strerror(-r));
        return 0;
}

static int load_hw(const json_t *a, struct gv_agent_vm *vm, struct gv_error **err)
{
        size_t i;
        json_t *o;

        json_array_foreach(a, i, o) {
                const char *kind = NULL, *gpu = NULL, *id = NULL;
                uint32_t gi = 0;
                struct gv_hw hw = { 0 };
                int r = gv_json_get_string(o, "kind", &kind, err);
                if (r >= 0)
                        r = gv_json_get_string(o, "gpu", &gpu, err);
                if (r >= 0)
                        r = gv_json_opt_string(o, "id", &id, err);
                if (r >= 0)
                        r = gv_json_opt_u32(o, "gi", &gi, err);
                if (r < 0)
                        return r;
                hw.kind = gv_hw_kind_from_string(kind);
                if ((int)hw.kind < 0 || strlen(gpu) >= sizeof(hw.gpu) ||
                    (id && strlen(id) >= sizeof(hw.id)))
                        return gv_error_set(err, EINVAL, "hw[%zu]: kind '%s' or its ids are not "
                                            "valid.", i, kind);
                snprintf(hw.gpu, sizeof(hw.gpu), "%s", gpu);
                if (id)
                        snprintf(hw.id, sizeof(hw.id), "%s", id);
                hw.gi = gi;
                vm->hw = xreallocarray(vm->hw, vm->n_hw + 1, sizeof(*vm->hw));
                vm->hw[vm->n_hw++] = hw;
        }
        return 0;
}

static struct gv_agent_vm *vm_new(struct gv_agent *a, struct gv_vm_config *c)
{
        struct gv_agent_vm *vm = xnew0(struct gv_agent_vm, 1);

        pthread_mutex_init(&vm->lock, NULL);
        pthread_mutex_init(&vm->cache_lock, NULL);
        vm->config = c;
        gv_agent_vm_set_phase(vm, GV_VM_DEFINED);
        vm->proc = GV_PROC_NULL;
        vm->console_fd = -1;
        vm->dir = gv_path_join_many(a->state_dir, "vms", c->name, NULL);
        vm->run_dir = gv_path_join(vm->dir, "run");
        vm->log_dir = gv_path_join(vm->dir, "log");
        return vm;
}

static void vm_free(struct gv_agent_vm *vm)
{
        if (!vm)
                return;
        gv_agent_console_detach(vm);
        gv_proc_close(&vm->proc);
        for (size_t i = 0; i < vm->n_devices; i++) {
                strv_free(vm->devices[i].functions);
                free(vm->devices[i].sysfsdev);
                free(vm->devices[i].standin_for);
        }
        free(vm->devices);
        free(vm->hw);
        free(vm->last_error);
        free(vm->migration_uri);
        strv_free(vm->argv);
        json_decref(vm->status_cache);
        gv_vm_config_free(vm->config);
        free(vm->dir);
        free(vm->run_dir);
        free(vm->log_dir);
        json_decref(vm->confinement);
        pthread_mutex_destroy(&vm->lock);
        pthread_mutex_destroy(&vm->cache_lock);
        free(vm);
}

static int vm_load(struct gv_agent *a, const char *name, struct gv_agent_vm **ret,
                   struct gv_error **err)
{
        _cleanup_free_ char *dir = gv_path_join_many(a->state_dir, "vms", name, NULL);
        _cleanup_free_ char *cpath = gv_path_join(dir, "config.json");
        _cleanup_free_ char *spath = gv_path_join(dir, "state.json");
        _cleanup_json_ json_t *cj = NULL, *sj = NULL;
        struct gv_vm_config *c = NULL;
        struct gv_agent_vm *vm;
        const char *phase = "defined", *last_error = NULL, *last_stop = NULL, *mig_uri = NULL;
        json_t *hw = NULL;
        int r;

        r = gv_json_load_file(cpath, STATE_MAX, &cj, err);
        if (r >= 0)
                r = gv_vm_config_from_json(cj, &c, err);
        if (r < 0)
                return gv_error_wrap(err, r, "VM '%s' (%s)", name, cpath);
        if (strcmp(c->name, name) != 0) {
                gv_vm_config_free(c);
                return gv_error_set(err, EINVAL, "%s names VM '%s', not '%s'.", cpath, c->name,
                                    name);
        }
        vm = vm_new(a, c);
        if (gv_file_exists(spath) > 0) {
                int64_t pid = 0;
                r = gv_json_load_file(spath, STATE_MAX, &sj, err);
                if (r >= 0)
                        r = gv_json_opt_string(sj, "phase", &phase, err);
                if (r >= 0)
                        r = gv_json_opt_bool(sj, "want_running", &vm->want_running, err);
                if (r >= 0)
                        r = gv_json_opt_string(sj, "last_error", &last_error, err);
                if (r >= 0)
                        r = gv_json_opt_string(sj, "last_stop", &last_stop, err);
                if (r >= 0)
                        r = gv_json_opt_string(sj, "migration_uri", &mig_uri, err);
                if (r >= 0)
                        r = gv_json_opt_bool(sj, "incoming", &vm->incoming, err);
                if (r >= 0) {
                        json_t *p = json_object_get(sj, "pid"), *s = json_object_get(sj, "started_at");
                        pid = json_is_integer(p) ? json_integer_value(p) : 0;
                        vm->started_at = json_is_integer(s) ? json_integer_value(s) : 0;
                        hw = json_object_get(sj, "hw");
                        if (hw && json_is_array(hw))
                                r = load_hw(hw, vm, err);
                        json_t *conf = json_object_get(sj, "confinement");
                        if (json_is_object(conf))
                                vm->confinement = json_incref(conf);
                }
                if (r < 0) {
                        /* state.json is written without fsync (gv_agent_vm_save): after a power
                         * loss it can be empty. The definition is whole; what state.json held
                         * (a QEMU, GPU hardware) did not survive the reboot, and what did is
                         * the reconcile loop's. Load the VM as stopped and say why. */
                        _cleanup_free_ char *why = xstrdup(gv_error_msg(err ? *err : NULL, r));
                        if (err) {
                                gv_error_free(*err);
                                *err = NULL;
                        }
                        free(vm->hw);
                        vm->hw = NULL;
                        vm->n_hw = 0;
                        gv_agent_vm_set_phase(vm, GV_VM_STOPPED);
                        vm->want_running = false;
                        vm->last_error = xasprintf("%s was unreadable (%s); loaded as stopped.",
                                                   spath, why);
                        *ret = vm;
                        return 0;
                }
                gv_agent_vm_set_phase(vm, gv_vm_phase_from_string(phase));
                if ((int)vm->phase < 0)
                        gv_agent_vm_set_phase(vm, GV_VM_STOPPED);
                vm->proc.pid = pid > 0 && pid < INT32_MAX ? (pid_t)pid : 0;
                if (last_error)
                        vm->last_error = xstrdup(last_error);
                if (mig_uri)
                        vm->migration_uri = xstrdup(mig_uri);
                vm->last_stop = last_stop ? gv_vm_stop_how_from_string(last_stop) : GV_VM_STOP_NONE;
                if ((int)vm->last_stop < 0)
                        vm->last_stop = GV_VM_STOP_NONE;
        }
        *ret = vm;
        return 0;
}

/* ---- table ---- */

struct gv_agent_vm *gv_agent_vm_find_locked(struct gv_agent *a, const char *name)
{
        for (size_t i = 0; i < a->n_vms; i++)
                if (strcmp(a->vms[i]->config->name, name) == 0)
                        return a->vms[i];
        return NULL;
}

/* Find and lock a VM (its own lock). */
int gv_agent_vm_get(struct gv_agent *a, const char *name, struct gv_agent_vm **ret,
                  struct gv_error **err)
{
        struct gv_agent_vm *vm;

        pthread_mutex_lock(&a->lock);
        vm = gv_agent_vm_find_locked(a, name);
        pthread_mutex_unlock(&a->lock);
        if (!vm)
                return gv_error_set(err, ENOENT, "No VM '%s' on this host.", name);
        /* VMs leave the table only under their own lock (delete), and a deleted VM is freed
         * only with the agent (a->deleted): vm stays valid while we wait for its lock. */
        pthread_mutex_lock(&vm->lock);
        pthread_mutex_lock(&a->lock);
        bool still = gv_agent_vm_find_locked(a, name) == vm;
        pthread_mutex_unlock(&a->lock);
        if (!still) {
                pthread_mutex_unlock(&vm->lock);
                return gv_error_set(err, ENOENT, "No VM '%s' on this host.", name);
        }
        *ret = vm;
        return 0;
}

/* ---- confinement (docs/qemu-confinement.md) ---- */

char *gv_agent_vm_cgroup(const struct gv_agent *a, const char *name)
{
        return gv_path_join(a->cgroup_parent, name);
}

/* QEMU is gone: its cgroup goes (the vfio nodes go back with the GPU hardware). A cgroup that
 * cannot be removed now is the reconcile loop's. */
static void confine_release(struct gv_agent *a, struct gv_agent_vm *vm)
{
        _cleanup_free_ char *group = gv_agent_vm_cgroup(a, vm->config->name);

        (void)gv_cgroup_remove(a->cgroup_root, group, NULL);
        json_decref(vm->confinement);
        vm->confinement = NULL;
}

/* A persistent tap (tap.h) is owned by the agent's user; QEMU, another user now, opens it by
 * name, which the kernel allows its owner (TUNSETOWNER/TUNSETGROUP). */
static int tap_give(const char *ifname, const struct gv_confine_user *u, struct gv_error **err)
{
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
        _cleanup_close_ int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

        if (!u->switch_user)
                return 0;
        if (fd < 0)
                return gv_error_set(err, errno, "Cannot open '/dev/net/tun' to hand tap '%s' to "
                                    "the QEMU user: %m.", ifname);
        snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
        if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETOWNER, (unsigned long)u->uid) < 0 ||
            ioctl(fd, TUNSETGROUP, (unsigned long)u->gid) < 0)
                return gv_error_set(err, errno, "Cannot hand tap '%s' to the QEMU user '%s': %m.",
                                    ifname, u->name);
        return 0;
}

/* The disk files of a start (`files`, per config disk) the QEMU user gets: those the agent made
 * in disks/ become its own; a file given by path, an overlay's base, the kernel and initrd must
 * already be open to it (they are not the VM's to give away). */
static int confine_files(struct gv_agent_vm *vm, const struct gv_confine_user *u,
                         char *const *files, const char *seed, struct gv_error **err)
{
        _cleanup_free_ char *disks = gv_path_join(vm->dir, "disks");
        int r = 0;

        r = gv_confine_give(u, vm->run_dir, 0700, err);
        if (r >= 0)
                r = gv_confine_give(u, disks, 0700, err);
        if (r < 0)
                return r;
        if (u->switch_user) {
                /* A definition written by an older agent (0644) becomes private too. */
                _cleanup_free_ char *cpath = gv_path_join(vm->dir, "config.json");
                (void)chmod(cpath, 0600);
                if (chown(vm->dir, 0, u->gid) < 0 || chmod(vm->dir, 0710) < 0)
                        return gv_error_set(err, errno, "Cannot let the QEMU user '%s' through "
                                            "'%s': %m.", u->name, vm->dir);
        } else if (chmod(vm->dir, 0700) < 0) {
                return gv_error_set(err, errno, "Cannot set the mode of '%s': %m.", vm->dir);
        }
        for (size_t i = 0; i < vm->config->n_disks && r >= 0; i++) {
                const struct gv_vm_disk *d = &vm->config->disks[i];
                if (d->kind == GV_VM_DISK_IMAGE) {
                        r = gv_confine_can_open(u, files[i], !d->readonly, err);
                } else {
                        r = gv_confine_give(u, files[i], 0600, err);
                        if (r >= 0 && d->kind == GV_VM_DISK_OVERLAY)
                                r = gv_confine_can_open(u, d->base, false, err);
                }
                if (r < 0)
                        r = gv_error_wrap(err, r, "Disk '%s'", d->name);
        }
        if (r >= 0 && seed)
                r = gv_confine_give(u, seed, 0600, err);
        if (r >= 0 && vm->config->kernel)
                r = gv_confine_can_open(u, vm->config->kernel, false, err);
        if (r >= 0 && vm->config->initrd)
                r = gv_confine_can_open(u, vm->config->initrd, false, err);
        if (r >= 0 && u->switch_user)
                r = gv_confine_can_reach(u, vm->run_dir, err);
        return r;
}

/* What holds QEMU in, made before it starts: its user (*u), its files, taps and vfio nodes
 * handed to that user, its sandbox, its cgroup (*ret_fds: the cgroup.procs to join). Sets
 * vm->confinement, what the status shows. */
static int confine_prepare(struct gv_agent *a, struct gv_agent_vm *vm, char *const *files,
                           const char *seed, char *const *taps, struct gv_confine_user *u,
                           bool *ret_sandbox, int **ret_fds, size_t *ret_n,
                           struct gv_error **err)
{
        _cleanup_free_ char *group = gv_agent_vm_cgroup(a, vm->config->name), *cg = NULL;
        _cleanup_free_ char *cg_why = NULL;
        _cleanup_json_ json_t *why = json_array();
        bool sandbox = !a->cfg.qemu_sandbox || strcmp(a->cfg.qemu_sandbox, "off") != 0;
        struct gv_cgroup_limits lim;
        int r;

        r = gv_confine_user_resolve(a->cfg.qemu_user, a->cfg.kvm_path, u, err);
        if (r < 0)
                return r;
        if (u->why)
                json_array_append_new(why, json_string(u->why));
        if (sandbox && !a->qemu.sandbox)
                return gv_error_set(err, EOPNOTSUPP, "This host's QEMU cannot sandbox itself "
                                    "(-sandbox %s: %s): install a QEMU built with seccomp "
                                    "support, or set qemu-sandbox = off (--qemu-sandbox off) "
                                    "to run it unsandboxed.", GV_QEMU_SANDBOX,
                                    a->qemu.sandbox_why ? a->qemu.sandbox_why : "refused");
        if (!sandbox)
                json_array_append_new(why, json_string("qemu-sandbox is off: QEMU runs without "
                                                       "its seccomp filter"));
        if (a->qemu.accel == GV_ACCEL_TCG)
                json_array_append_new(why, json_string("TCG: QEMU's security guarantees hold "
                                                       "only with a hardware accelerator"));
        r = confine_files(vm, u, files, seed, err);
        if (r >= 0 && u->switch_user && a->qemu.accel == GV_ACCEL_KVM) {
                r = gv_confine_can_open(u, a->cfg.kvm_path ? a->cfg.kvm_path : "/dev/kvm", true,
                                        err);
                if (r < 0)
                        r = gv_error_wrap(err, r, "KVM for the QEMU user (a 'kvm' group that "
                                          "owns the device is added to it)");
        }
        for (size_t i = 0; r >= 0 && taps && taps[i]; i++)
                if (taps[i][0])
                        r = tap_give(taps[i], u, err);
        if (r >= 0)
                r = gv_agent_vfio_give(a, vm, u, err);
        if (r < 0)
                return r;

        gv_cgroup_limits_for(vm->config->memory_mib, vm->config->vcpus,
                             a->qemu.accel == GV_ACCEL_TCG, &lim);
        if (gv_cgroup_detect(a->cgroup_root, &cg_why) != GV_CGROUP_NONE) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_cgroup_create(a->cgroup_root, group, &lim, &cg, &e);
                if (r == -EACCES || r == -EPERM || r == -EROFS) {
                        cg_why = xasprintf("no cgroup: %s", gv_error_msg(e, r));
                } else if (r < 0) {
                        return gv_error_set(err, -r, "%s", gv_error_msg(e, r));
                } else {
                        r = gv_cgroup_open_procs(a->cgroup_root, group, ret_fds, ret_n, err);
                        if (r < 0) {
                                (void)gv_cgroup_remove(a->cgroup_root, group, NULL);
                                return r;
                        }
                }
        }
        if (cg_why)
                json_array_append_new(why, json_string(cg_why));

        json_t *c = json_pack("{s:s, s:I, s:I, s:b, s:o, s:o}", "user", u->name,
                              "uid", (json_int_t)u->uid, "gid", (json_int_t)u->gid,
                              "sandbox", sandbox, "cgroup", cg ? json_string(cg) : json_null(),
                              "why", json_incref(why));
        if (cg)
                json_object_set_new(c, "limits",
                                    json_pack("{s:I, s:I, s:I}", "memory_max",
                                              (json_int_t)lim.memory_max, "pids_max",
                                              (json_int_t)lim.pids_max, "cpu_weight",
                                              (json_int_t)lim.cpu_weight));
        json_decref(vm->confinement);
        vm->confinement = c;
        *ret_sandbox = sandbox;
        return 0;
}

/* ---- QEMU exit ---- */

void gv_agent_vm_exited(struct gv_agent *a, struct gv_agent_vm *vm, bool expected, int status)
{
        /* QEMU is gone: what it wrote last is still in the socket (the guest's last words on a
         * power-off or a panic); read it to the end before letting go. */
        gv_agent_console_pump(a, vm);
        gv_agent_console_detach(vm);
        gv_proc_close(&vm->proc);
        confine_release(a, vm);
        if (vm->phase == GV_VM_MIGRATED) {
                /* The source of a completed migration: the VM runs on the destination, so its
                 * paused QEMU ending here is no crash, asked for (release) or not. */
                if (!expected) {
                        free(vm->last_error);
                        vm->last_error = xstrdup("The QEMU left paused here after the "
                                                 "migration exited; the VM runs on the "
                                                 "destination.");
                }
                vm->want_running = false;
                gv_agent_gpus_release(a, vm); /* saves */
                gv_agent_wake(a);
                return;
        }
        if (!expected) {
                _cleanup_free_ char *tail = qemu_log_tail(vm);
                char how[64];
                if (status < 0)
                        snprintf(how, sizeof(how), "exit status unknown: started by an earlier agent");
                else if (WIFSIGNALED(status))
                        snprintf(how, sizeof(how), "killed by signal %d", WTERMSIG(status));
                else
                        snprintf(how, sizeof(how), "exit status %d", WEXITSTATUS(status));
                free(vm->last_error);
                vm->last_error = xasprintf("%sQEMU exited unexpectedly (%s)%s%s",
                                           vm->phase == GV_VM_INCOMING
                                                   ? "The incoming migration did not complete: "
                                                   : "",
                                           how, tail[0] ? ": " : "", tail);
                gv_agent_vm_set_phase(vm, GV_VM_CRASHED);
                vm->last_stop = GV_VM_STOP_CRASH;
        } else {
                gv_agent_vm_set_phase(vm, GV_VM_STOPPED);
                /* A stop sets how before calling; otherwise nobody asked and QEMU exited 0. */
                if (vm->last_stop == GV_VM_STOP_NONE && status >= 0)
                        vm->last_stop = GV_VM_STOP_GUEST;
        }
        vm->want_running = false;
        gv_agent_gpus_release(a, vm); /* saves */
        gv_agent_wake(a);
}

/* ---- define ---- */

int gv_agent_vm_define(struct gv_agent *a, const json_t *definition, json_t **ret_status,
                       struct gv_error **err)
{
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = NULL;
        _cleanup_json_ json_t *canon = NULL;
        _cleanup_free_ char *text = NULL, *cpath = NULL, *disks = NULL;
        struct gv_agent_vm *vm, *old;
        int r;

        r = gv_vm_config_from_json(definition, &c, err);
        if (r < 0)
                return r;
        pthread_mutex_lock(&a->lock);
        old = gv_agent_vm_find_locked(a, c->name);
        if (old) {
                /* Defining the same VM again is a no-op (idempotent); a different one is a
                 * conflict. The uuid may be left out the second time. */
                _cleanup_json_ json_t *mine = NULL, *theirs = gv_vm_config_to_json(old->config);
                json_t *d = json_deep_copy(definition);
                if (!json_object_get(d, "uuid"))
                        json_object_set_new(d, "uuid", json_string(old->config->uuid));
                struct gv_vm_config *c2 = NULL;
                bool same = gv_vm_config_from_json(d, &c2, NULL) >= 0 &&
                            json_equal((mine = gv_vm_config_to_json(c2)), theirs);
                gv_vm_config_free(c2);
                json_decref(d);
                pthread_mutex_unlock(&a->lock);
                if (!same)
                        return gv_error_set(err, EEXIST, "VM '%s' exists with a different "
                                            "definition; delete it first or pick another "
                                            "name.", c->name);
                return gv_agent_vm_status(a, c->name, ret_status, err);
        }
        vm = vm_new(a, TAKE_PTR(c));
        disks = gv_path_join(vm->dir, "disks");
        r = gv_mkdir_p(disks, 0700);
        if (r >= 0)
                r = gv_mkdir_p(vm->run_dir, 0700);
        if (r >= 0)
                r = gv_mkdir_p(vm->log_dir, 0700);
        if (r < 0) {
                gv_error_set(err, -r, "Cannot create '%s': %s.", vm->dir, strerror(-r));
                goto fail;
        }
        {
                /* The QMP and console sockets must fit sun_path. */
                _cleanup_free_ char *q = run_path(vm, "console.sock");
                struct sockaddr_un sa;
                if (strlen(q) >= sizeof(sa.sun_path)) {
                        r = gv_error_set(err, ENAMETOOLONG, "The state directory '%s' is too "
                                         "deep for UNIX sockets (%zu bytes for '%s', at most "
                                         "%zu); use a shorter --state-dir.", a->state_dir,
                                         strlen(q), q, sizeof(sa.sun_path) - 1);
                        goto fail;
                }
        }
        canon = gv_vm_config_to_json(vm->config);
        text = gv_json_dumps_pretty(canon);
        cpath = gv_path_join(vm->dir, "config.json");
        r = write_private(cpath, text, true);
        if (r < 0) {
                gv_error_set(err, -r, "Cannot write '%s': %s.", cpath, strerror(-r));
                goto fail;
        }
        GV_FAILPOINT("agent.define.config_written");
        r = gv_agent_vm_save(a, vm, err);
        if (r < 0)
                goto fail;
        GV_FAILPOINT("agent.define.saved");
        a->vms = xreallocarray(a->vms, a->n_vms + 1, sizeof(*a->vms));
        a->vms[a->n_vms++] = vm;
        pthread_mutex_unlock(&a->lock);
        return gv_agent_vm_status(a, vm->config->name, ret_status, err);
fail:
        pthread_mutex_unlock(&a->lock);
        (void)gv_rm_rf(vm->dir);
        vm_free(vm);
        return r;
}

/* ---- start ---- */

/* incoming: the destination of a live migration. Its disks in the state directory are made
 * anew, whatever an earlier attempt left, for the source to fill (migrate.c); a writable image
 * given by "path" is on shared storage and held by the source's QEMU, so it is checked as a
 * reader. */
static int prepare_disks(struct gv_agent_vm *vm, bool incoming, char ***ret_files,
                         char ***ret_formats, struct gv_error **err)
{
        _cleanup_strv_free_ char **files = NULL, **formats = NULL;
        int r;

        for (size_t i = 0; i < vm->config->n_disks; i++) {
                const struct gv_vm_disk *d = &vm->config->disks[i];
                _cleanup_free_ char *file = NULL;
                struct gv_disk_info info = { 0 };

                if (d->kind == GV_VM_DISK_IMAGE) {
                        file = xstrdup(d->path);
                } else {
                        _cleanup_free_ char *name = xasprintf("%s.qcow2", d->name);
                        file = gv_path_join_many(vm->dir, "disks", name, NULL);
                        if (incoming && !d->readonly && unlink(file) < 0 && errno != ENOENT)
                                return gv_error_set(err, errno, "Disk '%s': cannot remove the "
                                                    "earlier copy '%s': %m.", d->name, file);
                        if (gv_file_exists(file) <= 0) {
                                r = d->kind == GV_VM_DISK_OVERLAY
                                            ? gv_disk_create_overlay(d->base, file, d->size, err)
                                            : gv_disk_create(file, d->size, err);
                                if (r < 0)
                                        return gv_error_wrap(err, r, "Disk '%s'", d->name);
                        }
                }
                r = gv_disk_check(file, d->readonly || (incoming && d->kind == GV_VM_DISK_IMAGE),
                                  err);
                if (r >= 0)
                        r = gv_disk_info(file, &info, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Disk '%s'", d->name);
                strv_consume(&files, TAKE_PTR(file));
                strv_extend(&formats, info.format);
                gv_disk_info_done(&info);
        }
        *ret_files = TAKE_PTR(files);
        *ret_formats = TAKE_PTR(formats);
        return 0;
}

/* Wait for QMP status "running" after `cont`. */
static int wait_running(struct gv_qmp *q, struct gv_error **err)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + RUNNING_WAIT_MS;

        for (;;) {
                _cleanup_free_ char *st = NULL;
                int r = gv_qmp_query_status(q, QMP_COMMAND_MS, &st, err);
                if (r < 0)
                        return r;
                if (strcmp(st, "running") == 0)
                        return 0;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                if ((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 > deadline)
                        return gv_error_set(err, ETIMEDOUT, "QEMU is '%s', not running, %d ms "
                                            "after cont.", st, RUNNING_WAIT_MS);
                usleep(1000);
        }
}

/* A start, or with `incoming_uri` the destination of a live migration: QEMU with -incoming
 * defer (not paused: it runs once the state is in) listening on the URI (*ret_uri: the one to
 * migrate to). */
static int start_locked(struct gv_agent *a, struct gv_agent_vm *vm, const char *incoming_uri,
                        char **ret_uri, struct gv_error **err)
{
        _cleanup_strv_free_ char **files = NULL, **formats = NULL, **argv = NULL, **taps = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        _cleanup_free_ char *qmp = run_path(vm, "qmp.sock"), *con = run_path(vm, "console.sock");
        _cleanup_free_ char *pid = run_path(vm, "qemu.pid");
        _cleanup_free_ char *log = gv_path_join(vm->log_dir, "qemu.log");
        _cleanup_(gv_confine_user_done) struct gv_confine_user user = { 0 };
        _cleanup_free_ int *cg_fds = NULL;
        size_t n_cg = 0;
        bool sandbox = false;
        _cleanup_free_ char *seed = NULL, *vnc = run_path(vm, "vnc.sock");
        _cleanup_close_ int log_fd = -1;
        int r;

        if (!a->qemu.cpu_model)
                return gv_error_set(err, ENOENT, "This host cannot run VMs: %s",
                                    a->qemu_error ? a->qemu_error : "QEMU was not found");
        gv_agent_vm_set_phase(vm, incoming_uri ? GV_VM_INCOMING : GV_VM_STARTING);
        vm->want_running = true;
        vm->last_stop = GV_VM_STOP_NONE;
        vm->incoming = incoming_uri != NULL;
        free(vm->last_error);
        vm->last_error = NULL;
        free(vm->migration_uri);
        vm->migration_uri = NULL;
        r = gv_agent_vm_save(a, vm, err);
        if (r < 0)
                return r;
        GV_FAILPOINT("agent.start.intent");
        r = prepare_disks(vm, incoming_uri != NULL, &files, &formats, err);
        if (r < 0)
                return r;
        if (vm->config->cloud_init) {
                /* The NoCloud seed, made anew at each start; goes with the VM's directory. */
                seed = gv_path_join_many(vm->dir, "disks", "seed.iso", NULL);
                r = gv_cloud_init_write_seed(vm->config, seed, err);
                if (r < 0)
                        return r;
        }
        r = gv_agent_nics_attach(a, vm, &taps, err);
        if (r < 0)
                return r;
        r = gv_agent_gpus_attach(a, vm, err);
        if (r < 0)
                return r;
        GV_FAILPOINT("agent.start.attached");
        r = gv_mkdir_p(vm->log_dir, 0700);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot create '%s': %s.", vm->log_dir,
                                    strerror(-r));
        r = confine_prepare(a, vm, files, seed, taps, &user, &sandbox, &cg_fds, &n_cg, err);
        if (r < 0)
                return r;
        {
                struct gv_qemu_runtime rt = {
                        .binary = a->cfg.qemu_binary,
                        .qemu_major = a->qemu.major,
                        .qemu_minor = a->qemu.minor,
                        .accel = a->qemu.accel,
                        .cpu_model = a->qemu.cpu_model,
                        .qmp_socket = qmp,
                        .console_socket = con,
                        .pidfile = pid,
                        .disk_files = (const char *const *)files,
                        .disk_formats = (const char *const *)formats,
                        .taps = (const char *const *)taps,
                        .devices = vm->devices,
                        .n_devices = vm->n_devices,
                        .paused = !incoming_uri,
                        .incoming = incoming_uri != NULL,
                        .seed_iso = seed,
                        .vnc_socket = vnc,
                        .sandbox = sandbox,
                };
                r = gv_qemu_argv(vm->config, &rt, &argv, err);
                if (r < 0)
                        goto close_cg;
        }
        (void)unlink(qmp);
        (void)unlink(con);
        (void)unlink(vnc);
        (void)unlink(pid);
        log_fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (log_fd < 0) {
                r = gv_error_set(err, errno, "Cannot open '%s': %m.", log);
                goto close_cg;
        }
        /* umask 0177: QEMU's sockets and pidfile are 0600 (it makes no directories). As the
         * QEMU user, in its cgroup (confine_prepare). */
        struct gv_spawn_opts so = { .stdin_fd = -1, .stdout_fd = log_fd, .stderr_fd = log_fd,
                                    .new_session = true, .umask = 0177,
                                    .cgroup_fds = cg_fds, .n_cgroup_fds = n_cg,
                                    .set_user = user.switch_user, .uid = user.uid,
                                    .gid = user.gid, .groups = user.groups,
                                    .n_groups = user.n_groups };
        r = gv_proc_spawn(argv, &so, &vm->proc, err);
close_cg:
        for (size_t i = 0; i < n_cg; i++)
                close(cg_fds[i]);
        if (r < 0)
                return r;
        GV_FAILPOINT("agent.start.spawned");
        strv_free(vm->argv);
        vm->argv = TAKE_PTR(argv);
        r = gv_agent_vm_save(a, vm, err);
        if (r < 0)
                return r;
        GV_FAILPOINT("agent.start.saved");
        r = gv_qmp_connect(qmp, QMP_CONNECT_MS, &q, err);
        if (r >= 0 && incoming_uri) {
                _cleanup_free_ char *uri = NULL;
                r = gv_migrate_incoming(q, incoming_uri, QMP_COMMAND_MS, &uri, err);
                if (r >= 0) {
                        vm->migration_uri = xstrdup(uri);
                        /* The guest's first words after the switch-over must not be lost. */
                        (void)gv_agent_console_attach(vm);
                        gv_agent_wake(a);
                        r = gv_agent_vm_save(a, vm, err);
                }
                if (r >= 0)
                        *ret_uri = TAKE_PTR(uri);
                return r;
        }
        if (r >= 0)
                r = gv_qmp_execute(q, "cont", NULL, QMP_COMMAND_MS, NULL, err);
        if (r >= 0)
                r = wait_running(q, err);
        if (r < 0) {
                if (!gv_proc_alive(&vm->proc)) {
                        _cleanup_free_ char *tail = qemu_log_tail(vm);
                        gv_error_free(err ? *err : NULL);
                        if (err)
                                *err = NULL;
                        return gv_error_set(err, EIO, "QEMU exited during start: %s",
                                            tail[0] ? tail : "(no message)");
                }
                return r;
        }
        GV_FAILPOINT("agent.start.running");
        gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
        vm->started_at = now_s();
        (void)gv_agent_console_attach(vm);
        gv_agent_wake(a);
        return gv_agent_vm_save(a, vm, err);
}

/* A failed start: no QEMU, no hardware, the reason kept for status. */
static void start_rollback(struct gv_agent *a, struct gv_agent_vm *vm, int r,
                           struct gv_error **err)
{
        if (vm->proc.pidfd >= 0) {
                (void)gv_proc_signal(&vm->proc, SIGKILL, NULL);
                (void)gv_proc_wait(&vm->proc, 5000, NULL, NULL);
                vm->last_stop = GV_VM_STOP_KILL;
        }
        gv_agent_console_detach(vm);
        gv_proc_close(&vm->proc);
        confine_release(a, vm);
        free(vm->last_error);
        vm->last_error = xstrdup(gv_error_msg(err ? *err : NULL, r));
        gv_agent_vm_set_phase(vm, GV_VM_STOPPED);
        vm->want_running = false;
        gv_agent_gpus_release(a, vm); /* saves */
}

int gv_agent_vm_start(struct gv_agent *a, const char *name, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        int r = gv_agent_vm_get(a, name, &vm, err);

        if (r < 0)
                return r;
        if (vm->phase == GV_VM_RUNNING && gv_proc_alive(&vm->proc)) {
                pthread_mutex_unlock(&vm->lock);
                return 0;
        }
        if (vm->proc.pidfd >= 0 && gv_proc_alive(&vm->proc)) {
                /* A QEMU that is not running the guest here: a migration's. */
                r = gv_error_set(err, EBUSY, "VM '%s' is %s; %s", name,
                                 gv_vm_phase_to_string(vm->phase),
                                 vm->phase == GV_VM_MIGRATED
                                         ? "it runs on the destination now: release it here "
                                           "(POST .../release), or resume it here with POST "
                                           ".../migrate-cancel if the destination did not take "
                                           "over."
                                         : "wait for the migration to end, or cancel it.");
                pthread_mutex_unlock(&vm->lock);
                return r;
        }
        r = start_locked(a, vm, NULL, NULL, err);
        if (r < 0)
                start_rollback(a, vm, r, err);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_start_incoming(struct gv_agent *a, struct gv_agent_vm *vm, const char *uri,
                               char **ret_uri, struct gv_error **err)
{
        int r = start_locked(a, vm, uri, ret_uri, err);
        if (r < 0) {
                start_rollback(a, vm, r, err);
                vm->incoming = false;
                (void)gv_agent_vm_save(a, vm, NULL);
        }
        return r;
}

/* ---- stop, kill ---- */

static int stop_locked(struct gv_agent *a, struct gv_agent_vm *vm, int timeout_ms, bool force)
{
        int status = -1, r;

        if (vm->proc.pidfd < 0 || !gv_proc_alive(&vm->proc)) {
                if (vm->proc.pidfd >= 0)
                        (void)gv_proc_wait(&vm->proc, 0, &status, NULL);
                gv_agent_vm_exited(a, vm, true, status);
                return 0;
        }
        gv_agent_vm_set_phase(vm, GV_VM_STOPPING);
        vm->want_running = false;
        vm->incoming = false;
        (void)gv_agent_vm_save(a, vm, NULL);
        r = 0;
        if (!force) {
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                _cleanup_free_ char *qmp = run_path(vm, "qmp.sock");
                /* ACPI power button; a guest that ignores it gets quit after the timeout. */
                vm->last_stop = GV_VM_STOP_ACPI;
                if (gv_qmp_connect(qmp, 2000, &q, NULL) >= 0 &&
                    gv_qmp_execute(q, "system_powerdown", NULL, QMP_COMMAND_MS, NULL, NULL) >= 0)
                        r = gv_proc_wait(&vm->proc, timeout_ms, &status, NULL);
                if (r <= 0 && q) {
                        vm->last_stop = GV_VM_STOP_QUIT;
                        int qr = gv_qmp_execute(q, "quit", NULL, QMP_COMMAND_MS, NULL, NULL);
                        if (qr >= 0 || qr == -ECONNRESET)
                                r = gv_proc_wait(&vm->proc, QUIT_WAIT_MS, &status, NULL);
                }
        }
        if (r <= 0) {
                vm->last_stop = GV_VM_STOP_KILL;
                (void)gv_proc_signal(&vm->proc, SIGKILL, NULL);
                r = gv_proc_wait(&vm->proc, QUIT_WAIT_MS, &status, NULL);
        }
        gv_agent_vm_exited(a, vm, true, status);
        return 0;
}

int gv_agent_vm_stop(struct gv_agent *a, const char *name, int timeout_ms, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        int r = gv_agent_vm_get(a, name, &vm, err);

        if (r < 0)
                return r;
        r = stop_locked(a, vm, timeout_ms > 0 ? timeout_ms : a->cfg.stop_timeout_ms, false);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_kill(struct gv_agent *a, const char *name, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        int r = gv_agent_vm_get(a, name, &vm, err);

        if (r < 0)
                return r;
        r = stop_locked(a, vm, 0, true);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_delete(struct gv_agent *a, const char *name, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        int r = gv_agent_vm_get(a, name, &vm, err);

        if (r < 0)
                return r;
        if (vm->proc.pidfd >= 0 && gv_proc_alive(&vm->proc)) {
                pthread_mutex_unlock(&vm->lock);
                return gv_error_set(err, EBUSY, "VM '%s' is %s; stop it first.", name,
                                    gv_vm_phase_to_string(vm->phase));
        }
        r = gv_agent_vm_forget_locked(a, vm, err);
        pthread_mutex_unlock(&vm->lock);
        return r;
}

int gv_agent_vm_forget_locked(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err)
{
        const char *name = vm->config->name;
        int r;

        if (vm->proc.pidfd >= 0 && gv_proc_alive(&vm->proc))
                return gv_error_set(err, EBUSY, "VM '%s' is %s; its QEMU still runs.", name,
                                    gv_vm_phase_to_string(vm->phase));
        if (vm->n_hw)
                gv_agent_gpus_release(a, vm);
        if (vm->n_hw)
                return gv_error_set(err, EBUSY, "VM '%s' still holds GPU hardware that could "
                                    "not be released (%s %s); see the agent's reconcile "
                                    "report.", name, gv_hw_kind_to_string(vm->hw[0].kind),
                                    vm->hw[0].kind == GV_HW_VGPU || vm->hw[0].kind == GV_HW_TAP
                                            ? vm->hw[0].id : vm->hw[0].gpu);
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms; i++)
                if (a->vms[i] == vm) {
                        memmove(&a->vms[i], &a->vms[i + 1], (a->n_vms - i - 1) * sizeof(*a->vms));
                        a->n_vms--;
                        break;
                }
        pthread_mutex_unlock(&a->lock);
        GV_FAILPOINT("agent.delete.released");
        r = gv_rm_rf(vm->dir);
        /* Not freed yet: another request may have found the VM in the table and be waiting on
         * its lock right now (gv_agent_vm_get then sees it gone and answers 404). Freed with
         * the agent; a deleted VM costs a few hundred bytes until then. */
        gv_agent_console_detach(vm);
        gv_proc_close(&vm->proc);
        pthread_mutex_lock(&a->lock);
        a->deleted = xreallocarray(a->deleted, a->n_deleted + 1, sizeof(*a->deleted));
        a->deleted[a->n_deleted++] = vm;
        pthread_mutex_unlock(&a->lock);
        gv_agent_wake(a);
        if (r < 0)
                return gv_error_set(err, -r, "VM '%s' is deleted, but its directory could not "
                                    "be removed: %s.", name, strerror(-r));
        return 0;
}

/* ---- status ---- */

static json_t *status_json(struct gv_agent *a, struct gv_agent_vm *vm)
{
        json_t *j = json_object(), *hw = json_array(), *dev = json_array();
        bool alive = vm->proc.pidfd >= 0 && gv_proc_alive(&vm->proc);

        json_object_set_new(j, "name", json_string(vm->config->name));
        json_object_set_new(j, "uuid", json_string(vm->config->uuid));
        json_object_set_new(j, "phase", json_string(gv_vm_phase_to_string(vm->phase)));
        json_object_set_new(j, "want_running", json_boolean(vm->want_running));
        json_object_set_new(j, "last_stop", json_string(gv_vm_stop_how_to_string(vm->last_stop)));
        json_object_set_new(j, "pid", alive ? json_integer(vm->proc.pid) : json_null());
        json_object_set_new(j, "started_at", vm->started_at && alive
                                                     ? json_integer(vm->started_at)
                                                     : json_null());
        json_object_set_new(j, "uptime_s", vm->started_at && alive
                                                   ? json_integer(now_s() - vm->started_at)
                                                   : json_null());
        json_object_set_new(j, "accel", json_string(gv_accel_to_string(a->qemu.accel)));
        json_object_set_new(j, "simulated_gpus", json_boolean(a->simulated));
        for (size_t i = 0; i < vm->n_devices; i++)
                json_array_append_new(dev, device_json(&vm->devices[i]));
        json_object_set_new(j, "devices", dev);
        for (size_t i = 0; i < vm->n_hw; i++)
                json_array_append_new(hw, hw_json(&vm->hw[i]));
        json_object_set_new(j, "hw", hw);
        json_object_set_new(j, "last_error", vm->last_error ? json_string(vm->last_error)
                                                            : json_null());
        json_object_set_new(j, "migration_uri", vm->migration_uri
                                                        ? json_string(vm->migration_uri)
                                                        : json_null());
        json_object_set_new(j, "incoming", json_boolean(vm->incoming));
        json_object_set_new(j, "confinement", vm->confinement && alive
                                                      ? json_deep_copy(vm->confinement)
                                                      : json_null());
        if (vm->argv) {
                json_t *av = json_array();
                STRV_FOREACH(s, vm->argv)
                        json_array_append_new(av, json_string(*s));
                json_object_set_new(j, "argv", av);
        }
        json_object_set_new(j, "config", gv_vm_config_to_json(vm->config));
        return j;
}

int gv_agent_vm_status(struct gv_agent *a, const char *name, json_t **ret, struct gv_error **err)
{
        struct gv_agent_vm *vm;
        json_t *s;

        pthread_mutex_lock(&a->lock);
        vm = gv_agent_vm_find_locked(a, name);
        if (!vm) {
                pthread_mutex_unlock(&a->lock);
                return gv_error_set(err, ENOENT, "No VM '%s' on this host.", name);
        }
        /* trylock under the table lock cannot deadlock the lock order. */
        if (pthread_mutex_trylock(&vm->lock) != 0) {
                /* An operation holds the VM — a start waits for QEMU, a stop for the guest,
                 * for seconds: answer with what it last saved rather than wait for it. */
                pthread_mutex_lock(&vm->cache_lock);
                s = vm->status_cache ? json_deep_copy(vm->status_cache) : json_object();
                pthread_mutex_unlock(&vm->cache_lock);
                pthread_mutex_unlock(&a->lock);
                json_object_set_new(s, "busy", json_true());
                *ret = s;
                return 0;
        }
        pthread_mutex_unlock(&a->lock);
        s = status_json(a, vm);
        json_object_set_new(s, "busy", json_false());
        pthread_mutex_unlock(&vm->lock);
        *ret = s;
        return 0;
}

json_t *gv_agent_vm_list(struct gv_agent *a)
{
        json_t *l = json_array();
        _cleanup_strv_free_ char **names = NULL;

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms; i++)
                strv_extend(&names, a->vms[i]->config->name);
        pthread_mutex_unlock(&a->lock);
        if (names)
                strv_sort(names);
        STRV_FOREACH(n, names) {
                json_t *s = NULL;
                if (gv_agent_vm_status(a, *n, &s, NULL) >= 0)
                        json_array_append_new(l, s);
        }
        return l;
}

/* ---- restart: re-adopt, finish or roll back ---- */

static void adopt(struct gv_agent *a, struct gv_agent_vm *vm)
{
        _cleanup_free_ char *marker = NULL, *esc = gv_qemu_escape(vm->config->name);
        enum gv_vm_phase was = vm->phase;
        bool had_qemu = gv_vm_phase_has_qemu(was);
        bool migration = was == GV_VM_INCOMING || was == GV_VM_MIGRATING || was == GV_VM_MIGRATED;

        marker = xasprintf("guest=%s,debug-threads=on", esc);
        if (had_qemu && vm->proc.pid > 0 &&
            gv_proc_adopt(vm->proc.pid, marker, &vm->proc, NULL) >= 0) {
                if (migration) {
                        gv_agent_migration_adopt(a, vm, true);
                        return;
                }
                if (was == GV_VM_RUNNING) {
                        (void)gv_agent_console_attach(vm);
                        return; /* untouched */
                }
                if (was == GV_VM_STOPPING) {
                        /* Finish the stop the agent was in the middle of. */
                        (void)stop_locked(a, vm, a->cfg.stop_timeout_ms, false);
                        return;
                }
                /* STARTING: finish the start if QEMU got that far, else roll back. */
                _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
                _cleanup_free_ char *qmp = run_path(vm, "qmp.sock");
                if (gv_qmp_connect(qmp, 5000, &q, NULL) >= 0 &&
                    gv_qmp_execute(q, "cont", NULL, QMP_COMMAND_MS, NULL, NULL) >= 0 &&
                    wait_running(q, NULL) >= 0) {
                        gv_agent_vm_set_phase(vm, GV_VM_RUNNING);
                        vm->started_at = now_s();
                        (void)gv_agent_console_attach(vm);
                        (void)gv_agent_vm_save(a, vm, NULL);
                        return;
                }
                (void)gv_proc_signal(&vm->proc, SIGKILL, NULL);
                (void)gv_proc_wait(&vm->proc, 5000, NULL, NULL);
                vm->last_stop = GV_VM_STOP_KILL;
                free(vm->last_error);
                vm->last_error = xstrdup("The agent restarted in the middle of this start; "
                                         "it was rolled back. Start again.");
                gv_agent_vm_exited(a, vm, true, -1);
                return;
        }
        vm->proc = GV_PROC_NULL;
        if (migration) {
                gv_agent_migration_adopt(a, vm, false);
        } else if (was == GV_VM_RUNNING) {
                gv_agent_vm_exited(a, vm, false, -1);
        } else if (had_qemu) {
                if (was == GV_VM_STARTING) {
                        free(vm->last_error);
                        vm->last_error = xstrdup("The agent restarted in the middle of this "
                                                 "start; it was rolled back. Start again.");
                }
                gv_agent_vm_exited(a, vm, true, -1);
        } else if (vm->n_hw) {
                gv_agent_gpus_release(a, vm); /* an interrupted release */
        }
}

void gv_agent_wake(struct gv_agent *a)
{
        uint64_t one = 1;
        if (a->wake_fd >= 0)
                (void)!write(a->wake_fd, &one, sizeof(one));
}

int gv_agent_new(const struct gv_agent_config *cfg, struct gv_agent **ret, struct gv_error **err)
{
        struct gv_agent *a = xnew0(struct gv_agent, 1);
        _cleanup_free_ char *vms_dir = NULL;
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(gv_error_freep) struct gv_error *qerr = NULL;
        struct gv_host_config hc;
        int r;

        a->cfg = *cfg;
        if (!a->cfg.stop_timeout_ms)
                a->cfg.stop_timeout_ms = 30000;
        if (!a->cfg.orphan_grace_ms)
                a->cfg.orphan_grace_ms = 60000;
        if (!a->cfg.console_log_max)
                a->cfg.console_log_max = 1 << 20;
        a->state_dir = xstrdup(cfg->state_dir);
        a->cfg.state_dir = a->state_dir;
        a->simulated = cfg->sysfs_root && strcmp(cfg->sysfs_root, "/") != 0;
        a->wake_fd = -1;
        pthread_mutex_init(&a->lock, NULL);
        pthread_mutex_init(&a->host_lock, NULL);

        if (geteuid() == 0 && !(cfg->qemu_user && (!cfg->qemu_user[0] ||
                                                   strcmp(cfg->qemu_user, "root") == 0))) {
                /* A confined QEMU passes through the state directory to its VM's run/ and
                 * disks/ (search only: it cannot list it; docs/qemu-confinement.md). */
                struct stat st;
                if (stat(a->state_dir, &st) == 0 && S_ISDIR(st.st_mode) &&
                    !(st.st_mode & S_IXOTH))
                        (void)chmod(a->state_dir, (st.st_mode & 07777) | S_IXOTH);
        }
        vms_dir = gv_path_join(a->state_dir, "vms");
        r = gv_mkdir_p(vms_dir, 0711);
        /* 0711: a confined QEMU passes through to its own VM's directory; nobody lists them. */
        if (r >= 0 && chmod(vms_dir, 0711) < 0)
                r = -errno;
        if (r < 0) {
                gv_error_set(err, -r, "Cannot create the state directory '%s': %s.", vms_dir,
                             strerror(-r));
                goto fail;
        }
        if (cfg->qemu_sandbox && strcmp(cfg->qemu_sandbox, "on") != 0 &&
            strcmp(cfg->qemu_sandbox, "off") != 0) {
                r = gv_error_set(err, EINVAL, "qemu-sandbox '%s' is not on or off.",
                                 cfg->qemu_sandbox);
                goto fail;
        }
        a->cgroup_root = cfg->cgroup_root ? xstrdup(cfg->cgroup_root) : gv_sysfs_cgroup_root();
        {
                /* Two agents on one machine (tests, simulated clusters) may both have a VM of
                 * one name: each keeps its VMs' cgroups under a key of its state directory. */
                char hex[GV_SHA256_HEX_SIZE];
                gv_sha256_hex(a->state_dir, strlen(a->state_dir), hex);
                a->cgroup_parent = xasprintf("gpuvirt/%.16s", hex);
        }
        r = gv_qemu_probe(cfg->qemu_binary, cfg->kvm_path, &a->qemu, &qerr);
        if (r < 0) {
                a->qemu_error = xstrdup(gv_error_msg(qerr, r)); /* VMs refuse to start, said */
        } else if (cfg->accel && strcmp(cfg->accel, "auto") != 0) {
                enum gv_accel want = gv_accel_from_string(cfg->accel);
                if ((int)want < 0) {
                        r = gv_error_set(err, EINVAL, "accel '%s' is not auto, kvm or tcg.",
                                         cfg->accel);
                        goto fail;
                }
                if (want != a->qemu.accel) {
                        char *why = xasprintf("%s, chosen by configuration (the probe said: %s)",
                                              cfg->accel, a->qemu.reason);
                        free(a->qemu.reason);
                        a->qemu.reason = why;
                        free(a->qemu.cpu_model);
                        a->qemu.cpu_model = xstrdup(want == GV_ACCEL_TCG ? "max" : "host");
                        a->qemu.accel = want;
                }
        }
        hc = (struct gv_host_config){ .sysfs_root = cfg->sysfs_root ? cfg->sysfs_root : "/",
                                      .nvml_library = cfg->nvml_library };
        r = gv_host_open(&hc, &a->host, err);
        if (r < 0)
                goto fail;
        a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (a->wake_fd < 0) {
                r = gv_error_set(err, errno, "eventfd: %m");
                goto fail;
        }
        r = gv_sysfs_list(vms_dir, "", 0, &names, NULL);
        if (r < 0) {
                gv_error_set(err, -r, "Cannot list '%s': %s.", vms_dir, strerror(-r));
                goto fail;
        }
        STRV_FOREACH(n, names) {
                struct gv_agent_vm *vm = NULL;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                if (!gv_name_is_valid(*n))
                        continue;
                if (vm_load(a, *n, &vm, &e) < 0) {
                        /* One broken VM does not take the host down: it is reported. */
                        strv_extend(&a->problems, gv_error_msg(e, -EINVAL));
                        continue;
                }
                a->vms = xreallocarray(a->vms, a->n_vms + 1, sizeof(*a->vms));
                a->vms[a->n_vms++] = vm;
        }
        for (size_t i = 0; i < a->n_vms; i++) {
                pthread_mutex_lock(&a->vms[i]->lock);
                adopt(a, a->vms[i]);
                pthread_mutex_unlock(&a->vms[i]->lock);
        }
        r = pthread_create(&a->supervisor, NULL, gv_agent_supervise, a);
        if (r) {
                r = gv_error_set(err, r, "Cannot start the supervisor thread: %s.", strerror(r));
                goto fail;
        }
        a->supervisor_running = true;
        r = gv_sampler_start(a, &a->sampler, err);
        if (r < 0)
                goto fail;
        *ret = a;
        return 0;
fail:
        gv_agent_free(a);
        return r;
}

struct gv_agent *gv_agent_free(struct gv_agent *a)
{
        if (!a)
                return NULL;
        a->sampler = gv_sampler_stop(a->sampler); /* it reads the VM table */
        if (a->supervisor_running) {
                __atomic_store_n(&a->stopping, true, __ATOMIC_SEQ_CST);
                gv_agent_wake(a);
                pthread_join(a->supervisor, NULL);
        }
        gv_agent_reconcile_done(a);
        for (size_t i = 0; i < a->n_vms; i++)
                vm_free(a->vms[i]); /* closes pidfds; QEMUs keep running */
        free(a->vms);
        for (size_t i = 0; i < a->n_deleted; i++)
                vm_free(a->deleted[i]);
        free(a->deleted);
        gv_host_free(a->host);
        gv_qemu_caps_done(&a->qemu);
        free(a->qemu_error);
        strv_free(a->problems);
        if (a->wake_fd >= 0)
                close(a->wake_fd);
        pthread_mutex_destroy(&a->lock);
        pthread_mutex_destroy(&a->host_lock);
        free(a->state_dir);
        free(a->cgroup_root);
        free(a->cgroup_parent);
        free(a);
        return NULL;
}
