/* SPDX-License-Identifier: MIT */
/*
 * gpu-attach.c — the GPU hardware a VM's GPU requests need, prepared before QEMU starts and
 * released after it exits (agent.h). Every piece is recorded in the VM's state.json the moment
 * it exists, so a restarted agent (or the reconcile loop) can release it.
 *
 *   passthrough: the GPU's IOMMU group bound to vfio-pci (gv_gpu_set_mode), every function of
 *                the GPU given to QEMU;
 *   vgpu:        a time-sliced vGPU of the type (an mdev, or a VF with the type set);
 *   mig-vgpu:    a GPU instance of the type's profile added to the GPU's MIG layout, then a
 *                MIG-backed vGPU on it.
 * On a simulated host QEMU gets a stand-in device per GPU (qemu-cmd.h), and the status says
 * what it stands for; the hardware work is the same.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent/agent.h"
#include "hw/iommu.h"
#include "hw/sysfs.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "vmm/confine.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/enum-table.h"
#include "util/strv.h"
#include "vmm/tap.h"

static const char *const hw_kind_table[_GV_HW_MAX] = {
        [GV_HW_PASSTHROUGH] = "passthrough",
        [GV_HW_VGPU] = "vgpu",
        [GV_HW_MIG_GI] = "mig-gi",
        [GV_HW_TAP] = "tap",
};
DEFINE_STRING_TABLE_LOOKUP(gv_hw_kind, enum gv_hw_kind, hw_kind_table);

/* Does any VM other than `self` hold GPU `bdf` whole? (agent lock order: the VM table is not
 * taken here; the caller holds `self`'s lock, others' hw lists change only under their own
 * locks and the host lock, which we hold.) */
static bool held_whole_by_other(struct gv_agent *a, const struct gv_agent_vm *self,
                                const char *bdf)
{
        bool held = false;

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms && !held; i++) {
                const struct gv_agent_vm *vm = a->vms[i];
                if (vm == self)
                        continue;
                for (size_t k = 0; k < vm->n_hw; k++)
                        if (vm->hw[k].kind == GV_HW_PASSTHROUGH && strcmp(vm->hw[k].gpu, bdf) == 0)
                                held = true;
        }
        pthread_mutex_unlock(&a->lock);
        return held;
}

void gv_agent_hw_record(struct gv_agent *a, struct gv_agent_vm *vm, const struct gv_hw *hw)
{
        vm->hw = xreallocarray(vm->hw, vm->n_hw + 1, sizeof(*vm->hw));
        vm->hw[vm->n_hw++] = *hw;
        /* Best effort: the hardware exists either way, and reconcile finds what is unrecorded. */
        (void)gv_agent_vm_save(a, vm, NULL);
}

static void add_device(struct gv_agent_vm *vm, struct gv_vm_device *d)
{
        vm->devices = xreallocarray(vm->devices, vm->n_devices + 1, sizeof(*vm->devices));
        vm->devices[vm->n_devices++] = *d;
}

static bool is_pci_addr(const char *s)
{
        struct gv_pci_addr x;
        return gv_parse_pci_addr(s, &x) == 0;
}

/* The device QEMU gets for a vGPU `id` (an mdev UUID or a VF address). */
static void vgpu_device(struct gv_agent *a, const struct gv_gpu *g, const char *id,
                        const char *what, struct gv_vm_device *d)
{
        *d = (struct gv_vm_device){ .kind = GV_VM_DEV_VFIO_SYSFSDEV, .migration = true };
        d->sysfsdev = is_pci_addr(id) ? gv_sysfs_pci_device_dir(a->host->sysfs, id)
                                      : gv_sysfs_mdev_device_attr(a->host->sysfs, id, NULL);
        if (a->simulated) {
                d->kind = GV_VM_DEV_STANDIN;
                d->standin_for = xasprintf("simulated GPU %s (%s): %s %s", g->bdf,
                                           g->model ? g->model : "?", what, id);
        }
}

static int attach_passthrough(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_gpu *g,
                              struct gv_error **err)
{
        struct gv_vm_device d = { .kind = GV_VM_DEV_VFIO_HOST };
        struct gv_hw hw = { .kind = GV_HW_PASSTHROUGH };
        int r;

        if (held_whole_by_other(a, vm, g->bdf))
                return gv_error_set(err, EBUSY, "GPU %s is passed through to another VM.", g->bdf);
        if (g->mode != GV_GPU_MODE_PASSTHROUGH) {
                if (g->n_vgpus || g->n_gis)
                        return gv_error_set(err, EBUSY, "GPU %s is in mode %s with %zu vGPU(s) "
                                            "and %zu GPU instance(s); pass-through needs it "
                                            "unused.", g->bdf, gv_gpu_mode_to_string(g->mode),
                                            g->n_vgpus, g->n_gis);
                r = gv_gpu_set_mode(a->host, g, GV_GPU_MODE_PASSTHROUGH, err);
                if (r < 0)
                        return r;
        }
        snprintf(hw.gpu, sizeof(hw.gpu), "%s", g->bdf);
        gv_agent_hw_record(a, vm, &hw);
        GV_FAILPOINT("agent.attach.passthrough");
        /* Every function of the device (passthrough.md §5): the GPU first, then its siblings. */
        strv_extend(&d.functions, g->bdf);
        for (size_t i = 0; i < g->n_group; i++)
                if (g->group[i].same_device)
                        strv_extend(&d.functions, g->group[i].bdf);
        d.n_functions = strv_length(d.functions);
        if (a->simulated) {
                d.kind = GV_VM_DEV_STANDIN;
                d.standin_for = xasprintf("simulated GPU %s (%s): pass-through of %zu "
                                          "function(s)", g->bdf, g->model ? g->model : "?",
                                          d.n_functions);
        }
        add_device(vm, &d);
        return 0;
}

static int find_type(struct gv_agent *a, struct gv_gpu *g, const char *type, char **ret_gi_profile,
                     uint32_t *ret_creatable, struct gv_error **err)
{
        struct gv_vgpu_type_info *t = NULL;
        size_t n = 0;
        int r = gv_gpu_vgpu_types(a->host, g, &t, &n, err);

        if (r < 0)
                return r;
        r = -ENOENT;
        for (size_t i = 0; i < n; i++)
                if (strcasecmp(t[i].name, type) == 0) {
                        *ret_gi_profile = t[i].gi_profile ? xstrdup(t[i].gi_profile) : NULL;
                        *ret_creatable = t[i].creatable;
                        r = 0;
                }
        if (r < 0) {
                _cleanup_strv_free_ char **l = NULL;
                for (size_t i = 0; i < n; i++)
                        strv_extend(&l, t[i].name);
                _cleanup_free_ char *names = l ? strv_join(l, ", ") : xstrdup("none");
                gv_error_set(err, ENOENT, "GPU %s (%s) offers no vGPU type '%s'; valid: %s.",
                             g->bdf, g->model ? g->model : "?", type, names);
        }
        gv_vgpu_type_info_free_array(t, n);
        return r;
}

static int attach_vgpu(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_gpu *g,
                       const struct gv_vm_gpu *req, struct gv_error **err)
{
        _cleanup_free_ char *gi_profile = NULL;
        char id[GV_UUID_STR_LEN + 1] = "";
        struct gv_hw hw = { .kind = GV_HW_VGPU };
        struct gv_vm_device d;
        uint32_t creatable = 0;
        int r;

        if (held_whole_by_other(a, vm, g->bdf))
                return gv_error_set(err, EBUSY, "GPU %s is passed through to another VM.", g->bdf);
        if (g->mode == GV_GPU_MODE_NONE) {
                r = gv_gpu_set_mode(a->host, g, GV_GPU_MODE_VGPU, err);
                if (r < 0)
                        return r;
        }
        r = find_type(a, g, req->type, &gi_profile, &creatable, err);
        if (r < 0)
                return r;
        if (gi_profile)
                return gv_error_set(err, EINVAL, "vGPU type %s is MIG-backed; ask for mode "
                                    "mig-vgpu.", req->type);
        r = gv_gpu_vgpu_create(a->host, g, req->type, id, err);
        if (r < 0)
                return r;
        GV_FAILPOINT("agent.attach.vgpu_created");
        snprintf(hw.gpu, sizeof(hw.gpu), "%s", g->bdf);
        snprintf(hw.id, sizeof(hw.id), "%s", id);
        gv_agent_hw_record(a, vm, &hw);
        vgpu_device(a, g, id, req->type, &d);
        add_device(vm, &d);
        return 0;
}

static bool gi_known(const uint32_t *ids, size_t n, uint32_t id)
{
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

static int attach_mig_vgpu(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_gpu *g,
                           const struct gv_vm_gpu *req, struct gv_error **err)
{
        _cleanup_free_ char *gi_profile = NULL;
        _cleanup_free_ uint32_t *before = NULL;
        _cleanup_strv_free_ char **layout = NULL;
        char id[GV_UUID_STR_LEN + 1] = "";
        struct gv_hw gi = { .kind = GV_HW_MIG_GI }, hw = { .kind = GV_HW_VGPU };
        struct gv_vm_device d;
        uint32_t creatable = 0;
        size_t n_before;
        int r;

        if (held_whole_by_other(a, vm, g->bdf))
                return gv_error_set(err, EBUSY, "GPU %s is passed through to another VM.", g->bdf);
        if (g->mode == GV_GPU_MODE_NONE) {
                r = gv_gpu_set_mode(a->host, g, GV_GPU_MODE_MIG, err);
                if (r < 0)
                        return r;
        }
        if (g->mode != GV_GPU_MODE_MIG)
                return gv_error_set(err, EBUSY, "GPU %s is in mode %s; a MIG-backed vGPU needs "
                                    "mode mig.", g->bdf, gv_gpu_mode_to_string(g->mode));
        r = find_type(a, g, req->type, &gi_profile, &creatable, err);
        if (r < 0)
                return r;
        if (!gi_profile)
                return gv_error_set(err, EINVAL, "vGPU type %s is time-sliced, not MIG-backed; "
                                    "ask for mode vgpu.", req->type);
        /* The layout the GPU has, plus one instance of the type's profile. */
        n_before = g->n_gis;
        before = xnew0(uint32_t, n_before + 1);
        for (size_t i = 0; i < g->n_gis; i++) {
                before[i] = g->gis[i].id;
                strv_extend(&layout, g->gis[i].profile_name);
        }
        strv_extend(&layout, gi_profile);
        r = gv_gpu_mig_apply(a->host, g, layout, false, NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "No room for a %s GPU instance on GPU %s", gi_profile,
                                     g->bdf);
        GV_FAILPOINT("agent.attach.gi_created");
        for (size_t i = 0; i < g->n_gis; i++)
                if (!gi_known(before, n_before, g->gis[i].id)) {
                        gi.gi = g->gis[i].id;
                        snprintf(gi.gpu, sizeof(gi.gpu), "%s", g->bdf);
                        gv_agent_hw_record(a, vm, &gi);
                }
        r = gv_gpu_vgpu_create(a->host, g, req->type, id, err);
        if (r < 0)
                return r; /* the caller releases the instance with the rest */
        GV_FAILPOINT("agent.attach.mig_vgpu_created");
        snprintf(hw.gpu, sizeof(hw.gpu), "%s", g->bdf);
        snprintf(hw.id, sizeof(hw.id), "%s", id);
        gv_agent_hw_record(a, vm, &hw);
        vgpu_device(a, g, id, req->type, &d);
        add_device(vm, &d);
        return 0;
}

static int attach_one(struct gv_agent *a, struct gv_agent_vm *vm, const struct gv_vm_gpu *req,
                      size_t index, struct gv_error **err)
{
        _cleanup_(gv_error_freep) struct gv_error *first = NULL;
        struct gv_gpu *only = NULL;
        int r, first_r = 0;

        if (req->gpu) {
                r = gv_host_find_gpu(a->host, req->gpu, &only, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "gpus[%zu]", index);
        }
        /* Without a selector: the first GPU that can take it (placement across hosts is the
         * controller's; on one host, first fit). */
        for (size_t i = 0; i < a->host->n_gpus; i++) {
                struct gv_gpu *g = only ? only : &a->host->gpus[i];
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;

                switch (req->mode) {
                case GV_VM_GPU_PASSTHROUGH:
                        r = attach_passthrough(a, vm, g, &e);
                        break;
                case GV_VM_GPU_VGPU:
                        r = attach_vgpu(a, vm, g, req, &e);
                        break;
                case GV_VM_GPU_MIG_VGPU:
                        r = attach_mig_vgpu(a, vm, g, req, &e);
                        break;
                default:
                        r = -EINVAL;
                }
                if (r >= 0)
                        return 0;
                if (!first) {
                        first = TAKE_PTR(e);
                        first_r = r;
                }
                if (only)
                        break;
        }
        if (!first)
                return gv_error_set(err, ENODEV, "gpus[%zu]: this host has no GPU.", index);
        gv_error_propagate(err, TAKE_PTR(first));
        return gv_error_wrap(err, first_r, "gpus[%zu] (%s%s%s)%s", index,
                             gv_vm_gpu_mode_to_string(req->mode), req->type ? " " : "",
                             req->type ? req->type : "",
                             only ? "" : ": no GPU of this host can take it; the first refused");
}

int gv_agent_gpus_attach(struct gv_agent *a, struct gv_agent_vm *vm, struct gv_error **err)
{
        int r = 0;

        if (!vm->config->n_gpus)
                return 0;
        pthread_mutex_lock(&a->host_lock);
        for (size_t i = 0; i < vm->config->n_gpus && r >= 0; i++)
                r = attach_one(a, vm, &vm->config->gpus[i], i, err);
        pthread_mutex_unlock(&a->host_lock);
        if (r < 0)
                gv_agent_gpus_release(a, vm);
        return r;
}

/* The vfio group node of every real device the VM has (pass-through functions by their IOMMU
 * group, an mdev or VF by its iommu_group link), without repeats; stand-ins have none. */
static int vfio_nodes(struct gv_agent *a, const struct gv_agent_vm *vm, char ***ret,
                      struct gv_error **err)
{
        _cleanup_strv_free_ char **nodes = NULL;

        for (size_t i = 0; i < vm->n_devices; i++) {
                const struct gv_vm_device *d = &vm->devices[i];
                uint32_t g;
                int r = 0;

                if (d->kind == GV_VM_DEV_STANDIN)
                        continue;
                for (size_t f = 0; f < (d->kind == GV_VM_DEV_VFIO_HOST ? d->n_functions : 1);
                     f++) {
                        if (d->kind == GV_VM_DEV_VFIO_HOST) {
                                r = gv_iommu_group_of(a->host->sysfs, d->functions[f], &g, err);
                        } else {
                                _cleanup_free_ char *link = gv_path_join(d->sysfsdev,
                                                                         "iommu_group");
                                _cleanup_free_ char *base = NULL;
                                r = gv_readlink_basename(link, &base);
                                if (r >= 0)
                                        r = gv_parse_u32(base, 10, &g);
                                if (r < 0)
                                        r = gv_error_set(err, -r, "Cannot read the IOMMU group "
                                                         "of '%s': %s.", d->sysfsdev,
                                                         strerror(-r));
                        }
                        if (r < 0)
                                return r;
                        _cleanup_free_ char *node = xasprintf("/dev/vfio/%" PRIu32, g);
                        if (!strv_contains(nodes, node))
                                strv_extend(&nodes, node);
                }
        }
        *ret = TAKE_PTR(nodes);
        return 0;
}

int gv_agent_vfio_give(struct gv_agent *a, struct gv_agent_vm *vm,
                       const struct gv_confine_user *u, struct gv_error **err)
{
        _cleanup_strv_free_ char **nodes = NULL;
        int r;

        if (!u->switch_user)
                return 0;
        r = vfio_nodes(a, vm, &nodes, err);
        STRV_FOREACH(n, nodes) {
                if (r < 0)
                        break;
                r = gv_confine_give(u, *n, 0600, err);
        }
        return r;
}

/* The VM's vfio nodes back to root (before the hardware goes, which removes them anyway). */
static void vfio_take_back(struct gv_agent *a, struct gv_agent_vm *vm)
{
        _cleanup_strv_free_ char **nodes = NULL;

        if (vfio_nodes(a, vm, &nodes, NULL) < 0)
                return;
        STRV_FOREACH(n, nodes)
                (void)fchownat(AT_FDCWD, *n, 0, 0, AT_SYMLINK_NOFOLLOW);
}

static struct gv_gpu *gpu_by_bdf(struct gv_host *h, const char *bdf)
{
        for (size_t i = 0; i < h->n_gpus; i++)
                if (strcmp(h->gpus[i].bdf, bdf) == 0)
                        return &h->gpus[i];
        return NULL;
}

/* A GPU instance the VM records, with every vGPU on it first: a vGPU on the VM's instance is
 * the VM's even when unrecorded (an agent killed between making it and recording it, or a
 * failed attach), and the instance cannot go while it exists. */
static int release_gi(struct gv_agent *a, struct gv_gpu *g, uint32_t gi)
{
        _cleanup_strv_free_ char **ids = NULL;
        int r;

        for (size_t i = 0; i < g->n_vgpus; i++)
                if (g->vgpus[i].gi_id == gi) /* the id gv_host_vgpu_destroy() takes */
                        strv_extend(&ids, g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO ||
                                                          !g->vgpus[i].uuid[0]
                                                  ? g->vgpus[i].parent_bdf
                                                  : g->vgpus[i].uuid);
        STRV_FOREACH(id, ids) {
                r = gv_host_vgpu_destroy(a->host, *id, NULL);
                if (r < 0 && r != -ENOENT)
                        return r;
        }
        if (ids)
                (void)gv_host_refresh_gpu(a->host, g, NULL);
        return gv_gpu_mig_destroy(a->host, g, gi, NULL);
}

void gv_agent_gpus_release(struct gv_agent *a, struct gv_agent_vm *vm)
{
        pthread_mutex_lock(&a->host_lock);
        if (geteuid() == 0)
                vfio_take_back(a, vm);
        /* Newest first: the vGPU before its GPU instance. What fails stays recorded, for the
         * reconcile loop to retry. */
        size_t keep = 0;
        struct gv_hw *left = xnew0(struct gv_hw, vm->n_hw + 1);
        for (size_t k = vm->n_hw; k > 0; k--) {
                struct gv_hw *hw = &vm->hw[k - 1];
                struct gv_gpu *g = gpu_by_bdf(a->host, hw->gpu);
                int r = 0;

                if (g)
                        (void)gv_host_refresh_gpu(a->host, g, NULL);
                switch (hw->kind) {
                case GV_HW_VGPU:
                        r = gv_host_vgpu_destroy(a->host, hw->id, NULL);
                        break;
                case GV_HW_MIG_GI:
                        r = g ? release_gi(a, g, hw->gi) : -ENODEV;
                        break;
                case GV_HW_PASSTHROUGH:
                        r = g ? gv_gpu_set_mode(a->host, g, GV_GPU_MODE_NONE, NULL) : -ENODEV;
                        break;
                case GV_HW_TAP:
                        r = gv_tap_delete(hw->id, NULL); /* -ENOENT: already gone */
                        break;
                default:
                        break;
                }
                if (r < 0 && r != -ENOENT)
                        left[keep++] = *hw;
        }
        free(vm->hw);
        vm->hw = left;
        vm->n_hw = keep;
        pthread_mutex_unlock(&a->host_lock);
        for (size_t i = 0; i < vm->n_devices; i++) {
                strv_free(vm->devices[i].functions);
                free(vm->devices[i].sysfsdev);
                free(vm->devices[i].standin_for);
        }
        free(vm->devices);
        vm->devices = NULL;
        vm->n_devices = 0;
        (void)gv_agent_vm_save(a, vm, NULL);
}
