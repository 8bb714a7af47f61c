/* SPDX-License-Identifier: MIT */
/*
 * cluster.c — building the placement engine's cluster model (models, hosts, GPUs, labels,
 * anti-affinity groups), its accessors, policy state, and the from-scratch consistency check.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog/mig-layout.h"
#include "sched/sched-internal.h"
#include "util/alloc.h"
#include "util/enum-table.h"

static const char *const host_state_table[_GV_SCHED_HOST_STATE_MAX] = {
        [GV_SCHED_HOST_UP] = "up",
        [GV_SCHED_HOST_MAINTENANCE] = "maintenance",
        [GV_SCHED_HOST_DOWN] = "down",
};
DEFINE_STRING_TABLE_LOOKUP(gv_sched_host_state, enum gv_sched_host_state, host_state_table);

static const char *const gpu_mode_table[_GV_SCHED_MODE_MAX] = {
        [GV_SCHED_MODE_UNASSIGNED] = "unassigned",
        [GV_SCHED_MODE_PASSTHROUGH] = "passthrough",
        [GV_SCHED_MODE_VGPU] = "vgpu",
        [GV_SCHED_MODE_MIG] = "mig",
        [GV_SCHED_MODE_SHARE] = "share",
};
DEFINE_STRING_TABLE_LOOKUP(gv_sched_gpu_mode, enum gv_sched_gpu_mode, gpu_mode_table);

static const char *const kind_table[_GV_SCHED_KIND_MAX] = {
        [GV_SCHED_KIND_NONE] = "none",
        [GV_SCHED_KIND_WHOLE] = "gpu",
        [GV_SCHED_KIND_VGPU] = "vgpu",
        [GV_SCHED_KIND_MIG] = "mig",
        [GV_SCHED_KIND_SHARE] = "share",
        [GV_SCHED_KIND_NEED] = "need",
};
DEFINE_STRING_TABLE_LOOKUP(gv_sched_kind, enum gv_sched_kind, kind_table);

static const char *const isolation_table[_GV_SCHED_ISOLATION_MAX] = {
        [GV_SCHED_ISOLATION_NONE] = "none",
        [GV_SCHED_ISOLATION_SOFTWARE] = "software",
        [GV_SCHED_ISOLATION_HARDWARE] = "hardware",
};
DEFINE_STRING_TABLE_LOOKUP(gv_sched_isolation, enum gv_sched_isolation, isolation_table);

static const char *const alloc_table[_GV_SCHED_ALLOC_MAX] = {
        [GV_SCHED_ALLOC_WHOLE] = "whole",
        [GV_SCHED_ALLOC_SHARE] = "share",
        [GV_SCHED_ALLOC_VGPU] = "vgpu",
        [GV_SCHED_ALLOC_MIG] = "mig",
        [GV_SCHED_ALLOC_MIG_VGPU] = "mig-vgpu",
};
const char *gv_sched_alloc_to_string(enum gv_sched_alloc a)
{
        if ((int)a < 0 || (size_t)a >= ELEMENTSOF(alloc_table))
                return NULL;
        return alloc_table[a];
}

static const char *const reject_table[_GV_SCHED_REJECT_MAX] = {
        [GV_SCHED_REJECT_STATE] = "in maintenance or down",
        [GV_SCHED_REJECT_LABELS] = "missing a required label",
        [GV_SCHED_REJECT_MODEL] = "no GPU of an allowed model that offers it",
        [GV_SCHED_REJECT_ANTI_AFFINITY] = "already holding a member of the anti-affinity group",
        [GV_SCHED_REJECT_CPU] = "not enough free CPU",
        [GV_SCHED_REJECT_MEMORY] = "not enough free memory",
        [GV_SCHED_REJECT_GPU_MODE] = "GPUs in use in another mode",
        [GV_SCHED_REJECT_GPU_COUNT] = "too few empty GPUs",
        [GV_SCHED_REJECT_GPU_SHARE] = "no GPU with enough free share",
        [GV_SCHED_REJECT_VGPU_SAME_SIZE] = "another vGPU type running in equal-size mode",
        [GV_SCHED_REJECT_VGPU_FULL] = "vGPU instances or placement ids used up",
        [GV_SCHED_REJECT_MIG_LIMIT] = "MIG instance or compute-slice limit reached",
        [GV_SCHED_REJECT_MIG_GEOMETRY] = "no free MIG placement (memory slices taken)",
};
const char *gv_sched_reject_to_string(enum gv_sched_reject r)
{
        if ((int)r < 0 || (size_t)r >= ELEMENTSOF(reject_table))
                return NULL;
        return reject_table[r];
}

struct gv_sched_cluster *gv_sched_cluster_new(void)
{
        return xnew0(struct gv_sched_cluster, 1);
}

struct gv_sched_cluster *gv_sched_cluster_free(struct gv_sched_cluster *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_policies; i++)
                if (c->policies[i].p->detach)
                        c->policies[i].p->detach(c->policies[i].state);
        for (size_t i = 0; i < c->n_models; i++) {
                free(c->models[i].pub.name);
                free(c->models[i].vgpu);
        }
        for (size_t i = 0; i < c->n_hosts; i++)
                free(c->hosts[i].name);
        free(c->hosts);
        free(c->gpus);
        free(c->free_milli);
        for (size_t i = 0; i < c->n_labels; i++)
                free(c->labels[i]);
        for (size_t i = 0; i < c->n_groups; i++) {
                free(c->groups[i]);
                free(c->group_hosts[i]);
        }
        free(c->groups);
        free(c->group_hosts);
        free(c);
        return NULL;
}

/* ---- models ---- */

static bool name_ok(const char *s)
{
        if (!s || !*s || strlen(s) > 128)
                return false;
        for (const char *p = s; *p; p++)
                if (*p == '|' || *p == ',' || (unsigned char)*p < 0x20)
                        return false;
        return true;
}

static int model_slot(struct gv_sched_cluster *c, const char *name, uint64_t memory_mib,
                      struct gv_error **err)
{
        if (!name_ok(name))
                return gv_error_set(err, EINVAL, "Invalid GPU model name '%s': use a non-empty "
                                    "name without '|', ',' or control characters.",
                                    name ? name : "");
        if (memory_mib == 0)
                return gv_error_set(err, EINVAL, "GPU model '%s' has no memory size; give its "
                                    "memory in MiB.", name);
        if (gv_sched_cluster_find_model(c, name) >= 0)
                return gv_error_set(err, EEXIST, "GPU model '%s' is already in the cluster.",
                                    name);
        if (c->n_models >= GV_SCHED_MAX_MODELS)
                return gv_error_set(err, E2BIG, "A cluster holds at most %u GPU models; '%s' is "
                                    "one too many.", GV_SCHED_MAX_MODELS, name);
        return (int)c->n_models;
}

int gv_sched_cluster_add_share_model(struct gv_sched_cluster *c, const char *name,
                                     uint64_t memory_mib, struct gv_error **err)
{
        int id = model_slot(c, name, memory_mib, err);
        if (id < 0)
                return id;
        struct sched_model *m = &c->models[id];
        *m = (struct sched_model){
                .pub = { .name = xstrdup(name), .memory_mib = memory_mib },
        };
        c->n_models++;
        return id;
}

int gv_sched_cluster_add_model(struct gv_sched_cluster *c, const struct gv_gpu_model *gm,
                               struct gv_error **err)
{
        if (!gm)
                return gv_error_set(err, EINVAL, "No catalog model given.");
        int id = model_slot(c, gm->name, gm->memory_mib, err);
        if (id < 0)
                return id;
        if (gm->n_gi_profiles > GV_SCHED_MAX_MIG_PROFILES)
                return gv_error_set(err, E2BIG, "GPU model '%s' has %zu MIG profiles; the "
                                    "placement engine handles at most %u.", gm->name,
                                    gm->n_gi_profiles, GV_SCHED_MAX_MIG_PROFILES);
        if (gm->n_vgpu_types > GV_SCHED_MAX_VGPU_TYPES)
                return gv_error_set(err, E2BIG, "GPU model '%s' has %zu vGPU types; the "
                                    "placement engine handles at most %u.", gm->name,
                                    gm->n_vgpu_types, GV_SCHED_MAX_VGPU_TYPES);
        if (gm->n_gi_profiles > 0 && (gm->mig_memory_slices == 0 || gm->mig_memory_slices > 32 ||
                                      gm->mig_compute_slices == 0 ||
                                      gm->mig_compute_slices > 255 ||
                                      gm->mig_max_instances == 0))
                return gv_error_set(err, EINVAL, "GPU model '%s' has MIG profiles but an "
                                    "invalid slice geometry (%u memory, %u compute slices).",
                                    gm->name, gm->mig_memory_slices, gm->mig_compute_slices);

        struct sched_model m = {
                .pub = {
                        .memory_mib = gm->memory_mib,
                        .catalog = gm,
                        .mig = gm->n_gi_profiles > 0,
                        .mig_memory_slices = gm->mig_memory_slices,
                        .mig_compute_slices = gm->mig_compute_slices,
                        .mig_max_instances = gm->mig_max_instances,
                },
        };
        for (size_t i = 0; i < gm->n_gi_profiles; i++) {
                const struct gv_mig_gi_profile *p = &gm->gi_profiles[i];
                struct sched_mig_profile *sp = &m.mig[i];
                if (p->slices == 0 || p->slices > gm->mig_compute_slices ||
                    p->memory_slices == 0 || p->memory_slices > gm->mig_memory_slices ||
                    p->instances > 255)
                        return gv_error_set(err, EINVAL, "MIG profile '%s' of GPU model '%s' "
                                            "has an invalid size.", p->name, gm->name);
                *sp = (struct sched_mig_profile){
                        .gi = p,
                        .slices = (uint8_t)p->slices,
                        .memory_slices = (uint8_t)p->memory_slices,
                        .instances = (uint8_t)p->instances,
                        .media = p->media_extensions,
                };
                for (size_t k = 0; k < p->n_placements; k++) {
                        uint32_t mask = gv_mig_placement_mask(&p->placements[k]);
                        if (mask == 0 || p->placements[k].start + p->placements[k].size >
                                                 gm->mig_memory_slices)
                                return gv_error_set(err, EINVAL, "MIG profile '%s' of GPU "
                                                    "model '%s' has a placement outside its "
                                                    "%u memory slices.", p->name, gm->name,
                                                    gm->mig_memory_slices);
                        if (sp->n_placements >= SCHED_MAX_PLACEMENTS)
                                return gv_error_set(err, E2BIG, "MIG profile '%s' of GPU model "
                                                    "'%s' has more than %u placements.",
                                                    p->name, gm->name, SCHED_MAX_PLACEMENTS);
                        sp->starts[sp->n_placements] = (uint16_t)p->placements[k].start;
                        sp->masks[sp->n_placements++] = mask;
                }
        }
        m.n_mig = gm->n_gi_profiles;

        m.vgpu = xnew0(struct sched_vgpu_type, gm->n_vgpu_types ? gm->n_vgpu_types : 1);
        m.n_vgpu = gm->n_vgpu_types;
        for (size_t i = 0; i < gm->n_vgpu_types; i++) {
                const struct gv_vgpu_type *t = &gm->vgpu_types[i];
                struct sched_vgpu_type *st = &m.vgpu[i];
                /* Placement size: framebuffer in GiB rounded up, ids k·size (vgpu.md §8: L4-6Q
                 * "Placement Size : 6", supported ids 0 6 12 18). */
                uint64_t size = (t->framebuffer_mib + 1023) / 1024;
                *st = (struct sched_vgpu_type){
                        .t = t,
                        .fb_mib = t->framebuffer_mib,
                        .size = (uint16_t)(size ? size : 1),
                        .max_equal = (uint16_t)MIN(t->max_instances, 0xffffu),
                        .max_mixed = (uint16_t)MIN(t->max_instances_mixed, 0xffffu),
                        .gi = -1,
                };
                if (t->gi) {
                        st->gi = (int16_t)(t->gi - gm->gi_profiles);
                        if (st->gi < 0 || (size_t)st->gi >= gm->n_gi_profiles) {
                                free(m.vgpu);
                                return gv_error_set(err, EINVAL, "vGPU type '%s' of GPU model "
                                                    "'%s' names a GI profile outside the "
                                                    "model.", t->name, gm->name);
                        }
                        st->max_mixed = 0;
                } else if (size * st->max_mixed > GV_SCHED_VGPU_UNITS) {
                        free(m.vgpu);
                        return gv_error_set(err, E2BIG, "vGPU type '%s' of GPU model '%s' "
                                            "spans %" PRIu64 " placement units; the engine "
                                            "handles %u.", t->name, gm->name,
                                            size * st->max_mixed, GV_SCHED_VGPU_UNITS);
                }
                if (!t->gi && size * st->max_mixed > m.pub.vgpu_units)
                        m.pub.vgpu_units = (uint32_t)(size * st->max_mixed);
        }
        m.pub.name = xstrdup(gm->name);
        c->models[id] = m;
        c->n_models++;
        return id;
}

int gv_sched_cluster_find_model(const struct gv_sched_cluster *c, const char *name)
{
        if (!name)
                return -ENOENT;
        for (size_t i = 0; i < c->n_models; i++)
                if (strcasecmp(c->models[i].pub.name, name) == 0)
                        return (int)i;
        return -ENOENT;
}

static char *model_names(const struct gv_sched_cluster *c)
{
        size_t len = 1;
        for (size_t i = 0; i < c->n_models; i++)
                len += strlen(c->models[i].pub.name) + 2;
        char *s = xmalloc(len), *p = s;
        *p = 0;
        for (size_t i = 0; i < c->n_models; i++)
                p += sprintf(p, "%s%s", i ? ", " : "", c->models[i].pub.name);
        if (c->n_models == 0)
                strcpy(s, "(none)");
        return s;
}

int gv_sched_cluster_model_mask(const struct gv_sched_cluster *c, const char *spec,
                                uint64_t *ret, struct gv_error **err)
{
        uint64_t mask = 0;
        if (!spec || !*spec) {
                *ret = 0;
                return 0;
        }
        _cleanup_free_ char *copy = xstrdup(spec);
        char *save = NULL;
        for (char *tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
                int id = gv_sched_cluster_find_model(c, tok);
                if (id < 0) {
                        _cleanup_free_ char *names = model_names(c);
                        return gv_error_set(err, EINVAL, "Unknown GPU model '%s' in '%s'; the "
                                            "cluster has: %s.", tok, spec, names);
                }
                mask |= UINT64_C(1) << id;
        }
        if (mask == 0)
                return gv_error_set(err, EINVAL, "GPU model list '%s' names no model.", spec);
        *ret = mask;
        return 0;
}

/* ---- labels and groups ---- */

int gv_sched_cluster_label(struct gv_sched_cluster *c, const char *name, struct gv_error **err)
{
        if (!name_ok(name))
                return gv_error_set(err, EINVAL, "Invalid host label '%s': use a non-empty "
                                    "name without '|', ',' or control characters.",
                                    name ? name : "");
        for (size_t i = 0; i < c->n_labels; i++)
                if (strcmp(c->labels[i], name) == 0)
                        return (int)i;
        if (c->n_labels >= GV_SCHED_MAX_LABELS)
                return gv_error_set(err, E2BIG, "A cluster holds at most %u distinct host "
                                    "labels; '%s' is one too many.", GV_SCHED_MAX_LABELS, name);
        c->labels[c->n_labels] = xstrdup(name);
        return (int)c->n_labels++;
}

const char *gv_sched_cluster_label_name(const struct gv_sched_cluster *c, uint32_t id)
{
        return id < c->n_labels ? c->labels[id] : NULL;
}

int gv_sched_cluster_label_mask(const struct gv_sched_cluster *c, const char *list,
                                uint64_t *ret, struct gv_error **err)
{
        uint64_t mask = 0;
        if (list && *list) {
                _cleanup_free_ char *copy = xstrdup(list);
                char *save = NULL;
                for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                        size_t i;
                        for (i = 0; i < c->n_labels; i++)
                                if (strcmp(c->labels[i], t) == 0)
                                        break;
                        if (i == c->n_labels) {
                                size_t len = 8;
                                for (size_t k = 0; k < c->n_labels; k++)
                                        len += strlen(c->labels[k]) + 2;
                                _cleanup_free_ char *names = xmalloc(len);
                                char *p = names;
                                *p = 0;
                                for (size_t k = 0; k < c->n_labels; k++)
                                        p += sprintf(p, "%s%s", k ? ", " : "", c->labels[k]);
                                if (c->n_labels == 0)
                                        strcpy(names, "(none)");
                                return gv_error_set(err, ENOENT, "No host has label '%s'; the "
                                                    "labels in the cluster are: %s.", t, names);
                        }
                        mask |= UINT64_C(1) << i;
                }
        }
        *ret = mask;
        return 0;
}

static void groups_grow_hosts(struct gv_sched_cluster *c, size_t n_hosts)
{
        size_t words = (n_hosts + 63) / 64;
        if (words <= c->group_words)
                return;
        words = MAX(words, c->group_words * 2);
        for (size_t i = 0; i < c->n_groups; i++) {
                c->group_hosts[i] = xreallocarray(c->group_hosts[i], words, sizeof(uint64_t));
                memset(c->group_hosts[i] + c->group_words, 0,
                       (words - c->group_words) * sizeof(uint64_t));
        }
        c->group_words = words;
}

int gv_sched_cluster_group(struct gv_sched_cluster *c, const char *name)
{
        if (!name || !*name)
                return -EINVAL;
        for (size_t i = 0; i < c->n_groups; i++)
                if (strcmp(c->groups[i], name) == 0)
                        return (int)i + 1;
        if (c->n_groups >= (size_t)INT32_MAX - 1)
                return -E2BIG;
        if (c->n_groups == c->cap_groups) {
                c->cap_groups = c->cap_groups ? c->cap_groups * 2 : 8;
                c->groups = xreallocarray(c->groups, c->cap_groups, sizeof(char *));
                c->group_hosts = xreallocarray(c->group_hosts, c->cap_groups, sizeof(uint64_t *));
        }
        if (c->group_words == 0)
                c->group_words = MAX((size_t)1, (c->n_hosts + 63) / 64);
        c->groups[c->n_groups] = xstrdup(name);
        c->group_hosts[c->n_groups] = xnew0(uint64_t, c->group_words);
        return (int)++c->n_groups;
}

/* ---- hosts ---- */

bool sched_units_free(const uint64_t *map, uint32_t start, uint32_t size)
{
        if (start + size > GV_SCHED_VGPU_UNITS)
                return false;
        for (uint32_t u = start; u < start + size; u++)
                if ((map[u / 64] >> (u % 64)) & 1)
                        return false;
        return true;
}

void sched_units_set(uint64_t *map, uint32_t start, uint32_t size, bool on)
{
        for (uint32_t u = start; u < start + size && u < GV_SCHED_VGPU_UNITS; u++) {
                if (on)
                        map[u / 64] |= UINT64_C(1) << (u % 64);
                else
                        map[u / 64] &= ~(UINT64_C(1) << (u % 64));
        }
}

uint32_t sched_gpu_used_milli(const struct gv_sched_cluster *c, const struct gv_sched_gpu *g)
{
        const struct sched_model *m = sched_model_of(c, g);
        if (g->n_alloc == 0)
                return 0;
        switch (g->mode) {
        case GV_SCHED_MODE_PASSTHROUGH:
                return GV_SCHED_MILLI;
        case GV_SCHED_MODE_SHARE:
                return g->share_milli;
        case GV_SCHED_MODE_VGPU: {
                uint64_t u = g->vgpu_fb_mib * GV_SCHED_MILLI / m->pub.memory_mib;
                return (uint32_t)MIN(u, (uint64_t)GV_SCHED_MILLI);
        }
        case GV_SCHED_MODE_MIG:
                return m->pub.mig_compute_slices
                               ? g->mig_compute_used * GV_SCHED_MILLI / m->pub.mig_compute_slices
                               : 0;
        default:
                return 0;
        }
}

void sched_host_refresh(struct gv_sched_cluster *c, uint32_t host)
{
        struct gv_sched_host *h = &c->hosts[host];
        uint32_t free_gpus = 0, share_free = 0, share_max = 0, used = 0;

        for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus; i++) {
                struct gv_sched_gpu *g = &c->gpus[i];
                g->used_milli = sched_gpu_used_milli(c, g);
                c->free_milli[i] = GV_SCHED_MILLI - g->used_milli;
                used += g->used_milli;
                if (g->n_alloc == 0)
                        free_gpus++;
                if (g->n_alloc == 0 || g->mode == GV_SCHED_MODE_SHARE) {
                        share_free += c->free_milli[i];
                        share_max = MAX(share_max, c->free_milli[i]);
                }
        }
        c->used_milli = c->used_milli - h->used_milli + used;
        h->free_gpus = free_gpus;
        h->share_free_milli = share_free;
        h->share_max_free_milli = share_max;
        h->used_milli = used;
}

void sched_notify(struct gv_sched_cluster *c, uint32_t host)
{
        for (size_t i = 0; i < c->n_policies; i++)
                if (c->policies[i].p->host_changed)
                        c->policies[i].p->host_changed(c, c->policies[i].state, host);
}

int gv_sched_cluster_find_host(const struct gv_sched_cluster *c, const char *name)
{
        if (!name)
                return -ENOENT;
        for (size_t i = 0; i < c->n_hosts; i++)
                if (strcmp(c->hosts[i].name, name) == 0)
                        return (int)i;
        return -ENOENT;
}

int gv_sched_cluster_add_host(struct gv_sched_cluster *c, const struct gv_sched_host_spec *spec,
                              struct gv_error **err)
{
        uint64_t labels = 0, models = 0;
        int r;

        if (!spec || !name_ok(spec->name))
                return gv_error_set(err, EINVAL, "Invalid host name '%s': use a non-empty name "
                                    "without '|', ',' or control characters.",
                                    spec && spec->name ? spec->name : "");
        if (gv_sched_cluster_find_host(c, spec->name) >= 0)
                return gv_error_set(err, EEXIST, "Host '%s' is already in the cluster.",
                                    spec->name);
        if ((int)spec->state < 0 || spec->state >= _GV_SCHED_HOST_STATE_MAX)
                return gv_error_set(err, EINVAL, "Host '%s' has an invalid state %d (use up, "
                                    "maintenance or down).", spec->name, (int)spec->state);
        if (spec->n_gpus > GV_SCHED_MAX_HOST_GPUS)
                return gv_error_set(err, E2BIG, "Host '%s' has %zu GPUs; the placement engine "
                                    "handles at most %u per host.", spec->name, spec->n_gpus,
                                    GV_SCHED_MAX_HOST_GPUS);
        if (c->n_hosts >= INT32_MAX)
                return gv_error_set(err, E2BIG, "Too many hosts.");
        for (size_t i = 0; i < spec->n_gpus; i++) {
                const struct gv_sched_gpu_spec *gs = &spec->gpus[i];
                if (gs->model >= c->n_models)
                        return gv_error_set(err, EINVAL, "GPU %zu of host '%s' names model id "
                                            "%u; the cluster has %zu models.", i, spec->name,
                                            gs->model, c->n_models);
                const struct sched_model *m = &c->models[gs->model];
                if ((int)gs->mode < 0 || gs->mode >= _GV_SCHED_MODE_MAX)
                        return gv_error_set(err, EINVAL, "GPU %zu of host '%s' has an invalid "
                                            "mode %d (use unassigned, passthrough, vgpu, mig or "
                                            "share).", i, spec->name, (int)gs->mode);
                if (gs->mode == GV_SCHED_MODE_MIG && !m->pub.mig)
                        return gv_error_set(err, EINVAL, "GPU %zu of host '%s' is a '%s', which "
                                            "has no MIG; configure it in another mode.", i,
                                            spec->name, m->pub.name);
                if (gs->mode == GV_SCHED_MODE_VGPU && m->n_vgpu == 0)
                        return gv_error_set(err, EINVAL, "GPU %zu of host '%s' is a '%s', which "
                                            "has no vGPU types; configure it in another mode.",
                                            i, spec->name, m->pub.name);
                if (gs->mixed_size && !(m->pub.catalog &&
                                        m->pub.catalog->vgpu_heterogeneous_capable))
                        return gv_error_set(err, EINVAL, "GPU %zu of host '%s' is a '%s', which "
                                            "does not support vGPU mixed-size mode.", i,
                                            spec->name, m->pub.name);
                models |= UINT64_C(1) << gs->model;
        }
        if (spec->n_labels && !spec->labels)
                return gv_error_set(err, EINVAL, "Host '%s': labels missing.", spec->name);
        for (size_t i = 0; i < spec->n_labels; i++) {
                r = gv_sched_cluster_label(c, spec->labels[i], err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Host '%s'", spec->name);
                labels |= UINT64_C(1) << r;
        }

        if (c->n_hosts == c->cap_hosts) {
                c->cap_hosts = c->cap_hosts ? c->cap_hosts * 2 : 64;
                c->hosts = xreallocarray(c->hosts, c->cap_hosts, sizeof(*c->hosts));
        }
        if (c->n_gpus + spec->n_gpus > c->cap_gpus) {
                c->cap_gpus = MAX(c->cap_gpus * 2, c->n_gpus + spec->n_gpus + 64);
                c->gpus = xreallocarray(c->gpus, c->cap_gpus, sizeof(*c->gpus));
                c->free_milli = xreallocarray(c->free_milli, c->cap_gpus, sizeof(uint32_t));
        }
        uint32_t id = (uint32_t)c->n_hosts;
        c->hosts[id] = (struct gv_sched_host){
                .name = xstrdup(spec->name),
                .state = spec->state,
                .labels = labels,
                .model_mask = models,
                .first_gpu = (uint32_t)c->n_gpus,
                .n_gpus = (uint32_t)spec->n_gpus,
                .cpu_milli = spec->cpu_milli,
                .memory_mib = spec->memory_mib,
                .cpu_free = spec->cpu_milli,
                .memory_free = spec->memory_mib,
        };
        for (size_t i = 0; i < spec->n_gpus; i++) {
                c->gpus[c->n_gpus + i] = (struct gv_sched_gpu){
                        .host = id,
                        .model = (uint16_t)spec->gpus[i].model,
                        .index = (uint16_t)i,
                        .mode = spec->gpus[i].mode,
                        .base_mode = spec->gpus[i].mode,
                        .mixed_size = spec->gpus[i].mixed_size,
                        .vgpu_type = -1,
                };
                c->free_milli[c->n_gpus + i] = GV_SCHED_MILLI;
        }
        c->n_gpus += spec->n_gpus;
        c->n_hosts++;
        groups_grow_hosts(c, c->n_hosts);
        sched_host_refresh(c, id);
        sched_notify(c, id);
        return (int)id;
}

int gv_sched_cluster_set_host_state(struct gv_sched_cluster *c, uint32_t host,
                                    enum gv_sched_host_state state)
{
        if (host >= c->n_hosts || (int)state < 0 || state >= _GV_SCHED_HOST_STATE_MAX)
                return -EINVAL;
        c->hosts[host].state = state;
        sched_notify(c, host);
        return 0;
}

size_t gv_sched_cluster_n_models(const struct gv_sched_cluster *c)
{
        return c->n_models;
}

size_t gv_sched_cluster_n_hosts(const struct gv_sched_cluster *c)
{
        return c->n_hosts;
}

size_t gv_sched_cluster_n_gpus(const struct gv_sched_cluster *c)
{
        return c->n_gpus;
}

const struct gv_sched_model *gv_sched_cluster_model(const struct gv_sched_cluster *c, uint32_t id)
{
        return id < c->n_models ? &c->models[id].pub : NULL;
}

const struct gv_sched_host *gv_sched_cluster_host(const struct gv_sched_cluster *c, uint32_t id)
{
        return id < c->n_hosts ? &c->hosts[id] : NULL;
}

const struct gv_sched_gpu *gv_sched_cluster_gpu(const struct gv_sched_cluster *c, uint32_t id)
{
        return id < c->n_gpus ? &c->gpus[id] : NULL;
}

const uint32_t *gv_sched_cluster_free_milli(const struct gv_sched_cluster *c)
{
        return c->free_milli;
}

uint64_t gv_sched_cluster_used_milli(const struct gv_sched_cluster *c)
{
        return c->used_milli;
}

/* ---- policies' state ---- */

int gv_sched_policy_attach(struct gv_sched_cluster *c, const struct gv_sched_policy *p,
                           struct gv_error **err)
{
        void *state = NULL;
        int r;

        if (!p || !p->score)
                return gv_error_set(err, EINVAL, "Invalid placement policy (no score function).");
        for (size_t i = 0; i < c->n_policies; i++)
                if (c->policies[i].p == p)
                        return 0;
        if (c->n_policies >= SCHED_MAX_POLICIES)
                return gv_error_set(err, E2BIG, "At most %u policies can be attached to one "
                                    "cluster; '%s' is one too many.", SCHED_MAX_POLICIES,
                                    p->name);
        if (p->attach) {
                r = p->attach(c, &state, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Policy '%s'", p->name);
        }
        c->policies[c->n_policies++] = (struct sched_policy_slot){ .p = p, .state = state };
        return 0;
}

void *gv_sched_policy_state(const struct gv_sched_cluster *c, const struct gv_sched_policy *p)
{
        for (size_t i = 0; i < c->n_policies; i++)
                if (c->policies[i].p == p)
                        return c->policies[i].state;
        return NULL;
}

/* ---- the from-scratch check ---- */

#define CHECK(cond, ...)                                                 \
        do {                                                             \
                if (!(cond))                                             \
                        return gv_error_set(err, EUCLEAN, __VA_ARGS__);  \
        } while (0)

static int check_gpu(const struct gv_sched_cluster *c, const struct gv_sched_host *h,
                     const struct gv_sched_gpu *g, uint32_t id, struct gv_error **err)
{
        const struct sched_model *m = sched_model_of(c, g);
        const char *hn = h->name;

        if (g->n_alloc == 0) {
                CHECK(g->mode == g->base_mode, "Host '%s' GPU %u: empty but in mode '%s', not "
                      "its configured '%s'.", hn, g->index, gv_sched_gpu_mode_to_string(g->mode),
                      gv_sched_gpu_mode_to_string(g->base_mode));
                CHECK(g->share_milli == 0 && g->n_vgpus == 0 && g->vgpu_fb_mib == 0 &&
                      g->mig_occupied == 0 && g->mig_instances == 0 && g->mig_compute_used == 0 &&
                      g->vgpu_type == -1,
                      "Host '%s' GPU %u: empty but holds allocation state.", hn, g->index);
                for (size_t k = 0; k < ELEMENTSOF(g->vgpu_units); k++)
                        CHECK(g->vgpu_units[k] == 0, "Host '%s' GPU %u: empty but holds vGPU "
                              "placement units.", hn, g->index);
        }
        switch (g->n_alloc ? g->mode : GV_SCHED_MODE_UNASSIGNED) {
        case GV_SCHED_MODE_PASSTHROUGH:
                CHECK(g->n_alloc == 1, "Host '%s' GPU %u: passed through %u times.", hn,
                      g->index, g->n_alloc);
                break;
        case GV_SCHED_MODE_SHARE:
                CHECK(g->share_milli >= g->n_alloc && g->share_milli <= GV_SCHED_MILLI,
                      "Host '%s' GPU %u: share of %u milli over %u allocations.", hn, g->index,
                      g->share_milli, g->n_alloc);
                break;
        case GV_SCHED_MODE_VGPU: {
                CHECK(g->n_vgpus == g->n_alloc, "Host '%s' GPU %u: %u vGPUs but %u "
                      "allocations.", hn, g->index, g->n_vgpus, g->n_alloc);
                if (!g->mixed_size) {
                        CHECK(g->vgpu_type >= 0 && (size_t)g->vgpu_type < m->n_vgpu &&
                              g->n_vgpus <= m->vgpu[g->vgpu_type].max_equal &&
                              g->vgpu_fb_mib == g->n_vgpus * m->vgpu[g->vgpu_type].fb_mib,
                              "Host '%s' GPU %u: equal-size vGPU state is inconsistent.", hn,
                              g->index);
                } else {
                        uint32_t units = 0;
                        for (size_t k = 0; k < ELEMENTSOF(g->vgpu_units); k++)
                                units += (uint32_t)__builtin_popcountll(g->vgpu_units[k]);
                        CHECK(units > 0 && units <= m->pub.vgpu_units, "Host '%s' GPU %u: %u "
                              "vGPU placement units taken of %u.", hn, g->index, units,
                              m->pub.vgpu_units);
                }
                break;
        }
        case GV_SCHED_MODE_MIG: {
                uint32_t n = 0, compute = 0, slices = 0;
                for (size_t p = 0; p < m->n_mig; p++) {
                        CHECK(g->mig_count[p] <= m->mig[p].instances, "Host '%s' GPU %u: %u "
                              "instances of MIG profile '%s' (limit %u).", hn, g->index,
                              g->mig_count[p], m->mig[p].gi->name, m->mig[p].instances);
                        n += g->mig_count[p];
                        compute += g->mig_count[p] * m->mig[p].slices;
                        slices += g->mig_count[p] * m->mig[p].memory_slices;
                }
                CHECK(n == g->mig_instances && n == g->n_alloc &&
                      n <= m->pub.mig_max_instances, "Host '%s' GPU %u: %u MIG instances "
                      "counted, %u recorded, limit %u.", hn, g->index, n, g->mig_instances,
                      m->pub.mig_max_instances);
                CHECK(compute == g->mig_compute_used && compute <= m->pub.mig_compute_slices,
                      "Host '%s' GPU %u: %u compute slices used by the profiles, %u recorded.",
                      hn, g->index, compute, g->mig_compute_used);
                CHECK(slices == (uint32_t)__builtin_popcount(g->mig_occupied), "Host '%s' GPU "
                      "%u: MIG instances cover %u memory slices but %d are marked (overlap?).",
                      hn, g->index, slices, __builtin_popcount(g->mig_occupied));
                break;
        }
        case GV_SCHED_MODE_UNASSIGNED:
                CHECK(g->n_alloc == 0, "Host '%s' GPU %u: allocations without a mode.", hn,
                      g->index);
                break;
        default:
                CHECK(false, "Host '%s' GPU %u: invalid mode.", hn, g->index);
        }
        CHECK(g->used_milli == sched_gpu_used_milli(c, g) &&
              c->free_milli[id] == GV_SCHED_MILLI - g->used_milli,
              "Host '%s' GPU %u: used %u milli recorded, %u implied.", hn, g->index,
              g->used_milli, sched_gpu_used_milli(c, g));
        return 0;
}

int gv_sched_cluster_check(const struct gv_sched_cluster *c, struct gv_error **err)
{
        uint64_t used_total = 0;
        int r;

        for (uint32_t hi = 0; hi < c->n_hosts; hi++) {
                const struct gv_sched_host *h = &c->hosts[hi];
                uint32_t free_gpus = 0, share_free = 0, share_max = 0, used = 0, n_alloc = 0;
                CHECK(h->cpu_free <= h->cpu_milli, "Host '%s': %" PRIu64 " milli CPU free of %"
                      PRIu64 ".", h->name, h->cpu_free, h->cpu_milli);
                CHECK(h->memory_free <= h->memory_mib, "Host '%s': %" PRIu64 " MiB free of %"
                      PRIu64 ".", h->name, h->memory_free, h->memory_mib);
                for (uint32_t i = h->first_gpu; i < h->first_gpu + h->n_gpus; i++) {
                        const struct gv_sched_gpu *g = &c->gpus[i];
                        CHECK(g->host == hi, "GPU %u: host %u recorded, %u expected.", i,
                              g->host, hi);
                        r = check_gpu(c, h, g, i, err);
                        if (r < 0)
                                return r;
                        used += g->used_milli;
                        n_alloc += g->n_alloc;
                        if (g->n_alloc == 0)
                                free_gpus++;
                        if (g->n_alloc == 0 || g->mode == GV_SCHED_MODE_SHARE) {
                                share_free += c->free_milli[i];
                                share_max = MAX(share_max, c->free_milli[i]);
                        }
                }
                CHECK(h->free_gpus == free_gpus && h->share_free_milli == share_free &&
                      h->share_max_free_milli == share_max && h->used_milli == used,
                      "Host '%s': aggregates (empty GPUs %u, share free %u, largest %u, used %u) "
                      "differ from its GPUs (%u, %u, %u, %u).", h->name, h->free_gpus,
                      h->share_free_milli, h->share_max_free_milli, h->used_milli, free_gpus,
                      share_free, share_max, used);
                CHECK(h->n_placed > 0 || (n_alloc == 0 && h->cpu_free == h->cpu_milli &&
                                          h->memory_free == h->memory_mib),
                      "Host '%s': no placement recorded but resources are taken.", h->name);
                used_total += used;
        }
        CHECK(used_total == c->used_milli, "Cluster: %" PRIu64 " milli used recorded, %" PRIu64
              " on the GPUs.", c->used_milli, used_total);
        return 0;
}
