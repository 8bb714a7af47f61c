/* SPDX-License-Identifier: MIT */
/*
 * sim-sysfs.c — the sysfs tree of a simulated host, laid out as the kernel lays it out
 * (../shared/reference/passthrough.md §1-§5, vgpu.md §2-§4):
 *
 *   sys/devices/pci0000:HH/0000:HH:01.1/<bdf>/       one directory per PCI function, below a
 *       vendor device subsystem_vendor ...          root port on bus HH = bus - 1 (as in
 *       class numa_node config enable remove        vgpu.md's pci0000:40/0000:40:01.1/0000:41:00.4)
 *       driver_override reset_method [reset]
 *       driver -> bus/pci/drivers/<drv>
 *       iommu_group -> kernel/iommu_groups/<N>
 *       sriov_{totalvfs,numvfs,drivers_autoprobe,offset,stride,vf_device}, virtfnN   (PFs)
 *       physfn                                                                    (VFs)
 *       mdev_supported_types/nvidia-<id>/{name,available_instances,device_api,description,
 *                                         create,devices/}                   (mdev parents)
 *       <uuid>/{mdev_type,remove,nvidia/vgpu_params}                   (mdev instances)
 *       nvidia/{creatable_vgpu_types,current_vgpu_type,vgpu_params}     (vendor-VFIO VFs)
 *   sys/bus/pci/devices/<bdf> -> the function
 *   sys/bus/pci/drivers/<drv>/{bind,unbind,new_id,remove_id,<bdf> -> function}
 *   sys/bus/pci/{drivers_probe,drivers_autoprobe,rescan}
 *   sys/kernel/iommu_groups/<N>/{devices/<bdf> -> function,type,reserved_regions}
 *   sys/class/mdev_bus/<bdf> -> parent;  sys/bus/mdev/devices/<uuid> -> instance
 *
 * Links are relative, as the kernel's are, so a host directory can be moved. Kernel-side
 * facts (bound driver, driver_override, sriov_numvfs) are kept in the tree itself; NVML-side
 * facts (vGPUs, MIG) in state.json. sim_sysfs_sync() derives the dynamic files from both; it
 * writes a file only when its content changes, so calling it after every mutation is cheap.
 * Dynamic files are replaced with rename() so that a reader never sees half a file.
 */
#include "sysfs/sim-sysfs.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sysfs/sim-sysfs-tree.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

/* IOMMU group numbers of VFs: one group per VF (vgpu.md §2 VFs are separate functions behind
 * an ACS-capable PF), numbered from here so they never collide with a profile's groups. */
#define VF_GROUP_BASE 1000u
#define VF_GROUP_STRIDE 128u

#define MDEV_TYPE_FMT "nvidia-%u"
#define CREATABLE_HEADER "ID    : vGPU Name\n"

/* ---------------------------------------------------------------- small file helpers */

/* Write content (len bytes) to path unless it already holds exactly that. New or changed files
 * are written to a temporary name and renamed over the old one. */
static int put_file(const char *path, const void *content, size_t len)
{
        _cleanup_free_ char *old = NULL;
        size_t old_len = 0;
        int q = gv_read_file(path, 1u << 20, &old, &old_len);
        if (q >= 0 && old_len == len && memcmp(old, content, len) == 0)
                return 0;
        if (q == -ENOENT) {
                /* a new file: nobody can see half of it that would not see none of it */
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
                if (fd >= 0) {
                        ssize_t w = len ? write(fd, content, len) : 0;
                        int r = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
                        if (close(fd) < 0 && r == 0)
                                r = -errno;
                        return r;
                }
                if (errno != EEXIST)
                        return -errno;
        }

        _cleanup_free_ char *tmp = xasprintf("%s.sim-tmp.%ld", path, (long)getpid());
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return -errno;
        ssize_t w = len ? write(fd, content, len) : 0;
        int r = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                (void)unlink(tmp);
        return r;
}

static int put_str(const char *path, const char *s)
{
        return put_file(path, s, strlen(s));
}

/* Create the file with content only if it does not exist (files a client may change). */
static int put_initial(const char *path, const char *s)
{
        int r = gv_file_exists(path);
        if (r != 0)
                return r < 0 ? r : 0;
        return put_str(path, s);
}

static int put_fmt(const char *path, const char *fmt, ...) _printf_(2, 3);
static int put_fmt(const char *path, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *s = xvasprintf(fmt, ap);
        va_end(ap);
        return put_str(path, s);
}

/* Link text from link path to target, both absolute below one root: "../" for each directory
 * of the link below the common prefix, then the rest of the target. */
static char *relative_target(const char *link, const char *target)
{
        size_t common = 0;
        for (size_t i = 0; link[i] && link[i] == target[i]; i++)
                if (link[i] == '/')
                        common = i + 1;
        size_t ups = 0;
        for (const char *p = link + common; *p; p++)
                if (*p == '/')
                        ups++;
        size_t tlen = strlen(target + common);
        char *out = xmalloc(ups * 3 + tlen + 1), *o = out;
        for (size_t i = 0; i < ups; i++)
                o = stpcpy(o, "../");
        strcpy(o, target + common);
        return out;
}

static int put_link(const char *link, const char *target)
{
        _cleanup_free_ char *rel = relative_target(link, target);
        _cleanup_free_ char *cur = NULL;
        if (gv_readlink(link, &cur) >= 0) {
                if (strcmp(cur, rel) == 0)
                        return 0;
                if (unlink(link) < 0)
                        return -errno;
        }
        if (symlink(rel, link) < 0)
                return -errno;
        return 0;
}

static int remove_path(const char *path)
{
        if (unlink(path) < 0 && errno != ENOENT) {
                if (errno == EISDIR || errno == EPERM)
                        return gv_rm_rf(path);
                return -errno;
        }
        return 0;
}

/* mkdir -p that costs one mkdir() when the parent exists. */
static int mkdir_at(const char *path)
{
        if (mkdir(path, 0755) == 0 || errno == EEXIST)
                return 0;
        if (errno != ENOENT)
                return -errno;
        _cleanup_free_ char *parent = xstrdup(path);
        char *slash = strrchr(parent, '/');
        if (!slash || slash == parent)
                return -ENOENT;
        *slash = 0;
        int r = mkdir_at(parent);
        if (r < 0)
                return r;
        if (mkdir(path, 0755) == 0 || errno == EEXIST)
                return 0;
        return -errno;
}

static int put_str(const char *path, const char *s);

/* Write a file in a directory just created: no old content to compare with. New files are
 * always made with O_EXCL, which the kernel mock never takes for a sysfs write (an existing
 * sysfs attribute cannot be opened with O_CREAT|O_EXCL), so generating a tree inside a
 * process that has the mock preloaded does not trigger kernel effects. */
static int put_new(const char *path, const char *s)
{
        size_t len = strlen(s);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0 && errno == EEXIST)
                return put_str(path, s);
        if (fd < 0)
                return -errno;
        ssize_t w = len ? write(fd, s, len) : 0;
        int r = w < 0 ? -errno : (size_t)w != len ? -EIO : 0;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        return r;
}

/* ---------------------------------------------------------------- paths */

int sim_sysfs_vf_bdf(const char *pf_bdf, unsigned i, char buf[static 16])
{
        struct gv_pci_addr a;
        int r = gv_parse_pci_addr(pf_bdf, &a);
        if (r < 0)
                return r;
        unsigned devfn = ((unsigned)a.slot << 3 | a.function) + 4 + i;
        unsigned bus = a.bus + (devfn >> 8);
        if (bus > 0xff)
                return -ERANGE;
        snprintf(buf, 16, "%04x:%02x:%02x.%x", a.domain & 0xffff, bus, (devfn & 0xff) >> 3,
                 devfn & 7);
        return 0;
}

/* sys/devices/pci<dom>:<hb>/<dom>:<hb>:01.1/<bdf>, hb = bus - 1 (bus 0 stays on 00). */
static char *device_path(const char *sys, const char *bdf)
{
        struct gv_pci_addr a = { 0 };
        (void)gv_parse_pci_addr(bdf, &a);
        unsigned hb = a.bus ? a.bus - 1u : 0u;
        return xasprintf("%s/devices/pci%04x:%02x/%04x:%02x:01.1/%s", sys, a.domain & 0xffff, hb,
                         a.domain & 0xffff, hb, bdf);
}

static char *sys_of(const char *root)
{
        return gv_path_join(root, "sys");
}

int sim_sysfs_device_dir(const char *root, const char *bdf, char **ret)
{
        _cleanup_free_ char *link = xasprintf("%s/sys/bus/pci/devices/%s", root, bdf);
        char buf[PATH_MAX];
        if (!strchr(bdf, '/') && realpath(link, buf)) {
                *ret = xstrdup(buf);
                return 0;
        }
        return -ENODEV;
}

int sim_sysfs_driver_of(const char *root, const char *bdf, char **ret)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *link = gv_path_join(dir, "driver");
        char *drv = NULL;
        r = gv_readlink_basename(link, &drv);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = drv;
        return 0;
}

bool sim_sysfs_driver_exists(const char *root, const char *driver)
{
        if (!driver || !*driver || strchr(driver, '/') || strcmp(driver, ".") == 0 ||
            strcmp(driver, "..") == 0)
                return false;
        _cleanup_free_ char *d = xasprintf("%s/sys/bus/pci/drivers/%s", root, driver);
        struct stat st;
        return stat(d, &st) == 0 && S_ISDIR(st.st_mode);
}

int sim_sysfs_link_driver(const char *root, const char *bdf, const char *driver)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        if (!sim_sysfs_driver_exists(root, driver))
                return -ENOENT;
        _cleanup_free_ char *drvdir = xasprintf("%s/sys/bus/pci/drivers/%s", root, driver);
        _cleanup_free_ char *l1 = gv_path_join(dir, "driver");
        _cleanup_free_ char *l2 = gv_path_join(drvdir, bdf);
        r = put_link(l1, drvdir);
        if (r < 0)
                return r;
        return put_link(l2, dir);
}

int sim_sysfs_unlink_driver(const char *root, const char *bdf)
{
        _cleanup_free_ char *drv = NULL;
        int r = sim_sysfs_driver_of(root, bdf, &drv);
        if (r < 0 || !drv)
                return r;
        _cleanup_free_ char *dir = NULL;
        r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *l1 = gv_path_join(dir, "driver");
        _cleanup_free_ char *l2 = xasprintf("%s/sys/bus/pci/drivers/%s/%s", root, drv, bdf);
        if (unlink(l2) < 0 && errno != ENOENT)
                return -errno;
        if (unlink(l1) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

int sim_sysfs_read_u32(const char *root, const char *bdf, const char *attr, uint32_t *ret)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *p = gv_path_join(dir, attr);
        _cleanup_free_ char *v = NULL;
        r = gv_read_line(p, &v);
        if (r < 0)
                return r;
        return gv_parse_u32(v, 0, ret);
}

int sim_sysfs_write_attr(const char *root, const char *bdf, const char *attr, const char *value)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *p = gv_path_join(dir, attr);
        return put_fmt(p, "%s\n", value);
}

int sim_sysfs_get_override(const char *root, const char *bdf, char **ret)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(root, bdf, &dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *p = gv_path_join(dir, "driver_override");
        char *v = NULL;
        r = gv_read_line(p, &v);
        if (r < 0)
                return r;
        if (strcmp(v, "(null)") == 0 || !*v) {
                free(v);
                v = NULL;
        }
        *ret = v;
        return 0;
}

/* ---------------------------------------------------------------- profile lookups */

static const struct sim_profile_device *profile_device(const struct sim_state *s,
                                                       const char *bdf)
{
        const struct sim_profile *p = sim_profile_find(s->profile);
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_devices; i++)
                if (strcmp(p->devices[i].bdf, bdf) == 0)
                        return &p->devices[i];
        return NULL;
}

static const struct sim_gpu *gpu_by_bdf(const struct sim_state *s, const char *bdf)
{
        for (size_t i = 0; i < s->n_gpus; i++)
                if (strcmp(s->gpus[i].bdf, bdf) == 0)
                        return &s->gpus[i];
        return NULL;
}

/* The GPU whose VF bdf is, or NULL. */
static const struct sim_gpu *gpu_of_vf(const struct sim_state *s, const char *bdf,
                                       unsigned *ret_index)
{
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                if (!g->model)
                        continue;
                for (unsigned v = 0; v < g->model->sriov_total_vfs; v++) {
                        char vf[16];
                        if (sim_sysfs_vf_bdf(g->bdf, v, vf) < 0)
                                break;
                        if (strcmp(vf, bdf) == 0) {
                                if (ret_index)
                                        *ret_index = v;
                                return g;
                        }
                }
        }
        return NULL;
}

const char *sim_sysfs_default_driver(const struct sim_state *s, const char *bdf)
{
        const struct sim_profile_device *d = profile_device(s, bdf);
        if (d)
                return d->driver && *d->driver ? d->driver : NULL;
        if (gpu_of_vf(s, bdf, NULL))
                return "nvidia";
        return NULL;
}

static char *dynids_path(const char *root)
{
        return gv_path_join(root, "gpuvirt-sim", "dynids");
}

int sim_sysfs_dynid(const char *root, const char *driver, uint16_t vendor, uint16_t device,
                    bool add)
{
        _cleanup_free_ char *path = dynids_path(root);
        _cleanup_free_ char *old = NULL;
        int r = gv_read_file(path, 1u << 20, &old, NULL);
        if (r < 0 && r != -ENOENT)
                return r;
        _cleanup_free_ char *line = xasprintf("%s %04x %04x", driver, vendor, device);
        _cleanup_strv_free_ char **lines = old ? strv_split(old, "\n") : NULL;
        _cleanup_strv_free_ char **out = NULL;
        bool found = false;
        STRV_FOREACH(l, lines) {
                if (strcmp(*l, line) == 0) {
                        found = true;
                        if (!add)
                                continue;
                }
                strv_extend(&out, *l);
        }
        if (add && found)
                return -EEXIST; /* the kernel's new_id answers EEXIST for a known id */
        if (!add && !found)
                return -ENODEV; /* remove_id of an id not added */
        if (add)
                strv_extend(&out, line);
        _cleanup_free_ char *joined = strv_join(out, "\n");
        _cleanup_free_ char *content = *joined ? xasprintf("%s\n", joined) : xstrdup("");
        return put_str(path, content);
}

static int read_hex_attr(const char *dir, const char *attr, uint32_t *ret)
{
        _cleanup_free_ char *p = gv_path_join(dir, attr);
        _cleanup_free_ char *v = NULL;
        int r = gv_read_line(p, &v);
        if (r < 0)
                return r;
        return gv_parse_u32(v, 16, ret);
}

int sim_sysfs_driver_matches(const struct sim_state *s, const char *driver, const char *bdf)
{
        _cleanup_free_ char *dir = NULL;
        int r = sim_sysfs_device_dir(s->root, bdf, &dir);
        if (r < 0)
                return r;
        uint32_t vendor = 0, device = 0, class_code = 0;
        if (read_hex_attr(dir, "vendor", &vendor) < 0 || read_hex_attr(dir, "device", &device) < 0 ||
            read_hex_attr(dir, "class", &class_code) < 0)
                return -EIO;

        /* Dynamic ids (new_id) first. */
        _cleanup_free_ char *path = dynids_path(s->root);
        _cleanup_free_ char *ids = NULL;
        if (gv_read_file(path, 1u << 20, &ids, NULL) >= 0) {
                _cleanup_free_ char *line = xasprintf("%s %04x %04x", driver, vendor, device);
                _cleanup_strv_free_ char **lines = strv_split(ids, "\n");
                if (strv_contains(lines, line))
                        return 1;
        }
        if (strcmp(driver, "nvidia") == 0)
                return vendor == 0x10de && (class_code >> 16) == 0x03;
        if (strcmp(driver, "snd_hda_intel") == 0)
                return (class_code >> 8) == 0x0403;
        if (strcmp(driver, "vfio-pci") == 0)
                return 0; /* no static id table: only driver_override or new_id */
        const char *def = sim_sysfs_default_driver(s, bdf);
        return def && strcmp(def, driver) == 0;
}

/* ---------------------------------------------------------------- generation */

struct fn_ids {
        uint16_t vendor, device, subsystem_vendor, subsystem_device;
        uint32_t class_code;
        bool multifunction;
};

/* The 256-byte type-0 configuration header, consistent with the ids (PCI Local Bus spec
 * layout: ids at 0x00, command 0x04, class code 0x09-0x0b, header type 0x0e, subsystem ids
 * 0x2c). Memory space and bus master are enabled as after a driver's probe. */
static void config_header(const struct fn_ids *id, uint8_t cfg[256])
{
        memset(cfg, 0, 256);
        cfg[0x00] = id->vendor & 0xff;
        cfg[0x01] = id->vendor >> 8;
        cfg[0x02] = id->device & 0xff;
        cfg[0x03] = id->device >> 8;
        cfg[0x04] = 0x06; /* memory space, bus master */
        cfg[0x08] = 0xa1; /* revision */
        cfg[0x09] = id->class_code & 0xff;
        cfg[0x0a] = (id->class_code >> 8) & 0xff;
        cfg[0x0b] = (id->class_code >> 16) & 0xff;
        cfg[0x0e] = id->multifunction ? 0x80 : 0x00;
        cfg[0x2c] = id->subsystem_vendor & 0xff;
        cfg[0x2d] = id->subsystem_vendor >> 8;
        cfg[0x2e] = id->subsystem_device & 0xff;
        cfg[0x2f] = id->subsystem_device >> 8;
        cfg[0x3d] = 0x01; /* INTA# */
}

/* Write the files every PCI function has; leaves bound driver and override alone when the
 * function already exists. */
static int make_function(const char *sys, const char *bdf, const struct fn_ids *id, int numa,
                         unsigned group, const char *reset_method)
{
        _cleanup_free_ char *dir = device_path(sys, bdf);
        struct stat dst;
        bool fresh = stat(dir, &dst) < 0;
        int r = mkdir_at(dir);
        if (r < 0)
                return r;

        struct {
                const char *name;
                char *value;
        } attrs[] = {
                { "vendor", xasprintf("0x%04x\n", id->vendor) },
                { "device", xasprintf("0x%04x\n", id->device) },
                { "subsystem_vendor", xasprintf("0x%04x\n", id->subsystem_vendor) },
                { "subsystem_device", xasprintf("0x%04x\n", id->subsystem_device) },
                { "class", xasprintf("0x%06x\n", id->class_code) },
                { "revision", xstrdup("0xa1\n") },
                { "numa_node", xasprintf("%d\n", numa) },
                { "enable", xstrdup("1\n") },
                { "power_state", xstrdup("D0\n") },
                { "d3cold_allowed", xstrdup("1\n") },
                { "reset_method", xasprintf("%s\n", reset_method ? reset_method : "") },
                { "remove", xstrdup("") },
        };
        for (size_t i = 0; i < ELEMENTSOF(attrs); i++) {
                _cleanup_free_ char *p = gv_path_join(dir, attrs[i].name);
                if (r >= 0)
                        r = fresh ? put_new(p, attrs[i].value) : put_str(p, attrs[i].value);
                free(attrs[i].value);
        }
        if (r < 0)
                return r;
        _cleanup_free_ char *p = gv_path_join(dir, "driver_override");
        r = put_initial(p, "(null)\n");
        if (r < 0)
                return r;
        if (reset_method && *reset_method) {
                /* reset exists only where the function can be reset on its own */
                free(p);
                p = gv_path_join(dir, "reset");
                r = put_str(p, "");
                if (r < 0)
                        return r;
        }
        uint8_t cfg[256];
        config_header(id, cfg);
        free(p);
        p = gv_path_join(dir, "config");
        r = put_file(p, cfg, sizeof(cfg));
        if (r < 0)
                return r;

        /* bus/pci/devices/<bdf> and the IOMMU group, both ways */
        _cleanup_free_ char *busl = xasprintf("%s/bus/pci/devices/%s", sys, bdf);
        r = put_link(busl, dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *gdir = xasprintf("%s/kernel/iommu_groups/%u", sys, group);
        _cleanup_free_ char *gdev = gv_path_join(gdir, "devices");
        r = mkdir_at(gdev);
        if (r < 0)
                return r;
        _cleanup_free_ char *gtype = gv_path_join(gdir, "type");
        _cleanup_free_ char *gres = gv_path_join(gdir, "reserved_regions");
        if ((r = put_str(gtype, "DMA-FQ\n")) < 0 ||
            (r = put_str(gres, "0x00000000fee00000 0x00000000feefffff msi\n")) < 0)
                return r;
        _cleanup_free_ char *gl = gv_path_join(gdev, bdf);
        r = put_link(gl, dir);
        if (r < 0)
                return r;
        _cleanup_free_ char *il = gv_path_join(dir, "iommu_group");
        return put_link(il, gdir);
}

static const char *const base_drivers[] = { "nvidia", "vfio-pci", "snd_hda_intel" };

static int make_driver(const char *sys, const char *name)
{
        _cleanup_free_ char *d = xasprintf("%s/bus/pci/drivers/%s", sys, name);
        int r = mkdir_at(d);
        if (r < 0)
                return r;
        static const char *const files[] = { "bind", "unbind", "new_id", "remove_id" };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *p = gv_path_join(d, files[i]);
                r = put_str(p, "");
                if (r < 0)
                        return r;
        }
        return 0;
}

/* The GPU at function 0 of bdf's slot, if its model has an audio function. */
static const struct sim_gpu *gpu_of_audio(const struct sim_state *s, const char *bdf)
{
        struct gv_pci_addr a, b;
        if (gv_parse_pci_addr(bdf, &a) < 0)
                return NULL;
        for (size_t i = 0; i < s->n_gpus; i++) {
                const struct sim_gpu *g = &s->gpus[i];
                if (g->model && g->model->has_audio_function &&
                    gv_parse_pci_addr(g->bdf, &b) >= 0 && a.domain == b.domain &&
                    a.bus == b.bus && a.slot == b.slot && b.function == 0 && a.function == 1)
                        return g;
        }
        return NULL;
}

static bool is_multifunction(const struct sim_profile *p, const char *bdf)
{
        struct gv_pci_addr a, b;
        if (gv_parse_pci_addr(bdf, &a) < 0)
                return false;
        for (size_t i = 0; i < p->n_devices; i++)
                if (gv_parse_pci_addr(p->devices[i].bdf, &b) >= 0 && a.domain == b.domain &&
                    a.bus == b.bus && a.slot == b.slot && a.function != b.function)
                        return true;
        return false;
}

int sim_sysfs_generate(const struct sim_state *s, const struct sim_profile *p,
                       struct gv_error **err)
{
        _cleanup_free_ char *sys = sys_of(s->root);
        static const char *const dirs[] = {
                "devices", "bus/pci/devices", "bus/pci/drivers", "kernel/iommu_groups",
                "class/mdev_bus", "bus/mdev/devices",
        };
        int r;
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                _cleanup_free_ char *d = gv_path_join(sys, dirs[i]);
                r = mkdir_at(d);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot create '%s': %s.", d, strerror(-r));
        }
        static const struct {
                const char *name, *value;
        } bus_files[] = {
                { "bus/pci/drivers_probe", "" },
                { "bus/pci/drivers_autoprobe", "1\n" },
                { "bus/pci/rescan", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bus_files); i++) {
                _cleanup_free_ char *f = gv_path_join(sys, bus_files[i].name);
                r = put_str(f, bus_files[i].value);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot write '%s': %s.", f, strerror(-r));
        }
        for (size_t i = 0; i < ELEMENTSOF(base_drivers); i++)
                if ((r = make_driver(sys, base_drivers[i])) < 0)
                        return gv_error_set(err, -r, "Cannot create driver '%s': %s.",
                                            base_drivers[i], strerror(-r));

        for (size_t i = 0; i < p->n_devices; i++) {
                const struct sim_profile_device *d = &p->devices[i];
                struct fn_ids id = {
                        .vendor = d->vendor,
                        .device = d->device,
                        .subsystem_vendor = d->subsystem_vendor,
                        .subsystem_device = d->subsystem_device,
                        .class_code = d->class_code,
                        .multifunction = is_multifunction(p, d->bdf),
                };
                const struct sim_gpu *g = NULL;
                if (!d->gpu_model && d->device == 0) {
                        /* the audio function of a GPU: ids from the GPU's catalog model */
                        const struct sim_gpu *gg = gpu_of_audio(s, d->bdf);
                        if (!gg)
                                return gv_error_set(err, EINVAL,
                                                    "Profile '%s' has a device without a PCI "
                                                    "device id at '%s' and no GPU with an audio "
                                                    "function at function 0 of that slot.",
                                                    p->name, d->bdf);
                        id.vendor = gg->model->pci_vendor;
                        id.device = gg->model->audio_pci_device;
                        id.subsystem_vendor = gg->model->pci_subsystem_vendor;
                        id.subsystem_device = gg->model->pci_subsystem_device;
                }
                if (d->gpu_model) {
                        g = gpu_by_bdf(s, d->bdf);
                        if (!g || !g->model)
                                return gv_error_set(err, EINVAL,
                                                    "Profile '%s' places GPU model '%s' at '%s' "
                                                    "but the host state has no GPU there; "
                                                    "recreate the host.",
                                                    p->name, d->gpu_model, d->bdf);
                        id.vendor = g->model->pci_vendor;
                        id.device = g->model->pci_device;
                        id.subsystem_vendor = g->model->pci_subsystem_vendor;
                        id.subsystem_device = g->model->pci_subsystem_device;
                        id.class_code = g->model->pci_class;
                }
                r = make_function(sys, d->bdf, &id, d->numa_node, d->iommu_group,
                                  d->reset_method);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot create PCI function '%s': %s.",
                                            d->bdf, strerror(-r));
                if (d->driver && *d->driver) {
                        if ((r = make_driver(sys, d->driver)) < 0 ||
                            (r = sim_sysfs_link_driver(s->root, d->bdf, d->driver)) < 0)
                                return gv_error_set(err, -r, "Cannot bind '%s' to '%s': %s.",
                                                    d->bdf, d->driver, strerror(-r));
                }
                if (g && g->model->sriov_total_vfs > 0) {
                        _cleanup_free_ char *dir = device_path(sys, d->bdf);
                        /* vGPU hosts enable every VF at boot (sriov-manage -e ALL from a
                         * systemd unit, vgpu.md §2); pass-through-only hosts do not. */
                        unsigned n = s->vgpu_interface == SIM_VGPU_NONE ? 0 :
                                                                          g->model->sriov_total_vfs;
                        struct {
                                const char *name;
                                char *value;
                        } attrs[] = {
                                { "sriov_totalvfs", xasprintf("%u\n", g->model->sriov_total_vfs) },
                                { "sriov_numvfs", xasprintf("%u\n", n) },
                                { "sriov_drivers_autoprobe", xstrdup("1\n") },
                                { "sriov_offset", xstrdup("4\n") },
                                { "sriov_stride", xstrdup("1\n") },
                                { "sriov_vf_device", xasprintf("%04x\n", id.device) },
                        };
                        for (size_t k = 0; k < ELEMENTSOF(attrs); k++) {
                                _cleanup_free_ char *f = gv_path_join(dir, attrs[k].name);
                                if (r >= 0)
                                        r = put_str(f, attrs[k].value);
                                free(attrs[k].value);
                        }
                        if (r < 0)
                                return gv_error_set(err, -r, "Cannot write the SR-IOV files of "
                                                    "'%s': %s.", d->bdf, strerror(-r));
                }
        }
        return 0;
}

/* ---------------------------------------------------------------- dynamic part */

static bool bound_to_nvidia(const struct sim_state *s, const char *bdf);

static bool vf_has_vgpu(const struct sim_state *s, const char *bdf, const struct sim_vgpu **ret)
{
        for (size_t i = 0; i < s->n_vgpus; i++)
                if (strcmp(s->vgpus[i].parent_bdf, bdf) == 0) {
                        if (ret)
                                *ret = &s->vgpus[i];
                        return true;
                }
        return false;
}

static int create_vf(const struct sim_state *s, const char *sys, const struct sim_gpu *g,
                     unsigned i, const char *vf, bool autoprobe)
{
        const struct sim_profile_device *pd = profile_device(s, g->bdf);
        struct fn_ids id = {
                /* The catalog has no VF device id; the VF reports the PF's ids. */
                .vendor = g->model->pci_vendor,
                .device = g->model->pci_device,
                .subsystem_vendor = g->model->pci_subsystem_vendor,
                .subsystem_device = g->model->pci_subsystem_device,
                .class_code = g->model->pci_class,
        };
        int r = make_function(sys, vf, &id, pd ? pd->numa_node : -1,
                              VF_GROUP_BASE + g->index * VF_GROUP_STRIDE + i, "flr");
        if (r < 0)
                return r;
        _cleanup_free_ char *pfdir = device_path(sys, g->bdf);
        _cleanup_free_ char *vfdir = device_path(sys, vf);
        _cleanup_free_ char *physfn = gv_path_join(vfdir, "physfn");
        _cleanup_free_ char *virtfn = xasprintf("%s/virtfn%u", pfdir, i);
        if ((r = put_link(physfn, pfdir)) < 0 || (r = put_link(virtfn, vfdir)) < 0)
                return r;
        if (autoprobe)
                return sim_sysfs_link_driver(s->root, vf, "nvidia");
        return 0;
}

static int remove_vf(const struct sim_state *s, const char *sys, const struct sim_gpu *g,
                     unsigned i, const char *vf)
{
        int r = sim_sysfs_unlink_driver(s->root, vf);
        if (r < 0 && r != -ENODEV)
                return r;
        _cleanup_free_ char *pfdir = device_path(sys, g->bdf);
        _cleanup_free_ char *vfdir = device_path(sys, vf);
        _cleanup_free_ char *virtfn = xasprintf("%s/virtfn%u", pfdir, i);
        _cleanup_free_ char *busl = xasprintf("%s/bus/pci/devices/%s", sys, vf);
        _cleanup_free_ char *mdevl = xasprintf("%s/class/mdev_bus/%s", sys, vf);
        _cleanup_free_ char *gdir = xasprintf("%s/kernel/iommu_groups/%u", sys,
                                              VF_GROUP_BASE + g->index * VF_GROUP_STRIDE + i);
        if ((r = remove_path(virtfn)) < 0 || (r = remove_path(busl)) < 0 ||
            (r = remove_path(mdevl)) < 0 || (r = gv_rm_rf(gdir)) < 0)
                return r;
        return gv_rm_rf(vfdir);
}

/* mdev_supported_types of one parent, and its instances. */
static int sync_mdev_parent(const struct sim_state *s, const char *sys, const struct sim_gpu *g,
                            const char *parent, bool sriov)
{
        const struct gv_gpu_model *m = g->model;
        _cleanup_free_ char *pdir = device_path(sys, parent);
        _cleanup_free_ char *cls = xasprintf("%s/class/mdev_bus/%s", sys, parent);
        int r;
        if (!bound_to_nvidia(s, parent) && !vf_has_vgpu(s, parent, NULL)) {
                _cleanup_free_ char *types = gv_path_join(pdir, "mdev_supported_types");
                if ((r = remove_path(cls)) < 0)
                        return r;
                return gv_rm_rf(types);
        }
        r = put_link(cls, pdir);
        if (r < 0)
                return r;
        bool busy = vf_has_vgpu(s, parent, NULL);

        for (size_t t = 0; t < m->n_vgpu_types; t++) {
                const struct gv_vgpu_type *ty = &m->vgpu_types[t];
                _cleanup_free_ char *tdir =
                        xasprintf("%s/mdev_supported_types/" MDEV_TYPE_FMT, pdir, ty->type_id);
                _cleanup_free_ char *devs = gv_path_join(tdir, "devices");
                struct stat tst;
                bool fresh = stat(devs, &tst) < 0;
                if (fresh && (r = mkdir_at(devs)) < 0)
                        return r;
                uint32_t avail = sim_vgpu_creatable(s, g, ty->type_id);
                if (sriov) /* one mdev per VF (vgpu.md §2) */
                        avail = busy ? 0 : MIN(avail, 1u);
                _cleanup_free_ char *f_name = gv_path_join(tdir, "name");
                _cleanup_free_ char *f_avail = gv_path_join(tdir, "available_instances");
                _cleanup_free_ char *f_api = gv_path_join(tdir, "device_api");
                _cleanup_free_ char *f_desc = gv_path_join(tdir, "description");
                _cleanup_free_ char *f_create = gv_path_join(tdir, "create");
                /* name "GRID <type>" and the description's format as quoted in vgpu.md §3;
                 * num_heads, frl_config and max_resolution are the quoted example's values
                 * (the catalog does not carry them), framebuffer and max_instance are ours. */
                _cleanup_free_ char *v_avail = xasprintf("%u\n", avail);
                if ((r = fresh ? put_new(f_avail, v_avail) : put_str(f_avail, v_avail)) < 0)
                        return r;
                if (fresh) {
                        _cleanup_free_ char *v_name = xasprintf("GRID %s\n", ty->name);
                        _cleanup_free_ char *v_desc = xasprintf(
                                "num_heads=4, frl_config=60, framebuffer=%" PRIu64
                                "M, max_resolution=5120x2880, max_instance=%u\n",
                                ty->framebuffer_mib, ty->max_instances);
                        if ((r = put_new(f_name, v_name)) < 0 ||
                            (r = put_new(f_api, "vfio-pci\n")) < 0 ||
                            (r = put_new(f_desc, v_desc)) < 0 || (r = put_new(f_create, "")) < 0)
                                return r;
                        continue; /* a new type directory has no devices/ links to drop */
                }

                /* devices/<uuid> for instances of this type on this parent; drop others */
                DIR *d = opendir(devs);
                if (d) {
                        struct dirent *de;
                        while ((de = readdir(d))) {
                                if (de->d_name[0] == '.')
                                        continue;
                                const struct sim_vgpu *v = NULL;
                                for (size_t k = 0; k < s->n_vgpus; k++)
                                        if (strcmp(s->vgpus[k].uuid, de->d_name) == 0)
                                                v = &s->vgpus[k];
                                if (!v || v->type_id != ty->type_id ||
                                    strcmp(v->parent_bdf, parent) != 0) {
                                        _cleanup_free_ char *x = gv_path_join(devs, de->d_name);
                                        (void)unlink(x);
                                }
                        }
                        closedir(d);
                }
        }

        /* instance directories */
        for (size_t k = 0; k < s->n_vgpus; k++) {
                const struct sim_vgpu *v = &s->vgpus[k];
                if (strcmp(v->parent_bdf, parent) != 0)
                        continue;
                _cleanup_free_ char *idir = gv_path_join(pdir, v->uuid);
                _cleanup_free_ char *nv = gv_path_join(idir, "nvidia");
                if ((r = mkdir_at(nv)) < 0)
                        return r;
                _cleanup_free_ char *tdir =
                        xasprintf("%s/mdev_supported_types/" MDEV_TYPE_FMT, pdir, v->type_id);
                _cleanup_free_ char *l_type = gv_path_join(idir, "mdev_type");
                _cleanup_free_ char *f_rm = gv_path_join(idir, "remove");
                _cleanup_free_ char *f_params = gv_path_join(nv, "vgpu_params");
                _cleanup_free_ char *l_bus = xasprintf("%s/bus/mdev/devices/%s", sys, v->uuid);
                _cleanup_free_ char *l_dev = xasprintf("%s/devices/%s", tdir, v->uuid);
                if ((r = put_link(l_type, tdir)) < 0 || (r = put_str(f_rm, "")) < 0 ||
                    (r = put_initial(f_params, "")) < 0 || (r = put_link(l_bus, idir)) < 0)
                        return r;
                struct stat st;
                if (stat(tdir, &st) == 0 && (r = put_link(l_dev, idir)) < 0)
                        return r;
        }

        /* stale instance directories (vGPU gone from the state) */
        DIR *d = opendir(pdir);
        if (!d)
                return -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                struct gv_uuid u;
                if (gv_parse_uuid(de->d_name, &u) < 0)
                        continue;
                bool keep = false;
                for (size_t k = 0; k < s->n_vgpus; k++)
                        if (strcmp(s->vgpus[k].uuid, de->d_name) == 0 &&
                            strcmp(s->vgpus[k].parent_bdf, parent) == 0)
                                keep = true;
                if (!keep) {
                        _cleanup_free_ char *x = gv_path_join(pdir, de->d_name);
                        (void)gv_rm_rf(x);
                }
        }
        closedir(d);
        return 0;
}

/* The creatable_vgpu_types text of a VF (vgpu.md §4): header, then "%-5d : NVIDIA <name>" for
 * each type that can be created now; only the header on a VF that already holds a vGPU. */
static char *creatable_text(const struct sim_state *s, const struct sim_gpu *g, bool busy)
{
        size_t cap = 256, len = 0;
        char *out = xmalloc(cap);
        len = (size_t)snprintf(out, cap, "%s", CREATABLE_HEADER);
        if (busy)
                return out;
        for (size_t t = 0; t < g->model->n_vgpu_types; t++) {
                const struct gv_vgpu_type *ty = &g->model->vgpu_types[t];
                if (sim_vgpu_creatable(s, g, ty->type_id) == 0)
                        continue;
                _cleanup_free_ char *line = xasprintf("%-5u : NVIDIA %s\n", ty->type_id, ty->name);
                size_t n = strlen(line);
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        out = xreallocarray(out, cap, 1);
                }
                memcpy(out + len, line, n + 1);
                len += n;
        }
        return out;
}

static int sync_vendor_vf(const struct sim_state *s, const char *sys, const struct sim_gpu *g,
                          const char *vf)
{
        _cleanup_free_ char *vfdir = device_path(sys, vf);
        _cleanup_free_ char *nv = gv_path_join(vfdir, "nvidia");
        const struct sim_vgpu *v = NULL;
        bool busy = vf_has_vgpu(s, vf, &v);
        if (!busy && !bound_to_nvidia(s, vf))
                return gv_rm_rf(nv);
        int r = mkdir_at(nv);
        if (r < 0)
                return r;
        _cleanup_free_ char *text = creatable_text(s, g, busy);
        _cleanup_free_ char *f_cr = gv_path_join(nv, "creatable_vgpu_types");
        _cleanup_free_ char *f_cur = gv_path_join(nv, "current_vgpu_type");
        _cleanup_free_ char *f_params = gv_path_join(nv, "vgpu_params");
        if ((r = put_str(f_cr, text)) < 0 || (r = put_fmt(f_cur, "%u\n", v ? v->type_id : 0)) < 0 ||
            (r = put_initial(f_params, "")) < 0)
                return r;
        return 0;
}

static int sync_gpu_vgpu_files(const struct sim_state *s, const char *sys,
                               const struct sim_gpu *g, unsigned numvfs);

/* Every input of the GPU's dynamic vGPU files, as text: interface, per parent its binding,
 * the creatable count of each type and the vGPUs on it. */
static char *gpu_digest(const struct sim_state *s, const struct sim_gpu *g, unsigned numvfs)
{
        const struct gv_gpu_model *m = g->model;
        size_t cap = 1024, len = 0;
        char *out = xmalloc(cap);
        out[0] = 0;
#define APPEND(...)                                                                          do {                                                                                         _cleanup_free_ char *piece_ = xasprintf(__VA_ARGS__);                                size_t n_ = strlen(piece_);                                                          if (len + n_ + 1 > cap) {                                                                    cap = (len + n_ + 1) * 2;                                                            out = xreallocarray(out, cap, 1);                                            }                                                                                    memcpy(out + len, piece_, n_ + 1);                                                   len += n_;                                                                   } while (0)
        APPEND("if=%d vfs=%u\ntypes", (int)s->vgpu_interface, numvfs);
        for (size_t t = 0; t < m->n_vgpu_types; t++)
                APPEND(" %u:%u", m->vgpu_types[t].type_id,
                       sim_vgpu_creatable(s, g, m->vgpu_types[t].type_id));
        APPEND("\n");
        unsigned n_parents = m->sriov_total_vfs ? numvfs : 1;
        for (unsigned i = 0; i < n_parents; i++) {
                char bdf[16];
                if (m->sriov_total_vfs)
                        (void)sim_sysfs_vf_bdf(g->bdf, i, bdf);
                else
                        snprintf(bdf, sizeof(bdf), "%s", g->bdf);
                APPEND("%s %d", bdf, bound_to_nvidia(s, bdf));
                for (size_t k = 0; k < s->n_vgpus; k++)
                        if (strcmp(s->vgpus[k].parent_bdf, bdf) == 0)
                                APPEND(" %s/%u", s->vgpus[k].uuid, s->vgpus[k].type_id);
                APPEND("\n");
        }
#undef APPEND
        return out;
}

static int sync_gpu(const struct sim_state *s, const char *sys, const struct sim_gpu *g)
{
        const struct gv_gpu_model *m = g->model;
        if (!m)
                return 0;
        int r;
        unsigned numvfs = 0;
        bool autoprobe = true;
        if (m->sriov_total_vfs > 0) {
                uint32_t v;
                if (sim_sysfs_read_u32(s->root, g->bdf, "sriov_numvfs", &v) >= 0)
                        numvfs = MIN(v, m->sriov_total_vfs);
                if (sim_sysfs_read_u32(s->root, g->bdf, "sriov_drivers_autoprobe", &v) >= 0)
                        autoprobe = v != 0;
                for (unsigned i = 0; i < m->sriov_total_vfs; i++) {
                        char vf[16];
                        if (sim_sysfs_vf_bdf(g->bdf, i, vf) < 0)
                                break;
                        _cleanup_free_ char *dir = device_path(sys, vf);
                        struct stat st;
                        bool exists = lstat(dir, &st) == 0;
                        if (i < numvfs && !exists)
                                r = create_vf(s, sys, g, i, vf, autoprobe);
                        else if (i >= numvfs && exists)
                                r = remove_vf(s, sys, g, i, vf);
                        else
                                r = 0;
                        if (r < 0)
                                return r;
                }
        }
        if (m->n_vgpu_types == 0)
                return 0;

        /* Skip the per-VF files when nothing they are made from changed since the last sync:
         * a digest of every dynamic value of this GPU is kept in ROOT/gpuvirt-sim/sysfs-sync/. */
        _cleanup_free_ char *digest = gpu_digest(s, g, numvfs);
        _cleanup_free_ char *dpath = xasprintf("%s/gpuvirt-sim/sysfs-sync/%s", s->root, g->bdf);
        _cleanup_free_ char *old = NULL;
        if (gv_read_file(dpath, 1u << 22, &old, NULL) >= 0 && strcmp(old, digest) == 0)
                return 0;

        r = sync_gpu_vgpu_files(s, sys, g, numvfs);
        if (r < 0)
                return r;
        _cleanup_free_ char *ddir = xasprintf("%s/gpuvirt-sim/sysfs-sync", s->root);
        if ((r = mkdir_at(ddir)) < 0)
                return r;
        return put_str(dpath, digest);
}

static int sync_gpu_vgpu_files(const struct sim_state *s, const char *sys,
                               const struct sim_gpu *g, unsigned numvfs)
{
        const struct gv_gpu_model *m = g->model;
        int r;
        if (s->vgpu_interface == SIM_VGPU_MDEV) {
                if (m->sriov_total_vfs == 0)
                        return sync_mdev_parent(s, sys, g, g->bdf, false);
                for (unsigned i = 0; i < numvfs; i++) {
                        char vf[16];
                        if ((r = sim_sysfs_vf_bdf(g->bdf, i, vf)) < 0 ||
                            (r = sync_mdev_parent(s, sys, g, vf, true)) < 0)
                                return r;
                }
        } else if (s->vgpu_interface == SIM_VGPU_VENDOR_VFIO) {
                for (unsigned i = 0; i < numvfs; i++) {
                        char vf[16];
                        if ((r = sim_sysfs_vf_bdf(g->bdf, i, vf)) < 0 ||
                            (r = sync_vendor_vf(s, sys, g, vf)) < 0)
                                return r;
                }
        }
        return 0;
}

/* Is the function bound to nvidia? The vGPU files exist only while the vGPU manager drives
 * the function (mdev parents register with the driver; the nvidia/ directory is the driver's). */
static bool bound_to_nvidia(const struct sim_state *s, const char *bdf)
{
        _cleanup_free_ char *drv = NULL;
        return sim_sysfs_driver_of(s->root, bdf, &drv) >= 0 && drv && strcmp(drv, "nvidia") == 0;
}

/* bus/mdev/devices links of vGPUs that are gone */
static int sync_mdev_bus(const struct sim_state *s, const char *sys)
{
        _cleanup_free_ char *dir = gv_path_join(sys, "bus/mdev/devices");
        DIR *d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (de->d_name[0] == '.')
                        continue;
                bool keep = false;
                if (s->vgpu_interface == SIM_VGPU_MDEV)
                        for (size_t k = 0; k < s->n_vgpus; k++)
                                if (strcmp(s->vgpus[k].uuid, de->d_name) == 0)
                                        keep = true;
                _cleanup_free_ char *x = gv_path_join(dir, de->d_name);
                struct stat st;
                if (!keep || stat(x, &st) < 0)
                        (void)unlink(x);
        }
        closedir(d);
        return 0;
}

int sim_sysfs_sync(const struct sim_state *s, struct gv_error **err)
{
        _cleanup_free_ char *sys = sys_of(s->root);
        struct stat st;
        if (stat(sys, &st) < 0)
                return gv_error_set(err, ENOENT, "The simulated host '%s' has no sysfs tree "
                                    "('%s' is missing); recreate it with 'gpuvirt-sim create'.",
                                    s->root, sys);
        for (size_t i = 0; i < s->n_gpus; i++) {
                int r = sync_gpu(s, sys, &s->gpus[i]);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot update the sysfs files of GPU "
                                            "'%s': %s.", s->gpus[i].bdf, strerror(-r));
        }
        int r = sync_mdev_bus(s, sys);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot update '%s/bus/mdev/devices': %s.", sys,
                                    strerror(-r));
        return 0;
}

/* ---------------------------------------------------------------- host creation */

int sim_host_create(const char *root, const char *profile_name, const char *nvml_lib,
                    struct gv_error **err)
{
        const struct sim_profile *p = sim_profile_find(profile_name);
        if (!p) {
                _cleanup_free_ char *names = sim_profile_names();
                return gv_error_set(err, EINVAL, "Unknown profile '%s'; choose one of: %s.",
                                    profile_name ? profile_name : "", names);
        }
        if (!root || !*root)
                return gv_error_set(err, EINVAL, "No root directory given for the simulated host.");

        DIR *d = opendir(root);
        if (d) {
                struct dirent *de;
                bool empty = true;
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                empty = false;
                closedir(d);
                if (!empty)
                        return gv_error_set(err, EEXIST, "'%s' is not empty; give a new or "
                                            "empty directory, or remove the old host with "
                                            "'gpuvirt-sim destroy --root %s'.", root, root);
        } else if (errno != ENOENT) {
                int e = errno;
                return gv_error_set(err, e, "Cannot open '%s': %s.", root, strerror(e));
        }
        int r = gv_mkdir_p(root, 0755);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot create '%s': %s.", root, strerror(-r));
        char abs[PATH_MAX];
        if (!realpath(root, abs)) {
                int e = errno;
                return gv_error_set(err, e, "Cannot resolve '%s': %s.", root, strerror(e));
        }

        _cleanup_(sim_state_unlockp) struct sim_state *s = NULL;
        r = sim_state_new(abs, p, &s, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot create the state of host '%s'", abs);
        r = sim_sysfs_generate(s, p, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot generate the sysfs tree of '%s'", abs);
        r = sim_state_commit(s, err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot save the state of host '%s'", abs);

        if (nvml_lib && *nvml_lib) {
                _cleanup_free_ char *libdir = gv_path_join(abs, "usr/lib");
                _cleanup_free_ char *link = gv_path_join(libdir, "libnvidia-ml.so.1");
                r = gv_mkdir_p(libdir, 0755);
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot create '%s': %s.", libdir,
                                            strerror(-r));
                (void)unlink(link);
                if (symlink(nvml_lib, link) < 0) {
                        int e = errno;
                        return gv_error_set(err, e, "Cannot link '%s' to '%s': %s.", link,
                                            nvml_lib, strerror(e));
                }
        }
        return 0;
}
