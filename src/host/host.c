/* SPDX-License-Identifier: MIT */
/*
 * host.c — the vendor-neutral core of a host's GPU inventory and operations.
 *
 * Plan: enumerate PCI functions (src/hw/pci), keep display-class physical functions whose
 * vendor a backend claims, fill the PCI facts, the IOMMU verdict and the mode every GPU has
 * whatever its vendor (vfio-pci = pass-through), then let the backend read the rest. Pass-through
 * transitions are done here (whole IOMMU group to vfio-pci and back, src/hw/driver); MIG and
 * vGPU transitions go to the backend.
 */
#include "host/host.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "catalog/mig-layout.h"
#include "host/backend.h"
#include "host/host-internal.h"
#include "hw/driver.h"
#include "hw/iommu.h"
#include "hw/pci.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/strv.h"

static const char *const gpu_mode_table[_GV_GPU_MODE_MAX] = {
        [GV_GPU_MODE_NONE] = "none",
        [GV_GPU_MODE_PASSTHROUGH] = "passthrough",
        [GV_GPU_MODE_VGPU] = "vgpu",
        [GV_GPU_MODE_MIG] = "mig",
        [GV_GPU_MODE_UNKNOWN] = "unknown",
};
DEFINE_STRING_TABLE_LOOKUP(gv_gpu_mode, enum gv_gpu_mode, gpu_mode_table);

char *gv_gpu_mode_names(void)
{
        /* "unknown" is a state to show, not a mode to set. */
        return gv_string_table_join(gpu_mode_table, GV_GPU_MODE_UNKNOWN, ", ");
}

/* The backends, in a fixed order (style.md §8: an explicit table, no constructors). */
static const struct gv_gpu_backend_ops *const backends[] = {
        &gv_nvidia_backend_ops,
};

static void gpu_done(struct gv_gpu *g)
{
        free(g->backend);
        free(g->model);
        free(g->product_name);
        free(g->driver);
        free(g->mode_reason);
        free(g->mig_error);
        strv_free(g->reset_methods);
        strv_free(g->vfs);
        gv_gpu_vendor_state_clear(g);
        for (size_t i = 0; i < g->n_group; i++)
                free(g->group[i].driver);
        free(g->group);
        free(g->passthrough_blocker);
        strv_free(g->problems);
        free(g->unhealthy);
        *g = (struct gv_gpu){};
}

void gv_gpu_vendor_state_clear(struct gv_gpu *g)
{
        for (size_t i = 0; i < g->n_gis; i++) {
                free(g->gis[i].profile_name);
                for (size_t j = 0; j < g->gis[i].n_cis; j++)
                        free(g->gis[i].cis[j].profile_name);
                free(g->gis[i].cis);
                free(g->gis[i].vgpu_uuid);
        }
        free(g->gis);
        g->gis = NULL;
        g->n_gis = 0;
        for (size_t i = 0; i < g->n_vgpus; i++) {
                free(g->vgpus[i].type_name);
                free(g->vgpus[i].vm_id);
        }
        free(g->vgpus);
        g->vgpus = NULL;
        g->n_vgpus = 0;
}

struct gv_host *gv_host_free(struct gv_host *h)
{
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n_gpus; i++)
                gpu_done(&h->gpus[i]);
        free(h->gpus);
        if (h->ops && h->ops->close)
                h->ops->close(h->backend_ctx);
        gv_sysfs_free(h->sysfs);
        gv_catalog_free(h->catalog);
        strv_free(h->problems);
        free(h->hostname);
        free(h->driver_version);
        free(h->nvml_version);
        free(h->nvml_error);
        free(h->accel);
        free((char *)h->config.sysfs_root);
        free((char *)h->config.nvml_library);
        free(h);
        return NULL;
}

/* KVM when /dev/kvm opens read-write, else TCG with the reason (recorded in the inventory). */
static char *probe_accel(void)
{
        int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
                close(fd);
                return xstrdup("kvm");
        }
        return xasprintf("tcg (/dev/kvm: %s)", strerror(errno));
}

static void gpu_add_problem(struct gv_gpu *g, const char *fmt, ...) _printf_(2, 3);
static void gpu_add_problem(struct gv_gpu *g, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        strv_consume(&g->problems, xvasprintf(fmt, ap));
        va_end(ap);
}

/* IOMMU group members other than the GPU itself, and whether the group can be assigned. */
static void read_group(struct gv_host *h, struct gv_gpu *g)
{
        _cleanup_(gv_iommu_verdict_freep) struct gv_iommu_verdict *v = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_iommu_check_assignment(h->sysfs, g->bdf, &v, &e);
        if (r < 0) {
                g->passthrough_blocker = xstrdup(gv_error_msg(e, r));
                return;
        }
        g->iommu_group = (int)v->group;
        for (size_t i = 0; i < v->n_members; i++) {
                const struct gv_iommu_member *m = &v->members[i];
                if (strcmp(m->bdf, g->bdf) == 0)
                        continue;
                g->group = xreallocarray(g->group, g->n_group + 1, sizeof(*g->group));
                g->group[g->n_group++] = (struct gv_group_member){
                        .class_code = m->class_code,
                        .driver = m->driver ? xstrdup(m->driver) : NULL,
                        .same_device = m->role == GV_IOMMU_ROLE_ASSIGNED,
                };
                snprintf(g->group[g->n_group - 1].bdf, sizeof(g->group[0].bdf), "%s", m->bdf);
        }
        if (!v->viable && v->reason)
                g->passthrough_blocker = xstrdup(v->reason);
}

static void fill_pci(struct gv_gpu *g, const struct gv_pci_device *d)
{
        g->addr = d->addr;
        snprintf(g->bdf, sizeof(g->bdf), "%s", d->bdf);
        g->vendor_id = d->vendor;
        g->device_id = d->device;
        g->subsystem_vendor_id = d->subsystem_vendor;
        g->subsystem_device_id = d->subsystem_device;
        g->class_code = d->class_code;
        g->driver = d->driver ? xstrdup(d->driver) : NULL;
        g->numa_node = d->numa_node;
        g->iommu_group = (int)d->iommu_group;
        g->reset_methods = xnew0(char *, 1);
        STRV_FOREACH(m, d->reset_methods)
                strv_extend(&g->reset_methods, *m);
        g->sriov_total_vfs = d->sriov_total_vfs;
        g->sriov_num_vfs = d->sriov_num_vfs;
        STRV_FOREACH(vf, d->vfs)
                strv_extend(&g->vfs, *vf);
}

/* Fill g from its PCI function and the backend. Never fails: what cannot be read becomes a
 * problem listed on the GPU, so one broken GPU does not hide the others. */
static void inspect_gpu(struct gv_host *h, struct gv_gpu *g, const struct gv_pci_device *d)
{
        fill_pci(g, d);
        g->backend = xstrdup(h->ops->name);
        read_group(h, g);
        if (g->driver && strcmp(g->driver, GV_DRIVER_VFIO_PCI) == 0)
                g->mode = GV_GPU_MODE_PASSTHROUGH;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = h->ops->inspect(h->backend_ctx, h, g, &e);
        if (r < 0)
                gpu_add_problem(g, "%s", gv_error_msg(e, r));
}

int gv_host_open(const struct gv_host_config *cfg, struct gv_host **ret, struct gv_error **err)
{
        _cleanup_(gv_host_freep) struct gv_host *h = xnew0(struct gv_host, 1);
        h->config.sysfs_root = xstrdup(cfg->sysfs_root ? cfg->sysfs_root : "/");
        h->config.nvml_library = cfg->nvml_library ? xstrdup(cfg->nvml_library) : NULL;

        int r = gv_sysfs_new(h->config.sysfs_root, &h->sysfs, err);
        if (r < 0)
                return r;

        char hn[256] = "";
        if (gethostname(hn, sizeof(hn) - 1) < 0)
                snprintf(hn, sizeof(hn), "localhost");
        h->hostname = xstrdup(hn);
        h->accel = probe_accel();

        /* The catalog only names models here; a broken catalog must not hide the hardware. */
        if (gv_catalog_load_default(&h->catalog, NULL) < 0)
                h->catalog = NULL;

        _cleanup_(gv_pci_inventory_freep) struct gv_pci_inventory *inv = NULL;
        r = gv_pci_enumerate(h->sysfs, GV_PCI_ENUM_SKIP_VFS, &inv, err);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot list PCI devices under '%s'", h->sysfs->sys);

        h->ops = backends[0];
        char *unavailable = NULL;
        (void)h->ops->open(&h->config, &h->backend_ctx, &unavailable);
        h->nvml_error = unavailable;
        if (h->ops->host_info)
                h->ops->host_info(h->backend_ctx, h);

        for (size_t i = 0; i < inv->n_devices; i++) {
                const struct gv_pci_device *d = inv->devices[i];
                if (d->vendor != h->ops->pci_vendor || (d->class_code >> 16) != GV_PCI_CLASS_DISPLAY ||
                    d->physfn)
                        continue;
                h->gpus = xreallocarray(h->gpus, h->n_gpus + 1, sizeof(*h->gpus));
                struct gv_gpu *g = &h->gpus[h->n_gpus];
                *g = (struct gv_gpu){ .index = (unsigned)h->n_gpus };
                h->n_gpus++;
                inspect_gpu(h, g, d);
        }
        /* Functions that could not be read are reported on the GPU they belong to, or lost
         * nowhere: a GPU whose own files are corrupt still shows up with the problem. */
        for (size_t i = 0; i < inv->n_problems; i++) {
                const struct gv_pci_problem *p = &inv->problems[i];
                struct gv_pci_addr a;
                bool placed = false;
                if (gv_parse_pci_addr(p->bdf, &a) == 0)
                        for (size_t j = 0; j < h->n_gpus; j++) {
                                struct gv_gpu *g = &h->gpus[j];
                                if (g->addr.domain == a.domain && g->addr.bus == a.bus &&
                                    g->addr.slot == a.slot) {
                                        gpu_add_problem(g, "%s", p->msg);
                                        placed = true;
                                }
                        }
                if (!placed)
                        strv_extend(&h->problems, p->msg);
        }
        *ret = TAKE_PTR(h);
        return 0;
}

int gv_host_refresh_gpu(struct gv_host *h, struct gv_gpu *g, struct gv_error **err)
{
        _cleanup_(gv_pci_device_freep) struct gv_pci_device *d = NULL;
        int r = gv_pci_device_read(h->sysfs, g->bdf, &d, err);
        if (r < 0)
                return r;
        unsigned index = g->index;
        gpu_done(g);
        g->index = index;
        inspect_gpu(h, g, d);
        return 0;
}

int gv_host_find_gpu(struct gv_host *h, const char *selector, struct gv_gpu **ret,
                     struct gv_error **err)
{
        uint32_t idx;
        struct gv_pci_addr a;
        if (gv_parse_u32(selector, 10, &idx) == 0) {
                if (idx < h->n_gpus) {
                        *ret = &h->gpus[idx];
                        return 0;
                }
        } else if (gv_parse_pci_addr(selector, &a) == 0) {
                for (size_t i = 0; i < h->n_gpus; i++)
                        if (gv_pci_addr_equal(&h->gpus[i].addr, &a)) {
                                *ret = &h->gpus[i];
                                return 0;
                        }
        } else {
                for (size_t i = 0; i < h->n_gpus; i++)
                        if ((h->gpus[i].valid & GV_GPU_HAS_UUID) &&
                            strcasecmp(h->gpus[i].uuid, selector) == 0) {
                                *ret = &h->gpus[i];
                                return 0;
                        }
        }
        if (h->n_gpus == 0)
                return gv_error_set(err, ENODEV, "no GPU '%s': this host has no GPUs (sysfs root "
                                    "'%s')", selector, h->config.sysfs_root);
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < h->n_gpus; i++)
                strv_consume(&l, xasprintf("%u (%s)", h->gpus[i].index, h->gpus[i].bdf));
        _cleanup_free_ char *list = strv_join(l, ", ");
        return gv_error_set(err, ENODEV, "no GPU '%s' on this host; GPUs are %s (an index, a "
                            "PCI address or a UUID)", selector, list);
}

/* Everything carved out of the GPU, as a sentence, or NULL when nothing is. */
char *gv_gpu_describe_use(const struct gv_gpu *g)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; i < g->n_vgpus; i++) {
                const struct gv_vgpu_instance *v = &g->vgpus[i];
                strv_consume(&l, xasprintf("vGPU %s %s%s%s", v->type_name ? v->type_name : "?",
                                           v->uuid[0] ? v->uuid : v->parent_bdf,
                                           v->vm_id ? " held by VM " : "",
                                           v->vm_id ? v->vm_id : ""));
        }
        for (size_t i = 0; i < g->n_gis; i++) {
                char p[24];
                strv_consume(&l, xasprintf("GPU instance %u (%s at slices %s)", g->gis[i].id,
                                           g->gis[i].profile_name ? g->gis[i].profile_name : "?",
                                           gv_mig_placement_format(&g->gis[i].placement, p,
                                                                   sizeof(p))));
        }
        if (!l)
                return NULL;
        return strv_join(l, ", ");
}

static int to_passthrough(struct gv_host *h, struct gv_gpu *g, struct gv_error **err)
{
        if (g->passthrough_blocker)
                return gv_error_set(err, EBUSY, "cannot pass GPU %s through: %s", g->bdf,
                                    g->passthrough_blocker);
        int r;
        if (g->mode != GV_GPU_MODE_NONE && g->mode != GV_GPU_MODE_UNKNOWN) {
                /* Leave vGPU/MIG first; the backend refuses while anything is carved out. With
                 * the mode unknown (no NVML) only the kernel's view of what is carved out (mdev
                 * devices, VF vGPU types, checked by the caller) guards the unbind. */
                r = h->ops->set_mode(h->backend_ctx, h, g, GV_GPU_MODE_NONE, err);
                if (r < 0)
                        return r;
        }
        _cleanup_(gv_vfio_binding_freep) struct gv_vfio_binding *b = NULL;
        r = gv_driver_bind_vfio(h->sysfs, g->bdf, &b, err);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot pass GPU %s through", g->bdf);
        return 0;
}

/* The host driver a companion function returns to. A separate `gpuvirt` run has no record of
 * what it had before pass-through, so the kernel's usual choice is named: the HDMI/DP audio
 * function of a graphics card (class 0x0403, passthrough.md §5) is driven by snd_hda_intel;
 * anything else stays unbound, which is safe. */
static const char *companion_driver(uint32_t class_code)
{
        return (class_code >> 8) == 0x0403 ? "snd_hda_intel" : NULL;
}

static int from_passthrough(struct gv_host *h, struct gv_gpu *g, struct gv_error **err)
{
        /* The GPU and its companion functions go back to their host drivers. */
        int r = gv_driver_restore_function(h->sysfs, g->bdf, h->ops->host_driver, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot return GPU %s to the host driver", g->bdf);
        for (size_t i = 0; i < g->n_group; i++) {
                if (!g->group[i].same_device || !g->group[i].driver ||
                    strcmp(g->group[i].driver, GV_DRIVER_VFIO_PCI) != 0)
                        continue;
                r = gv_driver_restore_function(h->sysfs, g->group[i].bdf,
                                               companion_driver(g->group[i].class_code), NULL,
                                               err);
                if (r < 0)
                        return gv_error_wrap(err, r, "cannot return %s (function of GPU %s) to "
                                             "its host driver", g->group[i].bdf, g->bdf);
        }
        return gv_host_refresh_gpu(h, g, err);
}

/* Can the GPU be put in this mode at all (before anything is changed)? */
static int check_mode_possible(const struct gv_gpu *g, enum gv_gpu_mode mode,
                               struct gv_error **err)
{
        if (mode == GV_GPU_MODE_MIG && !g->mig_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU %s (%s) does not support MIG", g->bdf,
                                    g->model ? g->model : "unknown model");
        if (mode == GV_GPU_MODE_VGPU && !g->vgpu_capable)
                return gv_error_set(err, EOPNOTSUPP, "GPU %s (%s) does not support vGPU: it offers "
                                    "neither vGPU types nor SR-IOV VFs", g->bdf,
                                    g->model ? g->model : "unknown model");
        return 0;
}

int gv_gpu_set_mode(struct gv_host *h, struct gv_gpu *g, enum gv_gpu_mode mode,
                    struct gv_error **err)
{
        if ((int)mode < 0 || mode >= GV_GPU_MODE_UNKNOWN) {
                _cleanup_free_ char *names = gv_gpu_mode_names();
                return gv_error_set(err, EINVAL, "'%s' is not a mode a GPU can be set to (valid: "
                                    "%s)", gv_gpu_mode_to_string(mode) ?: "?", names);
        }
        int r = check_mode_possible(g, mode, err);
        if (r < 0)
                return r;
        if (g->mode == mode && mode == GV_GPU_MODE_PASSTHROUGH)
                return 0;
        bool was_passthrough = g->mode == GV_GPU_MODE_PASSTHROUGH;
        /* A GPU bound to no driver at all is half-way between its host driver and vfio-pci (a
         * bind or a return that failed at drivers_probe): it goes back to its host driver
         * first, as from pass-through, so that retrying the same change completes it
         * (reliability.md R7). */
        if (was_passthrough || !g->driver) {
                r = from_passthrough(h, g, err);
                if (r < 0)
                        return r;
                if (mode == GV_GPU_MODE_NONE && g->mode == GV_GPU_MODE_NONE)
                        return 0;
        }
        if (mode == GV_GPU_MODE_PASSTHROUGH) {
                _cleanup_free_ char *use = gv_gpu_describe_use(g);
                if (use)
                        return gv_error_set(err, EBUSY, "GPU %s is in use (%s): destroy those "
                                            "before passing the whole GPU through", g->bdf, use);
                r = to_passthrough(h, g, err);
        } else {
                /* Always asked, even when the mode already matches: the backend converges what
                 * the mode implies (e.g. VFs for MIG-backed vGPU after a GPU reset). */
                if (!h->ops->set_mode)
                        return gv_error_set(err, EOPNOTSUPP, "the %s backend cannot change GPU "
                                            "modes", h->ops->name);
                r = h->ops->set_mode(h->backend_ctx, h, g, mode, err);
                if (r < 0 && was_passthrough) {
                        /* Put it back where it was rather than leave it half-way. */
                        gv_host_refresh_gpu(h, g, NULL);
                        if (to_passthrough(h, g, NULL) >= 0)
                                return gv_error_wrap(err, r, "GPU %s stays passed through",
                                                     g->bdf);
                        return gv_error_wrap(err, r, "GPU %s left pass-through but could not "
                                             "reach mode '%s' nor return to vfio-pci",
                                             g->bdf, gv_gpu_mode_to_string(mode));
                }
        }
        if (r < 0)
                return r;
        r = gv_host_refresh_gpu(h, g, err);
        /* The change is made; a read that failed (mode 'unknown') says nothing about it: read
         * once more before calling the change failed (reliability.md R6). */
        if (r >= 0 && g->mode == GV_GPU_MODE_UNKNOWN)
                r = gv_host_refresh_gpu(h, g, err);
        if (r < 0)
                return r;
        if (g->mode != mode)
                return gv_error_set(err, EIO, "GPU %s did not reach mode '%s': it reads as '%s'%s%s",
                                    g->bdf, gv_gpu_mode_to_string(mode),
                                    gv_gpu_mode_to_string(g->mode),
                                    g->mig_error || g->mode_reason ? ": " : "",
                                    g->mig_error ? g->mig_error
                                                 : g->mode_reason ? g->mode_reason : "");
        return 0;
}
