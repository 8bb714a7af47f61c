/* SPDX-License-Identifier: MIT */
/*
 * agent.h — the host agent: this host's VMs and GPUs (docs/agent.md).
 *
 * State directory (survives restarts; the agent is safe to kill at any instant):
 *   STATE/vms/NAME/config.json   the definition (vm-config.h, canonical form)
 *   STATE/vms/NAME/state.json    desired state, phase, QEMU pid, GPU hardware the VM holds
 *   STATE/vms/NAME/disks/        created disks (overlays, empty disks), the cloud-init seed
 *   STATE/vms/NAME/run/          qmp.sock (0600), console.sock, vnc.sock, qemu.pid
 *   STATE/vms/NAME/log/          qemu.log (QEMU's stderr), console.log (+ .1: the serial
 *                                console, bounded): the agent's, never the QEMU user's
 *   With QEMU confined to a user (docs/qemu-confinement.md): run/ and disks/ are that user's
 *   (0700), NAME is root's with the user's group (0710: it passes, cannot list), vms/ 0711.
 *   STATE/ops/ID.json            the operation journal (oplog.c): idempotent mutations
 *
 * Locking: `lock` guards the VM table; each VM has its own mutex held for the whole of an
 * operation on it; `host_lock` serialises the hardware layer (struct gv_host is not
 * thread-safe). Order: VM, then host, then table; never the table while waiting on a VM.
 * Each VM's `cache_lock` (its last saved status, answered while an operation holds the VM) is
 * a leaf, taken last. The metrics sampler (sampler.c) has its own thread, its own view of the
 * host (no host_lock) and its own lock, a leaf too; it reads VMs as status does (never waiting
 * for an operation).
 */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "host/host.h"
#include "util/error.h"
#include "vmm/proc.h"
#include "vmm/qemu-cmd.h"
#include "vmm/vm-config.h"

struct gv_agent_config {
        const char *state_dir;       /* required */
        const char *sysfs_root;      /* "/" on a real host, a simulated host's root otherwise */
        const char *nvml_library;    /* NULL: the default soname */
        const char *qemu_binary;     /* NULL: qemu-system-x86_64 */
        const char *kvm_path;        /* NULL: /dev/kvm */
        int stop_timeout_ms;         /* graceful stop before quit/kill; 0: 30 s */
        int orphan_grace_ms;         /* reconcile: hardware no VM owns is removed after; 0: 60 s;
                                      * negative: at once */
        int reconcile_interval_ms;   /* 0: min(grace / 4, 10 s), at least 100 ms; negative: only
                                      * when asked (gv_agent_reconcile) */
        size_t console_log_max;      /* bytes per console log file; 0: 1 MiB */
        const char *accel;           /* NULL or "auto": probe; "kvm" or "tcg": use that (KVM
                                      * can open yet hang guests under nested virtualisation) */
        int sample_interval_ms;      /* metrics sampler period (sampler.h); 0: 1000 */
        const char *proc_root;       /* NULL: "/proc" (tests point it at fixtures) */
        const char *const *shared_storage; /* NULL-terminated absolute directories both hosts
                                      * of a live migration see (--shared-storage): a writable
                                      * disk given by "path" must be under one to live-migrate
                                      * (migrate.c); NULL: none */
        /* Confinement (docs/qemu-confinement.md, src/vmm/confine.h): */
        const char *qemu_user;       /* NULL: GV_QEMU_USER_DEFAULT, which must exist; "" or
                                      * "root": QEMU runs as root (said in the VM's status) */
        const char *qemu_sandbox;    /* NULL or "on": -sandbox, refused by a QEMU without
                                      * seccomp; "off": none (said in the VM's status) */
        const char *cgroup_root;     /* NULL: gv_sysfs_cgroup_root() */
};

enum gv_vm_phase {
        GV_VM_DEFINED,  /* never started, or stopped cleanly */
        GV_VM_STARTING,
        GV_VM_RUNNING,
        GV_VM_STOPPING,
        GV_VM_STOPPED,
        GV_VM_CRASHED,  /* QEMU exited without being asked to */
        GV_VM_INCOMING, /* destination of a live migration: QEMU waits for, or receives, the
                         * state (migrate.c); running once it is in */
        GV_VM_MIGRATING, /* source of a live migration: the guest still runs here */
        GV_VM_MIGRATED, /* source after a completed migration: QEMU paused (postmigrate), the
                         * VM runs on the destination; release lets go of it */
        _GV_VM_PHASE_MAX,
        _GV_VM_PHASE_INVALID = -EINVAL,
};
const char *gv_vm_phase_to_string(enum gv_vm_phase p);
enum gv_vm_phase gv_vm_phase_from_string(const char *s);
/* Phases in which the VM has a QEMU (starting, running, stopping and the migration phases). */
bool gv_vm_phase_has_qemu(enum gv_vm_phase p);

/* How a VM's QEMU last ended. */
enum gv_vm_stop_how {
        GV_VM_STOP_NONE,   /* never ran, or still runs */
        GV_VM_STOP_GUEST,  /* the guest powered off by itself (QEMU exited 0 unasked) */
        GV_VM_STOP_ACPI,   /* a stop: the guest answered the ACPI power button */
        GV_VM_STOP_QUIT,   /* a stop: the guest ignored it; QEMU quit over QMP */
        GV_VM_STOP_KILL,   /* a kill, or a stop that QMP could not carry out: SIGKILL */
        GV_VM_STOP_CRASH,  /* QEMU died unasked (signal, non-zero exit, or unknown) */
        _GV_VM_STOP_MAX,
        _GV_VM_STOP_INVALID = -EINVAL,
};
const char *gv_vm_stop_how_to_string(enum gv_vm_stop_how h);
enum gv_vm_stop_how gv_vm_stop_how_from_string(const char *s);

/* One piece of GPU hardware a VM holds, enough to release it after a restart. */
enum gv_hw_kind {
        GV_HW_PASSTHROUGH, /* `gpu` bound to vfio-pci for this VM */
        GV_HW_VGPU,        /* `id`: an mdev UUID or a VF address with a vGPU type set */
        GV_HW_MIG_GI,      /* GPU instance `gi` on `gpu`, created for this VM */
        GV_HW_TAP,         /* tap device `id` for a bridge NIC (src/vmm/tap.h); `gpu` empty */
        _GV_HW_MAX,
        _GV_HW_INVALID = -EINVAL,
};
const char *gv_hw_kind_to_string(enum gv_hw_kind k);
enum gv_hw_kind gv_hw_kind_from_string(const char *s);

struct gv_hw {
        enum gv_hw_kind kind;
        char gpu[GV_PCI_ADDR_STR_MAX];
        char id[GV_UUID_STR_LEN + 1];
        uint32_t gi;
};

struct gv_agent_vm {
        pthread_mutex_t lock;
        struct gv_vm_config *config;
        /* Written under lock with gv_agent_vm_set_phase(); read without it (__atomic_load_n)
         * by the console follower, the console WebSocket and the cgroup reconciler. */
        enum gv_vm_phase phase;
        bool want_running;            /* desired state */
        struct gv_proc proc;          /* GV_PROC_NULL when no QEMU */
        int64_t started_at;           /* CLOCK_REALTIME seconds */
        struct gv_hw *hw;
        size_t n_hw;
        struct gv_vm_device *devices; /* what QEMU got, for status */
        size_t n_devices;
        char *last_error;             /* why the last start failed or QEMU died */
        enum gv_vm_stop_how last_stop; /* how QEMU last ended */
        char **argv;                  /* the QEMU command of the last start */
        json_t *status_cache;         /* status as of the last save, under cache_lock: what
                                       * status answers while an operation holds `lock` */
        pthread_mutex_t cache_lock;   /* a leaf: nothing is locked while it is held */
        int console_fd;               /* relay connection to console.sock, -1 */
        char *dir, *run_dir;          /* STATE/vms/NAME, .../run */
        char *log_dir;                /* .../log */
        json_t *confinement;          /* what held the running QEMU in (status), or NULL */
        char *migration_uri;          /* the last migration's: where the state went (source)
                                       * or where QEMU listened for it (destination) */
        bool incoming;                /* it came by an incoming migration and has not been
                                       * started or stopped here since: abort-incoming may
                                       * still take it away (migrate.c) */
        int64_t migration_check_ms;   /* the supervisor's next look at the migration */
        /* The disks a live migration copies (migrate.c), in memory only (after a restart the
         * jobs are found again in QEMU): */
        unsigned n_mirrors;           /* source: mirror jobs gv-mirror0.. may exist (the
                                       * number of disks in the definition) */
        bool mirroring;               /* source: they copy, the RAM transfer starts once all
                                       * are ready */
        uint64_t disk_total, disk_transferred; /* source: bytes, at the last look */
        bool disk_copy_ended;         /* source: the last migration ended during the disk copy
                                       * (no RAM transfer ran; QEMU's query-migrate does not
                                       * know of it): its progress says failed ... */
        bool disk_copy_cancelled;     /* ... or cancelled, with last_error */
        char nbd_address[272];        /* destination: HOST:PORT its NBD server listens on, or
                                       * "" */
};

/* An atomic store, so that the lock-free reads of phase are no data race (C11 5.1.2.4; they
 * were under ThreadSanitizer while the writes were plain). */
static inline void gv_agent_vm_set_phase(struct gv_agent_vm *vm, enum gv_vm_phase p)
{
        __atomic_store_n(&vm->phase, p, __ATOMIC_RELAXED);
}

struct gv_agent {
        struct gv_agent_config cfg;
        char *state_dir;
        bool simulated;               /* sysfs root is not "/": GPUs become stand-ins */
        struct gv_qemu_caps qemu;
        char *qemu_error;             /* why no VM can start here (QEMU missing), or NULL */
        char **problems;              /* VMs in the state directory that could not be read */
        pthread_mutex_t lock;         /* the VM table */
        struct gv_agent_vm **vms;
        size_t n_vms;
        struct gv_agent_vm **deleted; /* left the table; freed with the agent, because a thread
                                       * may still be waiting on the VM's lock */
        size_t n_deleted;
        pthread_mutex_t host_lock;
        struct gv_host *host;
        pthread_t supervisor;
        int wake_fd;                  /* eventfd: the supervisor re-reads the VM table */
        bool supervisor_running;
        bool stopping;
        struct gv_reconcile *reconcile; /* reconcile.c: host configuration, orphans seen, the
                                         * last report; guarded by host_lock */
        struct gv_sampler *sampler;   /* sampler.c: the metrics thread and its latest sample */
        char *cgroup_root;            /* cfg.cgroup_root or the host's */
        char *cgroup_parent;          /* "gpuvirt/KEY": this agent's VMs' cgroups (vm.c) */
};

/* Open the state directory, probe QEMU, open the host, re-adopt running QEMUs (none is
 * restarted), finish or roll back interrupted operations, start the supervisor. */
int gv_agent_new(const struct gv_agent_config *cfg, struct gv_agent **ret, struct gv_error **err);
/* Stops the supervisor; leaves every VM running. */
struct gv_agent *gv_agent_free(struct gv_agent *a);

/* VM operations (vm.c). Names are checked by the callers' grammar; unknown → -ENOENT. Each is
 * idempotent on its own: starting a running VM, stopping a stopped one succeed at once. */
int gv_agent_vm_define(struct gv_agent *a, const json_t *definition, json_t **ret_status,
                       struct gv_error **err);   /* -EEXIST if a different VM has the name */
int gv_agent_vm_start(struct gv_agent *a, const char *name, struct gv_error **err);
int gv_agent_vm_stop(struct gv_agent *a, const char *name, int timeout_ms,
                     struct gv_error **err);     /* ACPI power-down, then quit, then kill */
int gv_agent_vm_kill(struct gv_agent *a, const char *name, struct gv_error **err);
int gv_agent_vm_delete(struct gv_agent *a, const char *name, struct gv_error **err);
int gv_agent_vm_status(struct gv_agent *a, const char *name, json_t **ret, struct gv_error **err);
json_t *gv_agent_vm_list(struct gv_agent *a);
/* Live migration (migrate.c, docs/agent.md "Migration"): each validates its body (a JSON
 * object; members checked strictly) and answers JSON. incoming: define (or accept the same
 * definition), make the hardware, QEMU waiting on `listen`; migrate: start the transfer from a
 * running VM (refused for pass-through GPUs); migration: the progress (404 when none);
 * migrate-cancel: the source keeps running; release: after a completed migration, let go of
 * the source; abort-incoming: let go of the destination. */
int gv_agent_vm_incoming(struct gv_agent *a, const char *name, const json_t *body,
                         json_t **ret, struct gv_error **err);
int gv_agent_vm_migrate(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                        struct gv_error **err);
int gv_agent_vm_migration(struct gv_agent *a, const char *name, json_t **ret,
                          struct gv_error **err);
int gv_agent_vm_migrate_cancel(struct gv_agent *a, const char *name, const json_t *body,
                               json_t **ret, struct gv_error **err);
int gv_agent_vm_release(struct gv_agent *a, const char *name, const json_t *body, json_t **ret,
                        struct gv_error **err);
int gv_agent_vm_abort_incoming(struct gv_agent *a, const char *name, const json_t *body,
                               json_t **ret, struct gv_error **err);
/* Serial console (console.c): the log's last `max` bytes; write bytes to the guest. */
int gv_agent_console_read(struct gv_agent *a, const char *name, size_t max, char **ret,
                          size_t *ret_len, struct gv_error **err);
int gv_agent_console_write(struct gv_agent *a, const char *name, const void *buf, size_t len,
                           struct gv_error **err);

/* Host and GPUs (host-api.c): inventory JSON (with the accelerator and QEMU facts), GPU mode
 * and partition operations refused while a VM holds the GPU. gv_agent_metrics (sampler.c): a
 * copy of the sampler's latest sample (docs/agent.md, "Metrics"); NULL when there is none
 * within 10 s of the agent's start. */
json_t *gv_agent_host_json(struct gv_agent *a);
int gv_agent_gpu_set_mode(struct gv_agent *a, const char *gpu, const char *mode,
                          struct gv_error **err);
int gv_agent_gpu_mig_apply(struct gv_agent *a, const char *gpu, char *const *profiles,
                           char **ret_layout, struct gv_error **err);
json_t *gv_agent_metrics(struct gv_agent *a);

/* Reconcile once (reconcile.c): hardware no VM owns, seen for longer than the grace period,
 * is removed; dead QEMUs are reported and their GPUs released. Returns what it did. */
json_t *gv_agent_reconcile(struct gv_agent *a);
/* The last pass's report (a copy), or NULL before the first. */
json_t *gv_agent_reconcile_last(struct gv_agent *a);

/* ---- internal, between the agent's files ---- */
struct gv_agent_vm *gv_agent_vm_find_locked(struct gv_agent *a, const char *name);
/* Find a VM and take its lock (never while holding the table lock). -ENOENT with a message. */
int gv_agent_vm_get(struct gv_agent *a, const char *name, struct gv_agent_vm **ret,
                    struct gv_error **err);
int gv_agent_vm_save(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err);
/* GPU hardware for a VM's GPU requests (gpu-attach.c); host_lock held by the callee. */
int gv_agent_gpus_attach(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err);
/* Releases every piece of hardware the VM records, GPU or not (taps too), newest first. */
void gv_agent_gpus_release(struct gv_agent *a, struct gv_agent_vm *vm);
/* The vfio group nodes (/dev/vfio/N) of the VM's devices handed to the QEMU user for the
 * VM's life (gpu-attach.c); given back to root by gv_agent_gpus_release(). Stand-ins have
 * none. */
struct gv_confine_user;
int gv_agent_vfio_give(struct gv_agent *a, struct gv_agent_vm *vm,
                       const struct gv_confine_user *u, struct gv_error **err);
/* The VM's cgroup, relative to the cgroup root: "gpuvirt/KEY/NAME" (vm.c). */
char *gv_agent_vm_cgroup(const struct gv_agent *a, const char *name);
/* Record a piece of hardware the moment it exists (state.json); host_lock held. */
void gv_agent_hw_record(struct gv_agent *a, struct gv_agent_vm *vm, const struct gv_hw *hw);
/* Taps for the VM's bridge NICs (net-attach.c), each recorded as it is made. *ret_taps (strv)
 * has one entry per NIC: the tap's name, "" for a user NIC. */
int gv_agent_nics_attach(struct gv_agent *a, struct gv_agent_vm *vm, char ***ret_taps,
                         struct gv_error **err);
/* Remove a VM whose QEMU is gone: release its hardware, drop it from the table, remove its
 * directory. vm->lock held (and kept: the caller unlocks). -EBUSY while QEMU lives or hardware
 * could not be released. */
int gv_agent_vm_forget_locked(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err);
/* Start QEMU for an incoming migration (vm.c): disks, NICs and GPU hardware as a start makes
 * them, QEMU with -incoming defer, then migrate-incoming on `uri` (port 0: a free one);
 * phase incoming, *ret_uri the address to migrate to. vm->lock held. On failure everything is
 * rolled back (no QEMU, no hardware) and the reason kept in last_error. */
int gv_agent_vm_start_incoming(struct gv_agent *a, struct gv_agent_vm *vm, const char *uri,
                               char **ret_uri, struct gv_error **err);
/* Live migration (migrate.c), with the VM's lock held: follow a migration in progress (the
 * supervisor, at most every GV_AGENT_MIGRATION_CHECK_MS): a source that completed becomes
 * migrated, one that failed or was cancelled running again; a destination whose state is in
 * becomes running. */
#define GV_AGENT_MIGRATION_CHECK_MS 200
void gv_agent_migration_tick(struct gv_agent *a, struct gv_agent_vm *vm);
/* At agent start, for a VM found in a migration phase, its QEMU adopted (alive) or not: an
 * incoming migration not yet complete is rolled back (QEMU killed, hardware released: the
 * source still runs); one complete is a running VM; a source follows its migration. */
void gv_agent_migration_adopt(struct gv_agent *a, struct gv_agent_vm *vm, bool alive);
/* Called with vm->lock held when QEMU has exited (supervisor, stop, kill). */
void gv_agent_vm_exited(struct gv_agent *a, struct gv_agent_vm *vm, bool expected,
                        int status);
void gv_agent_wake(struct gv_agent *a);
void *gv_agent_supervise(void *agent);
/* Reconcile (reconcile.c). The host configuration (STATE/host.json: each GPU's mode and MIG
 * layout the administrator set through the agent) is read, or on the first start the host
 * adopted as it is; idempotent; host_lock held. -errno when host.json cannot be read. */
int gv_agent_hostcfg_load(struct gv_agent *a, struct gv_error **err);
/* The administrator set GPU g (fresh) through the agent: its mode, and with `layout` its MIG
 * instances, are the configuration from now on; saved. host_lock held. */
int gv_agent_hostcfg_record(struct gv_agent *a, const struct gv_gpu *g, bool layout,
                            struct gv_error **err);
/* From the supervisor loop: a pass when one is due (*next_ms starts at 0). Returns the ms
 * until the next, -1 when passes run only when asked. */
int gv_agent_reconcile_tick(struct gv_agent *a, int64_t *next_ms);
/* Frees the reconcile state; idempotent. After the supervisor has stopped. */
void gv_agent_reconcile_done(struct gv_agent *a);
