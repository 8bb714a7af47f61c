/* SPDX-License-Identifier: MIT */
/*
 * reconcile.c — the agent's reconcile loop (agent.h; docs/agent.md, "Reconcile"): GPU hardware
 * that no VM owns is removed after a grace period; a VM whose QEMU is gone is reported and its
 * GPU hardware released.
 *
 * Ownership. A piece of GPU hardware is owned when
 *   - some VM records it in its `hw` list (state.json), whatever the VM's phase; or
 *   - it is the host configuration the administrator set through the agent: each GPU's mode
 *     (POST /v1/gpus/{gpu}/mode) and the MIG GPU instances laid out on it (POST
 *     /v1/gpus/{gpu}/mig), kept in STATE/host.json (written atomically by host-api.c through
 *     gv_agent_hostcfg_record()). On the very first start (no host.json) the host as it is
 *     becomes the configuration — modes, GPU instances and the vGPUs no VM records — so that
 *     installing the agent never destroys an administrator's existing layout; the next report
 *     says so, once. A GPU host.json does not name (hot-plugged) is adopted the same way, and
 *     so are a GPU's instances whose MIG state could not be read when it was adopted.
 *
 * Orphans, by kind (the report's "kind"):
 *   vgpu          a vGPU instance (an mdev UUID, or a VF with a vGPU type set) no VM records;
 *                 vGPUs adopted at the first start are kept while they exist;
 *   mig-gi        a MIG GPU instance no VM records and the configuration does not list
 *                 (matched by GI id, profile and placement); an instance whose vGPU a VM owns
 *                 is owned with it;
 *   vfio-binding  a GPU in mode passthrough (bound to vfio-pci) that no VM holds while the
 *                 configuration's mode for it is another one: it is set back to that mode;
 *   tap           a tap device (src/vmm/tap.h) named for a bridge NIC of one of this agent's
 *                 VMs (gv_tap_name(): the VM's UUID and the NIC's index) that the VM does not
 *                 record: left by an agent killed between making it and recording it, or by a
 *                 failed delete. Taps of names no VM here derives are another agent's (or a
 *                 deleted VM's) and are left alone.
 * An orphan is removed once it has been seen orphaned on every pass for cfg.orphan_grace_ms
 * (first-seen times in memory on CLOCK_MONOTONIC; an object that is owned again, or gone, is
 * forgotten; a restart of the agent starts the clocks over). On one GPU: vGPUs before GPU
 * instances before the mode (a GPU instance cannot go while its vGPU exists, nor MIG while
 * instances do).
 *
 * Dead QEMUs. A VM in phase starting, running or stopping whose QEMU is gone (its pidfd says it
 * exited, or there is no QEMU the agent watches) is marked crashed with the reason and its
 * hardware released. The supervisor does that the moment QEMU exits; this is the safety net.
 * A VM without QEMU that still records hardware (an earlier release failed) gets the release
 * retried.
 *
 * Locking (agent.h: VM, then host, then table). VMs are visited one at a time, each taken with
 * a trylock under the table lock: a VM whose lock is busy is in the middle of an operation and
 * owns whatever hardware it is making or releasing, so while any VM is busy orphans are tracked
 * but none is removed (the report's "skipped" says why). No VM lock is held while host_lock is.
 * The hardware scan runs under host_lock and copies every VM's `hw` under the table lock inside
 * it: a VM changes `hw` only under host_lock, in the critical section that makes or destroys
 * the hardware (gpu-attach.c), so the copy and the hardware agree. The private state below
 * (struct gv_reconcile) is guarded by host_lock as well.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/agent.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"
#include "vmm/confine.h"
#include "vmm/tap.h"

#define HOSTCFG_FILE "host.json"
#define HOSTCFG_MAX (4u << 20)
#define INTERVAL_MIN_MS 100
#define INTERVAL_MAX_MS 10000

/* ---- private state ---- */

struct cfg_gi {
        uint32_t id;
        char *profile;
        struct gv_mig_placement placement;
};

/* One GPU of the host configuration. */
struct cfg_gpu {
        char bdf[GV_PCI_ADDR_STR_MAX];
        enum gv_gpu_mode mode;  /* GV_GPU_MODE_UNKNOWN: not known yet, no opinion */
        bool gis_known;         /* false: MIG state unreadable when adopted; adopted later */
        struct cfg_gi *gis;
        size_t n_gis;
        char **adopted_vgpus;   /* vGPUs there at the first start (ids), while they exist */
};

/* An orphan's first sighting. */
struct seen {
        char *key;
        int64_t first_ms;
        bool mark;              /* seen orphaned on this pass (and not removed) */
};

struct gv_reconcile {
        bool loaded;            /* host.json read, or the host adopted and saved */
        char *note;             /* what an adoption took, said once in the next report */
        int64_t adopted_at;     /* CLOCK_REALTIME seconds of the first start */
        struct cfg_gpu *gpus;
        size_t n_gpus;
        struct seen *seen;
        size_t n_seen;
        json_t *last;           /* the last report */
};

enum orphan_kind {
        ORPHAN_VGPU,
        ORPHAN_MIG_GI,
        ORPHAN_VFIO_BINDING,
        ORPHAN_TAP,          /* after the GPU kinds: a tap is independent of them */
        _ORPHAN_KIND_MAX,
        _ORPHAN_KIND_INVALID = -EINVAL,
};

static const char *const orphan_kind_table[_ORPHAN_KIND_MAX] = {
        [ORPHAN_VGPU] = "vgpu",
        [ORPHAN_MIG_GI] = "mig-gi",
        [ORPHAN_VFIO_BINDING] = "vfio-binding",
        [ORPHAN_TAP] = "tap",
};

static const char *orphan_kind_to_string(enum orphan_kind k)
{
        return (int)k >= 0 && k < _ORPHAN_KIND_MAX ? orphan_kind_table[k] : NULL;
}

/* One orphan found by this pass. */
struct orphan {
        enum orphan_kind kind;
        size_t gpu;                       /* index into host->gpus; not for a tap */
        char id[GV_UUID_STR_LEN + 1];     /* vgpu: mdev UUID or VF address; tap: its name */
        uint32_t gi;                      /* mig-gi */
        char *profile;                    /* mig-gi (a copy: a refresh frees the GPU's) */
        struct gv_mig_placement placement; /* mig-gi */
        enum gv_gpu_mode target;          /* vfio-binding: the configured mode */
        size_t seen;                      /* index into rc->seen */
};

/* Every VM's recorded hardware, copied under the table lock; and the taps its bridge NICs
 * would have (gv_tap_name()), recorded or not. */
struct owned {
        struct gv_hw *hw;
        size_t n;
        char **tap_names;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void cfg_gpu_done(struct cfg_gpu *c)
{
        for (size_t i = 0; i < c->n_gis; i++)
                free(c->gis[i].profile);
        free(c->gis);
        c->gis = NULL;
        c->n_gis = 0;
        c->adopted_vgpus = strv_free(c->adopted_vgpus);
}

static void cfg_gpus_free(struct cfg_gpu *g, size_t n)
{
        for (size_t i = 0; i < n; i++)
                cfg_gpu_done(&g[i]);
        free(g);
}

static struct gv_reconcile *rc_get(struct gv_agent *a)
{
        if (!a->reconcile)
                a->reconcile = xnew0(struct gv_reconcile, 1);
        return a->reconcile;
}

void gv_agent_reconcile_done(struct gv_agent *a)
{
        struct gv_reconcile *rc;

        pthread_mutex_lock(&a->host_lock);
        rc = a->reconcile;
        a->reconcile = NULL;
        pthread_mutex_unlock(&a->host_lock);
        if (!rc)
                return;
        cfg_gpus_free(rc->gpus, rc->n_gpus);
        for (size_t i = 0; i < rc->n_seen; i++)
                free(rc->seen[i].key);
        free(rc->seen);
        free(rc->note);
        json_decref(rc->last);
        free(rc);
}

/* ---- ownership ---- */

static void owned_snapshot(struct gv_agent *a, struct owned *ret)
{
        struct owned o = { 0 };

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms; i++) {
                const struct gv_agent_vm *vm = a->vms[i];
                for (size_t k = 0; k < vm->config->n_nics; k++)
                        if (vm->config->nics[k].mode == GV_VM_NIC_BRIDGE) {
                                char *t = gv_tap_name(vm->config->uuid, k);
                                if (t)
                                        strv_consume(&o.tap_names, t);
                        }
                if (!vm->n_hw)
                        continue;
                o.hw = xreallocarray(o.hw, o.n + vm->n_hw, sizeof(*o.hw));
                memcpy(&o.hw[o.n], vm->hw, vm->n_hw * sizeof(*o.hw));
                o.n += vm->n_hw;
        }
        pthread_mutex_unlock(&a->lock);
        *ret = o;
}

/* The id a vGPU goes by: its mdev UUID, or the VF address for vendor-VFIO (as gpu-attach.c
 * records it and gv_host_vgpu_destroy() takes it). */
static const char *vgpu_id(const struct gv_gpu *g, const struct gv_vgpu_instance *v)
{
        if (g->vgpu_interface == GV_VGPU_INTERFACE_VENDOR_VFIO || !v->uuid[0])
                return v->parent_bdf;
        return v->uuid;
}

static bool owned_vgpu(const struct owned *o, const struct gv_vgpu_instance *v)
{
        for (size_t i = 0; i < o->n; i++) {
                const struct gv_hw *hw = &o->hw[i];
                if (hw->kind != GV_HW_VGPU)
                        continue;
                if ((v->uuid[0] && strcasecmp(hw->id, v->uuid) == 0) ||
                    (v->parent_bdf[0] && strcasecmp(hw->id, v->parent_bdf) == 0))
                        return true;
        }
        return false;
}

static bool owned_gi(const struct owned *o, const struct gv_gpu *g,
                     const struct gv_mig_gi_info *gi)
{
        for (size_t i = 0; i < o->n; i++)
                if (o->hw[i].kind == GV_HW_MIG_GI && o->hw[i].gi == gi->id &&
                    strcmp(o->hw[i].gpu, g->bdf) == 0)
                        return true;
        /* A GPU instance whose vGPU a VM owns goes with that vGPU. */
        for (size_t i = 0; i < g->n_vgpus; i++)
                if (g->vgpus[i].gi_id == gi->id && owned_vgpu(o, &g->vgpus[i]))
                        return true;
        return false;
}

static bool owned_whole(const struct owned *o, const char *bdf)
{
        for (size_t i = 0; i < o->n; i++)
                if (o->hw[i].kind == GV_HW_PASSTHROUGH && strcmp(o->hw[i].gpu, bdf) == 0)
                        return true;
        return false;
}

/* ---- the host configuration ---- */

static struct cfg_gpu *cfg_find(struct gv_reconcile *rc, const char *bdf)
{
        for (size_t i = 0; i < rc->n_gpus; i++)
                if (strcmp(rc->gpus[i].bdf, bdf) == 0)
                        return &rc->gpus[i];
        return NULL;
}

static struct cfg_gpu *cfg_add(struct gv_reconcile *rc, const char *bdf)
{
        rc->gpus = xreallocarray(rc->gpus, rc->n_gpus + 1, sizeof(*rc->gpus));
        struct cfg_gpu *c = &rc->gpus[rc->n_gpus++];
        *c = (struct cfg_gpu){ .mode = GV_GPU_MODE_UNKNOWN };
        snprintf(c->bdf, sizeof(c->bdf), "%s", bdf);
        return c;
}

static bool cfg_has_gi(const struct cfg_gpu *c, const struct gv_mig_gi_info *gi)
{
        for (size_t i = 0; i < c->n_gis; i++)
                if (c->gis[i].id == gi->id && gi->profile_name &&
                    strcasecmp(c->gis[i].profile, gi->profile_name) == 0 &&
                    c->gis[i].placement.start == gi->placement.start &&
                    c->gis[i].placement.size == gi->placement.size)
                        return true;
        return false;
}

static bool mig_readable(const struct gv_gpu *g)
{
        return !g->mig_capable || !g->mig_error;
}

/* The configuration's GPU instances := the GPU's, less those VMs own. */
static void cfg_take_gis(struct cfg_gpu *c, const struct gv_gpu *g, const struct owned *o)
{
        for (size_t i = 0; i < c->n_gis; i++)
                free(c->gis[i].profile);
        free(c->gis);
        c->gis = NULL;
        c->n_gis = 0;
        c->gis_known = mig_readable(g);
        if (!c->gis_known)
                return;
        for (size_t i = 0; i < g->n_gis; i++) {
                const struct gv_mig_gi_info *gi = &g->gis[i];
                if (owned_gi(o, g, gi) || !gi->profile_name)
                        continue;
                c->gis = xreallocarray(c->gis, c->n_gis + 1, sizeof(*c->gis));
                c->gis[c->n_gis++] = (struct cfg_gi){ .id = gi->id,
                                                      .profile = xstrdup(gi->profile_name),
                                                      .placement = gi->placement };
        }
}

/* The GPU's mode as configuration: a GPU a VM holds whole is the VM's, and goes back to mode
 * none when the VM lets go of it (gv_agent_gpus_release). */
static enum gv_gpu_mode mode_of(const struct gv_gpu *g, const struct owned *o)
{
        if (g->mode == GV_GPU_MODE_PASSTHROUGH && owned_whole(o, g->bdf))
                return GV_GPU_MODE_NONE;
        return g->mode;
}

/* Adopt a GPU as it is. Returns how many vGPUs it adopted. */
static size_t cfg_adopt_gpu(struct cfg_gpu *c, const struct gv_gpu *g, const struct owned *o)
{
        size_t n = 0;

        c->mode = mode_of(g, o);
        cfg_take_gis(c, g, o);
        c->adopted_vgpus = strv_free(c->adopted_vgpus);
        for (size_t i = 0; i < g->n_vgpus; i++)
                if (!owned_vgpu(o, &g->vgpus[i])) {
                        strv_extend(&c->adopted_vgpus, vgpu_id(g, &g->vgpus[i]));
                        n++;
                }
        return n;
}

static bool strv_contains_case(char *const *l, const char *s)
{
        STRV_FOREACH(x, l)
                if (strcasecmp(*x, s) == 0)
                        return true;
        return false;
}

static char *hostcfg_path(const struct gv_agent *a)
{
        return gv_path_join(a->state_dir, HOSTCFG_FILE);
}

static json_t *cfg_to_json(const struct gv_reconcile *rc)
{
        json_t *j = json_object(), *gpus = json_array();

        json_object_set_new(j, "adopted_at", json_integer(rc->adopted_at));
        for (size_t i = 0; i < rc->n_gpus; i++) {
                const struct cfg_gpu *c = &rc->gpus[i];
                json_t *o = json_object(), *gis = json_array(), *v = json_array();
                json_object_set_new(o, "gpu", json_string(c->bdf));
                json_object_set_new(o, "mode", json_string(gv_gpu_mode_to_string(c->mode)));
                for (size_t k = 0; k < c->n_gis; k++) {
                        json_t *gi = json_object();
                        json_object_set_new(gi, "id", json_integer(c->gis[k].id));
                        json_object_set_new(gi, "profile", json_string(c->gis[k].profile));
                        json_object_set_new(gi, "start", json_integer(c->gis[k].placement.start));
                        json_object_set_new(gi, "size", json_integer(c->gis[k].placement.size));
                        json_array_append_new(gis, gi);
                }
                if (c->gis_known) {
                        json_object_set_new(o, "gis", gis);
                } else {
                        json_decref(gis);
                        json_object_set_new(o, "gis", json_null());
                }
                STRV_FOREACH(s, c->adopted_vgpus)
                        json_array_append_new(v, json_string(*s));
                json_object_set_new(o, "adopted_vgpus", v);
                json_array_append_new(gpus, o);
        }
        json_object_set_new(j, "gpus", gpus);
        return j;
}

static int cfg_save(struct gv_agent *a, struct gv_reconcile *rc, struct gv_error **err)
{
        _cleanup_json_ json_t *j = cfg_to_json(rc);
        _cleanup_free_ char *path = hostcfg_path(a), *text = gv_json_dumps_pretty(j);
        int r = gv_write_file(path, text, GV_WRITE_CREATE | GV_WRITE_ATOMIC | GV_WRITE_NEWLINE);

        if (r < 0)
                return gv_error_set(err, -r, "Cannot write the host configuration '%s': %s.",
                                    path, strerror(-r));
        return 0;
}

static int cfg_parse_gpu(const json_t *o, size_t index, struct cfg_gpu *c, struct gv_error **err)
{
        const char *bdf = NULL, *mode = NULL;
        struct gv_pci_addr addr;
        json_t *gis, *vgpus = NULL;
        size_t k;
        json_t *x;
        int r;

        r = gv_json_get_string(o, "gpu", &bdf, err);
        if (r >= 0)
                r = gv_json_get_string(o, "mode", &mode, err);
        if (r < 0)
                return gv_error_wrap(err, r, "gpus[%zu]", index);
        if (gv_parse_pci_addr(bdf, &addr) < 0 || strlen(bdf) >= sizeof(c->bdf))
                return gv_error_set(err, EINVAL, "gpus[%zu]: '%s' is not a PCI address.", index,
                                    bdf);
        snprintf(c->bdf, sizeof(c->bdf), "%s", bdf);
        c->mode = gv_gpu_mode_from_string(mode);
        if ((int)c->mode < 0) {
                _cleanup_free_ char *names = gv_gpu_mode_names();
                return gv_error_set(err, EINVAL, "gpus[%zu]: '%s' is not a GPU mode; valid: %s, "
                                    "unknown.", index, mode, names);
        }
        gis = json_object_get(o, "gis");
        c->gis_known = gis && !json_is_null(gis);
        if (c->gis_known && !json_is_array(gis))
                return gv_error_set(err, EINVAL, "gpus[%zu]: 'gis' must be an array or null.",
                                    index);
        json_array_foreach(gis, k, x) {
                const char *profile = NULL;
                struct cfg_gi gi = { 0 };
                r = gv_json_get_u32(x, "id", &gi.id, err);
                if (r >= 0)
                        r = gv_json_get_string(x, "profile", &profile, err);
                if (r >= 0)
                        r = gv_json_get_u32(x, "start", &gi.placement.start, err);
                if (r >= 0)
                        r = gv_json_get_u32(x, "size", &gi.placement.size, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "gpus[%zu].gis[%zu]", index, k);
                gi.profile = xstrdup(profile);
                c->gis = xreallocarray(c->gis, c->n_gis + 1, sizeof(*c->gis));
                c->gis[c->n_gis++] = gi;
        }
        vgpus = json_object_get(o, "adopted_vgpus");
        if (vgpus && !json_is_array(vgpus))
                return gv_error_set(err, EINVAL, "gpus[%zu]: 'adopted_vgpus' must be an array.",
                                    index);
        json_array_foreach(vgpus, k, x) {
                if (!json_is_string(x) || json_string_length(x) > GV_UUID_STR_LEN)
                        return gv_error_set(err, EINVAL, "gpus[%zu].adopted_vgpus[%zu] is not a "
                                            "vGPU id (an mdev UUID or a PCI address).", index, k);
                strv_extend(&c->adopted_vgpus, json_string_value(x));
        }
        return 0;
}

static int cfg_load(struct gv_agent *a, struct gv_reconcile *rc, struct gv_error **err)
{
        _cleanup_free_ char *path = hostcfg_path(a);
        _cleanup_json_ json_t *j = NULL;
        struct cfg_gpu *gpus = NULL;
        size_t n = 0, i;
        json_t *arr, *o;
        uint64_t at = 0;
        int r;

        r = gv_json_load_file(path, HOSTCFG_MAX, &j, err);
        if (r >= 0)
                r = gv_json_get_array(j, "gpus", &arr, err);
        if (r >= 0)
                r = gv_json_opt_u64(j, "adopted_at", &at, err);
        if (r < 0)
                goto fail;
        json_array_foreach(arr, i, o) {
                gpus = xreallocarray(gpus, n + 1, sizeof(*gpus));
                gpus[n] = (struct cfg_gpu){ 0 };
                r = cfg_parse_gpu(o, i, &gpus[n++], err);
                if (r < 0)
                        goto fail;
        }
        cfg_gpus_free(rc->gpus, rc->n_gpus);
        rc->gpus = gpus;
        rc->n_gpus = n;
        rc->adopted_at = (int64_t)MIN(at, (uint64_t)INT64_MAX);
        return 0;
fail:
        cfg_gpus_free(gpus, n);
        return gv_error_wrap(err, r, "The host configuration '%s' cannot be read; fix it, or "
                             "remove it to have the agent adopt the host as it is", path);
}

int gv_agent_hostcfg_load(struct gv_agent *a, struct gv_error **err)
{
        struct gv_reconcile *rc = rc_get(a);
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_free_ char **modes = NULL;
        struct owned o = { 0 };
        size_t n_gis = 0, n_vgpus = 0;
        bool first;
        int r;

        if (rc->loaded)
                return 0;
        path = hostcfg_path(a);
        r = gv_file_exists(path);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot look at the host configuration '%s': %s.",
                                    path, strerror(-r));
        first = r == 0;
        if (!first) {
                r = cfg_load(a, rc, err);
                if (r < 0)
                        return r;
        } else {
                cfg_gpus_free(rc->gpus, rc->n_gpus);
                rc->gpus = NULL;
                rc->n_gpus = 0;
                rc->adopted_at = (int64_t)time(NULL);
        }
        /* The first start adopts every GPU; later starts, the GPUs host.json does not name. */
        owned_snapshot(a, &o);
        for (size_t i = 0; i < a->host->n_gpus; i++) {
                struct gv_gpu *g = &a->host->gpus[i];
                if (cfg_find(rc, g->bdf))
                        continue;
                (void)gv_host_refresh_gpu(a->host, g, NULL);
                struct cfg_gpu *c = cfg_add(rc, g->bdf);
                n_vgpus += cfg_adopt_gpu(c, g, &o);
                n_gis += c->n_gis;
                strv_consume(&modes, xasprintf("%s %s", g->bdf, gv_gpu_mode_to_string(c->mode)));
        }
        free(o.hw);
        if (modes) {
                r = cfg_save(a, rc, err);
                if (r < 0)
                        return r; /* not loaded: nothing is removed; the next call tries again */
                _cleanup_free_ char *list = strv_join(modes, ", ");
                free(rc->note);
                rc->note = xasprintf("%s: the host as it is became the host configuration, so "
                                     "nothing that was there is removed: %zu GPU(s) (%s), %zu "
                                     "GPU instance(s), %zu vGPU(s) no VM records; change it "
                                     "with POST /v1/gpus/{gpu}/mode and /mig.",
                                     first ? "First start (no host.json)"
                                           : "GPUs host.json did not name",
                                     strv_length(modes), list, n_gis, n_vgpus);
        }
        rc->loaded = true;
        return 0;
}

int gv_agent_hostcfg_record(struct gv_agent *a, const struct gv_gpu *g, bool layout,
                            struct gv_error **err)
{
        struct gv_reconcile *rc = rc_get(a);
        struct owned o = { 0 };
        struct cfg_gpu *c;
        int r;

        r = gv_agent_hostcfg_load(a, err);
        if (r < 0)
                return r;
        c = cfg_find(rc, g->bdf);
        if (!c)
                c = cfg_add(rc, g->bdf);
        owned_snapshot(a, &o);
        c->mode = mode_of(g, &o);
        if (layout || c->mode != GV_GPU_MODE_MIG)
                cfg_take_gis(c, g, &o);
        free(o.hw);
        r = cfg_save(a, rc, err);
        if (r < 0)
                return gv_error_wrap(err, r, "GPU %s is changed, but the agent could not save "
                                     "that it is its configuration", g->bdf);
        return 0;
}

/* ---- dead QEMUs, leftover hardware ---- */

static void check_vm(struct gv_agent *a, struct gv_agent_vm *vm, json_t *crashed,
                     json_t *released)
{
        enum gv_vm_phase was = vm->phase;
        bool had_qemu = gv_vm_phase_has_qemu(was);

        if (had_qemu) {
                bool no_qemu = vm->proc.pidfd < 0;
                size_t n_hw = vm->n_hw;
                int status = -1;

                if (!no_qemu && gv_proc_alive(&vm->proc))
                        return;
                if (!no_qemu)
                        (void)gv_proc_wait(&vm->proc, 0, &status, NULL);
                gv_agent_vm_exited(a, vm, false, status); /* crashed, hardware released */
                if (no_qemu) {
                        free(vm->last_error);
                        vm->last_error = xasprintf("QEMU is gone: the VM was %s, but the agent "
                                                   "had no QEMU process to watch; the reconcile "
                                                   "loop marked it crashed%s.",
                                                   gv_vm_phase_to_string(was),
                                                   n_hw ? " and released its GPU hardware" : "");
                        (void)gv_agent_vm_save(a, vm, NULL);
                }
                json_array_append_new(crashed, json_string(vm->config->name));
                return;
        }
        if (vm->n_hw) {
                gv_agent_gpus_release(a, vm);
                if (!vm->n_hw)
                        json_array_append_new(released, json_string(vm->config->name));
        }
}

/* Visit every VM whose lock is free; the names of those whose lock is not go to *busy. */
static void check_vms(struct gv_agent *a, json_t *crashed, json_t *released, char ***busy)
{
        _cleanup_strv_free_ char **names = NULL;

        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < a->n_vms; i++)
                strv_extend(&names, a->vms[i]->config->name);
        pthread_mutex_unlock(&a->lock);
        STRV_FOREACH(n, names) {
                /* trylock under the table lock never waits, so the lock order holds. */
                pthread_mutex_lock(&a->lock);
                struct gv_agent_vm *vm = gv_agent_vm_find_locked(a, *n);
                bool locked = vm && pthread_mutex_trylock(&vm->lock) == 0;
                pthread_mutex_unlock(&a->lock);
                if (!vm)
                        continue; /* deleted since */
                if (!locked) {
                        strv_extend(busy, *n);
                        continue;
                }
                check_vm(a, vm, crashed, released);
                pthread_mutex_unlock(&vm->lock);
        }
}

/* ---- orphans ---- */

static size_t seen_mark(struct gv_reconcile *rc, char *key, int64_t now)
{
        for (size_t i = 0; i < rc->n_seen; i++)
                if (strcmp(rc->seen[i].key, key) == 0) {
                        free(key);
                        rc->seen[i].mark = true;
                        return i;
                }
        rc->seen = xreallocarray(rc->seen, rc->n_seen + 1, sizeof(*rc->seen));
        rc->seen[rc->n_seen] = (struct seen){ .key = key, .first_ms = now, .mark = true };
        return rc->n_seen++;
}

/* Forget what was not seen orphaned on this pass (owned again, gone, or removed). */
static void seen_sweep(struct gv_reconcile *rc)
{
        size_t k = 0;

        for (size_t i = 0; i < rc->n_seen; i++) {
                if (rc->seen[i].mark)
                        rc->seen[k++] = rc->seen[i];
                else
                        free(rc->seen[i].key);
        }
        rc->n_seen = k;
}

static void orphan_add(struct orphan **l, size_t *n, const struct orphan *o)
{
        *l = xreallocarray(*l, *n + 1, sizeof(**l));
        (*l)[(*n)++] = *o;
}

/* Bring a GPU's configuration up to date with what can be known now (a mode or MIG state that
 * was unreadable when it was adopted; vGPUs adopted at the first start that are gone). Returns
 * whether it changed. */
static bool cfg_refresh(struct cfg_gpu *c, const struct gv_gpu *g, const struct owned *o)
{
        bool changed = false;
        size_t k = 0, n = strv_length(c->adopted_vgpus);

        if (c->mode == GV_GPU_MODE_UNKNOWN && g->mode != GV_GPU_MODE_UNKNOWN) {
                c->mode = mode_of(g, o);
                changed = true;
        }
        if (!c->gis_known && mig_readable(g) && g->mode != GV_GPU_MODE_PASSTHROUGH) {
                cfg_take_gis(c, g, o);
                changed = true;
        }
        for (size_t i = 0; i < n; i++) {
                bool present = false;
                for (size_t v = 0; v < g->n_vgpus && !present; v++)
                        present = strcasecmp(vgpu_id(g, &g->vgpus[v]), c->adopted_vgpus[i]) == 0;
                if (present)
                        c->adopted_vgpus[k++] = c->adopted_vgpus[i];
                else
                        free(c->adopted_vgpus[i]);
        }
        if (k != n) {
                c->adopted_vgpus[k] = NULL;
                changed = true;
        }
        return changed;
}

/* Find this pass's orphans on GPU i. */
static bool scan_gpu(struct gv_agent *a, struct gv_reconcile *rc, size_t i, const struct owned *o,
                     int64_t now, struct orphan **l, size_t *n)
{
        struct gv_gpu *g = &a->host->gpus[i];
        struct cfg_gpu *c;
        bool changed = false;

        (void)gv_host_refresh_gpu(a->host, g, NULL);
        c = cfg_find(rc, g->bdf);
        if (!c) {
                /* Appeared since the configuration was loaded (hot-plug): adopted as it is. */
                c = cfg_add(rc, g->bdf);
                (void)cfg_adopt_gpu(c, g, o);
                return true;
        }
        changed = cfg_refresh(c, g, o);

        for (size_t k = 0; k < g->n_vgpus; k++) {
                const struct gv_vgpu_instance *v = &g->vgpus[k];
                const char *id = vgpu_id(g, v);
                if (!id[0] || owned_vgpu(o, v) || strv_contains_case(c->adopted_vgpus, id))
                        continue;
                struct orphan x = { .kind = ORPHAN_VGPU, .gpu = i };
                snprintf(x.id, sizeof(x.id), "%s", id);
                x.seen = seen_mark(rc, xasprintf("vgpu %s %s", g->bdf, id), now);
                orphan_add(l, n, &x);
        }
        if (mig_readable(g) && c->gis_known) {
                for (size_t k = 0; k < g->n_gis; k++) {
                        const struct gv_mig_gi_info *gi = &g->gis[k];
                        if (owned_gi(o, g, gi) || cfg_has_gi(c, gi))
                                continue;
                        struct orphan x = { .kind = ORPHAN_MIG_GI, .gpu = i, .gi = gi->id,
                                            .profile = gi->profile_name
                                                               ? xstrdup(gi->profile_name)
                                                               : NULL,
                                            .placement = gi->placement };
                        x.seen = seen_mark(rc, xasprintf("mig-gi %s %u %s %u+%u", g->bdf, gi->id,
                                                         gi->profile_name ? gi->profile_name
                                                                          : "?",
                                                         gi->placement.start,
                                                         gi->placement.size),
                                           now);
                        orphan_add(l, n, &x);
                }
        }
        /* On vfio-pci against the configuration, or on no driver at all (a bind or a return
         * that failed half-way, reliability.md R7): put back in the configured mode. */
        if (!owned_whole(o, g->bdf) && c->mode != GV_GPU_MODE_UNKNOWN &&
            ((g->mode == GV_GPU_MODE_PASSTHROUGH && c->mode != GV_GPU_MODE_PASSTHROUGH) ||
             !g->driver)) {
                struct orphan x = { .kind = ORPHAN_VFIO_BINDING, .gpu = i, .target = c->mode };
                x.seen = seen_mark(rc, xasprintf("vfio-binding %s", g->bdf), now);
                orphan_add(l, n, &x);
        }
        return changed;
}

/* Taps named for this agent's bridge NICs that no VM records. */
static void scan_taps(struct gv_reconcile *rc, const struct owned *o, int64_t now,
                      struct orphan **l, size_t *n, json_t *notes)
{
        _cleanup_strv_free_ char **taps = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r;

        if (!o->tap_names)
                return; /* no VM here has a bridge NIC: nothing to look for */
        r = gv_tap_list(&taps, &e);
        if (r < 0) {
                json_array_append_new(notes, json_string(gv_error_msg(e, r)));
                return;
        }
        STRV_FOREACH(t, taps) {
                bool recorded = false;
                if (!strv_contains(o->tap_names, *t))
                        continue;
                for (size_t k = 0; k < o->n && !recorded; k++)
                        recorded = o->hw[k].kind == GV_HW_TAP && strcmp(o->hw[k].id, *t) == 0;
                if (recorded)
                        continue;
                struct orphan x = { .kind = ORPHAN_TAP };
                snprintf(x.id, sizeof(x.id), "%s", *t);
                x.seen = seen_mark(rc, xasprintf("tap %s", *t), now);
                orphan_add(l, n, &x);
        }
}

static int remove_orphan(struct gv_agent *a, const struct orphan *x, struct gv_error **err)
{
        struct gv_gpu *g = x->kind == ORPHAN_TAP ? NULL : &a->host->gpus[x->gpu];

        switch (x->kind) {
        case ORPHAN_TAP: {
                int r = gv_tap_delete(x->id, err);
                return r == -ENOENT ? 0 : r;
        }
        case ORPHAN_VGPU:
                return gv_host_vgpu_destroy(a->host, x->id, err);
        case ORPHAN_MIG_GI:
                return gv_gpu_mig_destroy(a->host, g, x->gi, err);
        case ORPHAN_VFIO_BINDING:
                return gv_gpu_set_mode(a->host, g, x->target, err);
        default:
                return gv_error_set(err, EINVAL, "Unknown orphan kind %d.", (int)x->kind);
        }
}

static json_t *orphan_json(struct gv_agent *a, const struct orphan *x, int64_t seen_ms)
{
        const struct gv_gpu *g = x->kind == ORPHAN_TAP ? NULL : &a->host->gpus[x->gpu];
        json_t *o = json_object();

        json_object_set_new(o, "kind", json_string(orphan_kind_to_string(x->kind)));
        json_object_set_new(o, "gpu", g ? json_string(g->bdf) : json_null());
        switch (x->kind) {
        case ORPHAN_TAP:
                json_object_set_new(o, "id", json_string(x->id));
                json_object_set_new(o, "detail", json_sprintf("tap %s, named for a bridge NIC of "
                                                              "a VM here, that no VM records",
                                                              x->id));
                break;
        case ORPHAN_VGPU:
                json_object_set_new(o, "id", json_string(x->id));
                json_object_set_new(o, "detail", json_sprintf("vGPU %s that no VM records",
                                                              x->id));
                break;
        case ORPHAN_MIG_GI:
                json_object_set_new(o, "id", json_integer(x->gi));
                json_object_set_new(o, "detail",
                                    json_sprintf("GPU instance %u (%s at memory slices %u-%u) "
                                                 "that neither a VM records nor the host "
                                                 "configuration lists", x->gi,
                                                 x->profile ? x->profile : "?",
                                                 x->placement.start,
                                                 x->placement.start + x->placement.size - 1));
                break;
        case ORPHAN_VFIO_BINDING:
                json_object_set_new(o, "id", json_string(g->bdf));
                json_object_set_new(o, "detail",
                                    json_sprintf("bound to vfio-pci (mode passthrough) with no "
                                                 "VM holding it; the host configuration says "
                                                 "mode %s", gv_gpu_mode_to_string(x->target)));
                break;
        default:
                break;
        }
        json_object_set_new(o, "seen_s", json_integer(seen_ms / 1000));
        return o;
}

/* Find the orphans, remove those due (when `may_remove`), and describe each in `out`. */
static void orphans_pass(struct gv_agent *a, struct gv_reconcile *rc, bool may_remove,
                         json_t *out, json_t *notes)
{
        _cleanup_free_ struct orphan *l = NULL;
        struct owned o = { 0 };
        size_t n = 0;
        int64_t now = now_ms(), grace = MAX(a->cfg.orphan_grace_ms, 0);
        bool changed = false;

        for (size_t i = 0; i < rc->n_seen; i++)
                rc->seen[i].mark = false;
        owned_snapshot(a, &o);
        for (size_t i = 0; i < a->host->n_gpus; i++)
                changed |= scan_gpu(a, rc, i, &o, now, &l, &n);
        scan_taps(rc, &o, now, &l, &n, notes);
        free(o.hw);
        strv_free(o.tap_names);
        if (changed) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = cfg_save(a, rc, &e);
                if (r < 0)
                        json_array_append_new(notes, json_string(gv_error_msg(e, r)));
        }
        /* vGPUs, then GPU instances, then modes, then taps. */
        for (int kind = 0; kind < _ORPHAN_KIND_MAX; kind++)
                for (size_t i = 0; i < n; i++) {
                        const struct orphan *x = &l[i];
                        struct seen *s = &rc->seen[x->seen];
                        int64_t seen = now - s->first_ms;
                        if ((int)x->kind != kind)
                                continue;
                        json_t *j = orphan_json(a, x, seen);
                        const char *action = "waiting";
                        if (may_remove && seen >= grace) {
                                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                                int r = remove_orphan(a, x, &e);
                                if (r >= 0) {
                                        action = "removed";
                                        s->mark = false; /* back again: a new clock */
                                } else {
                                        action = "failed";
                                        json_object_set_new(j, "error",
                                                            json_string(gv_error_msg(e, r)));
                                }
                        }
                        json_object_set_new(j, "action", json_string(action));
                        if (!json_object_get(j, "error"))
                                json_object_set_new(j, "error", json_null());
                        json_array_append_new(out, j);
                }
        seen_sweep(rc);
        for (size_t i = 0; i < n; i++)
                free(l[i].profile);
}

/* Per-VM cgroups of this agent (vm.c, docs/qemu-confinement.md) whose VM is gone or has no
 * QEMU: a stop removes its own; what an interrupted one left is removed here, once empty. */
static json_t *cgroups_pass(struct gv_agent *a, json_t *notes)
{
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *removed = json_array();
        int r = gv_cgroup_list(a->cgroup_root, a->cgroup_parent, &names, &e);

        if (r < 0) {
                json_array_append_new(notes, json_sprintf("cgroups: %s", gv_error_msg(e, r)));
                return removed;
        }
        STRV_FOREACH(n, names) {
                _cleanup_free_ char *group = gv_path_join(a->cgroup_parent, *n);
                _cleanup_(gv_error_freep) struct gv_error *re = NULL;
                bool live = false;

                pthread_mutex_lock(&a->lock);
                struct gv_agent_vm *vm = gv_agent_vm_find_locked(a, *n);
                if (vm)
                        live = gv_vm_phase_has_qemu(__atomic_load_n(&vm->phase,
                                                                    __ATOMIC_RELAXED));
                pthread_mutex_unlock(&a->lock);
                if (live)
                        continue;
                if (gv_cgroup_populated(a->cgroup_root, group)) {
                        json_array_append_new(notes, json_sprintf("cgroup '%s' has no VM with a "
                                                                  "QEMU here but still holds "
                                                                  "processes; left alone",
                                                                  group));
                        continue;
                }
                r = gv_cgroup_remove(a->cgroup_root, group, &re);
                if (r < 0)
                        json_array_append_new(notes, json_sprintf("cgroups: %s",
                                                                  gv_error_msg(re, r)));
                else
                        json_array_append_new(removed, json_string(group));
        }
        return removed;
}

json_t *gv_agent_reconcile(struct gv_agent *a)
{
        json_t *report = json_object(), *orphans = json_array(), *crashed = json_array();
        json_t *released = json_array(), *notes = json_array();
        _cleanup_strv_free_ char **busy = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *skipped = NULL;
        struct gv_reconcile *rc;
        int64_t t0 = now_ms();
        int r;

        /* First the VMs, one lock at a time and none held after: what a dead QEMU held is
         * released before the hardware is looked at, so it is not taken for an orphan. */
        check_vms(a, crashed, released, &busy);
        json_t *cgroups = cgroups_pass(a, notes);

        pthread_mutex_lock(&a->host_lock);
        rc = rc_get(a);
        r = gv_agent_hostcfg_load(a, &e);
        if (r < 0) {
                /* Without the configuration no orphan can be told from the administrator's
                 * layout: nothing is looked at until it is fixed. */
                skipped = xasprintf("%s Orphans are not looked for until then.",
                                    gv_error_msg(e, r));
        } else {
                if (busy) {
                        _cleanup_free_ char *list = strv_join(busy, "', '");
                        skipped = xasprintf("VM '%s' %s in the middle of an operation: orphans "
                                            "are tracked, none is removed on this pass.", list,
                                            busy[1] ? "are" : "is");
                }
                orphans_pass(a, rc, !busy, orphans, notes);
        }
        if (rc->note) {
                json_array_append_new(notes, json_string(rc->note));
                free(rc->note);
                rc->note = NULL;
        }
        json_object_set_new(report, "orphans", orphans);
        json_object_set_new(report, "crashed", crashed);
        json_object_set_new(report, "released", released);
        json_object_set_new(report, "cgroups_removed", cgroups);
        json_object_set_new(report, "skipped", skipped ? json_string(skipped) : json_null());
        json_object_set_new(report, "grace_s", json_integer(MAX(a->cfg.orphan_grace_ms, 0) / 1000));
        json_object_set_new(report, "time", json_integer((json_int_t)time(NULL)));
        json_object_set_new(report, "notes", notes);
        json_object_set_new(report, "duration_ms", json_integer(now_ms() - t0));
        json_decref(rc->last);
        rc->last = json_deep_copy(report);
        pthread_mutex_unlock(&a->host_lock);
        return report;
}

json_t *gv_agent_reconcile_last(struct gv_agent *a)
{
        json_t *j = NULL;

        pthread_mutex_lock(&a->host_lock);
        if (a->reconcile && a->reconcile->last)
                j = json_deep_copy(a->reconcile->last);
        pthread_mutex_unlock(&a->host_lock);
        return j;
}

static int interval_ms(const struct gv_agent *a)
{
        int grace = a->cfg.orphan_grace_ms;

        if (a->cfg.reconcile_interval_ms)
                return a->cfg.reconcile_interval_ms < 0 ? -1 : a->cfg.reconcile_interval_ms;
        return grace <= 0 ? INTERVAL_MIN_MS : MAX(MIN(grace / 4, INTERVAL_MAX_MS), INTERVAL_MIN_MS);
}

int gv_agent_reconcile_tick(struct gv_agent *a, int64_t *next_ms)
{
        int iv = interval_ms(a);
        int64_t now = now_ms();

        if (*next_ms == 0) {
                /* The supervisor's first turn: the host configuration is read (or the host
                 * adopted) before anyone can change the host through the agent. */
                pthread_mutex_lock(&a->host_lock);
                (void)gv_agent_hostcfg_load(a, NULL);
                pthread_mutex_unlock(&a->host_lock);
                *next_ms = iv < 0 ? INT64_MAX : now;
        }
        if (iv < 0)
                return -1;
        if (now >= *next_ms) {
                json_decref(gv_agent_reconcile(a));
                now = now_ms();
                *next_ms = now + iv;
        }
        return (int)MIN(*next_ms - now, (int64_t)INTERVAL_MAX_MS);
}
