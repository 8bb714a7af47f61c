/* SPDX-License-Identifier: MIT */
/*
 * qemu-cmd.h — the qemu-system-x86_64 command line of a VM, and the accelerator probe.
 *
 * The builder is a pure function of the VM's definition (vm-config.h) and what the agent
 * prepared for it (struct gv_qemu_runtime: sockets, disk files, taps, GPU devices). Golden
 * tests in tests/vmm/golden/ hold the expected argv of each GPU mode.
 *
 * GPU devices (../shared/reference/passthrough.md §5-6, vgpu.md §8.4): each GPU sits behind its
 * own pcie-root-port;
 *   pass-through:  -device vfio-pci,host=BDF per function, multifunction=on on function 0,
 *                  guest functions .0 .1 ... as the host's;
 *   mdev vGPU:     -device vfio-pci,sysfsdev=/sys/bus/mdev/devices/UUID
 *   vendor-VFIO:   -device vfio-pci,sysfsdev=/sys/bus/pci/devices/VF
 *   migratable:    enable-migration=on (QEMU >= 8.1), x-enable-migration=on before;
 *   simulated:     an emulated stand-in (`edu`, 1234:11e8) per GPU: a simulated host has no
 *                  /dev/vfio; the VM's status says what it stands for.
 *
 * The cloud-init seed is a read-only virtio-blk disk (raw, id "cidata"), the last device on
 * the command line: NoCloud finds its file system by the label alone, every cloud image
 * drives virtio-blk (its root disk is one), whereas a CD-ROM needs AHCI and sr_mod, which
 * slim cloud kernels may leave out; and as the last device it moves no other device's PCI
 * address (NIC names such as enp0s3 stay the same with or without a seed).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"
#include "vmm/vm-config.h"

enum gv_accel {
        GV_ACCEL_KVM,
        GV_ACCEL_TCG,
        _GV_ACCEL_MAX,
        _GV_ACCEL_INVALID = -EINVAL,
};
const char *gv_accel_to_string(enum gv_accel a);
enum gv_accel gv_accel_from_string(const char *s);

/* KVM when `kvm_path` (NULL: /dev/kvm) opens read-write and answers KVM_GET_API_VERSION 12;
 * TCG otherwise. *ret_reason: why, in words ("/dev/kvm: Permission denied; using TCG"). */
int gv_accel_probe(const char *kvm_path, enum gv_accel *ret, char **ret_reason,
                   struct gv_error **err);

enum gv_vm_dev_kind {
        GV_VM_DEV_VFIO_HOST,     /* pass-through: every function of a PCI device */
        GV_VM_DEV_VFIO_SYSFSDEV, /* an mdev or a vendor-VFIO VF, by sysfs path */
        GV_VM_DEV_STANDIN,       /* a simulated GPU: an emulated stand-in device */
        _GV_VM_DEV_MAX,
        _GV_VM_DEV_INVALID = -EINVAL,
};
const char *gv_vm_dev_kind_to_string(enum gv_vm_dev_kind k);
enum gv_vm_dev_kind gv_vm_dev_kind_from_string(const char *s);

struct gv_vm_device {
        enum gv_vm_dev_kind kind;
        char **functions;  /* VFIO_HOST: "0000:18:00.0", "0000:18:00.1"; function 0 first */
        size_t n_functions;
        char *sysfsdev;    /* VFIO_SYSFSDEV */
        bool migration;    /* ask QEMU for VFIO migration */
        char *standin_for; /* STANDIN: what it stands for (status only) */
};

struct gv_qemu_runtime {
        const char *binary;              /* NULL: "qemu-system-x86_64" */
        unsigned qemu_major, qemu_minor; /* property names depend on the version */
        enum gv_accel accel;
        const char *cpu_model;           /* NULL: "host" with KVM, "max" with TCG; "" : QEMU's
                                          * default (gv_qemu_probe() says which works) */
        const char *qmp_socket;
        const char *console_socket;
        const char *pidfile;
        const char *const *disk_files;   /* per config disk: the file QEMU opens */
        const char *const *disk_formats; /* per config disk: "qcow2", "raw" */
        const char *const *taps;         /* per config NIC: the tap of a bridge NIC, else NULL */
        const struct gv_vm_device *devices;
        size_t n_devices;
        bool paused;                     /* -S: wait for `cont` */
        bool incoming;                   /* -incoming defer: wait for QMP migrate-incoming (the
                                          * destination of a live migration, migrate.h); runs
                                          * when the state is in, unless also `paused` */
        const char *seed_iso;            /* the cloud-init NoCloud seed (cloud-init.h); needed
                                          * when the config has cloud_init */
        const char *vnc_socket;          /* the graphical console: a VGA device and QEMU's VNC
                                          * server on this UNIX socket (the agent bridges it to
                                          * WebSocket clients); NULL: neither */
        bool sandbox;                    /* -sandbox GV_QEMU_SANDBOX: QEMU's seccomp filter
                                          * (docs/qemu-confinement.md) */
};

/* QEMU's seccomp sandbox as gpuvirt asks for it: the default filter plus obsolete system calls,
 * privilege changes (set*uid...), spawning processes (fork, execve) and resource control
 * (setpriority, sched_setaffinity...) denied. Live migration (tcp:), NBD and everything the
 * agent does over QMP work inside it; an `exec:` migration URI does not. */
#define GV_QEMU_SANDBOX "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"

/* What this machine's QEMU can do, probed once when the agent starts (the answer goes into the
 * host inventory): its version, the accelerator (gv_accel_probe()), and the CPU model that
 * starts: "host" under KVM unless QEMU fails to start with it (nested virtualisation can make
 * '-cpu host' abort), then QEMU's default (""), and whether it can sandbox itself (a QEMU
 * without seccomp refuses -sandbox). Starts QEMU with -S and quits it over QMP on stdin; takes
 * well under a second. */
struct gv_qemu_caps {
        unsigned major, minor, micro;
        enum gv_accel accel;
        char *cpu_model;   /* "host", "max" or "" */
        char *reason;      /* accelerator and CPU model, in words */
        bool sandbox;      /* QEMU starts with -sandbox GV_QEMU_SANDBOX (built with seccomp) */
        char *sandbox_why; /* why not: QEMU's own words; NULL when it can */
};
int gv_qemu_probe(const char *binary, const char *kvm_path, struct gv_qemu_caps *ret,
                  struct gv_error **err);
void gv_qemu_caps_done(struct gv_qemu_caps *c);

/* The argv (NULL-terminated, strv) for `c` on `rt`. Errors name what is missing (a disk
 * without a file, a bridge NIC without a tap, a device without functions). */
int gv_qemu_argv(const struct gv_vm_config *c, const struct gv_qemu_runtime *rt,
                 char ***ret_argv, struct gv_error **err);
/* The value QEMU's option parser reads as `s`: every ',' doubled. */
char *gv_qemu_escape(const char *s);
