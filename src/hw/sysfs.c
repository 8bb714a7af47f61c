/* SPDX-License-Identifier: MIT */
/*
 * sysfs.c — path builders and bounded accessors (see sysfs.h). Paths and semantics:
 * ../shared/reference/passthrough.md §1 (PCI), §3 (IOMMU groups); vgpu.md §3 (mdev), §4
 * (vendor-VFIO nvidia/ files).
 */
#include "hw/sysfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

int gv_sysfs_new(const char *root, struct gv_sysfs **ret, struct gv_error **err)
{
        struct stat st;

        if (!root || root[0] != '/')
                return gv_error_set(err, EINVAL,
                                    "The sysfs root '%s' is not an absolute path: use '/' on a "
                                    "real host or the absolute directory of a simulated host.",
                                    root ? root : "");

        _cleanup_free_ char *r = xstrdup(root);
        size_t n = strlen(r);
        while (n > 0 && r[n - 1] == '/')
                r[--n] = 0;

        _cleanup_free_ char *sys = xasprintf("%s/sys", r);
        if (stat(sys, &st) < 0)
                return gv_error_set(err, errno,
                                    "The sysfs root '%s' has no 'sys' directory ('%s': %s): use "
                                    "'/' on a real host or a simulated host's directory "
                                    "(gpuvirt-sim create).",
                                    root, sys, strerror(errno));
        if (!S_ISDIR(st.st_mode))
                return gv_error_set(err, ENOTDIR,
                                    "'%s' is not a directory: the sysfs root '%s' must hold the "
                                    "sysfs tree in sys/.",
                                    sys, root);

        struct gv_sysfs *fs = xnew0(struct gv_sysfs, 1);
        fs->root = TAKE_PTR(r);
        fs->sys = TAKE_PTR(sys);
        *ret = fs;
        return 0;
}

struct gv_sysfs *gv_sysfs_free(struct gv_sysfs *fs)
{
        if (fs) {
                free(fs->root);
                free(fs->sys);
                free(fs);
        }
        return NULL;
}

/* ---- paths ----------------------------------------------------------------------------- */

char *gv_sysfs_path(const struct gv_sysfs *fs, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *rel = xvasprintf(fmt, ap);
        va_end(ap);
        /* <root>/sys/<rel> */
        return xasprintf("%s/%s", fs->sys, rel);
}

char *gv_sysfs_cgroup_root(void)
{
        /* The kernel's documented mount point (Documentation/admin-guide/cgroup-v2.rst). */
        return xstrdup("/sys/fs/cgroup");
}

char *gv_sysfs_pci_devices_dir(const struct gv_sysfs *fs)
{
        /* <root>/sys/bus/pci/devices */
        return gv_sysfs_path(fs, "bus/pci/devices");
}

char *gv_sysfs_pci_device_dir(const struct gv_sysfs *fs, const char *bdf)
{
        /* <root>/sys/bus/pci/devices/0000:3b:00.0 */
        return gv_sysfs_path(fs, "bus/pci/devices/%s", bdf);
}

char *gv_sysfs_pci_device_attr(const struct gv_sysfs *fs, const char *bdf, const char *attr)
{
        /* <root>/sys/bus/pci/devices/0000:3b:00.0/driver -> ../../../bus/pci/drivers/vfio-pci */
        return gv_sysfs_path(fs, "bus/pci/devices/%s/%s", bdf, attr);
}

char *gv_sysfs_pci_driver_dir(const struct gv_sysfs *fs, const char *driver)
{
        /* <root>/sys/bus/pci/drivers/vfio-pci */
        return gv_sysfs_path(fs, "bus/pci/drivers/%s", driver);
}

char *gv_sysfs_pci_driver_attr(const struct gv_sysfs *fs, const char *driver, const char *attr)
{
        /* <root>/sys/bus/pci/drivers/nvidia/unbind */
        return gv_sysfs_path(fs, "bus/pci/drivers/%s/%s", driver, attr);
}

char *gv_sysfs_pci_drivers_probe(const struct gv_sysfs *fs)
{
        /* <root>/sys/bus/pci/drivers_probe */
        return gv_sysfs_path(fs, "bus/pci/drivers_probe");
}

char *gv_sysfs_iommu_group_devices_dir(const struct gv_sysfs *fs, uint32_t group)
{
        /* <root>/sys/kernel/iommu_groups/26/devices/0000:3b:00.0 -> ../../../../devices/... */
        return gv_sysfs_path(fs, "kernel/iommu_groups/%u/devices", group);
}

char *gv_sysfs_mdev_bus_dir(const struct gv_sysfs *fs)
{
        /* <root>/sys/class/mdev_bus/0000:41:00.4 -> ../../devices/pci0000:40/.../0000:41:00.4 */
        return gv_sysfs_path(fs, "class/mdev_bus");
}

char *gv_sysfs_mdev_types_dir(const struct gv_sysfs *fs, const char *parent)
{
        /* <root>/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-700 */
        return gv_sysfs_path(fs, "class/mdev_bus/%s/mdev_supported_types", parent);
}

char *gv_sysfs_mdev_type_attr(const struct gv_sysfs *fs, const char *parent, const char *type,
                              const char *attr)
{
        /* <root>/sys/class/mdev_bus/0000:41:00.4/mdev_supported_types/nvidia-700/create */
        return gv_sysfs_path(fs, "class/mdev_bus/%s/mdev_supported_types/%s/%s", parent, type,
                             attr);
}

char *gv_sysfs_mdev_devices_dir(const struct gv_sysfs *fs)
{
        /* <root>/sys/bus/mdev/devices/<uuid> -> ../../../devices/.../0000:41:00.4/<uuid> */
        return gv_sysfs_path(fs, "bus/mdev/devices");
}

char *gv_sysfs_mdev_device_attr(const struct gv_sysfs *fs, const char *uuid, const char *attr)
{
        /* <root>/sys/bus/mdev/devices/<uuid>/mdev_type -> ../mdev_supported_types/nvidia-700 */
        if (!attr || !*attr)
                return gv_sysfs_path(fs, "bus/mdev/devices/%s", uuid);
        return gv_sysfs_path(fs, "bus/mdev/devices/%s/%s", uuid, attr);
}

/* ---- access ---------------------------------------------------------------------------- */

char *gv_sysfs_escape(const char *s)
{
        const size_t limit = 64;
        size_t n = strlen(s), shown = MIN(n, limit);
        char *out = xmalloc(shown * 4 + 4), *o = out;

        for (size_t i = 0; i < shown; i++) {
                unsigned char c = (unsigned char)s[i];
                if (c == '\n') {
                        o = stpcpy(o, "\\n");
                } else if (c < 0x20 || c >= 0x7f || c == '\\' || c == '\'') {
                        static const char hex[] = "0123456789abcdef";
                        *o++ = '\\';
                        *o++ = 'x';
                        *o++ = hex[c >> 4];
                        *o++ = hex[c & 0xf];
                } else
                        *o++ = (char)c;
        }
        if (n > limit)
                o = stpcpy(o, "...");
        *o = 0;
        return out;
}

static int missing(int r, unsigned flags)
{
        return (r == -ENOENT || r == -ENOTDIR) && (flags & GV_SYSFS_OPTIONAL);
}

int gv_sysfs_read(const char *path, unsigned flags, char **ret, struct gv_error **err)
{
        char *s;
        size_t len;
        int r = gv_read_file(path, GV_SYSFS_READ_MAX, &s, &len);
        if (missing(r, flags))
                return 0;
        if (r == -EFBIG)
                return gv_error_set(err, EFBIG,
                                    "'%s' is larger than %u bytes, which no sysfs attribute is: "
                                    "is the sysfs root pointing at the right tree?",
                                    path, GV_SYSFS_READ_MAX);
        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "'%s' does not exist.", path);
        if (r < 0)
                return gv_error_set(err, r, "Cannot read '%s': %s.", path, strerror(-r));
        if (memchr(s, 0, len)) {
                _cleanup_free_ char *e = gv_sysfs_escape(s);
                free(s);
                return gv_error_set(err, EBADMSG,
                                    "'%s' holds a NUL byte after '%s': the file is corrupt.", path,
                                    e);
        }
        gv_strip_newline(s);
        *ret = s;
        return 1;
}

static int read_number(const char *path, unsigned flags, const char *what,
                       int (*parse)(const char *s, void *ret), void *ret, struct gv_error **err)
{
        _cleanup_free_ char *s = NULL;
        int r = gv_sysfs_read(path, flags, &s, err);
        if (r <= 0)
                return r;
        r = parse(s, ret);
        if (r < 0) {
                _cleanup_free_ char *e = gv_sysfs_escape(s);
                return gv_error_set(err, EBADMSG,
                                    "'%s' holds '%s', which is not %s: the file is corrupt or "
                                    "truncated.",
                                    path, e, what);
        }
        return 1;
}

static int parse_u32_dec(const char *s, void *ret)
{
        return gv_parse_u32(s, 10, ret);
}

static int parse_int_dec(const char *s, void *ret)
{
        return gv_parse_int(s, ret);
}

int gv_sysfs_read_u32(const char *path, unsigned flags, uint32_t *ret, struct gv_error **err)
{
        uint32_t v;
        int r = read_number(path, flags, "an unsigned decimal number", parse_u32_dec, &v, err);
        if (r > 0)
                *ret = v;
        return r;
}

int gv_sysfs_read_int(const char *path, unsigned flags, int *ret, struct gv_error **err)
{
        int v;
        int r = read_number(path, flags, "a decimal number", parse_int_dec, &v, err);
        if (r > 0)
                *ret = v;
        return r;
}

int gv_sysfs_read_hex(const char *path, unsigned digits, unsigned flags, uint32_t *ret,
                      struct gv_error **err)
{
        _cleanup_free_ char *s = NULL;
        uint32_t v;

        if (digits == 0 || digits > 8)
                return gv_error_set(err, EINVAL, "Internal error: %u hex digits asked of '%s'.",
                                    digits, path);

        int r = gv_sysfs_read(path, flags, &s, err);
        if (r <= 0)
                return r;

        bool ok = strlen(s) == 2 + digits && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        for (size_t i = 2; ok && s[i]; i++)
                ok = isxdigit((unsigned char)s[i]);
        if (ok)
                ok = gv_parse_u32(s, 16, &v) >= 0;
        if (!ok) {
                _cleanup_free_ char *e = gv_sysfs_escape(s);
                return gv_error_set(err, EBADMSG,
                                    "'%s' holds '%s', which is not '0x' and %u hexadecimal digits: "
                                    "the file is corrupt or truncated.",
                                    path, e, digits);
        }
        *ret = v;
        return 1;
}

int gv_sysfs_read_link(const char *path, unsigned flags, char **ret, struct gv_error **err)
{
        char *s;
        int r = gv_readlink_basename(path, &s);
        if (missing(r, flags))
                return 0;
        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "The link '%s' does not exist.", path);
        if (r == -EINVAL)
                return gv_error_set(err, EINVAL,
                                    "'%s' is not a symbolic link (or its target is empty): the "
                                    "sysfs tree is damaged.",
                                    path);
        if (r < 0)
                return gv_error_set(err, r, "Cannot read the link '%s': %s.", path, strerror(-r));
        *ret = s;
        return 1;
}

int gv_sysfs_read_link_target(const char *path, unsigned flags, char **ret,
                              struct gv_error **err)
{
        char *s;
        int r = gv_readlink(path, &s);
        if (missing(r, flags))
                return 0;
        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "The link '%s' does not exist.", path);
        if (r == -EINVAL)
                return gv_error_set(err, EINVAL,
                                    "'%s' is not a symbolic link: the sysfs tree is damaged.",
                                    path);
        if (r < 0)
                return gv_error_set(err, r, "Cannot read the link '%s': %s.", path, strerror(-r));
        *ret = s;
        return 1;
}

int gv_sysfs_list(const char *dir, const char *prefix, unsigned flags, char ***ret,
                  struct gv_error **err)
{
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                int r = -errno;
                if (missing(r, flags))
                        return 0;
                if (r == -ENOENT)
                        return gv_error_set(err, ENOENT, "The directory '%s' does not exist.",
                                            dir);
                return gv_error_set(err, r, "Cannot open the directory '%s': %s.", dir,
                                    strerror(-r));
        }
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                (void)close(fd);
                return gv_error_set(err, r, "Cannot list '%s': %s.", dir, strerror(-r));
        }

        _cleanup_strv_free_ char **l = xnew0(char *, 1);
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d))) {
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (prefix && !gv_startswith(de->d_name, prefix))
                        continue;
                strv_extend(&l, de->d_name);
                errno = 0;
        }
        int r = errno ? -errno : 0;
        (void)closedir(d);
        if (r < 0)
                return gv_error_set(err, r, "Cannot list '%s': %s.", dir, strerror(-r));
        strv_sort(l);
        *ret = TAKE_PTR(l);
        return 1;
}

int gv_sysfs_exists(const char *path)
{
        return gv_file_exists(path);
}

int gv_sysfs_write(const char *path, const char *value, struct gv_error **err)
{
        /* As "echo value > path" opens it: O_TRUNC (sysfs ignores it; a plain file in a test
         * tree then holds just the value), never O_CREAT (an attribute exists or not). */
        size_t n = strlen(value);
        ssize_t w;
        int r = 0;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                r = -errno;
        else {
                do
                        w = write(fd, value, n);
                while (w < 0 && errno == EINTR);
                if (w < 0)
                        r = -errno;
                else if ((size_t)w != n)
                        r = -EIO; /* sysfs takes a value in one write or not at all */
        }
        if (r < 0) {
                _cleanup_free_ char *e = gv_sysfs_escape(value);
                return gv_error_set(err, r, "Writing '%s' to '%s' failed: %s.", e, path,
                                    strerror(-r));
        }
        return 0;
}
