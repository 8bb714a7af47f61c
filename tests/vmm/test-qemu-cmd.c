/* SPDX-License-Identifier: MIT */
/*
 * The QEMU command line: golden argv for every GPU mode (tests/vmm/golden/NAME.args, one
 * argument per line; GPUVIRT_UPDATE_GOLDEN=1 rewrites them), escaping, errors, the KVM probe,
 * and real QEMU reading each command line: a stand-in VM must run, a vfio VM must get as far
 * as looking for its host device (the options parsed; only the hardware is missing here).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"
#include "vmm/qemu-cmd.h"

#define GOLDEN_DIR TEST_SRCDIR "/golden"

static struct gv_vm_config *config(const char *text)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_vm_config *c = NULL;

        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        int r = gv_vm_config_from_json(j, &c, &e);
        if (r < 0)
                fail_msg("config: %s", gv_error_msg(e, r));
        return c;
}

static void check_golden(const char *name, char **argv)
{
        _cleanup_free_ char *path = xasprintf("%s/%s.args", GOLDEN_DIR, name);
        _cleanup_free_ char *joined = strv_join(argv, "\n");
        _cleanup_free_ char *got = xasprintf("%s\n", joined);
        _cleanup_free_ char *want = NULL;
        const char *update = getenv("GPUVIRT_UPDATE_GOLDEN");

        if (update && strcmp(update, "1") == 0) {
                assert_int_equal(gv_write_file(path, got, GV_WRITE_CREATE), 0);
                return;
        }
        if (gv_read_file(path, 1 << 20, &want, NULL) < 0)
                fail_msg("cannot read %s (GPUVIRT_UPDATE_GOLDEN=1 writes it)", path);
        if (strcmp(want, got) != 0)
                fail_msg("argv differs from %s:\n--- want\n%s--- got\n%s", path, want, got);
}

static const char *const one_disk_files[] = { "/var/lib/gpuvirt/vms/v/disks/root.qcow2" };
static const char *const one_disk_formats[] = { "qcow2" };

static struct gv_qemu_runtime runtime(enum gv_accel accel)
{
        return (struct gv_qemu_runtime){
                .qemu_major = 7,
                .qemu_minor = 2,
                .accel = accel,
                .qmp_socket = "/run/gpuvirt/vms/v/qmp.sock",
                .console_socket = "/run/gpuvirt/vms/v/console.sock",
                .vnc_socket = "/run/gpuvirt/vms/v/vnc.sock",
                .pidfile = "/run/gpuvirt/vms/v/qemu.pid",
                .disk_files = one_disk_files,
                .disk_formats = one_disk_formats,
                .sandbox = true,
        };
}

#define BASE_VM                                                                                 \
        "\"uuid\": \"3f2504e0-4f89-11d3-9a0c-0305e82c3301\", \"vcpus\": 4, \"memory_mib\": 8192,"  \
        " \"disks\": [{\"name\": \"root\", \"base\": \"/img/debian.qcow2\"}],"                     \
        " \"nics\": [{\"forwards\": [{\"host_port\": 2222, \"guest_port\": 22}]}]"

static void test_golden_passthrough(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c =
                config("{\"name\": \"pt\", " BASE_VM ", \"gpus\": [{\"mode\": \"passthrough\"}]}");
        char *fns[] = { "0000:18:00.0", "0000:18:00.1" };
        struct gv_vm_device dev = { .kind = GV_VM_DEV_VFIO_HOST, .functions = fns,
                                    .n_functions = 2 };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_KVM);
        _cleanup_strv_free_ char **argv = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("passthrough", argv);
}

static void test_golden_vgpu_mdev(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"vg\", " BASE_VM ", \"gpus\": [{\"mode\": \"vgpu\", \"type\": "
                "\"A100DX-20C\"}]}");
        struct gv_vm_device dev = {
                .kind = GV_VM_DEV_VFIO_SYSFSDEV,
                .sysfsdev = "/sys/bus/mdev/devices/aa618089-8b16-4d01-a136-25a0f3c73123",
        };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_TCG);
        _cleanup_strv_free_ char **argv = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("vgpu-mdev", argv);
}

/* SR-IOV vendor-VFIO vGPU (H100 on current drivers), migratable: the property name follows
 * the QEMU version (passthrough.md §7). */
static void test_golden_vgpu_vendor_vfio(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"vf\", " BASE_VM ", \"gpus\": [{\"mode\": \"vgpu\", \"type\": "
                "\"H100XM-20C\"}]}");
        struct gv_vm_device dev = { .kind = GV_VM_DEV_VFIO_SYSFSDEV,
                                    .sysfsdev = "/sys/bus/pci/devices/0000:3d:00.4",
                                    .migration = true };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_KVM);
        _cleanup_strv_free_ char **argv = NULL, **argv8 = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("vgpu-vendor-vfio-qemu7", argv);
        rt.qemu_major = 8;
        rt.qemu_minor = 1;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv8, NULL), 0);
        check_golden("vgpu-vendor-vfio-qemu8", argv8);
}

static void test_golden_mig_vgpu(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"mv\", " BASE_VM ", \"gpus\": [{\"mode\": \"mig-vgpu\", \"type\": "
                "\"H100XM-1-10C\"}, {\"mode\": \"mig-vgpu\", \"type\": \"H100XM-1-10C\"}]}");
        struct gv_vm_device dev[2] = {
                { .kind = GV_VM_DEV_VFIO_SYSFSDEV, .sysfsdev = "/sys/bus/pci/devices/0000:3d:00.4",
                  .migration = true },
                { .kind = GV_VM_DEV_VFIO_SYSFSDEV, .sysfsdev = "/sys/bus/pci/devices/0000:3d:00.5",
                  .migration = true },
        };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_KVM);
        _cleanup_strv_free_ char **argv = NULL;

        rt.devices = dev;
        rt.n_devices = 2;
        rt.qemu_major = 9;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("mig-vgpu", argv);
}

static void test_golden_standin(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"sim\", \"uuid\": \"3f2504e0-4f89-11d3-9a0c-0305e82c3301\","
                " \"boot\": {\"kernel\": \"/img/vmlinuz\", \"initrd\": \"/img/initrd\","
                " \"append\": \"console=ttyS0 quiet\"},"
                " \"disks\": [{\"name\": \"root\", \"size\": \"1G\"},"
                "             {\"name\": \"iso\", \"path\": \"/img/a,b.raw\", \"readonly\": true}],"
                " \"nics\": [{\"mode\": \"bridge\", \"bridge\": \"br0\"}],"
                " \"gpus\": [{\"mode\": \"passthrough\"}]}");
        struct gv_vm_device dev = { .kind = GV_VM_DEV_STANDIN,
                                    .standin_for = "simulated GPU 0000:18:00.0" };
        const char *files[] = { "/var/lib/gpuvirt/vms/sim/disks/root.qcow2", "/img/a,b.raw" };
        const char *formats[] = { "qcow2", "raw" };
        const char *taps[] = { "gv-sim-0" };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_TCG);
        _cleanup_strv_free_ char **argv = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        rt.disk_files = files;
        rt.disk_formats = formats;
        rt.taps = taps;
        rt.paused = true;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("standin", argv);
        /* The comma in the image path is doubled, so QEMU reads one file name. */
        assert_true(strv_contains(argv, "driver=file,filename=/img/a,,b.raw,node-name=disk1-file,"
                                        "read-only=on,discard=unmap"));
}

/* A cloud-init seed: a read-only virtio-blk disk after every other device. */
static void test_golden_cloud_init(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"ci\", " BASE_VM ", \"gpus\": [{\"mode\": \"passthrough\"}],"
                " \"cloud_init\": {\"hostname\": \"ci-host\"}}");
        char *fns[] = { "0000:18:00.0" };
        struct gv_vm_device dev = { .kind = GV_VM_DEV_VFIO_HOST, .functions = fns,
                                    .n_functions = 1 };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_KVM);
        _cleanup_strv_free_ char **argv = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char **none = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        /* Without the image QEMU would start without the seed the VM asks for. */
        assert_int_equal(gv_qemu_argv(c, &rt, &none, &e), -EINVAL);
        assert_null(none);
        assert_non_null(strstr(e->msg, "seed"));
        rt.seed_iso = "/var/lib/gpuvirt/vms/ci/disks/seed,1.iso";
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("cloud-init", argv);
        assert_string_equal(argv[strv_length(argv) - 1],
                            "virtio-blk-pci,drive=cidata,id=cidata-dev");
}

/* The destination of a live migration: a migratable vGPU, QEMU waiting for
 * `migrate-incoming` (-incoming defer) and running once the state is in (no -S). */
static void test_golden_incoming(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"mig\", " BASE_VM ", \"gpus\": [{\"mode\": \"vgpu\", \"type\": "
                "\"H100XM-20C\"}]}");
        struct gv_vm_device dev = { .kind = GV_VM_DEV_VFIO_SYSFSDEV,
                                    .sysfsdev = "/sys/bus/pci/devices/0000:18:00.4",
                                    .migration = true };
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_KVM);
        _cleanup_strv_free_ char **argv = NULL, **plain = NULL;

        rt.devices = &dev;
        rt.n_devices = 1;
        rt.qemu_major = 8;
        rt.qemu_minor = 2;
        assert_int_equal(gv_qemu_argv(c, &rt, &plain, NULL), 0);
        assert_false(strv_contains(plain, "-incoming"));
        rt.incoming = true;
        assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
        check_golden("incoming", argv);
        assert_false(strv_contains(argv, "-S"));
        /* Nothing else differs from a plain start: same devices, same order. */
        assert_int_equal(strv_length(argv), strv_length(plain) + 2);
}

static void expect_error(const struct gv_vm_config *c, const struct gv_qemu_runtime *rt,
                         const char *needle)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char **argv = NULL;

        assert_int_equal(gv_qemu_argv(c, rt, &argv, &e), -EINVAL);
        assert_null(argv);
        if (!strstr(e->msg, needle))
                fail_msg("'%s' lacks '%s'", e->msg, needle);
}

static void test_errors(void **state)
{
        (void)state;
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"e\", \"disks\": [{\"name\": \"root\", \"size\": \"1G\"}],"
                " \"nics\": [{\"mode\": \"bridge\", \"bridge\": \"br0\"}]}");
        struct gv_qemu_runtime rt = runtime(GV_ACCEL_TCG);
        const char *bad_format[] = { "vmdk" };
        char *fns[] = { "0000:18:00.1" };
        struct gv_vm_device dev = { .kind = GV_VM_DEV_VFIO_HOST, .functions = fns,
                                    .n_functions = 1 };
        const char *taps[] = { "tap0" };

        expect_error(c, &rt, "no tap device");
        rt.taps = taps;
        rt.disk_files = NULL;
        expect_error(c, &rt, "Disk 'root' has no file");
        rt.disk_files = one_disk_files;
        rt.disk_formats = bad_format;
        expect_error(c, &rt, "format 'vmdk'");
        rt.disk_formats = one_disk_formats;
        rt.devices = &dev;
        rt.n_devices = 1;
        expect_error(c, &rt, "function 0 comes first");
        dev.n_functions = 0;
        expect_error(c, &rt, "needs its PCI functions");
        rt.qmp_socket = NULL;
        expect_error(c, &rt, "QMP socket");
}

static void test_escape(void **state)
{
        (void)state;
        _cleanup_free_ char *a = gv_qemu_escape("a,b,,c");
        _cleanup_free_ char *b = gv_qemu_escape("");
        assert_string_equal(a, "a,,b,,,,c");
        assert_string_equal(b, "");
}

static void test_accel_probe(void **state)
{
        (void)state;
        enum gv_accel a = GV_ACCEL_KVM;
        _cleanup_free_ char *reason = NULL, *reason2 = NULL;

        /* A path that is not KVM: TCG, and the reason names the path. */
        assert_int_equal(gv_accel_probe("/nonexistent/kvm", &a, &reason, NULL), 0);
        assert_int_equal(a, GV_ACCEL_TCG);
        assert_non_null(strstr(reason, "/nonexistent/kvm"));
        assert_non_null(strstr(reason, "TCG"));
        /* /dev/null opens but does not answer KVM_GET_API_VERSION. */
        assert_int_equal(gv_accel_probe("/dev/null", &a, &reason2, NULL), 0);
        assert_int_equal(a, GV_ACCEL_TCG);
        assert_non_null(strstr(reason2, "KVM_GET_API_VERSION"));
}

/* ---- real QEMU reads the command lines ---- */

static bool have_qemu(void)
{
        return system("command -v qemu-system-x86_64 >/dev/null 2>&1 && "
                      "command -v qemu-img >/dev/null 2>&1") == 0;
}

/* Run argv with stderr to `errpath`; wait up to `ms` for it to exit. Returns its exit status, or
 * -1 when it was still running (then it is killed). */
static int run_qemu(char **argv, const char *errpath, int ms)
{
        pid_t pid = fork();
        int status = 0;

        assert_true(pid >= 0);
        if (pid == 0) {
                int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
                dup2(nul, 0);
                dup2(nul, 1);
                dup2(fd, 2);
                execvp(argv[0], argv);
                _exit(127);
        }
        for (int t = 0; t < ms / 10; t++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
                usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

static void test_real_qemu(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-qemu-cmd-XXXXXX";
        enum gv_accel accel;

        if (!have_qemu())
        {
                print_message("skipped: qemu-system-x86_64 or qemu-img is not installed "
                              "(deps/debian-packages.txt)\n");
                skip();
        }
        assert_non_null(mkdtemp(dir));
        struct gv_qemu_caps caps;
        _cleanup_(gv_error_freep) struct gv_error *perr = NULL;
        int pr = gv_qemu_probe(NULL, NULL, &caps, &perr);
        if (pr < 0)
                fail_msg("probe: %s", gv_error_msg(perr, pr));
        print_message("qemu %u.%u.%u: %s\n", caps.major, caps.minor, caps.micro, caps.reason);
        assert_true(caps.major >= 2);
        accel = caps.accel;

        _cleanup_free_ char *disk = xasprintf("%s/root.qcow2", dir);
        _cleanup_free_ char *mk = xasprintf("qemu-img create -q -f qcow2 %s 64M", disk);
        assert_int_equal(system(mk), 0);
        _cleanup_free_ char *qmp = xasprintf("%s/qmp.sock", dir);
        _cleanup_free_ char *con = xasprintf("%s/console.sock", dir);
        _cleanup_free_ char *pid = xasprintf("%s/qemu.pid", dir);
        _cleanup_free_ char *errpath = xasprintf("%s/stderr", dir);
        const char *files[] = { disk };
        const char *formats[] = { "qcow2" };
        struct gv_qemu_runtime rt = {
                .qemu_major = caps.major, .qemu_minor = caps.minor, .accel = accel,
                .cpu_model = caps.cpu_model, .qmp_socket = qmp,
                .console_socket = con, .pidfile = pid, .disk_files = files,
                .disk_formats = formats, .paused = true, .sandbox = caps.sandbox,
        };
        /* Debian's QEMU is built with seccomp: the probe must find the sandbox usable. */
        if (!caps.sandbox)
                fail_msg("this QEMU refuses -sandbox " GV_QEMU_SANDBOX ": %s", caps.sandbox_why);
        _cleanup_(gv_vm_config_freep) struct gv_vm_config *c = config(
                "{\"name\": \"real\", \"memory_mib\": 128,"
                " \"disks\": [{\"name\": \"root\", \"size\": \"64M\"}],"
                " \"nics\": [{\"forwards\": [{\"host_port\": 45022, \"guest_port\": 22}]}]}");
        struct gv_vm_device standin = { .kind = GV_VM_DEV_STANDIN, .standin_for = "GPU 0" };
        char *fns[] = { "0000:18:00.0", "0000:18:00.1" };
        struct gv_vm_device vfio = { .kind = GV_VM_DEV_VFIO_HOST, .functions = fns,
                                     .n_functions = 2 };
        struct gv_vm_device mdev = {
                .kind = GV_VM_DEV_VFIO_SYSFSDEV,
                .sysfsdev = "/sys/bus/mdev/devices/aa618089-8b16-4d01-a136-25a0f3c73123",
                .migration = true,
        };
        _cleanup_free_ char *err_text = NULL;

        /* Stand-in: QEMU runs (paused) and writes its pidfile and both sockets. */
        {
                _cleanup_strv_free_ char **argv = NULL;
                rt.devices = &standin;
                rt.n_devices = 1;
                assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
                pid_t p = fork();
                assert_true(p >= 0);
                if (p == 0) {
                        int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                        dup2(fd, 2);
                        execvp(argv[0], argv);
                        _exit(127);
                }
                bool up = false;
                for (int t = 0; t < 1000 && !up; t++) {
                        up = gv_file_exists(qmp) > 0 && gv_file_exists(con) > 0 &&
                             gv_file_exists(pid) > 0;
                        if (!up)
                                usleep(10000);
                }
                int status;
                bool exited = waitpid(p, &status, WNOHANG) == p;
                /* The sandbox is on: the kernel reports a seccomp filter (mode 2). */
                _cleanup_free_ char *st_path = xasprintf("/proc/%d/status", (int)p);
                _cleanup_free_ char *st_text = NULL;
                bool filtered = !exited &&
                                gv_read_file(st_path, 65536, &st_text, NULL) >= 0 &&
                                strstr(st_text, "\nSeccomp:\t2\n") != NULL;
                kill(p, SIGKILL);
                if (!exited)
                        waitpid(p, &status, 0);
                if (!up || exited) {
                        (void)gv_read_file(errpath, 65536, &err_text, NULL);
                        fail_msg("QEMU did not come up with the stand-in argv: %s",
                                 err_text ? err_text : "(no stderr)");
                }
                if (!filtered)
                        fail_msg("QEMU runs with -sandbox but /proc/PID/status does not say "
                                 "Seccomp: 2:\n%s", st_text ? st_text : "(unreadable)");
        }
        /* vfio pass-through and mdev: the options parse; QEMU stops at the missing device. */
        struct gv_vm_device *devs[] = { &vfio, &mdev };
        for (size_t i = 0; i < 2; i++) {
                _cleanup_strv_free_ char **argv = NULL;
                _cleanup_free_ char *text = NULL;
                rt.devices = devs[i];
                assert_int_equal(gv_qemu_argv(c, &rt, &argv, NULL), 0);
                int st = run_qemu(argv, errpath, 20000);
                assert_int_not_equal(st, 0);
                assert_int_not_equal(st, -1);
                assert_int_equal(gv_read_file(errpath, 65536, &text, NULL), 0);
                if (!strstr(text, "vfio") || strstr(text, "nvalid parameter") ||
                    strstr(text, "is not a valid") || strstr(text, "nexpected"))
                        fail_msg("QEMU did not reach the vfio device: %s", text);
        }
        gv_qemu_caps_done(&caps);
        _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
        assert_int_equal(system(rm), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden_passthrough),
                cmocka_unit_test(test_golden_vgpu_mdev),
                cmocka_unit_test(test_golden_vgpu_vendor_vfio),
                cmocka_unit_test(test_golden_mig_vgpu),
                cmocka_unit_test(test_golden_standin),
                cmocka_unit_test(test_golden_cloud_init),
                cmocka_unit_test(test_golden_incoming),
                cmocka_unit_test(test_errors),
                cmocka_unit_test(test_escape),
                cmocka_unit_test(test_accel_probe),
                cmocka_unit_test(test_real_qemu),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
