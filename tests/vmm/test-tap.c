/* SPDX-License-Identifier: MIT */
/*
 * Tap devices for bridge NICs (src/vmm/tap.c) against the real kernel, and a real QEMU opening
 * the tap by name.
 *
 * The name builder runs everywhere. The rest needs CAP_NET_ADMIN, /dev/net/tun and the bridge
 * module: the program probes by making its own bridge `gvtb<pid>` with ip(8) and skips (77)
 * with the reason when it cannot. Every interface it makes is recorded and removed at exit,
 * also when a test fails. Names carry the pid or a random UUID, so the plain and the ASan run
 * can go side by side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"
#include "vmm/proc.h"
#include "vmm/tap.h"

static char bridge[IFNAMSIZ];     /* gvtb<pid>: the bridge the taps join */
static char bridge2[IFNAMSIZ];    /* gvtc<pid>: a second bridge, to move a tap to */
static char missing[IFNAMSIZ];    /* gvtm<pid>: never created */
static char foreign[IFNAMSIZ];    /* gvtx<pid>: a tap whose name is not ours; also a non-bridge */
static char *shaped;              /* a bridge named in our tap shape: not a tap */
static char *tap0, *tap1;         /* gv_tap_name(random UUID, 0 and 1) */
static char **made;               /* every interface this program made, for cleanup */

/* Run ip(8) with the NULL-terminated arguments; 0 or the error (stderr in the message). */
static int ipv(struct gv_error **err, va_list ap)
{
        const char *argv[16] = { "ip" };
        size_t n = 1;

        for (const char *a; n < ELEMENTSOF(argv) - 1 && (a = va_arg(ap, const char *)); n++)
                argv[n] = a;
        argv[n] = NULL;
        return gv_proc_run((char *const *)argv, 5000, 4096, NULL, NULL, err);
}

static int ip(struct gv_error **err, ...)
{
        va_list ap;
        va_start(ap, err);
        int r = ipv(err, ap);
        va_end(ap);
        return r;
}

static void cleanup_all(void)
{
        /* Newest first: taps before the bridges they sit on (either order works). */
        for (size_t n = strv_length(made); n > 0; n--) {
                _cleanup_free_ char *p = gv_path_join("/sys/class/net", made[n - 1]);
                if (gv_file_exists(p) > 0)
                        (void)ip(NULL, "link", "del", made[n - 1], NULL);
        }
        made = strv_free(made);
        free(shaped);
        free(tap0);
        free(tap1);
        shaped = tap0 = tap1 = NULL;
}

static void made_add(const char *name)
{
        if (!strv_contains(made, name))
                strv_extend(&made, name);
}

/* ip(8) inside a test: fails the test with what and the error. */
static void must_ip(const char *what, ...)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        va_list ap;
        va_start(ap, what);
        int r = ipv(&e, ap);
        va_end(ap);
        if (r < 0)
                fail_msg("%s: %s", what, gv_error_msg(e, r));
}

static char *sys_net(const char *name, const char *attr)
{
        return attr ? gv_path_join("/sys/class/net", name, attr)
                    : gv_path_join("/sys/class/net", name);
}

static bool iface_exists(const char *name)
{
        _cleanup_free_ char *p = sys_net(name, NULL);
        return gv_file_exists(p) > 0;
}

static uint32_t read_hex_attr(const char *name, const char *attr)
{
        _cleanup_free_ char *p = sys_net(name, attr), *s = NULL;
        uint32_t v;
        assert_int_equal(gv_read_line(p, &s), 0);
        assert_int_equal(gv_parse_u32(s, 16, &v), 0);
        return v;
}

static uint32_t read_dec_attr(const char *name, const char *attr)
{
        _cleanup_free_ char *p = sys_net(name, attr), *s = NULL;
        uint32_t v;
        assert_int_equal(gv_read_line(p, &s), 0);
        assert_int_equal(gv_parse_u32(s, 10, &v), 0);
        return v;
}

/* The basename of /sys/class/net/NAME/master, or NULL when it has none. */
static char *master_of(const char *name)
{
        _cleanup_free_ char *p = sys_net(name, "master");
        char *m = NULL;
        int r = gv_readlink_basename(p, &m);
        if (r == -ENOENT)
                return NULL;
        assert_int_equal(r, 0);
        return m;
}

/* The tap is a persistent tap, a port of br, up, with br's MTU. */
static void assert_tap_on(const char *tap, const char *br)
{
        _cleanup_free_ char *m = master_of(tap);
        assert_non_null(m);
        assert_string_equal(m, br);
        assert_true(read_hex_attr(tap, "flags") & IFF_UP);
        uint32_t tf = read_hex_attr(tap, "tun_flags");
        assert_true(tf & IFF_TAP);
        assert_true(tf & IFF_PERSIST);
        /* Owned by us, so a local user cannot attach to it through a world-usable
         * /dev/net/tun. */
        assert_int_equal(read_dec_attr(tap, "owner"), geteuid());
        assert_int_equal(read_dec_attr(tap, "mtu"), read_dec_attr(br, "mtu"));
}

static char *random_uuid(void)
{
        struct gv_uuid u;
        char buf[GV_UUID_STR_LEN + 1];
        assert_int_equal(gv_uuid_random(&u), 0);
        return xstrdup(gv_uuid_format(&u, buf));
}

static void assert_error(int r, struct gv_error *e, int code, const char *needle)
{
        if (r != -code || !e || !strstr(e->msg, needle))
                fail_msg("expected -%s with \"%s\", got %d (%s): %s", gv_errno_name(code), needle,
                         r, gv_errno_name(r), gv_error_msg(e, r));
}

/* ---- names (no privileges needed) ---- */

static void test_name(void **state)
{
        (void)state;
        static const char *bad[] = {
                "", "not-a-uuid", "1b4e28ba2fa111d2883f0016d3cca427",
                "1b4e28ba-2fa1-11d2-883f-0016d3cca42", "1b4e28ba-2fa1-11d2-883f-0016d3cca4271",
                "1b4e28bg-2fa1-11d2-883f-0016d3cca427", " 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        };
        const char *uuid = "1B4E28BA-2FA1-11D2-883F-0016D3CCA427";
        _cleanup_free_ char *n0 = gv_tap_name(uuid, 0);
        _cleanup_free_ char *n99 = gv_tap_name(uuid, 99);

        assert_non_null(n0);
        assert_string_equal(n0, "gv1b4e28ban0");
        assert_non_null(n99);
        assert_string_equal(n99, "gv1b4e28ban99");
        assert_true(strlen(n99) <= IFNAMSIZ - 1);
        assert_null(gv_tap_name(uuid, 100));
        assert_null(gv_tap_name(uuid, SIZE_MAX));
        assert_null(gv_tap_name(NULL, 0));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (gv_tap_name(bad[i], 0))
                        fail_msg("gv_tap_name accepted '%s'", bad[i]);

        assert_true(gv_tap_name_is_ours(n0));
        assert_true(gv_tap_name_is_ours(n99));
        static const char *notours[] = {
                "", "gv", "gv1b4e28ban", "gv1b4e28ban00", "gv1b4e28ban05", "gv1b4e28ban100",
                "gv1B4E28BAn0", "gv1b4e28bxn0", "gv1b4e28ba0", "gv1b4e28bam0", "gv1b4e28ban0x",
                "xgv1b4e28ban0", "gv1b4e28ban-1", "gvtb1234", "eth0", "br0",
        };
        for (size_t i = 0; i < ELEMENTSOF(notours); i++)
                if (gv_tap_name_is_ours(notours[i]))
                        fail_msg("gv_tap_name_is_ours accepted '%s'", notours[i]);
        assert_false(gv_tap_name_is_ours(NULL));

        /* Every name the builder makes is ours, fits IFNAMSIZ and keeps the UUID's prefix. */
        for (size_t i = 0; i < 500; i++) {
                _cleanup_free_ char *u = random_uuid();
                _cleanup_free_ char *n = gv_tap_name(u, i % 100);
                assert_non_null(n);
                assert_true(strlen(n) <= IFNAMSIZ - 1);
                assert_true(gv_tap_name_is_ours(n));
                assert_memory_equal(n + 2, u, 8);
        }
}

/* ---- against the kernel ---- */

static void test_bridge_check(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e5 = NULL;
        int r;

        assert_int_equal(gv_bridge_check(bridge, NULL), 0);

        r = gv_bridge_check(missing, &e1);
        _cleanup_free_ char *hint = xasprintf("Bridge '%s' does not exist on this host: create it "
                                              "(ip link add %s type bridge; ip link set %s up) or "
                                              "use a NIC in mode user.",
                                              missing, missing, missing);
        assert_error(r, e1, ENODEV, hint);

        /* A tap is an interface, not a bridge. */
        r = gv_bridge_check(foreign, &e2);
        assert_error(r, e2, EINVAL, "is not a bridge");

        r = gv_bridge_check("a/b", &e3);
        assert_error(r, e3, EINVAL, "not a valid bridge name");
        r = gv_bridge_check("", &e4);
        assert_error(r, e4, EINVAL, "not a valid bridge name");
        r = gv_bridge_check("abcdefghijklmnop", &e5);
        assert_error(r, e5, EINVAL, "not a valid bridge name");
}

static void test_create(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;

        assert_false(iface_exists(tap0));
        made_add(tap0);
        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create: %s", gv_error_msg(e, r));
        assert_true(iface_exists(tap0));
        assert_tap_on(tap0, bridge);
        /* Joining did not pull the jumbo bridge down to the tap's default 1500. */
        assert_int_equal(read_dec_attr(bridge, "mtu"), 9000);

        /* Again: the tap is reused, nothing changes. */
        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create (again): %s", gv_error_msg(e, r));
        assert_tap_on(tap0, bridge);

        /* A leftover tap that lost its bridge and went down (as after a crash and someone's
         * cleanup) is re-attached and set up. */
        must_ip("detach", "link", "set", tap0, "nomaster", NULL);
        must_ip("down", "link", "set", tap0, "down", NULL);
        must_ip("mtu", "link", "set", tap0, "mtu", "1500", NULL);
        _cleanup_free_ char *m = master_of(tap0);
        assert_null(m);
        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create (re-attach): %s", gv_error_msg(e, r));
        assert_tap_on(tap0, bridge);

        /* The VM's NIC moved to another bridge: the tap leaves the old one. */
        r = gv_tap_create(tap0, bridge2, &e);
        if (r < 0)
                fail_msg("gv_tap_create (move): %s", gv_error_msg(e, r));
        assert_tap_on(tap0, bridge2);
        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create (move back): %s", gv_error_msg(e, r));
        assert_tap_on(tap0, bridge);
}

static void test_create_refused(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e1 = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e5 = NULL, *e6 = NULL;
        int r;

        /* Missing bridge: the hint, and no tap left behind. */
        made_add(tap1);
        r = gv_tap_create(tap1, missing, &e1);
        assert_error(r, e1, ENODEV, "does not exist on this host");
        assert_false(iface_exists(tap1));

        r = gv_tap_create(tap1, foreign, &e2);
        assert_error(r, e2, EINVAL, "is not a bridge");
        assert_false(iface_exists(tap1));

        /* A bridge that carries our tap shape is not taken for a tap. */
        r = gv_tap_create(shaped, bridge, &e3);
        assert_error(r, e3, EINVAL, "is not a single-queue tap device");
        assert_true(iface_exists(shaped));
        _cleanup_free_ char *flags = sys_net(shaped, "tun_flags");
        assert_int_equal(gv_file_exists(flags), 0); /* still a bridge, not made a tap */

        r = gv_tap_create("bad/name", bridge, &e4);
        assert_error(r, e4, EINVAL, "not a valid tap name");

        /* A tap held open by a process (a QEMU still running) is busy, for create and delete,
         * and stays as it was. */
        r = gv_tap_create(tap0, bridge, NULL);
        assert_int_equal(r, 0);
        int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        assert_true(fd >= 0);
        struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI };
        memcpy(ifr.ifr_name, tap0, strlen(tap0));
        assert_int_equal(ioctl(fd, TUNSETIFF, &ifr), 0);
        r = gv_tap_create(tap0, bridge, &e5);
        int r2 = gv_tap_delete(tap0, &e6);
        close(fd);
        assert_error(r, e5, EBUSY, "held open by another process");
        assert_error(r2, e6, EBUSY, "held open by another process");
        assert_tap_on(tap0, bridge);
}

/* gv_tap_create(ifname, bridge) in a child without CAP_NET_ADMIN (dropped from its effective
 * set; it stays uid 0 for file access). Returns the child's report: "RETURN MESSAGE". */
static char *create_without_net_admin(const char *ifname)
{
        int pfd[2];
        assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
                struct __user_cap_data_struct d[2];
                struct gv_error *e = NULL;
                if (syscall(SYS_capget, &h, d) < 0)
                        _exit(2);
                d[CAP_NET_ADMIN / 32].effective &= ~(1u << (CAP_NET_ADMIN % 32));
                if (syscall(SYS_capset, &h, d) < 0)
                        _exit(3);
                int r = gv_tap_create(ifname, bridge, &e);
                dprintf(pfd[1], "%d %s", r, gv_error_msg(e, r));
                _exit(0);
        }
        close(pfd[1]);
        char *buf = xmalloc(4096);
        ssize_t n = 0, k;
        while (n < 4095 && (k = read(pfd[0], buf + n, 4095 - (size_t)n)) > 0)
                n += k;
        buf[n] = '\0';
        close(pfd[0]);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        return buf;
}

static void test_no_capability(void **state)
{
        (void)state;
        _cleanup_free_ char *want = xasprintf("%d ", -EPERM);

        _cleanup_free_ char *c = create_without_net_admin(tap1);
        if (!gv_startswith(c, want) || !strstr(c, "needs CAP_NET_ADMIN"))
                fail_msg("create without CAP_NET_ADMIN: %s", c);
        assert_false(iface_exists(tap1));
}


/* QEMU opens the tap by name, as qemu-cmd.c renders a bridge NIC, and the tap outlives it. */
static void test_qemu(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char out_path[] = "/tmp/gv-test-tap-XXXXXX";
        int r;

        if (!gv_program_in_path("qemu-system-x86_64")) {
                print_message("qemu-system-x86_64 is not installed (not in PATH): skipping the "
                              "real-QEMU tap test\n");
                skip();
        }

        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create: %s", gv_error_msg(e, r));

        /* QMP on stdio: the commands wait in a pipe, QEMU answers them in order and quits. */
        int in[2];
        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        static const char cmds[] =
                "{\"execute\":\"qmp_capabilities\"}\n"
                "{\"execute\":\"human-monitor-command\","
                "\"arguments\":{\"command-line\":\"info network\"}}\n"
                "{\"execute\":\"quit\"}\n";
        assert_int_equal(write(in[1], cmds, sizeof(cmds) - 1), (ssize_t)(sizeof(cmds) - 1));
        close(in[1]);
        int out = mkstemp(out_path);
        assert_true(out >= 0);
        (void)unlink(out_path);

        _cleanup_free_ char *netdev =
                xasprintf("tap,id=n0,ifname=%s,script=no,downscript=no", tap0);
        const char *argv[] = { "qemu-system-x86_64", "-machine", "q35", "-accel", "tcg",
                               "-nodefaults", "-display", "none", "-S", "-netdev", netdev,
                               "-device", "virtio-net-pci,netdev=n0,romfile=", "-qmp", "stdio",
                               NULL };
        struct gv_spawn_opts o = { .stdin_fd = in[0], .stdout_fd = out, .stderr_fd = out };
        struct gv_proc p = GV_PROC_NULL;
        r = gv_proc_spawn((char *const *)argv, &o, &p, &e);
        close(in[0]);
        if (r < 0)
                fail_msg("spawn QEMU: %s", gv_error_msg(e, r));
        int status = -1;
        r = gv_proc_wait(&p, 8000, &status, &e);
        if (r == 0)
                (void)gv_proc_signal(&p, SIGKILL, NULL);
        gv_proc_close(&p);

        _cleanup_free_ char *log = xmalloc(65536);
        ssize_t n = pread(out, log, 65535, 0);
        close(out);
        log[n > 0 ? n : 0] = '\0';
        if (r != 1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("QEMU did not run and quit cleanly with tap '%s' (wait %d, status %d):"
                         "\n%s", tap0, r, status, log);
        _cleanup_free_ char *needle = xasprintf("type=tap,ifname=%s,", tap0);
        if (!strstr(log, needle))
                fail_msg("QEMU's 'info network' does not show '%s':\n%s", needle, log);

        /* Persistent: still there and still a port of the bridge after QEMU closed it. */
        assert_true(iface_exists(tap0));
        assert_tap_on(tap0, bridge);
}

static void test_list(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create: %s", gv_error_msg(e, r));
        made_add(tap1);
        r = gv_tap_create(tap1, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create: %s", gv_error_msg(e, r));

        r = gv_tap_list(&l, &e);
        if (r < 0)
                fail_msg("gv_tap_list: %s", gv_error_msg(e, r));
        assert_non_null(l);
        assert_true(strv_contains(l, tap0));
        assert_true(strv_contains(l, tap1));
        assert_false(strv_contains(l, foreign)); /* a tap, not our name */
        assert_false(strv_contains(l, shaped));  /* our name, not a tap */
        assert_false(strv_contains(l, bridge));
        size_t n = strv_length(l);
        for (size_t i = 0; i < n; i++) {
                assert_true(gv_tap_name_is_ours(l[i]));
                if (i > 0)
                        assert_true(strcmp(l[i - 1], l[i]) < 0);
        }
}

static void test_delete(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL, *e2 = NULL, *e3 = NULL, *e4 = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e5 = NULL;
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = gv_tap_create(tap0, bridge, &e);
        if (r < 0)
                fail_msg("gv_tap_create: %s", gv_error_msg(e, r));

        r = gv_tap_delete(tap0, &e);
        if (r < 0)
                fail_msg("gv_tap_delete: %s", gv_error_msg(e, r));
        assert_false(iface_exists(tap0));
        assert_int_equal(gv_tap_list(&l, NULL), 0);
        assert_false(strv_contains(l, tap0));

        r = gv_tap_delete(tap0, &e2);
        assert_error(r, e2, ENOENT, "does not exist");
        assert_false(iface_exists(tap0)); /* and the check made none */

        /* Interfaces that are not taps are left alone, whatever their name. */
        r = gv_tap_delete(shaped, &e3);
        assert_error(r, e3, EINVAL, "is not a tap device");
        assert_true(iface_exists(shaped));
        r = gv_tap_delete(bridge, &e4);
        assert_error(r, e4, EINVAL, "is not a tap device");
        assert_true(iface_exists(bridge));

        r = gv_tap_delete("", &e5);
        assert_error(r, e5, EINVAL, "not a valid tap name");

        /* The bridge lost its port with the tap. */
        _cleanup_free_ char *brif = sys_net(bridge, "brif");
        _cleanup_free_ char *port = gv_path_join(brif, tap0);
        assert_int_equal(gv_file_exists(port), 0);
}

static int group_teardown(void **state)
{
        (void)state;
        cleanup_all();
        return 0;
}

/* ip(8) during setup: 0, or -1 with the reason in *why. */
static int setup_ip(char **why, const char *what, ...)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        va_list ap;
        va_start(ap, what);
        int r = ipv(&e, ap);
        va_end(ap);
        if (r < 0) {
                *why = xasprintf("%s: %s", what, gv_error_msg(e, r));
                return -1;
        }
        return 0;
}

/* Make the fixtures: 1 ready, 0 this host cannot (skip), -1 broken (fail); *ret_why says. */
static int setup_host(char **ret_why)
{
        if (access("/dev/net/tun", R_OK | W_OK) < 0) {
                *ret_why = xasprintf("/dev/net/tun is not usable (%s): load the tun module and "
                                     "run as root", strerror(errno));
                return 0;
        }
        if (!gv_program_in_path("ip")) {
                *ret_why = xstrdup("ip (iproute2) is not installed");
                return 0;
        }

        pid_t pid = getpid();
        snprintf(bridge, sizeof(bridge), "gvtb%d", (int)pid);
        snprintf(bridge2, sizeof(bridge2), "gvtc%d", (int)pid);
        snprintf(missing, sizeof(missing), "gvtm%d", (int)pid);
        snprintf(foreign, sizeof(foreign), "gvtx%d", (int)pid);

        made_add(bridge);
        if (setup_ip(ret_why, "cannot create a bridge (needs root or CAP_NET_ADMIN and the "
                     "bridge module)", "link", "add", bridge, "type", "bridge", NULL) < 0)
                return 0;

        /* The rest must work once a bridge could be made. */
        _cleanup_free_ char *u1 = random_uuid(), *u2 = random_uuid();
        shaped = gv_tap_name(u1, 7);
        tap0 = gv_tap_name(u2, 0);
        tap1 = gv_tap_name(u2, 1);
        made_add(bridge2);
        made_add(foreign);
        made_add(shaped);
        if (setup_ip(ret_why, "bridge mtu", "link", "set", bridge, "mtu", "9000", NULL) < 0 ||
            setup_ip(ret_why, "bridge up", "link", "set", bridge, "up", NULL) < 0 ||
            setup_ip(ret_why, "second bridge", "link", "add", bridge2, "type", "bridge",
                     NULL) < 0 ||
            setup_ip(ret_why, "foreign tap", "tuntap", "add", "dev", foreign, "mode", "tap",
                     NULL) < 0 ||
            setup_ip(ret_why, "tap-shaped bridge", "link", "add", shaped, "type", "bridge",
                     NULL) < 0)
                return -1;
        return 1;
}

int main(void)
{
        const struct CMUnitTest pure[] = {
                cmocka_unit_test(test_name),
        };
        const struct CMUnitTest kernel[] = {
                cmocka_unit_test(test_bridge_check),
                cmocka_unit_test(test_create),
                cmocka_unit_test(test_create_refused),
                cmocka_unit_test(test_no_capability),
                cmocka_unit_test(test_qemu),
                cmocka_unit_test(test_list),
                cmocka_unit_test(test_delete),
        };
        _cleanup_free_ char *why = NULL;
        int r;

        r = cmocka_run_group_tests_name("tap names", pure, NULL, NULL);
        if (r != 0)
                return r;

        atexit(cleanup_all);
        r = setup_host(&why);
        if (r <= 0) {
                if (r == 0)
                        printf("SKIP: tap tests need a host that can make bridges and taps: "
                               "%s\n", why);
                else
                        printf("FAIL: setting up the tap tests: %s\n", why);
                cleanup_all();
                return r == 0 ? 77 : 1;
        }
        return cmocka_run_group_tests_name("tap devices", kernel, NULL, group_teardown);
}
