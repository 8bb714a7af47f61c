/* SPDX-License-Identifier: MIT */
/*
 * nvidia.c — the NVIDIA backend behind struct gv_gpu_backend_ops: NVML (src/hw/nvml) for MIG,
 * vGPU types and live values; sysfs (src/hw) for SR-IOV, mdev and the vendor-VFIO nvidia/
 * files. The sysfs side is the truth about which vGPU instances exist (mdev devices, VFs with
 * a current_vgpu_type); NVML adds what only the driver knows (VM ids, GPU instances).
 *
 * Mode transitions (DESIGN.md's table, vgpu.md §2 and §5, nvml-abi.md §9):
 *   none  -> vgpu  needs the vGPU manager (NVML virtualization mode HOST_VGPU); MIG off; SR-IOV
 *                  VFs enabled through sriov_numvfs (the RFC driver's way; NVIDIA's
 *                  sriov-manage does the same write)
 *   none  -> mig   MIG on (Hopper: at once; Ampere: may stay pending until a GPU reset); VFs on
 *                  too when a vGPU manager is present, so GPU instances can back MIG vGPUs
 *   any   -> none  MIG off and VFs off; refused while anything is carved out
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "host/backend.h"
#include "host/host-internal.h"
#include "hw/mdev.h"
#include "hw/nvidia-vfio.h"
#include "hw/nvml/nvml.h"
#include "hw/pci.h"
#include "hw/sriov.h"
#include "util/alloc.h"
#include "util/strv.h"

/* The newest vGPU utilization sample seen for an instance, and per GPU the newest timestamp
 * (nvmlDeviceGetVgpuUtilization returns only samples newer than the one the caller names, so
 * an instance without a new sample keeps its last one). */
struct nv_vgpu_seen {
        unsigned gpu; /* gv_gpu index */
        uint32_t instance;
        struct gv_nvml_vgpu_sample sample;
};

struct nv_ctx {
        struct gv_nvml *nvml; /* NULL when NVML could not be loaded */
        struct nv_vgpu_seen *seen;
        size_t n_seen;
        uint64_t *last_seen_us; /* by gv_gpu index */
        size_t n_last_seen;
};

static int nv_open(const struct gv_host_config *cfg, void **ret_ctx, char **ret_unavailable)
{
        struct nv_ctx *c = xnew0(struct nv_ctx, 1);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_nvml_open(cfg->nvml_library, &c->nvml, &e);
        if (r < 0) {
                c->nvml = NULL;
                *ret_unavailable = xstrdup(gv_error_msg(e, r));
        }
        *ret_ctx = c;
        return r < 0 ? r : 0;
}

static void nv_close(void *ctx)
{
        struct nv_ctx *c = ctx;
        if (!c)
                return;
        gv_nvml_unref(c->nvml);
        free(c->seen);
        free(c->last_seen_us);
        free(c);
}

static void nv_host_info(void *ctx, struct gv_host *h)
{
        struct nv_ctx *c = ctx;
        if (!c->nvml)
                return;
        (void)gv_nvml_driver_version(c->nvml, &h->driver_version, NULL);
        (void)gv_nvml_nvml_version(c->nvml, &h->nvml_version, NULL);
}

/* The NVML device of a GPU, or NULL with a reason. A GPU bound to another driver (vfio-pci,
 * none) is invisible to NVML, as on a real host. */
static int nv_device(struct nv_ctx *c, const struct gv_gpu *g, struct gv_nvml_device **ret,
                     struct gv_error **err)
{
        if (!c->nvml)
                return gv_error_set(err, ELIBACC, "NVML is not available on this host, so GPU %s "
                                    "cannot be managed (see 'gpuvirt host inspect')", g->bdf);
        if (!g->driver || strcmp(g->driver, "nvidia") != 0)
                return gv_error_set(err, ENODEV, "GPU %s is bound to '%s', not to the nvidia "
                                    "driver, so NVML cannot see it", g->bdf,
                                    g->driver ? g->driver : "no driver");
        return gv_nvml_device_by_pci(c->nvml, g->bdf, ret, err);
}

/* reliability.md F8: an NVML call about the GPU answered GPU_IS_LOST or RESET_REQUIRED
 * [S74][S75] since `before` (gv_nvml_fatal_count): the GPU is unhealthy until it answers again
 * (the next refresh reads it anew). The error of the operation, when it has one, is the reason.
 * Returns r. */
static int nv_health(struct gv_gpu *g, unsigned before, int r, struct gv_error **err)
{
        int code = 0;
        if (g->unhealthy || gv_nvml_fatal_count(&code) == before)
                return r;
        if (r < 0 && err && *err)
                g->unhealthy = xasprintf("GPU %s does not answer: %s; it takes no new VMs until "
                                         "it answers again (reset or replace it)", g->bdf,
                                         (*err)->msg);
        else
                g->unhealthy = xasprintf("GPU %s does not answer: NVML says %s; it takes no new "
                                         "VMs until it answers again (reset or replace it)",
                                         g->bdf, gv_nvml_return_to_string(code));
        return r;
}

static const char *short_name(const char *n)
{
        return n ? gv_vgpu_name_short(n) : NULL;
}

static void read_live_values(struct gv_nvml_device *d, struct gv_gpu *g)
{
        char *s = NULL;

        if (gv_nvml_device_name(d, &s, NULL) >= 0)
                g->product_name = s;
        s = NULL;
        if (gv_nvml_device_uuid(d, &s, NULL) >= 0) {
                snprintf(g->uuid, sizeof(g->uuid), "%s", s);
                g->valid |= GV_GPU_HAS_UUID;
                free(s);
        }
        struct gv_nvml_memory m;
        if (gv_nvml_device_memory(d, &m, NULL) >= 0) {
                g->memory_total_mib = m.total >> 20;
                g->memory_used_mib = m.used >> 20;
                g->valid |= GV_GPU_HAS_MEMORY;
        }
        struct gv_nvml_utilization u;
        if (gv_nvml_device_utilization(d, &u, NULL) >= 0) {
                g->util_gpu_pct = u.gpu_pct;
                g->util_mem_pct = u.memory_pct;
                g->valid |= GV_GPU_HAS_UTIL;
        }
        if (gv_nvml_device_power(d, &g->power_mw, NULL) >= 0)
                g->valid |= GV_GPU_HAS_POWER;
        if (gv_nvml_device_temperature(d, &g->temperature_c, NULL) >= 0)
                g->valid |= GV_GPU_HAS_TEMP;
}

static const struct gv_mig_gi_profile *profile_by_id(const struct gv_mig_gi_profile *p, size_t n,
                                                     uint32_t id)
{
        for (size_t i = 0; i < n; i++)
                if (p[i].id == id)
                        return &p[i];
        return NULL;
}

static int read_mig(struct gv_nvml_device *d, struct gv_gpu *g, struct gv_error **err)
{
        bool cur = false, pend = false;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_nvml_mig_mode(d, &cur, &pend, &e);
        if (r == -EOPNOTSUPP) {
                g->mig_capable = false;
                return 0;
        }
        if (r < 0) {
                /* The MIG state is unknown: say so rather than guess "disabled". */
                g->mig_error = xstrdup(gv_error_msg(e, r));
                g->mig_errno = -r;
                gv_error_propagate(err, TAKE_PTR(e));
                return r;
        }
        g->mig_capable = true;
        g->mig_enabled = cur;
        g->mig_pending_enabled = pend;
        g->valid |= GV_GPU_HAS_MIG;
        if (!cur)
                return 0;

        struct gv_mig_gi_profile *prof = NULL;
        size_t n_prof = 0;
        r = gv_nvml_gi_profiles(d, &prof, &n_prof, &e);
        if (r < 0) {
                /* The instances cannot be listed: the layout is unknown, and an operation that
                 * trusted an empty list would leave instances behind. */
                g->mig_error = xstrdup(gv_error_msg(e, r));
                g->mig_errno = -r;
                gv_error_propagate(err, TAKE_PTR(e));
                return r;
        }
        for (size_t i = 0; i < n_prof; i++)
                g->mig_memory_slices = MAX(g->mig_memory_slices, prof[i].memory_slices);
        struct gv_nvml_gi *gis = NULL;
        size_t n_gis = 0;
        r = gv_nvml_gi_list(d, &gis, &n_gis, &e);
        if (r >= 0) {
                g->gis = xnew0(struct gv_mig_gi_info, n_gis + 1);
                for (size_t i = 0; i < n_gis; i++) {
                        struct gv_mig_gi_info *gi = &g->gis[g->n_gis++];
                        const struct gv_mig_gi_profile *p = profile_by_id(prof, n_prof,
                                                                          gis[i].profile_id);
                        gi->id = gis[i].id;
                        gi->profile_id = gis[i].profile_id;
                        gi->profile_name = xstrdup(p && p->name ? p->name : "unknown");
                        gi->memory_mib = p ? p->memory_mib : 0;
                        gi->placement = gis[i].placement;
                        struct gv_nvml_ci *cis = NULL;
                        size_t n_cis = 0;
                        if (gv_nvml_ci_list(&gis[i], &cis, &n_cis, NULL) >= 0) {
                                gi->cis = xnew0(struct gv_mig_ci_info, n_cis + 1);
                                for (size_t j = 0; j < n_cis; j++)
                                        gi->cis[gi->n_cis++] = (struct gv_mig_ci_info){
                                                .id = cis[j].id,
                                                .profile_id = cis[j].profile_id,
                                                .start = cis[j].placement.start,
                                                .size = cis[j].placement.size,
                                        };
                                free(cis);
                        }
                }
                free(gis);
        } else {
                g->mig_error = xstrdup(gv_error_msg(e, r));
                g->mig_errno = -r;
                gv_error_propagate(err, TAKE_PTR(e));
        }
        gv_nvml_gi_profiles_free(prof, n_prof);
        return r < 0 ? r : 0;
}

static struct gv_vgpu_instance *add_vgpu(struct gv_gpu *g)
{
        g->vgpus = xreallocarray(g->vgpus, g->n_vgpus + 1, sizeof(*g->vgpus));
        struct gv_vgpu_instance *v = &g->vgpus[g->n_vgpus++];
        *v = (struct gv_vgpu_instance){ .gi_id = UINT32_MAX };
        return v;
}

/* NVML's view of one active vGPU instance, used to enrich what sysfs says. */
struct nv_active {
        uint32_t instance, type_id, gi_id;
        char *uuid, *vm_id;
        bool used;
};

static void read_active(struct gv_nvml_device *d, struct nv_active **ret, size_t *ret_n)
{
        uint32_t *ids = NULL;
        size_t n = 0;
        *ret = NULL;
        *ret_n = 0;
        if (!d || gv_nvml_vgpu_active_instances(d, &ids, &n, NULL) < 0)
                return;
        struct nv_active *a = xnew0(struct nv_active, n + 1);
        for (size_t i = 0; i < n; i++) {
                a[i].instance = ids[i];
                (void)gv_nvml_vgpu_instance_type(d, ids[i], &a[i].type_id, NULL);
                (void)gv_nvml_vgpu_instance_uuid(d, ids[i], &a[i].uuid, NULL);
                bool is_uuid;
                if (gv_nvml_vgpu_instance_vm_id(d, ids[i], &a[i].vm_id, &is_uuid, NULL) >= 0 &&
                    a[i].vm_id && !*a[i].vm_id) {
                        free(a[i].vm_id);
                        a[i].vm_id = NULL;
                }
                a[i].gi_id = UINT32_MAX;
                uint32_t gi;
                if (gv_nvml_vgpu_instance_gi_id(d, ids[i], &gi, NULL) >= 0 && gi != GV_NVML_NO_GI)
                        a[i].gi_id = gi;
        }
        free(ids);
        *ret = a;
        *ret_n = n;
}

static void free_active(struct nv_active *a, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(a[i].uuid);
                free(a[i].vm_id);
        }
        free(a);
}

static struct nv_active *match_active(struct nv_active *a, size_t n, const char *uuid,
                                      uint32_t type_id)
{
        for (size_t i = 0; i < n; i++)
                if (!a[i].used && uuid && a[i].uuid && strcasecmp(a[i].uuid, uuid) == 0)
                        return &a[i];
        for (size_t i = 0; i < n; i++)
                if (!a[i].used && !uuid && a[i].type_id == type_id)
                        return &a[i];
        return NULL;
}

static void apply_active(struct gv_gpu *g, struct gv_vgpu_instance *v, struct nv_active *m)
{
        if (!m)
                return;
        m->used = true;
        if (m->vm_id)
                v->vm_id = xstrdup(m->vm_id);
        v->gi_id = m->gi_id;
        if (!v->uuid[0] && m->uuid)
                snprintf(v->uuid, sizeof(v->uuid), "%s", m->uuid);
        for (size_t i = 0; i < g->n_gis; i++)
                if (g->gis[i].id == m->gi_id && !g->gis[i].vgpu_uuid)
                        g->gis[i].vgpu_uuid = xstrdup(v->uuid[0] ? v->uuid : v->parent_bdf);
}

static void type_facts(struct gv_nvml_device *d, struct gv_vgpu_instance *v)
{
        if (!d)
                return;
        struct gv_nvml_vgpu_type t = {};
        if (gv_nvml_vgpu_type_info(d, v->type_id, &t, NULL) < 0)
                return;
        free(v->type_name);
        v->type_name = xstrdup(short_name(t.name));
        v->framebuffer_mib = t.framebuffer_bytes >> 20;
        gv_nvml_vgpu_type_done(&t);
}

/* The vGPU instances: VFs with a current_vgpu_type (vendor-VFIO) or mdev devices whose parent
 * is the GPU or one of its VFs. */
static void read_vgpus(struct gv_host *h, struct gv_nvml_device *d, struct gv_gpu *g)
{
        struct nv_active *act = NULL;
        size_t n_act = 0;
        read_active(d, &act, &n_act);

        char *const *vfs = g->vfs;
        if (g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO) {
                STRV_FOREACH(vf, vfs) {
                        uint32_t t = 0;
                        if (gv_nvidia_current_vgpu_type(h->sysfs, *vf, &t, NULL) < 0 || t == 0)
                                continue;
                        struct gv_vgpu_instance *v = add_vgpu(g);
                        v->type_id = t;
                        snprintf(v->parent_bdf, sizeof(v->parent_bdf), "%s", *vf);
                        type_facts(d, v);
                        apply_active(g, v, match_active(act, n_act, NULL, t));
                        if (!v->type_name)
                                v->type_name = xasprintf("type %u", t);
                }
        } else if (g->vgpu_interface == GV_VGPU_INTERFACE_MDEV) {
                _cleanup_(gv_mdev_instance_list_freep) struct gv_mdev_instance_list *l = NULL;
                if (gv_mdev_list_instances(h->sysfs, &l, NULL) >= 0)
                        for (size_t i = 0; i < l->n; i++) {
                                const struct gv_mdev_instance *mi = &l->instances[i];
                                if (strcmp(mi->parent, g->bdf) != 0 &&
                                    !strv_contains(vfs, mi->parent))
                                        continue;
                                struct gv_vgpu_instance *v = add_vgpu(g);
                                snprintf(v->uuid, sizeof(v->uuid), "%s", mi->uuid);
                                snprintf(v->parent_bdf, sizeof(v->parent_bdf), "%s", mi->parent);
                                uint32_t t = 0;
                                if (mi->type_id && gv_startswith(mi->type_id, "nvidia-"))
                                        (void)gv_parse_u32(mi->type_id + 7, 10, &t);
                                v->type_id = t;
                                type_facts(d, v);
                                apply_active(g, v, match_active(act, n_act, v->uuid, t));
                                if (!v->type_name)
                                        v->type_name = xstrdup(mi->type_id ? mi->type_id : "?");
                        }
        }
        free_active(act, n_act);
}

static int nv_inspect_do(void *ctx, struct gv_host *h, struct gv_gpu *g, struct gv_error **err)
{
        struct nv_ctx *c = ctx;
        const struct gv_gpu_model *m =
                h->catalog ? gv_catalog_find_pci(h->catalog, g->vendor_id, g->device_id) : NULL;
        if (m) {
                g->model = xstrdup(m->name);
                g->mig_capable = m->n_gi_profiles > 0;
                g->mig_memory_slices = m->mig_memory_slices;
                g->vgpu_capable = m->n_vgpu_types > 0;
        }
        enum gv_vgpu_interface vi = GV_VGPU_INTERFACE_NONE;
        if (gv_nvidia_vgpu_interface_of(h->sysfs, g->bdf, g->vfs, &vi, NULL) >= 0)
                g->vgpu_interface = vi;
        if (g->sriov_total_vfs > 0 || g->vgpu_interface != GV_VGPU_INTERFACE_NONE)
                g->vgpu_capable = true;
        bool on_host_driver = g->driver && strcmp(g->driver, "nvidia") == 0;
        if (!c->nvml && on_host_driver && g->mig_capable) {
                g->mig_error = xasprintf("NVML is not available, so the MIG state of GPU %s "
                                         "cannot be read: %s", g->bdf, h->nvml_error
                                         ? h->nvml_error : "the library could not be loaded");
                g->mig_errno = ELIBACC;
        }

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_nvml_device *d = NULL;
        int r = 0;
        if (g->mode != GV_GPU_MODE_PASSTHROUGH && c->nvml && on_host_driver) {
                r = nv_device(c, g, &d, &e);
                if (r >= 0) {
                        read_live_values(d, g);
                        r = read_mig(d, g, &e);
                        bool het = false;
                        if (gv_nvml_vgpu_heterogeneous_mode(d, &het, NULL) >= 0)
                                g->vgpu_heterogeneous = het;
                }
        }
        if (g->mode != GV_GPU_MODE_PASSTHROUGH)
                read_vgpus(h, d, g);
        if (!g->model)
                g->model = g->product_name ? xstrdup(g->product_name)
                                           : xasprintf("%04x:%04x", g->vendor_id, g->device_id);
        if (g->mode != GV_GPU_MODE_PASSTHROUGH) {
                if (g->mig_error) {
                        g->mode = GV_GPU_MODE_UNKNOWN;
                        g->mode_reason = xstrdup(g->mig_error);
                } else if (g->mig_enabled)
                        g->mode = GV_GPU_MODE_MIG;
                else if (g->sriov_num_vfs > 0 || g->n_vgpus > 0)
                        g->mode = GV_GPU_MODE_VGPU;
                else
                        g->mode = GV_GPU_MODE_NONE;
        }
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return r;
        }
        return 0;
}

static int set_vfs(struct gv_host *h, struct gv_gpu *g, bool on, struct gv_error **err)
{
        uint32_t want = on ? g->sriov_total_vfs : 0;
        if (g->sriov_num_vfs == want || (on && g->sriov_total_vfs == 0))
                return 0;
        return gv_sriov_set_numvfs(h->sysfs, g->bdf, want, err);
}

static int set_mig(struct gv_nvml_device *d, struct gv_gpu *g, bool on, struct gv_error **err)
{
        if (g->mig_enabled == on && !(g->mig_pending_enabled != on))
                return 0;
        int act = 0;
        _cleanup_free_ char *msg = NULL;
        int r = gv_nvml_mig_mode_set(d, on, &act, &msg, err);
        if (r < 0)
                return r;
        if (act < 0)
                return gv_error_set(err, -act, "MIG mode on GPU %s is now pending %s but not "
                                    "active: %s", g->bdf, on ? "enable" : "disable",
                                    msg ? msg : "a GPU reset is needed");
        return 0;
}

static int nv_set_mode_do(void *ctx, struct gv_host *h, struct gv_gpu *g, enum gv_gpu_mode mode,
                       struct gv_error **err)
{
        struct nv_ctx *c = ctx;
        struct gv_nvml_device *d = NULL;
        int r = nv_device(c, g, &d, err);
        if (r < 0)
                return r;
        if (mode != GV_GPU_MODE_NONE && mode != GV_GPU_MODE_VGPU && mode != GV_GPU_MODE_MIG)
                return gv_error_set(err, EINVAL, "mode '%s' is not the NVIDIA backend's",
                                    gv_gpu_mode_to_string(mode));
        enum gv_nvml_virt_mode vm = GV_NVML_VIRT_NONE;
        if (mode != GV_GPU_MODE_NONE) {
                /* Whether VFs go with the mode depends on it: never guess (a MIG GPU without
                 * its VFs would take no MIG-backed vGPU). */
                r = gv_nvml_virtualization_mode(d, &vm, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "cannot tell whether the vGPU manager runs "
                                             "for GPU %s, so its mode was left as it is", g->bdf);
        }
        bool vgpu_manager = vm == GV_NVML_VIRT_HOST_VGPU;
        if (mode == GV_GPU_MODE_VGPU && !vgpu_manager)
                return gv_error_set(err, EOPNOTSUPP, "GPU %s cannot do vGPU: the NVIDIA vGPU "
                                    "manager is not running on this host (NVML virtualization "
                                    "mode '%s'); install the vGPU host driver", g->bdf,
                                    gv_nvml_virt_mode_to_string(vm));
        if (mode == GV_GPU_MODE_VGPU && g->sriov_total_vfs == 0 &&
            g->vgpu_interface == GV_VGPU_INTERFACE_NONE)
                return gv_error_set(err, EOPNOTSUPP, "GPU %s offers neither SR-IOV VFs nor mdev "
                                    "types: it cannot host vGPUs", g->bdf);

        /* What the mode implies, and what has to change to get there. */
        bool mig_on = mode == GV_GPU_MODE_MIG;
        bool vfs_on = mode == GV_GPU_MODE_VGPU || (mig_on && vgpu_manager);
        bool mig_change = g->mig_capable &&
                          (g->mig_enabled != mig_on || g->mig_pending_enabled != mig_on);
        bool vfs_change = g->sriov_total_vfs > 0 &&
                          (g->sriov_num_vfs > 0) != vfs_on;
        if (!mig_change && !vfs_change)
                return 0;
        /* Turning VFs on never disturbs anything; changing MIG or turning VFs off does. */
        if (mig_change || !vfs_on) {
                _cleanup_free_ char *use = gv_gpu_describe_use(g);
                if (use)
                        return gv_error_set(err, EBUSY, "GPU %s is in use (%s): destroy those "
                                            "before changing its mode from '%s' to '%s'", g->bdf,
                                            use, gv_gpu_mode_to_string(g->mode),
                                            gv_gpu_mode_to_string(mode));
        }
        if (mig_change) {
                r = set_mig(d, g, mig_on, err);
                if (r < 0)
                        return r;
        }
        if (vfs_change)
                return set_vfs(h, g, vfs_on, err);
        return 0;
}

static int nv_mig_profiles_do(void *ctx, struct gv_gpu *g, struct gv_mig_gi_profile **ret,
                           size_t *ret_n, struct gv_error **err)
{
        struct gv_nvml_device *d = NULL;
        int r = nv_device(ctx, g, &d, err);
        if (r < 0)
                return r;
        return gv_nvml_gi_profiles(d, ret, ret_n, err);
}

static int nv_mig_create_do(void *ctx, struct gv_gpu *g, uint32_t profile_id,
                         const struct gv_mig_placement *placement, uint32_t *ret_gi_id,
                         struct gv_error **err)
{
        struct gv_nvml_device *d = NULL;
        int r = nv_device(ctx, g, &d, err);
        if (r < 0)
                return r;
        struct gv_nvml_gi gi;
        r = gv_nvml_gi_create(d, profile_id, placement, &gi, err);
        if (r < 0)
                return r;
        *ret_gi_id = gi.id;
        return 0;
}

static int nv_mig_destroy_do(void *ctx, struct gv_gpu *g, uint32_t gi_id, struct gv_error **err)
{
        struct gv_nvml_device *d = NULL;
        int r = nv_device(ctx, g, &d, err);
        if (r < 0)
                return r;
        struct gv_nvml_gi gi;
        r = gv_nvml_gi_by_id(d, gi_id, &gi, err);
        if (r < 0)
                return r;
        /* Compute instances go first: NVML refuses to destroy a GI that still has them. */
        struct gv_nvml_ci *cis = NULL;
        size_t n = 0;
        r = gv_nvml_ci_list(&gi, &cis, &n, err);
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = gv_nvml_ci_destroy(&cis[i], err);
        free(cis);
        if (r < 0)
                return r;
        return gv_nvml_gi_destroy(&gi, err);
}

/* How many more instances of type_id the kernel interface can create now. */
static uint32_t creatable_now(struct gv_host *h, const struct gv_gpu *g, char *const *vfs,
                              uint32_t type_id)
{
        uint32_t n = 0;
        if (g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO) {
                STRV_FOREACH(vf, vfs) {
                        uint32_t cur = 0;
                        if (gv_nvidia_current_vgpu_type(h->sysfs, *vf, &cur, NULL) < 0 || cur)
                                continue;
                        _cleanup_(gv_nvidia_vgpu_type_list_freep)
                                struct gv_nvidia_vgpu_type_list *l = NULL;
                        if (gv_nvidia_read_creatable_vgpu_types(h->sysfs, *vf, &l, NULL) < 0)
                                continue;
                        for (size_t i = 0; i < l->n; i++)
                                if (l->types[i].id == type_id)
                                        n++;
                }
        } else if (g->vgpu_interface == GV_VGPU_INTERFACE_MDEV) {
                _cleanup_free_ char *tid = xasprintf("nvidia-%u", type_id);
                _cleanup_strv_free_ char **parents = NULL;
                strv_extend(&parents, g->bdf);
                STRV_FOREACH(vf, vfs)
                        strv_extend(&parents, *vf);
                STRV_FOREACH(p, parents) {
                        _cleanup_(gv_mdev_type_list_freep) struct gv_mdev_type_list *l = NULL;
                        if (gv_mdev_list_types(h->sysfs, *p, &l, NULL) < 0)
                                continue;
                        for (size_t i = 0; i < l->n; i++)
                                if (strcmp(l->types[i].id, tid) == 0)
                                        n += l->types[i].available_instances;
                }
        }
        return n;
}

static int nv_vgpu_types_do(void *ctx, struct gv_host *h, struct gv_gpu *g,
                         struct gv_vgpu_type_info **ret, size_t *ret_n, struct gv_error **err)
{
        struct gv_nvml_device *d = NULL;
        int r = nv_device(ctx, g, &d, err);
        if (r < 0)
                return r;
        uint32_t *ids = NULL;
        size_t n = 0;
        r = gv_nvml_vgpu_supported_types(d, &ids, &n, err);
        if (r < 0)
                return r;
        struct gv_mig_gi_profile *prof = NULL;
        size_t n_prof = 0;
        if (g->mig_enabled)
                (void)gv_nvml_gi_profiles(d, &prof, &n_prof, NULL);
        char *const *vfs = g->vfs;
        struct gv_vgpu_type_info *out = xnew0(struct gv_vgpu_type_info, n + 1);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                struct gv_nvml_vgpu_type t = {};
                r = gv_nvml_vgpu_type_info(d, ids[i], &t, err);
                if (r < 0)
                        break;
                struct gv_vgpu_type_info *o = &out[k++];
                o->type_id = ids[i];
                o->name = xstrdup(short_name(t.name));
                o->vgpu_class = t.vgpu_class ? xstrdup(t.vgpu_class) : NULL;
                o->framebuffer_mib = t.framebuffer_bytes >> 20;
                o->max_instances = t.max_instances;
                if (t.gi_profile_id != GV_NVML_NO_GI_PROFILE) {
                        const struct gv_mig_gi_profile *p =
                                profile_by_id(prof, n_prof, t.gi_profile_id);
                        const struct gv_gpu_model *m =
                                h->catalog ? gv_catalog_find_pci(h->catalog, g->vendor_id,
                                                                 g->device_id)
                                           : NULL;
                        const struct gv_mig_gi_profile *cp =
                                m ? gv_gpu_model_find_gi_profile_id(m, t.gi_profile_id) : NULL;
                        o->gi_profile = xstrdup(p ? p->name
                                                  : cp ? cp->name
                                                       : "unknown MIG profile");
                }
                /* The kernel files count free parents (one vGPU per VF); the type's own limit
                 * caps that (vgpu.md §7: e.g. 4 of H100XM-20C on 32 VFs). */
                uint32_t same = 0;
                for (size_t j = 0; j < g->n_vgpus; j++)
                        if (g->vgpus[j].type_id == ids[i])
                                same++;
                uint32_t room = o->max_instances > same ? o->max_instances - same : 0;
                if (o->gi_profile) {
                        /* One MIG-backed vGPU per GPU instance of its profile (vgpu.md §5). */
                        uint32_t free_gis = 0;
                        for (size_t j = 0; j < g->n_gis; j++)
                                if (!g->gis[j].vgpu_uuid && g->gis[j].profile_name &&
                                    strcmp(g->gis[j].profile_name, o->gi_profile) == 0)
                                        free_gis++;
                        room = MIN(room, free_gis);
                }
                o->creatable = MIN(creatable_now(h, g, vfs, ids[i]), room);
                gv_nvml_vgpu_type_done(&t);
        }
        free(ids);
        gv_nvml_gi_profiles_free(prof, n_prof);
        if (r < 0) {
                gv_vgpu_type_info_free_array(out, k);
                return r;
        }
        *ret = out;
        *ret_n = k;
        return 0;
}

static int nv_vgpu_create_do(void *ctx, struct gv_host *h, struct gv_gpu *g,
                          const struct gv_vgpu_type_info *type, char ret_id[GV_UUID_STR_LEN + 1],
                          struct gv_error **err)
{
        (void)ctx;
        char *const *vfs = g->vfs;
        if (g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO) {
                STRV_FOREACH(vf, vfs) {
                        uint32_t cur = 0;
                        if (gv_nvidia_current_vgpu_type(h->sysfs, *vf, &cur, NULL) < 0 || cur)
                                continue;
                        _cleanup_(gv_nvidia_vgpu_type_list_freep)
                                struct gv_nvidia_vgpu_type_list *l = NULL;
                        if (gv_nvidia_read_creatable_vgpu_types(h->sysfs, *vf, &l, NULL) < 0)
                                continue;
                        for (size_t i = 0; i < l->n; i++) {
                                if (l->types[i].id != type->type_id)
                                        continue;
                                int r = gv_nvidia_set_vgpu_type(h->sysfs, *vf, type->type_id, err);
                                if (r < 0)
                                        return r;
                                snprintf(ret_id, GV_UUID_STR_LEN + 1, "%s", *vf);
                                return 0;
                        }
                }
        } else if (g->vgpu_interface == GV_VGPU_INTERFACE_MDEV) {
                _cleanup_free_ char *tid = xasprintf("nvidia-%u", type->type_id);
                _cleanup_strv_free_ char **parents = NULL;
                strv_extend(&parents, g->bdf);
                STRV_FOREACH(vf, vfs)
                        strv_extend(&parents, *vf);
                STRV_FOREACH(p, parents) {
                        _cleanup_(gv_mdev_type_list_freep) struct gv_mdev_type_list *l = NULL;
                        if (gv_mdev_list_types(h->sysfs, *p, &l, NULL) < 0)
                                continue;
                        for (size_t i = 0; i < l->n; i++)
                                if (strcmp(l->types[i].id, tid) == 0 &&
                                    l->types[i].available_instances > 0)
                                        return gv_mdev_create(h->sysfs, *p, tid, NULL, ret_id,
                                                              err);
                }
        }
        return gv_error_set(err, ENOSPC, "GPU %s has no free VF or mdev parent offering vGPU "
                            "type %s", g->bdf, type->name);
}

static int nv_vgpu_destroy_do(void *ctx, struct gv_host *h, struct gv_gpu *g,
                           const struct gv_vgpu_instance *v, struct gv_error **err)
{
        (void)ctx;
        if (g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO)
                return gv_nvidia_clear_vgpu_type(h->sysfs, v->parent_bdf, err);
        return gv_mdev_remove(h->sysfs, v->uuid, err);
}

/* ---- live metrics -------------------------------------------------------------------------- */

static void metrics_fail(struct gv_gpu_metrics *m, struct gv_error *e, int r)
{
        if (!m->error)
                m->error = xstrdup(gv_error_msg(e, r));
        gv_error_free(e);
}

/* Remember the newest sample of each instance; the per-GPU cursor moves to the newest. */
static void seen_update(struct nv_ctx *c, unsigned gpu_index, const struct gv_nvml_vgpu_sample *s,
                        size_t n)
{
        if (gpu_index >= c->n_last_seen) {
                c->last_seen_us = xreallocarray(c->last_seen_us, gpu_index + 1,
                                                sizeof(*c->last_seen_us));
                memset(c->last_seen_us + c->n_last_seen, 0,
                       (gpu_index + 1 - c->n_last_seen) * sizeof(*c->last_seen_us));
                c->n_last_seen = gpu_index + 1;
        }
        for (size_t i = 0; i < n; i++) {
                struct nv_vgpu_seen *x = NULL;
                c->last_seen_us[gpu_index] = MAX(c->last_seen_us[gpu_index], s[i].timestamp_us);
                for (size_t k = 0; k < c->n_seen && !x; k++)
                        if (c->seen[k].instance == s[i].instance)
                                x = &c->seen[k];
                if (!x) {
                        c->seen = xreallocarray(c->seen, c->n_seen + 1, sizeof(*c->seen));
                        x = &c->seen[c->n_seen++];
                        *x = (struct nv_vgpu_seen){ .gpu = gpu_index,
                                                    .instance = s[i].instance };
                }
                if (s[i].timestamp_us >= x->sample.timestamp_us)
                        x->sample = s[i];
        }
}

static const struct gv_nvml_vgpu_sample *seen_find(const struct nv_ctx *c, uint32_t instance)
{
        for (size_t k = 0; k < c->n_seen; k++)
                if (c->seen[k].instance == instance)
                        return &c->seen[k].sample;
        return NULL;
}

/* Forget the samples of this GPU's instances that are gone, so the list stays bounded. */
static void seen_prune(struct nv_ctx *c, unsigned gpu_index, const uint32_t *alive, size_t n)
{
        size_t k = 0;
        for (size_t i = 0; i < c->n_seen; i++) {
                bool keep = c->seen[i].gpu != gpu_index;
                for (size_t j = 0; j < n && !keep; j++)
                        keep = alive[j] == c->seen[i].instance;
                if (keep)
                        c->seen[k++] = c->seen[i];
        }
        c->n_seen = k;
}

static void read_vgpu_metrics(struct nv_ctx *c, struct gv_nvml_device *d, struct gv_gpu *g,
                              struct gv_gpu_metrics *m)
{
        struct gv_error *e = NULL;
        uint32_t *ids = NULL;
        size_t n = 0;
        int r = gv_nvml_vgpu_active_instances(d, &ids, &n, &e);
        if (r == -EOPNOTSUPP || (r < 0 && !g->n_vgpus)) {
                /* No vGPU manager here (or nothing to report): not a failure of the read. */
                gv_error_free(e);
                return;
        }
        if (r < 0) {
                metrics_fail(m, e, r);
                return;
        }
        if (n) {
                struct gv_nvml_vgpu_sample *smp = NULL;
                size_t n_smp = 0;
                uint64_t since = g->index < c->n_last_seen ? c->last_seen_us[g->index] : 0;
                r = gv_nvml_vgpu_utilization(d, since, &smp, &n_smp, &e);
                if (r < 0)
                        metrics_fail(m, TAKE_PTR(e), r);
                else
                        seen_update(c, g->index, smp, n_smp);
                free(smp);
        }
        m->vgpus = xnew0(struct gv_vgpu_metrics, n + 1);
        for (size_t i = 0; i < n; i++) {
                struct gv_vgpu_metrics *v = &m->vgpus[m->n_vgpus++];
                _cleanup_free_ char *uuid = NULL;
                uint32_t type = 0;
                uint64_t fb = 0, fb_total = 0;

                v->gi_id = UINT32_MAX;
                if ((r = gv_nvml_vgpu_instance_uuid(d, ids[i], &uuid, &e)) < 0)
                        metrics_fail(m, TAKE_PTR(e), r);
                else
                        snprintf(v->uuid, sizeof(v->uuid), "%s", uuid);
                uint32_t gi;
                if (gv_nvml_vgpu_instance_gi_id(d, ids[i], &gi, NULL) >= 0 && gi != GV_NVML_NO_GI)
                        v->gi_id = gi;
                if ((r = gv_nvml_vgpu_instance_fb_usage(d, ids[i], &fb, &e)) < 0)
                        metrics_fail(m, TAKE_PTR(e), r);
                else if (gv_nvml_vgpu_instance_type(d, ids[i], &type, NULL) >= 0 &&
                         gv_nvml_vgpu_type_framebuffer(d, type, &fb_total, NULL) >= 0) {
                        v->memory_used_mib = fb >> 20;
                        v->memory_total_mib = fb_total >> 20;
                        v->valid |= GV_METRIC_MEMORY;
                }
                /* Which VF or mdev it is: the inventory matched NVML's instance to it. */
                for (size_t k = 0; k < g->n_vgpus; k++)
                        if (uuid && strcasecmp(g->vgpus[k].uuid, uuid) == 0)
                                snprintf(v->parent_bdf, sizeof(v->parent_bdf), "%s",
                                         g->vgpus[k].parent_bdf);
                const struct gv_nvml_vgpu_sample *s = seen_find(c, ids[i]);
                if (s) {
                        v->util_pct = s->sm_pct;
                        v->mem_util_pct = s->mem_pct;
                        v->enc_pct = s->enc_pct;
                        v->dec_pct = s->dec_pct;
                        v->sample_us = s->timestamp_us;
                        v->valid |= GV_METRIC_UTIL | GV_METRIC_MEM_UTIL | GV_METRIC_CODEC;
                }
        }
        seen_prune(c, g->index, ids, n);
        free(ids);
}

/* Memory of each GPU instance: from the MIG device handle of one of its compute instances
 * when it has one, else from the MIG-backed vGPU on it (a GI given to a VM has no host CI:
 * the guest makes its own, mig.md §9). */
static void read_mig_metrics(struct gv_nvml_device *d, struct gv_gpu *g, struct gv_gpu_metrics *m)
{
        unsigned max = 0;
        struct gv_error *e = NULL;
        int r;

        if (!g->n_gis)
                return;
        m->migs = xnew0(struct gv_mig_metrics, g->n_gis + 1);
        for (size_t i = 0; i < g->n_gis; i++)
                m->migs[m->n_migs++] = (struct gv_mig_metrics){
                        .gi_id = g->gis[i].id,
                        .memory_total_mib = g->gis[i].memory_mib,
                        .util_unavailable = GV_MIG_UTIL_UNAVAILABLE,
                };
        if ((r = gv_nvml_mig_device_max_count(d, &max, &e)) < 0) {
                metrics_fail(m, e, r);
                max = 0;
        }
        for (unsigned i = 0; i < max; i++) {
                struct gv_nvml_device *mig = NULL;
                uint32_t gi = 0;
                struct gv_nvml_memory mem;
                if (gv_nvml_mig_device_by_index(d, i, &mig, NULL) < 0 ||
                    gv_nvml_mig_device_gi_id(mig, &gi, NULL) < 0)
                        continue;
                for (size_t k = 0; k < m->n_migs; k++) {
                        struct gv_mig_metrics *x = &m->migs[k];
                        if (x->gi_id != gi || (x->valid & GV_METRIC_MEMORY))
                                continue;
                        if ((r = gv_nvml_device_memory(mig, &mem, &e)) < 0) {
                                metrics_fail(m, TAKE_PTR(e), r);
                                continue;
                        }
                        x->memory_used_mib = mem.used >> 20;
                        x->memory_total_mib = mem.total >> 20;
                        x->memory_source = "mig-device";
                        x->valid |= GV_METRIC_MEMORY;
                }
        }
        for (size_t k = 0; k < m->n_migs; k++) {
                struct gv_mig_metrics *x = &m->migs[k];
                for (size_t i = 0; i < m->n_vgpus && !(x->valid & GV_METRIC_MEMORY); i++) {
                        const struct gv_vgpu_metrics *v = &m->vgpus[i];
                        if (v->gi_id != x->gi_id || !(v->valid & GV_METRIC_MEMORY))
                                continue;
                        x->memory_used_mib = v->memory_used_mib;
                        x->memory_source = "vgpu-framebuffer";
                        x->valid |= GV_METRIC_MEMORY;
                }
        }
}

static int nv_read_metrics_do(void *ctx, struct gv_host *h, struct gv_gpu *g,
                           struct gv_gpu_metrics *m, struct gv_error **err)
{
        struct nv_ctx *c = ctx;
        struct gv_nvml_device *d = NULL;
        struct gv_error *e = NULL;
        int r;

        (void)h;
        r = nv_device(c, g, &d, err);
        if (r < 0)
                return r;
        struct gv_nvml_memory mem;
        if ((r = gv_nvml_device_memory(d, &mem, &e)) < 0)
                metrics_fail(m, TAKE_PTR(e), r);
        else {
                m->memory_total_mib = mem.total >> 20;
                m->memory_used_mib = (mem.used + mem.reserved) >> 20;
                m->valid |= GV_METRIC_MEMORY;
        }
        struct gv_nvml_utilization u;
        if ((r = gv_nvml_device_utilization(d, &u, NULL)) < 0)
                metrics_fail(m, TAKE_PTR(e), r);
        else {
                m->util_pct = u.gpu_pct;
                m->mem_util_pct = u.memory_pct;
                m->valid |= GV_METRIC_UTIL | GV_METRIC_MEM_UTIL;
        }
        if ((r = gv_nvml_device_power(d, &m->power_mw, &e)) < 0)
                metrics_fail(m, TAKE_PTR(e), r);
        else
                m->valid |= GV_METRIC_POWER;
        if ((r = gv_nvml_device_temperature(d, &m->temperature_c, &e)) < 0)
                metrics_fail(m, TAKE_PTR(e), r);
        else
                m->valid |= GV_METRIC_TEMP;
        read_vgpu_metrics(c, d, g, m);
        read_mig_metrics(d, g, m);
        return 0;
}

/* The reads and operations, each noting on the GPU when NVML says it is lost or needs a
 * reset. */
static int nv_inspect(void *ctx, struct gv_host *h, struct gv_gpu *g, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_inspect_do(ctx, h, g, err);
        return nv_health(g, before, r, err);
}

static int nv_set_mode(void *ctx, struct gv_host *h, struct gv_gpu *g, enum gv_gpu_mode mode,
                       struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_set_mode_do(ctx, h, g, mode, err);
        return nv_health(g, before, r, err);
}

static int nv_mig_profiles(void *ctx, struct gv_gpu *g, struct gv_mig_gi_profile **ret,
                           size_t *ret_n, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_mig_profiles_do(ctx, g, ret, ret_n, err);
        return nv_health(g, before, r, err);
}

static int nv_mig_create(void *ctx, struct gv_gpu *g, uint32_t profile_id,
                         const struct gv_mig_placement *placement, uint32_t *ret_gi_id,
                         struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_mig_create_do(ctx, g, profile_id, placement, ret_gi_id, err);
        return nv_health(g, before, r, err);
}

static int nv_mig_destroy(void *ctx, struct gv_gpu *g, uint32_t gi_id, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_mig_destroy_do(ctx, g, gi_id, err);
        return nv_health(g, before, r, err);
}

static int nv_vgpu_types(void *ctx, struct gv_host *h, struct gv_gpu *g,
                         struct gv_vgpu_type_info **ret, size_t *ret_n, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_vgpu_types_do(ctx, h, g, ret, ret_n, err);
        return nv_health(g, before, r, err);
}

static int nv_vgpu_create(void *ctx, struct gv_host *h, struct gv_gpu *g,
                          const struct gv_vgpu_type_info *type, char ret_id[GV_UUID_STR_LEN + 1],
                          struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_vgpu_create_do(ctx, h, g, type, ret_id, err);
        return nv_health(g, before, r, err);
}

static int nv_vgpu_destroy(void *ctx, struct gv_host *h, struct gv_gpu *g,
                           const struct gv_vgpu_instance *v, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_vgpu_destroy_do(ctx, h, g, v, err);
        return nv_health(g, before, r, err);
}

static int nv_read_metrics(void *ctx, struct gv_host *h, struct gv_gpu *g,
                           struct gv_gpu_metrics *m, struct gv_error **err)
{
        unsigned before = gv_nvml_fatal_count(NULL);
        int r = nv_read_metrics_do(ctx, h, g, m, err);
        return nv_health(g, before, r, err);
}

const struct gv_gpu_backend_ops gv_nvidia_backend_ops = {
        .name = "nvidia",
        .host_driver = "nvidia",
        .pci_vendor = GV_PCI_VENDOR_NVIDIA,
        .open = nv_open,
        .close = nv_close,
        .host_info = nv_host_info,
        .inspect = nv_inspect,
        .set_mode = nv_set_mode,
        .mig_profiles = nv_mig_profiles,
        .mig_create = nv_mig_create,
        .mig_destroy = nv_mig_destroy,
        .vgpu_types = nv_vgpu_types,
        .vgpu_create = nv_vgpu_create,
        .vgpu_destroy = nv_vgpu_destroy,
        .read_metrics = nv_read_metrics,
};
