/* SPDX-License-Identifier: MIT */
/*
 * tap.c — persistent tap devices on a host bridge (see tap.h).
 *
 * The plan, all through the kernel's own interfaces (no ip(8), no netlink):
 *   - /dev/net/tun + TUNSETIFF (IFF_TAP | IFF_NO_PI) creates the tap or attaches to the one
 *     of that name; TUNSETPERSIST 1 keeps it after our fd closes, so QEMU can open it by name
 *     later. Deleting is the reverse: attach, TUNSETPERSIST 0, close.
 *   - An AF_LOCAL datagram socket carries the interface ioctls: SIOCGIFMTU/SIOCSIFMTU,
 *     SIOCBRADDIF/SIOCBRDELIF (bridge ports), SIOCGIFFLAGS/SIOCSIFFLAGS (up).
 *   - /sys/class/net tells whether an interface exists, is a bridge (a "bridge" directory), is
 *     a tun/tap device ("tun_flags"), and which master it has ("master" link).
 *
 * Network interfaces are the real kernel's even on a simulated GPU host (only GPUs are
 * simulated), so the /sys/class/net paths here do not go through src/hw/sysfs.h.
 */
#include "tap.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

#define SYS_CLASS_NET "/sys/class/net"

/* The flags we create taps with. IFF_VNET_HDR is left to QEMU: on every TUNSETIFF the kernel
 * replaces a tap's feature flags (IFF_NO_PI, IFF_VNET_HDR, ...) with the opener's, so QEMU's
 * own probe decides (drivers/net/tun.c, tun_set_iff). IFF_MULTI_QUEUE, by contrast, must match
 * between creator and opener; QEMU uses it only for queues > 1, and a bridge NIC has one. */
#define TAP_FLAGS (IFF_TAP | IFF_NO_PI)

/* The kernel's rule for interface names (net/core/dev.c, dev_valid_name): 1 to IFNAMSIZ - 1
 * bytes, not "." or "..", no '/', ':' or whitespace. */
static bool ifname_is_valid(const char *s)
{
        if (!s || !*s || strlen(s) >= IFNAMSIZ || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '/' || *p == ':' || *p == ' ' || (*p >= '\t' && *p <= '\r'))
                        return false;
        return true;
}

static int check_ifname(const char *s, const char *what, struct gv_error **err)
{
        if (ifname_is_valid(s))
                return 0;
        return gv_error_set(err, EINVAL,
                            "'%s' is not a valid %s name: use 1 to %d characters without '/', "
                            "':' or whitespace.",
                            s ? s : "", what, IFNAMSIZ - 1);
}

/* /sys/class/net/NAME[/ATTR]; name already validated (no '/'). */
static char *net_path(const char *name, const char *attr)
{
        return attr ? gv_path_join(SYS_CLASS_NET, name, attr) : gv_path_join(SYS_CLASS_NET, name);
}

static int iface_exists(const char *name)
{
        _cleanup_free_ char *p = net_path(name, NULL);
        return gv_file_exists(p);
}

/* 1 when NAME is a tap device (tun_flags has IFF_TAP), 0 when it is not (or is gone). */
static int iface_is_tap(const char *name)
{
        _cleanup_free_ char *p = net_path(name, "tun_flags");
        _cleanup_free_ char *s = NULL;
        uint32_t flags;
        int r;

        r = gv_read_line(p, &s);
        if (r == -ENOENT || r == -ENODEV)
                return 0;
        if (r < 0)
                return r;
        r = gv_parse_u32(s, 16, &flags);
        if (r < 0)
                return r;
        return (flags & IFF_TAP) ? 1 : 0;
}

static void ifreq_init(struct ifreq *ifr, const char *name)
{
        size_t n = strlen(name);

        memset(ifr, 0, sizeof(*ifr));
        /* Callers validated the name: n < IFNAMSIZ. */
        memcpy(ifr->ifr_name, name, MIN(n, (size_t)IFNAMSIZ - 1));
}

static int error_capability(struct gv_error **err, int code, const char *what, const char *name)
{
        return gv_error_set(err, code,
                            "Cannot %s '%s': permission denied. gpuvirtd needs CAP_NET_ADMIN for "
                            "bridge NICs: run it as root or grant it the capability.",
                            what, name);
}

/* Open /dev/net/tun and attach to the tap `ifname`, creating it when absent. *ret_created says
 * which: creation is tried first with IFF_TUN_EXCL (which fails with EBUSY when the name is
 * taken), so the answer is exact even when the name appears or vanishes meanwhile. */
static int tun_attach(const char *ifname, const char *what, int *ret_fd, bool *ret_created,
                      struct gv_error **err)
{
        _cleanup_close_ int fd = -1;
        struct ifreq ifr;
        bool created = true;
        int r;

        fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                if (r == -ENOENT || r == -ENODEV || r == -ENXIO)
                        return gv_error_set(err, -r,
                                            "Cannot %s '%s': /dev/net/tun is missing. Load the "
                                            "tun module (modprobe tun) and make sure /dev/net/tun "
                                            "exists (mknod /dev/net/tun c 10 200).",
                                            what, ifname);
                if (r == -EPERM || r == -EACCES)
                        return gv_error_set(err, -r,
                                            "Cannot %s '%s': permission denied opening "
                                            "/dev/net/tun. gpuvirtd needs read-write access to it "
                                            "and CAP_NET_ADMIN for bridge NICs: run it as root.",
                                            what, ifname);
                return gv_error_set(err, -r, "Cannot %s '%s': cannot open /dev/net/tun: %s.",
                                    what, ifname, strerror(-r));
        }

        ifreq_init(&ifr, ifname);
        ifr.ifr_flags = TAP_FLAGS | IFF_TUN_EXCL;
        r = RET_NERRNO(ioctl(fd, TUNSETIFF, &ifr));
        if (r == -EBUSY) {
                /* The name is taken: attach to what is there. */
                created = false;
                ifreq_init(&ifr, ifname);
                ifr.ifr_flags = TAP_FLAGS;
                r = RET_NERRNO(ioctl(fd, TUNSETIFF, &ifr));
        }
        if (r == -EBUSY)
                return gv_error_set(err, EBUSY,
                                    "Cannot %s '%s': the tap is held open by another process (a "
                                    "QEMU of this VM still running?). Stop that process first.",
                                    what, ifname);
        if (r == -EINVAL)
                return gv_error_set(err, EINVAL,
                                    "Cannot %s '%s': an interface of that name exists and is not "
                                    "a single-queue tap device. Remove or rename it (ip link del "
                                    "%s).",
                                    what, ifname, ifname);
        if (r == -EPERM || r == -EACCES)
                return error_capability(err, -r, what, ifname);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot %s '%s': TUNSETIFF failed: %s.", what,
                                    ifname, strerror(-r));

        *ret_fd = TAKE_FD(fd);
        *ret_created = created;
        return 0;
}

int gv_bridge_check(const char *bridge, struct gv_error **err)
{
        int r;

        r = check_ifname(bridge, "bridge", err);
        if (r < 0)
                return r;

        r = iface_exists(bridge);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot look up bridge '%s' in %s: %s.", bridge,
                                    SYS_CLASS_NET, strerror(-r));
        if (r == 0)
                return gv_error_set(err, ENODEV,
                                    "Bridge '%s' does not exist on this host: create it (ip link "
                                    "add %s type bridge; ip link set %s up) or use a NIC in mode "
                                    "user.",
                                    bridge, bridge, bridge);

        /* A bridge has /sys/class/net/BR/bridge/ (net/bridge/br_sysfs_br.c). */
        _cleanup_free_ char *p = net_path(bridge, "bridge");
        r = gv_file_exists(p);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot look up bridge '%s' in %s: %s.", bridge,
                                    SYS_CLASS_NET, strerror(-r));
        if (r == 0)
                return gv_error_set(err, EINVAL,
                                    "Interface '%s' exists on this host but is not a bridge: name "
                                    "a bridge (ip link show type bridge lists them) or use a NIC "
                                    "in mode user.",
                                    bridge);
        return 0;
}

static int ifreq_ioctl(int sock, unsigned long req, struct ifreq *ifr)
{
        return RET_NERRNO(ioctl(sock, req, ifr));
}

/* Give the tap the bridge's MTU, make it a port of the bridge (leaving another bridge first),
 * and set it up. */
static int tap_configure(int sock, const char *ifname, const char *bridge, struct gv_error **err)
{
        struct ifreq ifr;
        int mtu, ifindex, r;

        ifreq_init(&ifr, bridge);
        r = ifreq_ioctl(sock, SIOCGIFMTU, &ifr);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the MTU of bridge '%s': %s.", bridge,
                                    strerror(-r));
        mtu = ifr.ifr_mtu;

        /* MTU before joining: a bridge whose MTU was not set by hand follows its smallest port
         * (net/bridge/br_if.c, br_mtu_auto_adjust), so a 1500-byte tap would shrink a jumbo
         * bridge. */
        ifreq_init(&ifr, ifname);
        r = ifreq_ioctl(sock, SIOCGIFMTU, &ifr);
        if (r >= 0 && ifr.ifr_mtu != mtu) {
                ifreq_init(&ifr, ifname);
                ifr.ifr_mtu = mtu;
                r = ifreq_ioctl(sock, SIOCSIFMTU, &ifr);
        }
        if (r < 0)
                return gv_error_set(err, -r, "Cannot set the MTU of tap '%s' to %d (that of bridge "
                                    "'%s'): %s.", ifname, mtu, bridge, strerror(-r));

        ifreq_init(&ifr, ifname);
        r = ifreq_ioctl(sock, SIOCGIFINDEX, &ifr);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot find the index of tap '%s': %s.", ifname,
                                    strerror(-r));
        ifindex = ifr.ifr_ifindex;

        _cleanup_free_ char *master_link = net_path(ifname, "master");
        _cleanup_free_ char *master = NULL;
        r = gv_readlink_basename(master_link, &master);
        if (r < 0 && r != -ENOENT)
                return gv_error_set(err, -r, "Cannot read the master of tap '%s': %s.", ifname,
                                    strerror(-r));
        if (!master || strcmp(master, bridge) != 0) {
                if (master) {
                        /* A leftover tap on another bridge (the VM's definition changed): a
                         * port has one master, so leave the old one first. */
                        ifreq_init(&ifr, master);
                        ifr.ifr_ifindex = ifindex;
                        r = ifreq_ioctl(sock, SIOCBRDELIF, &ifr);
                        if (r < 0)
                                return gv_error_set(err, -r, "Cannot detach tap '%s' from '%s' "
                                                    "to move it to bridge '%s': %s.", ifname,
                                                    master, bridge, strerror(-r));
                }
                ifreq_init(&ifr, bridge);
                ifr.ifr_ifindex = ifindex;
                r = ifreq_ioctl(sock, SIOCBRADDIF, &ifr);
                if (r == -EPERM || r == -EACCES)
                        return error_capability(err, -r, "attach a tap to bridge", bridge);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot attach tap '%s' to bridge '%s': %s.",
                                            ifname, bridge, strerror(-r));
        }

        ifreq_init(&ifr, ifname);
        r = ifreq_ioctl(sock, SIOCGIFFLAGS, &ifr);
        if (r >= 0 && !(ifr.ifr_flags & IFF_UP)) {
                ifr.ifr_flags |= IFF_UP;
                r = ifreq_ioctl(sock, SIOCSIFFLAGS, &ifr);
        }
        if (r < 0)
                return gv_error_set(err, -r, "Cannot set tap '%s' up: %s.", ifname, strerror(-r));
        return 0;
}

int gv_tap_create(const char *ifname, const char *bridge, struct gv_error **err)
{
        _cleanup_close_ int fd = -1, sock = -1;
        bool created = false;
        int r;

        r = check_ifname(ifname, "tap", err);
        if (r < 0)
                return r;
        r = gv_bridge_check(bridge, err);
        if (r < 0)
                return r;

        r = tun_attach(ifname, "create tap", &fd, &created, err);
        if (r < 0)
                return r;

        r = RET_NERRNO(ioctl(fd, TUNSETPERSIST, 1));
        if (r < 0) {
                r = gv_error_set(err, -r, "Cannot make tap '%s' persistent: %s.", ifname,
                                 strerror(-r));
                goto fail;
        }

        /* Owned by our uid, which QEMU (our child) shares. The kernel lets any process that can
         * open /dev/net/tun (often mode 0666) attach to a persistent tap without an owner
         * (drivers/net/tun.c, tun_not_capable), so an unowned tap could be taken by a local
         * user between now and QEMU's open, or after QEMU exits. */
        r = RET_NERRNO(ioctl(fd, TUNSETOWNER, (unsigned long)geteuid()));
        if (r < 0) {
                r = gv_error_set(err, -r, "Cannot set the owner of tap '%s': %s.", ifname,
                                 strerror(-r));
                goto fail;
        }

        sock = socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (sock < 0) {
                r = -errno;
                r = gv_error_set(err, -r, "Cannot open a socket to configure tap '%s': %s.",
                                 ifname, strerror(-r));
                goto fail;
        }

        r = tap_configure(sock, ifname, bridge, err);
        if (r < 0)
                goto fail;

        /* Closing our fd leaves the persistent tap for QEMU to open by name. */
        return 0;

fail:
        /* Undo only what this call made; a reused tap stays for its owner to delete. Without
         * IFF_PERSIST the tap vanishes when fd, its last user, closes. */
        if (created)
                (void)ioctl(fd, TUNSETPERSIST, 0);
        return r;
}

int gv_tap_delete(const char *ifname, struct gv_error **err)
{
        _cleanup_close_ int fd = -1;
        bool created = false;
        int r;

        r = check_ifname(ifname, "tap", err);
        if (r < 0)
                return r;

        /* Checked first so that a missing tap costs no TUNSETIFF (which would make one) and a
         * foreign interface is refused with its own message. */
        r = iface_exists(ifname);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot look up tap '%s' in %s: %s.", ifname,
                                    SYS_CLASS_NET, strerror(-r));
        if (r == 0)
                return gv_error_set(err, ENOENT, "Tap '%s' does not exist.", ifname);
        r = iface_is_tap(ifname);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read the tun flags of '%s': %s.", ifname,
                                    strerror(-r));
        if (r == 0)
                return gv_error_set(err, EINVAL,
                                    "Interface '%s' is not a tap device: not deleting it.", ifname);

        r = tun_attach(ifname, "delete tap", &fd, &created, err);
        if (r < 0)
                return r;

        r = RET_NERRNO(ioctl(fd, TUNSETPERSIST, 0));
        if (r < 0)
                return gv_error_set(err, -r, "Cannot delete tap '%s' (clearing its persistence "
                                    "failed): %s.", ifname, strerror(-r));

        /* Now fd is its last user: closing it removes the tap. */
        fd = safe_close(fd);
        if (created)
                /* It vanished between the check and the attach; what we made is gone again. */
                return gv_error_set(err, ENOENT, "Tap '%s' does not exist.", ifname);
        return 0;
}

char *gv_tap_name(const char *vm_uuid, size_t nic_index)
{
        struct gv_uuid u;

        if (!vm_uuid || gv_parse_uuid(vm_uuid, &u) < 0 || nic_index > GV_TAP_NIC_INDEX_MAX)
                return NULL;
        return xasprintf(GV_TAP_PREFIX "%02x%02x%02x%02xn%zu", u.b[0], u.b[1], u.b[2], u.b[3],
                         nic_index);
}

bool gv_tap_name_is_ours(const char *ifname)
{
        const size_t plen = strlen(GV_TAP_PREFIX);
        const char *p;
        size_t digits;

        if (!ifname || strncmp(ifname, GV_TAP_PREFIX, plen) != 0)
                return false;
        p = ifname + plen;
        for (size_t i = 0; i < 8; i++, p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        if (*p++ != 'n')
                return false;
        digits = strspn(p, "0123456789");
        if (digits < 1 || digits > 2 || p[digits] != '\0')
                return false;
        return !(digits == 2 && p[0] == '0');
}

int gv_tap_list(char ***ret, struct gv_error **err)
{
        _cleanup_strv_free_ char **l = NULL;
        DIR *d;
        int fd, r = 0;

        fd = open(SYS_CLASS_NET, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                r = -errno;
                return gv_error_set(err, -r, "Cannot list network interfaces in %s: %s.",
                                    SYS_CLASS_NET, strerror(-r));
        }
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                safe_close(fd);
                return gv_error_set(err, -r, "Cannot list network interfaces in %s: %s.",
                                    SYS_CLASS_NET, strerror(-r));
        }

        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        int e = errno;
                        if (e != 0)
                                r = gv_error_set(err, e, "Cannot list network interfaces in "
                                                 "%s: %s.", SYS_CLASS_NET, strerror(e));
                        break;
                }
                if (!gv_tap_name_is_ours(de->d_name))
                        continue;
                int t = iface_is_tap(de->d_name);
                if (t < 0) {
                        r = gv_error_set(err, -t, "Cannot read the tun flags of '%s': %s.",
                                         de->d_name, strerror(-t));
                        break;
                }
                if (t > 0)
                        strv_extend(&l, de->d_name);
        }
        closedir(d);
        if (r < 0)
                return r;

        if (!l)
                l = xnew0(char *, 1);
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 0;
}
