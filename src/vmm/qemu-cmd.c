/* SPDX-License-Identifier: MIT */
/*
 * qemu-cmd.c — the QEMU command line of a VM (qemu-cmd.h) and the KVM probe.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/strv.h"
#include "vmm/qemu-cmd.h"

static const char *const accel_table[_GV_ACCEL_MAX] = {
        [GV_ACCEL_KVM] = "kvm",
        [GV_ACCEL_TCG] = "tcg",
};
DEFINE_STRING_TABLE_LOOKUP(gv_accel, enum gv_accel, accel_table);

static const char *const dev_kind_table[_GV_VM_DEV_MAX] = {
        [GV_VM_DEV_VFIO_HOST] = "vfio-host",
        [GV_VM_DEV_VFIO_SYSFSDEV] = "vfio-sysfsdev",
        [GV_VM_DEV_STANDIN] = "standin",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vm_dev_kind, enum gv_vm_dev_kind, dev_kind_table);

/* The KVM API version every kernel since 2.6.22 reports (linux/kvm.h KVM_API_VERSION). */
#define KVM_STABLE_API 12

int gv_accel_probe(const char *kvm_path, enum gv_accel *ret, char **ret_reason,
                   struct gv_error **err)
{
        const char *path = kvm_path ? kvm_path : "/dev/kvm";
        char *reason;
        int fd, v;

        (void)err;
        fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                reason = xasprintf("%s: %s; using TCG (software emulation, much slower)", path,
                                   strerror(errno));
                goto tcg;
        }
        v = ioctl(fd, KVM_GET_API_VERSION, 0);
        close(fd);
        if (v != KVM_STABLE_API) {
                reason = v < 0 ? xasprintf("%s: KVM_GET_API_VERSION failed (%s); using TCG", path,
                                           strerror(errno))
                               : xasprintf("%s: KVM API version %d, not %d; using TCG", path, v,
                                           KVM_STABLE_API);
                goto tcg;
        }
        *ret = GV_ACCEL_KVM;
        if (ret_reason)
                *ret_reason = xasprintf("%s opens and speaks KVM API %d", path, v);
        return 0;
tcg:
        *ret = GV_ACCEL_TCG;
        if (ret_reason)
                *ret_reason = reason;
        else
                free(reason);
        return 0;
}

char *gv_qemu_escape(const char *s)
{
        size_t n = 0;
        char *out, *o;

        for (const char *p = s; *p; p++)
                n += *p == ',' ? 2 : 1;
        out = o = xmalloc(n + 1);
        for (const char *p = s; *p; p++) {
                *o++ = *p;
                if (*p == ',')
                        *o++ = ',';
        }
        *o = '\0';
        return out;
}

static void add(char ***argv, const char *opt, char *val /* consumed; may be NULL */)
{
        strv_extend(argv, opt);
        if (val)
                strv_consume(argv, val);
}

/* "0000:18:00.1" -> 1; -1 when the address does not parse. */
static int function_of(const char *bdf)
{
        struct gv_pci_addr a;

        if (gv_parse_pci_addr(bdf, &a) < 0)
                return -1;
        return a.function;
}

static int add_device(char ***argv, const struct gv_vm_device *d, size_t i,
                      const struct gv_qemu_runtime *rt, struct gv_error **err)
{
        /* Root ports take chassis/slot numbers from 1; GPUs come after the disks and NICs on
         * pcie.0, each behind its own port so it may be hot-unplugged and gets a whole bus. */
        bool new_migration_prop = rt->qemu_major > 8 || (rt->qemu_major == 8 && rt->qemu_minor >= 1);
        const char *mig_prop = new_migration_prop ? "enable-migration" : "x-enable-migration";

        add(argv, "-device", xasprintf("pcie-root-port,id=gpu%zu-port,bus=pcie.0,chassis=%zu,"
                                       "slot=%zu", i, i + 1, i + 1));
        switch (d->kind) {
        case GV_VM_DEV_VFIO_HOST:
                if (!d->n_functions)
                        return gv_error_set(err, EINVAL, "GPU device %zu: a pass-through device "
                                            "needs its PCI functions.", i);
                for (size_t f = 0; f < d->n_functions; f++) {
                        _cleanup_free_ char *host = gv_qemu_escape(d->functions[f]);
                        int fn = function_of(d->functions[f]);
                        if (fn < 0)
                                return gv_error_set(err, EINVAL, "GPU device %zu: '%s' is not a "
                                                    "PCI address.", i, d->functions[f]);
                        if (f == 0 && fn != 0)
                                return gv_error_set(err, EINVAL, "GPU device %zu: function 0 "
                                                    "comes first, not '%s'.", i,
                                                    d->functions[f]);
                        add(argv, "-device",
                            xasprintf("vfio-pci,host=%s,id=gpu%zu-f%d,bus=gpu%zu-port,addr=00.%d%s%s",
                                      host, i, fn, i, fn,
                                      f == 0 && d->n_functions > 1 ? ",multifunction=on" : "",
                                      d->migration ? (new_migration_prop
                                                              ? ",enable-migration=on"
                                                              : ",x-enable-migration=on")
                                                   : ""));
                }
                return 0;
        case GV_VM_DEV_VFIO_SYSFSDEV: {
                if (!d->sysfsdev)
                        return gv_error_set(err, EINVAL, "GPU device %zu: a vGPU device needs "
                                            "its sysfs path.", i);
                _cleanup_free_ char *dev = gv_qemu_escape(d->sysfsdev);
                add(argv, "-device", xasprintf("vfio-pci,sysfsdev=%s,id=gpu%zu,bus=gpu%zu-port%s%s%s",
                                               dev, i, i, d->migration ? "," : "",
                                               d->migration ? mig_prop : "",
                                               d->migration ? "=on" : ""));
                return 0;
        }
        case GV_VM_DEV_STANDIN:
                add(argv, "-device", xasprintf("edu,id=gpu%zu,bus=gpu%zu-port", i, i));
                return 0;
        default:
                return gv_error_set(err, EINVAL, "GPU device %zu: unknown kind %d.", i,
                                    (int)d->kind);
        }
}

int gv_qemu_argv(const struct gv_vm_config *c, const struct gv_qemu_runtime *rt,
                 char ***ret_argv, struct gv_error **err)
{
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_free_ char *name = gv_qemu_escape(c->name);
        int r;

        if (!rt->qmp_socket || !rt->console_socket || !rt->pidfile)
                return gv_error_set(err, EINVAL, "The QEMU runtime lacks its QMP socket, console "
                                    "socket or pidfile path.");
        strv_extend(&argv, rt->binary ? rt->binary : "qemu-system-x86_64");
        /* "guest=NAME," is also the marker by which a restarted agent recognises its QEMU. */
        add(&argv, "-name", xasprintf("guest=%s,debug-threads=on", name));
        add(&argv, "-uuid", xstrdup(c->uuid));
        add(&argv, "-machine", xstrdup("q35"));
        add(&argv, "-accel", xstrdup(rt->accel == GV_ACCEL_KVM ? "kvm" : "tcg"));
        if (!rt->cpu_model)
                add(&argv, "-cpu", xstrdup(rt->accel == GV_ACCEL_KVM ? "host" : "max"));
        else if (rt->cpu_model[0])
                add(&argv, "-cpu", xstrdup(rt->cpu_model));
        add(&argv, "-smp", xasprintf("%" PRIu32, c->vcpus));
        add(&argv, "-m", xasprintf("%" PRIu64 "M", c->memory_mib));
        add(&argv, "-nodefaults", NULL);
        add(&argv, "-no-user-config", NULL);
        add(&argv, "-display", xstrdup("none"));
        add(&argv, "-msg", xstrdup("timestamp=on"));
        if (rt->sandbox)
                add(&argv, "-sandbox", xstrdup(GV_QEMU_SANDBOX));
        add(&argv, "-pidfile", xstrdup(rt->pidfile));
        {
                _cleanup_free_ char *q = gv_qemu_escape(rt->qmp_socket);
                _cleanup_free_ char *s = gv_qemu_escape(rt->console_socket);
                add(&argv, "-chardev", xasprintf("socket,id=qmp,path=%s,server=on,wait=off", q));
                add(&argv, "-mon", xstrdup("chardev=qmp,mode=control"));
                add(&argv, "-chardev",
                    xasprintf("socket,id=console0,path=%s,server=on,wait=off", s));
                add(&argv, "-serial", xstrdup("chardev:console0"));
        }
        if (rt->paused)
                add(&argv, "-S", NULL);
        if (rt->incoming)
                add(&argv, "-incoming", xstrdup("defer"));
        if (c->kernel) {
                add(&argv, "-kernel", xstrdup(c->kernel));
                if (c->initrd)
                        add(&argv, "-initrd", xstrdup(c->initrd));
                if (c->append)
                        add(&argv, "-append", xstrdup(c->append));
        }

        for (size_t i = 0; i < c->n_disks; i++) {
                const struct gv_vm_disk *d = &c->disks[i];
                if (!rt->disk_files || !rt->disk_files[i] || !rt->disk_formats ||
                    !rt->disk_formats[i])
                        return gv_error_set(err, EINVAL, "Disk '%s' has no file or format to "
                                            "give QEMU.", d->name);
                if (strcmp(rt->disk_formats[i], "qcow2") && strcmp(rt->disk_formats[i], "raw"))
                        return gv_error_set(err, EINVAL, "Disk '%s': format '%s' is not "
                                            "supported; use qcow2 or raw.", d->name,
                                            rt->disk_formats[i]);
                _cleanup_free_ char *f = gv_qemu_escape(rt->disk_files[i]);
                add(&argv, "-blockdev",
                    xasprintf("driver=file,filename=%s,node-name=disk%zu-file,read-only=%s,"
                              "discard=unmap", f, i, d->readonly ? "on" : "off"));
                add(&argv, "-blockdev",
                    xasprintf("driver=%s,file=disk%zu-file,node-name=disk%zu,read-only=%s",
                              rt->disk_formats[i], i, i, d->readonly ? "on" : "off"));
                add(&argv, "-device", xasprintf("virtio-blk-pci,drive=disk%zu,id=disk%zu-dev%s", i,
                                                i, i == 0 ? ",bootindex=1" : ""));
        }

        for (size_t i = 0; i < c->n_nics; i++) {
                const struct gv_vm_nic *n = &c->nics[i];
                if (n->mode == GV_VM_NIC_USER) {
                        _cleanup_free_ char *netdev = xasprintf("user,id=net%zu", i);
                        for (size_t k = 0; k < n->n_forwards; k++) {
                                char *x = xasprintf("%s,hostfwd=%s::%u-:%u", netdev,
                                                    n->forwards[k].udp ? "udp" : "tcp",
                                                    n->forwards[k].host_port,
                                                    n->forwards[k].guest_port);
                                free(netdev);
                                netdev = x;
                        }
                        add(&argv, "-netdev", TAKE_PTR(netdev));
                } else {
                        if (!rt->taps || !rt->taps[i] || !rt->taps[i][0])
                                return gv_error_set(err, EINVAL, "NIC %zu on bridge '%s' has no "
                                                    "tap device.", i, n->bridge);
                        add(&argv, "-netdev",
                            xasprintf("tap,id=net%zu,ifname=%s,script=no,downscript=no", i,
                                      rt->taps[i]));
                }
                /* romfile= : no iPXE option ROM (we never network-boot; saves the firmware
                 * package and boot time). */
                add(&argv, "-device",
                    xasprintf("virtio-net-pci,netdev=net%zu,id=net%zu-dev,mac=%s,romfile=", i, i,
                              n->mac));
        }

        for (size_t i = 0; i < rt->n_devices; i++) {
                r = add_device(&argv, &rt->devices[i], i, rt, err);
                if (r < 0)
                        return r;
        }

        if (rt->vnc_socket) {
                /* The graphical console: QEMU's VNC server on a UNIX socket beside the QMP and
                 * console sockets (0600 by the agent's umask; no TCP port is opened), and a
                 * standard VGA so there is a screen to show from the firmware on (SeaBIOS
                 * prints to it; a pass-through or vGPU display is the guest's business). The
                 * VGA comes after the other devices so they keep the PCI addresses they had
                 * without it, and before the seed image, which stays last. */
                _cleanup_free_ char *v = gv_qemu_escape(rt->vnc_socket);
                add(&argv, "-vnc", xasprintf("unix:%s", v));
                add(&argv, "-device", xstrdup("VGA,id=video0"));
        }
        if (c->cloud_init && !rt->seed_iso)
                return gv_error_set(err, EINVAL, "VM '%s' has cloud_init but the runtime has no "
                                    "seed image for it.", c->name);
        if (rt->seed_iso) {
                /* Read-only virtio-blk, last (qemu-cmd.h says why). */
                _cleanup_free_ char *f = gv_qemu_escape(rt->seed_iso);
                add(&argv, "-blockdev",
                    xasprintf("driver=file,filename=%s,node-name=cidata-file,read-only=on", f));
                add(&argv, "-blockdev",
                    xstrdup("driver=raw,file=cidata-file,node-name=cidata,read-only=on"));
                add(&argv, "-device", xstrdup("virtio-blk-pci,drive=cidata,id=cidata-dev"));
        }
        *ret_argv = TAKE_PTR(argv);
        return 0;
}
