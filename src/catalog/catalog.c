/* SPDX-License-Identifier: MIT */
/*
 * catalog.c — the strict loader of data/gpus/<model>.json and the lookups (schema: docs/catalog.md).
 *
 * Every object is checked against its list of keys: an unknown key is an error naming the file,
 * the object's path and the valid keys, so a typo never silently drops a fact. Geometry is
 * checked as far as the file alone allows: placements inside the memory-slice range, profiles
 * no larger than the GPU, MIG-backed vGPU types naming a GI profile the model has, names and
 * ids unique. Library code: no logging, errors only.
 */
#include "catalog/catalog.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

/* A model file is some 30 KiB; this leaves room for large future GPUs. */
#define CATALOG_FILE_MAX (1024u * 1024u)
/* Memory slices are handled as a 32-bit mask (mig-layout.h). */
#define MIG_MEMORY_SLICES_MAX 32u

static const char *const vgpu_series_table[_GV_VGPU_SERIES_MAX] = {
        [GV_VGPU_SERIES_A] = "A",
        [GV_VGPU_SERIES_B] = "B",
        [GV_VGPU_SERIES_C] = "C",
        [GV_VGPU_SERIES_Q] = "Q",
};
DEFINE_STRING_TABLE_LOOKUP(gv_vgpu_series, enum gv_vgpu_series, vgpu_series_table);

static const char *const architectures[] = {
        "kepler", "maxwell", "pascal", "volta", "turing", "ampere", "ada", "hopper", "blackwell",
        NULL,
};

/* Keys of each object. The first group of each list is also what "fact_sources" may name. */
#define SOURCE_KEYS "source", "unconfirmed", "note", "fact_sources"
static const char *const model_keys[] = {
        "name", "nvml_name", "architecture", "pci_vendor", "pci_device", "pci_subsystem_vendor",
        "pci_subsystem_device", "pci_class", "memory_mib", "power_max_mw", "sriov_total_vfs",
        "has_audio_function", "audio_pci_device", "mig", "vgpu", "sources", SOURCE_KEYS, NULL,
};
/* What a model's "fact_sources" may name: its own scalar keys and the struct fields that sit in
 * the nested "mig" and "vgpu" objects (gv_gpu_model names them mig_* and vgpu_*). */
static const char *const model_fact_fields[] = {
        "name", "nvml_name", "architecture", "pci_vendor", "pci_device", "pci_subsystem_vendor",
        "pci_subsystem_device", "pci_class", "memory_mib", "power_max_mw", "sriov_total_vfs",
        "has_audio_function", "audio_pci_device", "mig_memory_slices", "mig_compute_slices",
        "mig_max_instances", "vgpu_heterogeneous_capable", NULL,
};
static const char *const mig_keys[] = {
        "memory_slices", "compute_slices", "max_instances", "gi_profiles", NULL,
};
static const char *const gi_keys[] = {
        "name", "nvml_index", "id", "slices", "memory_slices", "memory_mib", "instances", "sms",
        "copy_engines", "decoders", "encoders", "jpegs", "ofas", "media_extensions", "placements",
        "ci_profiles", SOURCE_KEYS, NULL,
};
static const char *const ci_keys[] = {
        "name", "nvml_index", "id", "slices", "instances", "sms", SOURCE_KEYS, NULL,
};
static const char *const vgpu_keys[] = {
        "heterogeneous_capable", "types", NULL,
};
static const char *const type_keys[] = {
        "name", "type_id", "series", "class", "framebuffer_mib", "max_instances",
        "max_instances_mixed", "gi_profile", SOURCE_KEYS, NULL,
};
static const char *const fact_keys[] = {
        "source", "unconfirmed", "note", NULL,
};

static bool strv_has(const char *const *l, const char *s)
{
        for (; *l; l++)
                if (strcmp(*l, s) == 0)
                        return true;
        return false;
}

static int check_keys(const json_t *o, const char *what, const char *const *allowed,
                      struct gv_error **err)
{
        const char *key;
        json_t *v;

        if (!json_is_object(o))
                return gv_error_set(err, EINVAL, "%s must be a JSON object", what);
        json_object_foreach((json_t *)o, key, v) {
                if (strv_has(allowed, key))
                        continue;
                _cleanup_free_ char *valid = strv_join((char *const *)allowed, ", ");
                return gv_error_set(err, EINVAL, "unknown key '%s' in %s; valid keys: %s", key,
                                    what, valid);
        }
        return 0;
}

/* The loader's state for one file: the model's source table, to check every source key. */
struct load_ctx {
        const struct gv_gpu_model *m;
};

static int check_source_key(const struct load_ctx *ctx, const char *key, struct gv_error **err)
{
        if (gv_gpu_model_source_ref(ctx->m, key))
                return 0;
        _cleanup_strv_free_ char **keys = NULL;
        for (size_t i = 0; i < ctx->m->n_sources; i++)
                strv_extend(&keys, ctx->m->sources[i].key);
        _cleanup_free_ char *valid = strv_join(keys, ", ");
        return gv_error_set(err, EINVAL,
                            "source '%s' is not in the file's \"sources\" table; add it there or "
                            "use one of: %s",
                            key, valid);
}

static void fact_source_done(struct gv_fact_source *s)
{
        free(s->source);
        free(s->note);
        *s = (struct gv_fact_source){};
}

static void field_sources_free(struct gv_field_source *fs, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                free(fs[i].field);
                fact_source_done(&fs[i].src);
        }
        free(fs);
}

/* "source" (required), "unconfirmed", "note" of o. */
static int parse_fact_source(const struct load_ctx *ctx, const json_t *o,
                             struct gv_fact_source *ret, struct gv_error **err)
{
        const char *source = NULL, *note = NULL;
        bool unconfirmed = false;
        int r;

        r = gv_json_get_string(o, "source", &source, err);
        if (r < 0)
                return r;
        r = check_source_key(ctx, source, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "key 'source'");
        r = gv_json_opt_bool(o, "unconfirmed", &unconfirmed, err);
        if (r < 0)
                return r;
        r = gv_json_opt_string(o, "note", &note, err);
        if (r < 0)
                return r;
        *ret = (struct gv_fact_source){
                .source = xstrdup(source),
                .unconfirmed = unconfirmed,
                .note = note ? xstrdup(note) : NULL,
        };
        return 0;
}

/* The object's own source plus its "fact_sources" overrides, whose keys must be fact keys of
 * the same object (allowed, minus the source keys themselves). */
static int parse_sources_of(const struct load_ctx *ctx, const json_t *o,
                            const char *const *allowed, struct gv_fact_source *ret_src,
                            struct gv_field_source **ret_fs, size_t *ret_n,
                            struct gv_error **err)
{
        struct gv_fact_source s = {};
        json_t *fso = NULL, *v;
        const char *key;
        int r;

        r = parse_fact_source(ctx, o, &s, err);
        if (r < 0)
                return r;
        fso = json_object_get(o, "fact_sources");
        if (!fso || json_is_null(fso)) {
                *ret_src = s;
                *ret_fs = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!json_is_object(fso)) {
                fact_source_done(&s);
                return gv_error_set(err, EINVAL, "key 'fact_sources' must be an object");
        }

        size_t n = json_object_size(fso), i = 0;
        struct gv_field_source *fs = xnew0(struct gv_field_source, n ? n : 1);
        json_object_foreach(fso, key, v) {
                if (!strv_has(allowed, key) || strv_has(fact_keys, key) ||
                    strcmp(key, "fact_sources") == 0) {
                        _cleanup_strv_free_ char **fields = NULL;
                        for (const char *const *a = allowed; *a; a++)
                                if (!strv_has(fact_keys, *a) && strcmp(*a, "fact_sources") != 0)
                                        strv_extend(&fields, *a);
                        _cleanup_free_ char *valid = strv_join(fields, ", ");
                        r = gv_error_set(err, EINVAL,
                                         "key 'fact_sources' names '%s', which is not a field of "
                                         "this object; valid fields: %s",
                                         key, valid);
                        goto fail;
                }
                r = check_keys(v, "a fact source", fact_keys, err);
                if (r >= 0)
                        r = parse_fact_source(ctx, v, &fs[i].src, err);
                if (r < 0) {
                        gv_error_wrap(err, -r, "key 'fact_sources.%s'", key);
                        goto fail;
                }
                fs[i++].field = xstrdup(key);
        }
        *ret_src = s;
        *ret_fs = fs;
        *ret_n = i;
        return 0;
fail:
        field_sources_free(fs, i);
        fact_source_done(&s);
        return r;
}

static int get_hex(const json_t *o, const char *key, uint32_t max, bool optional, uint32_t *ret,
                   struct gv_error **err)
{
        const char *s = NULL;
        uint32_t v;
        int r;

        r = optional ? gv_json_opt_string(o, key, &s, err) : gv_json_get_string(o, key, &s, err);
        if (r < 0)
                return r;
        if (!s)
                return 0;
        if (!gv_startswith(s, "0x") || gv_parse_u32(s, 16, &v) < 0 || v > max)
                return gv_error_set(err, EINVAL,
                                    "key '%s' must be a hexadecimal string from \"0x0\" to "
                                    "\"0x%x\", got '%s'",
                                    key, max, s);
        *ret = v;
        return 0;
}

static int get_u32_range(const json_t *o, const char *key, uint32_t min, uint32_t max,
                         uint32_t *ret, struct gv_error **err)
{
        uint32_t v;
        int r = gv_json_get_u32(o, key, &v, err);
        if (r < 0)
                return r;
        if (v < min || v > max)
                return gv_error_set(err, EINVAL, "key '%s' is %u; it must be from %u to %u", key,
                                    v, min, max);
        *ret = v;
        return 0;
}

static int get_name(const json_t *o, const char *key, char **ret, struct gv_error **err)
{
        const char *s;
        int r = gv_json_get_string(o, key, &s, err);
        if (r < 0)
                return r;
        if (s[0] == '\0')
                return gv_error_set(err, EINVAL, "key '%s' must not be empty", key);
        *ret = xstrdup(s);
        return 0;
}

static int get_array(const json_t *o, const char *key, bool optional, json_t **ret,
                     struct gv_error **err)
{
        json_t *a = json_object_get(o, key);
        if (!a || json_is_null(a)) {
                if (optional) {
                        *ret = NULL;
                        return 0;
                }
                return gv_error_set(err, EINVAL, "missing key '%s'", key);
        }
        if (!json_is_array(a))
                return gv_error_set(err, EINVAL, "key '%s' must be an array", key);
        *ret = a;
        return 0;
}

/* " 'name'" of a JSON object for error context, "" when it has no string name. */
static const char *json_label(const json_t *o, char *buf, size_t size)
{
        const json_t *n = json_is_object(o) ? json_object_get(o, "name") : NULL;
        if (!json_is_string(n))
                return "";
        snprintf(buf, size, " '%s'", json_string_value(n));
        return buf;
}

static void ci_profile_done(struct gv_mig_ci_profile *p)
{
        free(p->name);
        fact_source_done(&p->src);
        field_sources_free(p->field_sources, p->n_field_sources);
}

static void gi_profile_done(struct gv_mig_gi_profile *p)
{
        free(p->name);
        free(p->placements);
        for (size_t i = 0; i < p->n_ci_profiles; i++)
                ci_profile_done(&p->ci_profiles[i]);
        free(p->ci_profiles);
        fact_source_done(&p->src);
        field_sources_free(p->field_sources, p->n_field_sources);
}

static void vgpu_type_done(struct gv_vgpu_type *t)
{
        free(t->name);
        free(t->vgpu_class);
        free(t->gi_profile);
        fact_source_done(&t->src);
        field_sources_free(t->field_sources, t->n_field_sources);
}

void gv_gpu_model_done(struct gv_gpu_model *m)
{
        if (!m)
                return;
        free(m->name);
        free(m->nvml_name);
        free(m->architecture);
        for (size_t i = 0; i < m->n_gi_profiles; i++)
                gi_profile_done(&m->gi_profiles[i]);
        free(m->gi_profiles);
        for (size_t i = 0; i < m->n_vgpu_types; i++)
                vgpu_type_done(&m->vgpu_types[i]);
        free(m->vgpu_types);
        for (size_t i = 0; i < m->n_sources; i++) {
                free(m->sources[i].key);
                free(m->sources[i].ref);
        }
        free(m->sources);
        fact_source_done(&m->src);
        field_sources_free(m->field_sources, m->n_field_sources);
        *m = (struct gv_gpu_model){};
}

static int parse_ci_profile(const struct load_ctx *ctx, const json_t *o,
                            const struct gv_mig_gi_profile *gi, struct gv_mig_ci_profile *p,
                            struct gv_error **err)
{
        int r;

        r = check_keys(o, "a compute-instance profile", ci_keys, err);
        if (r < 0)
                return r;
        r = get_name(o, "name", &p->name, err);
        if (r < 0)
                return r;
        r = gv_json_get_u32(o, "nvml_index", &p->nvml_index, err);
        if (r < 0)
                return r;
        r = gv_json_get_u32(o, "id", &p->id, err);
        if (r < 0)
                return r;
        r = get_u32_range(o, "slices", 1, gi->slices, &p->slices, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "a compute instance cannot have more compute "
                                              "slices than its GPU instance");
        r = get_u32_range(o, "instances", 1, gi->slices, &p->instances, err);
        if (r < 0)
                return r;
        r = get_u32_range(o, "sms", 1, gi->sms, &p->sms, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "a compute instance cannot have more "
                                              "multiprocessors than its GPU instance");
        return parse_sources_of(ctx, o, ci_keys, &p->src, &p->field_sources,
                                &p->n_field_sources, err);
}

static int parse_gi_profile(const struct load_ctx *ctx, const json_t *o,
                            const struct gv_gpu_model *m, struct gv_mig_gi_profile *p,
                            struct gv_error **err)
{
        json_t *a;
        int r;

        r = check_keys(o, "a GPU-instance profile", gi_keys, err);
        if (r < 0)
                return r;
        r = get_name(o, "name", &p->name, err);
        if (r < 0)
                return r;
        if (!(r = gv_json_get_u32(o, "nvml_index", &p->nvml_index, err)) &&
            !(r = gv_json_get_u32(o, "id", &p->id, err)) &&
            !(r = get_u32_range(o, "slices", 1, m->mig_compute_slices, &p->slices, err)) &&
            !(r = get_u32_range(o, "memory_slices", 1, m->mig_memory_slices, &p->memory_slices,
                                err)) &&
            !(r = gv_json_get_u64(o, "memory_mib", &p->memory_mib, err)) &&
            !(r = get_u32_range(o, "instances", 1, m->mig_max_instances, &p->instances, err)) &&
            !(r = gv_json_get_u32(o, "sms", &p->sms, err)) &&
            !(r = gv_json_get_u32(o, "copy_engines", &p->copy_engines, err)) &&
            !(r = gv_json_get_u32(o, "decoders", &p->decoders, err)) &&
            !(r = gv_json_get_u32(o, "encoders", &p->encoders, err)) &&
            !(r = gv_json_get_u32(o, "jpegs", &p->jpegs, err)) &&
            !(r = gv_json_get_u32(o, "ofas", &p->ofas, err)))
                r = gv_json_opt_bool(o, "media_extensions", &p->media_extensions, err);
        if (r < 0)
                return r;
        if (p->memory_mib == 0 || p->memory_mib > m->memory_mib)
                return gv_error_set(err, EINVAL,
                                    "key 'memory_mib' is %llu; it must be from 1 to the GPU's "
                                    "memory_mib (%llu)",
                                    (unsigned long long)p->memory_mib,
                                    (unsigned long long)m->memory_mib);

        r = get_array(o, "placements", false, &a, err);
        if (r < 0)
                return r;
        if (json_array_size(a) == 0)
                return gv_error_set(err, EINVAL, "key 'placements' must list at least one "
                                                 "start slice");
        p->placements = xnew0(struct gv_mig_placement, json_array_size(a));
        for (size_t i = 0; i < json_array_size(a); i++) {
                json_t *v = json_array_get(a, i);
                if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                    json_integer_value(v) >= (json_int_t)m->mig_memory_slices)
                        return gv_error_set(err, EINVAL,
                                            "key 'placements[%zu]' must be a start slice from 0 "
                                            "to %u",
                                            i, m->mig_memory_slices - 1);
                uint32_t start = (uint32_t)json_integer_value(v);
                if (start + p->memory_slices > m->mig_memory_slices)
                        return gv_error_set(err, EINVAL,
                                            "placement %u of '%s' covers memory slices %u-%u, "
                                            "but the GPU has %u (0-%u); fix the start or "
                                            "'memory_slices'",
                                            start, p->name, start,
                                            start + p->memory_slices - 1, m->mig_memory_slices,
                                            m->mig_memory_slices - 1);
                for (size_t j = 0; j < p->n_placements; j++)
                        if (p->placements[j].start == start)
                                return gv_error_set(err, EINVAL,
                                                    "placement %u of '%s' is listed twice",
                                                    start, p->name);
                p->placements[p->n_placements++] =
                        (struct gv_mig_placement){ .start = start, .size = p->memory_slices };
        }

        r = get_array(o, "ci_profiles", true, &a, err);
        if (r < 0)
                return r;
        if (a && json_array_size(a) > 0) {
                p->ci_profiles = xnew0(struct gv_mig_ci_profile, json_array_size(a));
                p->n_ci_profiles = json_array_size(a);
                for (size_t i = 0; i < p->n_ci_profiles; i++) {
                        struct gv_mig_ci_profile *c = &p->ci_profiles[i];
                        r = parse_ci_profile(ctx, json_array_get(a, i), p, c, err);
                        if (r < 0) {
                                char b[128];
                                return gv_error_wrap(err, -r, "ci_profiles[%zu]%s", i,
                                                     json_label(json_array_get(a, i), b,
                                                                sizeof b));
                        }
                        for (size_t j = 0; j < i; j++) {
                                if (strcasecmp(p->ci_profiles[j].name, c->name) == 0)
                                        return gv_error_set(err, EINVAL,
                                                            "compute-instance profile '%s' is "
                                                            "listed twice",
                                                            c->name);
                                if (p->ci_profiles[j].id == c->id)
                                        return gv_error_set(err, EINVAL,
                                                            "compute-instance profiles '%s' and "
                                                            "'%s' share id %u",
                                                            p->ci_profiles[j].name, c->name,
                                                            c->id);
                        }
                }
        }
        return parse_sources_of(ctx, o, gi_keys, &p->src, &p->field_sources,
                                &p->n_field_sources, err);
}

static int parse_mig(const struct load_ctx *ctx, const json_t *o, struct gv_gpu_model *m,
                     struct gv_error **err)
{
        json_t *a;
        int r;

        r = check_keys(o, "\"mig\"", mig_keys, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "mig");
        if (!(r = get_u32_range(o, "memory_slices", 1, MIG_MEMORY_SLICES_MAX,
                                &m->mig_memory_slices, err)) &&
            !(r = get_u32_range(o, "compute_slices", 1, UINT32_MAX, &m->mig_compute_slices,
                                err)) &&
            !(r = get_u32_range(o, "max_instances", 1, UINT32_MAX, &m->mig_max_instances, err)))
                r = get_array(o, "gi_profiles", false, &a, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "mig");
        if (json_array_size(a) == 0)
                return gv_error_set(err, EINVAL, "mig: key 'gi_profiles' must list at least one "
                                                 "profile; leave out \"mig\" for a GPU without "
                                                 "MIG");

        m->gi_profiles = xnew0(struct gv_mig_gi_profile, json_array_size(a));
        m->n_gi_profiles = json_array_size(a);
        for (size_t i = 0; i < m->n_gi_profiles; i++) {
                struct gv_mig_gi_profile *p = &m->gi_profiles[i];
                r = parse_gi_profile(ctx, json_array_get(a, i), m, p, err);
                if (r < 0) {
                        char b[128];
                        return gv_error_wrap(err, -r, "mig.gi_profiles[%zu]%s", i,
                                             json_label(json_array_get(a, i), b, sizeof b));
                }
                for (size_t j = 0; j < i; j++) {
                        const struct gv_mig_gi_profile *q = &m->gi_profiles[j];
                        if (strcasecmp(q->name, p->name) == 0)
                                return gv_error_set(err, EINVAL,
                                                    "GPU-instance profile '%s' is listed twice",
                                                    p->name);
                        if (q->id == p->id)
                                return gv_error_set(err, EINVAL,
                                                    "GPU-instance profiles '%s' and '%s' share "
                                                    "profile id %u",
                                                    q->name, p->name, p->id);
                        if (q->nvml_index == p->nvml_index)
                                return gv_error_set(err, EINVAL,
                                                    "GPU-instance profiles '%s' and '%s' share "
                                                    "nvml_index %u",
                                                    q->name, p->name, p->nvml_index);
                }
        }
        return 0;
}

static int parse_vgpu_type(const struct load_ctx *ctx, const json_t *o,
                           const struct gv_gpu_model *m, struct gv_vgpu_type *t,
                           struct gv_error **err)
{
        const char *series = NULL, *gi = NULL;
        int r;

        r = check_keys(o, "a vGPU type", type_keys, err);
        if (r < 0)
                return r;
        if (!(r = get_name(o, "name", &t->name, err)) &&
            !(r = get_u32_range(o, "type_id", 1, UINT32_MAX, &t->type_id, err)) &&
            !(r = gv_json_get_string(o, "series", &series, err)) &&
            !(r = get_name(o, "class", &t->vgpu_class, err)) &&
            !(r = gv_json_get_u64(o, "framebuffer_mib", &t->framebuffer_mib, err)) &&
            !(r = get_u32_range(o, "max_instances", 1, UINT32_MAX, &t->max_instances, err)) &&
            !(r = gv_json_get_u32(o, "max_instances_mixed", &t->max_instances_mixed, err)))
                r = gv_json_opt_string(o, "gi_profile", &gi, err);
        if (r < 0)
                return r;
        t->series = gv_vgpu_series_from_string(series);
        if ((int)t->series < 0) {
                _cleanup_free_ char *valid = STRING_TABLE_JOIN(vgpu_series_table, ", ");
                return gv_error_set(err, EINVAL, "unknown vGPU series '%s'; valid series: %s",
                                    series, valid);
        }
        if (t->framebuffer_mib == 0)
                return gv_error_set(err, EINVAL, "key 'framebuffer_mib' must be at least 1");
        if (t->max_instances_mixed > t->max_instances)
                return gv_error_set(err, EINVAL,
                                    "key 'max_instances_mixed' (%u) exceeds 'max_instances' (%u); "
                                    "mixed-size mode never allows more instances",
                                    t->max_instances_mixed, t->max_instances);
        if (gi) {
                t->gi_profile = xstrdup(gi);
                t->gi = gv_gpu_model_find_gi_profile(m, gi);
                if (!t->gi) {
                        if (m->n_gi_profiles == 0)
                                return gv_error_set(err, EINVAL,
                                                    "vGPU type '%s' is MIG-backed ('%s') but the "
                                                    "model has no \"mig\" section",
                                                    t->name, gi);
                        _cleanup_free_ char *valid = gv_gpu_model_gi_profile_names(m);
                        return gv_error_set(err, EINVAL,
                                            "vGPU type '%s' names GPU-instance profile '%s', "
                                            "which the model does not have; valid profiles: %s",
                                            t->name, gi, valid);
                }
        }
        return parse_sources_of(ctx, o, type_keys, &t->src, &t->field_sources,
                                &t->n_field_sources, err);
}

static int parse_vgpu(const struct load_ctx *ctx, const json_t *o, struct gv_gpu_model *m,
                      struct gv_error **err)
{
        json_t *a;
        int r;

        r = check_keys(o, "\"vgpu\"", vgpu_keys, err);
        if (r >= 0)
                r = gv_json_opt_bool(o, "heterogeneous_capable", &m->vgpu_heterogeneous_capable,
                                     err);
        if (r >= 0)
                r = get_array(o, "types", false, &a, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "vgpu");
        if (json_array_size(a) == 0)
                return 0;
        m->vgpu_types = xnew0(struct gv_vgpu_type, json_array_size(a));
        m->n_vgpu_types = json_array_size(a);
        for (size_t i = 0; i < m->n_vgpu_types; i++) {
                struct gv_vgpu_type *t = &m->vgpu_types[i];
                r = parse_vgpu_type(ctx, json_array_get(a, i), m, t, err);
                if (r < 0) {
                        char b[128];
                        return gv_error_wrap(err, -r, "vgpu.types[%zu]%s", i,
                                             json_label(json_array_get(a, i), b, sizeof b));
                }
                for (size_t j = 0; j < i; j++) {
                        const struct gv_vgpu_type *q = &m->vgpu_types[j];
                        if (strcasecmp(q->name, t->name) == 0)
                                return gv_error_set(err, EINVAL, "vGPU type '%s' is listed twice",
                                                    t->name);
                        if (q->type_id == t->type_id)
                                return gv_error_set(err, EINVAL,
                                                    "vGPU types '%s' and '%s' share type id %u; "
                                                    "type ids must be unique",
                                                    q->name, t->name, t->type_id);
                }
        }
        return 0;
}

static int parse_sources_table(const json_t *root, struct gv_gpu_model *m, struct gv_error **err)
{
        json_t *o = json_object_get(root, "sources"), *v;
        const char *key;

        if (!o || json_is_null(o))
                return gv_error_set(err, EINVAL, "missing key 'sources' (the table of source "
                                                 "keys and references)");
        if (!json_is_object(o) || json_object_size(o) == 0)
                return gv_error_set(err, EINVAL, "key 'sources' must be a non-empty object "
                                                 "mapping source keys to references");
        m->sources = xnew0(struct gv_source_ref, json_object_size(o));
        json_object_foreach(o, key, v) {
                if (!json_is_string(v) || json_string_length(v) == 0)
                        return gv_error_set(err, EINVAL,
                                            "key 'sources.%s' must be a non-empty string (a URL "
                                            "or repository:path)",
                                            key);
                m->sources[m->n_sources++] = (struct gv_source_ref){
                        .key = xstrdup(key),
                        .ref = xstrdup(json_string_value(v)),
                };
        }
        return 0;
}

static int parse_model(const json_t *root, struct gv_gpu_model *m, struct gv_error **err)
{
        struct load_ctx ctx = { .m = m };
        const char *arch;
        uint32_t v;
        json_t *o;
        int r;

        r = check_keys(root, "the model", model_keys, err);
        if (r < 0)
                return r;
        r = parse_sources_table(root, m, err);
        if (r < 0)
                return r;
        if ((r = get_name(root, "name", &m->name, err)) < 0 ||
            (r = get_name(root, "nvml_name", &m->nvml_name, err)) < 0 ||
            (r = gv_json_get_string(root, "architecture", &arch, err)) < 0)
                return r;
        if (!strv_has(architectures, arch)) {
                _cleanup_free_ char *valid = strv_join((char *const *)architectures, ", ");
                return gv_error_set(err, EINVAL,
                                    "unknown architecture '%s'; valid architectures: %s", arch,
                                    valid);
        }
        m->architecture = xstrdup(arch);

        r = get_hex(root, "pci_vendor", UINT16_MAX, false, &v, err);
        if (r < 0)
                return r;
        m->pci_vendor = (uint16_t)v;
        r = get_hex(root, "pci_device", UINT16_MAX, false, &v, err);
        if (r < 0)
                return r;
        m->pci_device = (uint16_t)v;
        v = 0;
        r = get_hex(root, "pci_subsystem_vendor", UINT16_MAX, true, &v, err);
        if (r < 0)
                return r;
        m->pci_subsystem_vendor = (uint16_t)v;
        v = 0;
        r = get_hex(root, "pci_subsystem_device", UINT16_MAX, true, &v, err);
        if (r < 0)
                return r;
        m->pci_subsystem_device = (uint16_t)v;
        r = get_hex(root, "pci_class", 0xffffff, false, &m->pci_class, err);
        if (r < 0)
                return r;
        if ((r = gv_json_get_u64(root, "memory_mib", &m->memory_mib, err)) < 0 ||
            (r = gv_json_opt_u32(root, "power_max_mw", &m->power_max_mw, err)) < 0 ||
            (r = gv_json_opt_u32(root, "sriov_total_vfs", &m->sriov_total_vfs, err)) < 0 ||
            (r = gv_json_opt_bool(root, "has_audio_function", &m->has_audio_function, err)) < 0)
                return r;
        if (m->memory_mib == 0)
                return gv_error_set(err, EINVAL, "key 'memory_mib' must be at least 1");
        v = 0;
        r = get_hex(root, "audio_pci_device", UINT16_MAX, true, &v, err);
        if (r < 0)
                return r;
        m->audio_pci_device = (uint16_t)v;
        if (m->has_audio_function != (m->audio_pci_device != 0))
                return gv_error_set(err, EINVAL,
                                    "'has_audio_function' and 'audio_pci_device' disagree: give "
                                    "the audio function's device id exactly when "
                                    "has_audio_function is true");

        o = json_object_get(root, "mig");
        if (o && !json_is_null(o)) {
                r = parse_mig(&ctx, o, m, err);
                if (r < 0)
                        return r;
        }
        o = json_object_get(root, "vgpu");
        if (o && !json_is_null(o)) {
                r = parse_vgpu(&ctx, o, m, err);
                if (r < 0)
                        return r;
        }
        return parse_sources_of(&ctx, root, model_fact_fields, &m->src, &m->field_sources,
                                &m->n_field_sources, err);
}

int gv_catalog_load_file(const char *path, struct gv_gpu_model *ret, struct gv_error **err)
{
        _cleanup_json_ json_t *root = NULL;
        struct gv_gpu_model m = {};
        int r;

        r = gv_json_load_file(path, CATALOG_FILE_MAX, &root, err);
        if (r < 0)
                return r;
        r = parse_model(root, &m, err);
        if (r < 0) {
                gv_gpu_model_done(&m);
                return gv_error_wrap(err, -r, "'%s'", path);
        }
        *ret = m;
        return 0;
}

struct gv_catalog *gv_catalog_free(struct gv_catalog *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_models; i++)
                gv_gpu_model_done(&c->models[i]);
        free(c->models);
        free(c);
        return NULL;
}

static int cmp_str(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

int gv_catalog_load_dir(const char *dir, struct gv_catalog **ret, struct gv_error **err)
{
        _cleanup_(gv_catalog_freep) struct gv_catalog *c = NULL;
        _cleanup_strv_free_ char **files = NULL;
        struct dirent *de;
        DIR *d;
        int fd;

        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot open the GPU catalog directory '%s': %s",
                                    dir, strerror(errno));
        d = fdopendir(fd);
        if (!d) {
                int e = errno;
                safe_close(fd);
                return gv_error_set(err, e, "cannot read '%s': %s", dir, strerror(e));
        }
        while ((de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 5 || strcmp(de->d_name + l - 5, ".json") != 0)
                        continue;
                strv_extend(&files, de->d_name);
        }
        closedir(d);
        if (!files)
                return gv_error_set(err, ENOENT,
                                    "no *.json model files in the GPU catalog directory '%s'",
                                    dir);
        qsort(files, strv_length(files), sizeof(char *), cmp_str);

        c = xnew0(struct gv_catalog, 1);
        c->models = xnew0(struct gv_gpu_model, strv_length(files));
        STRV_FOREACH(f, files) {
                _cleanup_free_ char *path = gv_path_join(dir, *f);
                struct gv_gpu_model *m = &c->models[c->n_models];
                int r = gv_catalog_load_file(path, m, err);
                if (r < 0)
                        return r;
                c->n_models++;
                if (strlen(*f) != strlen(m->name) + 5 || strncmp(*f, m->name, strlen(m->name)))
                        return gv_error_set(err, EINVAL,
                                            "'%s' holds model '%s'; name the file after its "
                                            "model ('%s.json')",
                                            path, m->name, m->name);
                for (size_t i = 0; i + 1 < c->n_models; i++) {
                        const struct gv_gpu_model *q = &c->models[i];
                        if (strcasecmp(q->name, m->name) == 0)
                                return gv_error_set(err, EINVAL,
                                                    "'%s': model '%s' is already defined",
                                                    path, m->name);
                        if (q->pci_vendor == m->pci_vendor && q->pci_device == m->pci_device)
                                return gv_error_set(err, EINVAL,
                                                    "'%s': PCI id %04x:%04x of '%s' is already "
                                                    "used by '%s'",
                                                    path, m->pci_vendor, m->pci_device, m->name,
                                                    q->name);
                }
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int gv_catalog_load_default(struct gv_catalog **ret, struct gv_error **err)
{
        const char *env = getenv("GPUVIRT_DATA_DIR");
        if (env && env[0]) {
                _cleanup_free_ char *dir = gv_path_join(env, "gpus");
                return gv_catalog_load_dir(dir, ret, err);
        }
        if (gv_file_exists(GPUVIRT_SOURCE_ROOT "/data/gpus") > 0)
                return gv_catalog_load_dir(GPUVIRT_SOURCE_ROOT "/data/gpus", ret, err);
        return gv_catalog_load_dir(GPUVIRT_DATADIR "/gpus", ret, err);
}

const struct gv_gpu_model *gv_catalog_find(const struct gv_catalog *c, const char *name)
{
        if (!c || !name)
                return NULL;
        for (size_t i = 0; i < c->n_models; i++)
                if (strcasecmp(c->models[i].name, name) == 0)
                        return &c->models[i];
        return NULL;
}

const struct gv_gpu_model *gv_catalog_find_pci(const struct gv_catalog *c, uint16_t vendor,
                                               uint16_t device)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_models; i++)
                if (c->models[i].pci_vendor == vendor && c->models[i].pci_device == device)
                        return &c->models[i];
        return NULL;
}

const struct gv_mig_gi_profile *gv_gpu_model_find_gi_profile(const struct gv_gpu_model *m,
                                                             const char *name)
{
        if (!m || !name)
                return NULL;
        /* nvidia-smi prints "MIG 3g.40gb"; accept that form too. */
        if (strncasecmp(name, "MIG ", 4) == 0)
                name += 4;
        for (size_t i = 0; i < m->n_gi_profiles; i++)
                if (m->gi_profiles[i].name && strcasecmp(m->gi_profiles[i].name, name) == 0)
                        return &m->gi_profiles[i];
        return NULL;
}

const struct gv_mig_gi_profile *gv_gpu_model_find_gi_profile_id(const struct gv_gpu_model *m,
                                                                uint32_t id)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_gi_profiles; i++)
                if (m->gi_profiles[i].id == id)
                        return &m->gi_profiles[i];
        return NULL;
}

const struct gv_vgpu_type *gv_gpu_model_find_vgpu_type(const struct gv_gpu_model *m,
                                                       const char *name)
{
        if (!m || !name)
                return NULL;
        /* sysfs prints "GRID A100D-2-20C" (mdev name) or "NVIDIA L40S-1Q" (vendor VFIO). */
        if (strncasecmp(name, "NVIDIA ", 7) == 0)
                name += 7;
        else if (strncasecmp(name, "GRID ", 5) == 0)
                name += 5;
        for (size_t i = 0; i < m->n_vgpu_types; i++)
                if (strcasecmp(m->vgpu_types[i].name, name) == 0)
                        return &m->vgpu_types[i];
        return NULL;
}

const struct gv_vgpu_type *gv_gpu_model_find_vgpu_type_id(const struct gv_gpu_model *m,
                                                          uint32_t type_id)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_vgpu_types; i++)
                if (m->vgpu_types[i].type_id == type_id)
                        return &m->vgpu_types[i];
        return NULL;
}

const struct gv_fact_source *gv_fact_source_lookup(const struct gv_fact_source *object_src,
                                                   const struct gv_field_source *overrides,
                                                   size_t n_overrides, const char *field)
{
        for (size_t i = 0; field && i < n_overrides; i++)
                if (strcmp(overrides[i].field, field) == 0)
                        return &overrides[i].src;
        return object_src;
}

const char *gv_gpu_model_source_ref(const struct gv_gpu_model *m, const char *key)
{
        if (!m || !key)
                return NULL;
        for (size_t i = 0; i < m->n_sources; i++)
                if (strcmp(m->sources[i].key, key) == 0)
                        return m->sources[i].ref;
        return NULL;
}

char *gv_gpu_model_gi_profile_names(const struct gv_gpu_model *m)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; m && i < m->n_gi_profiles; i++)
                if (m->gi_profiles[i].name)
                        strv_extend(&l, m->gi_profiles[i].name);
        return strv_join(l, ", ");
}

char *gv_gpu_model_vgpu_type_names(const struct gv_gpu_model *m)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; m && i < m->n_vgpu_types; i++)
                strv_extend(&l, m->vgpu_types[i].name);
        return strv_join(l, ", ");
}

char *gv_catalog_model_names(const struct gv_catalog *c)
{
        _cleanup_strv_free_ char **l = NULL;
        for (size_t i = 0; c && i < c->n_models; i++)
                strv_extend(&l, c->models[i].name);
        return strv_join(l, ", ");
}
