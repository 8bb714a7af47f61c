/* SPDX-License-Identifier: MIT */
/*
 * advise.c — the mode advisor (advise.h, docs/advisor.md).
 *
 * The plan: for every GPU model of the cluster (those the traits allow), each mode makes at most
 * one option, sized by the catalog's facts: pass-through (a whole GPU per VM, or one VM for
 * replicas that fit one GPU together), time-sliced vGPU (the smallest type of each series the
 * workload's kind uses that holds its memory), MIG (the smallest GPU-instance profile that holds
 * it, received by the VM as the profile's MIG-backed vGPU type). What the catalog cannot offer
 * is an exclusion naming the missing fact. Then the rule table (`rules[]`, the trade-off table
 * of ../shared/DESIGN.md turned into conditions on the traits) rules out whole modes or adds
 * to an option's score, each time with the sentence that goes into its reasons; memory left
 * idle costs a little score too. Licence seats come from the series of the vGPU type
 * (catalog/licensing.h) and the prices given.
 */
#include "advise/advise.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/strv.h"

static const char *const kind_table[_GV_ADVISE_KIND_MAX] = {
        [GV_ADVISE_KIND_TRAINING] = "training",       [GV_ADVISE_KIND_INFERENCE] = "inference",
        [GV_ADVISE_KIND_VDI] = "vdi",                 [GV_ADVISE_KIND_DEVELOPMENT] = "development",
        [GV_ADVISE_KIND_SIMULATION] = "simulation",
};
DEFINE_STRING_TABLE_LOOKUP(gv_advise_kind, enum gv_advise_kind, kind_table);

static const char *const latency_table[_GV_ADVISE_LATENCY_MAX] = {
        [GV_ADVISE_LATENCY_BEST_EFFORT] = "best-effort",
        [GV_ADVISE_LATENCY_STRICT] = "strict",
};
DEFINE_STRING_TABLE_LOOKUP(gv_advise_latency, enum gv_advise_latency, latency_table);

static const char *const mode_table[_GV_ADVISE_MODE_MAX] = {
        [GV_ADVISE_PASSTHROUGH] = "passthrough",
        [GV_ADVISE_VGPU] = "vgpu",
        [GV_ADVISE_MIG] = "mig",
};
DEFINE_STRING_TABLE_LOOKUP(gv_advise_mode, enum gv_advise_mode, mode_table);

static const char *const isolation_names[] = { "none", "software", "hardware" };

/* ---- the facts of each mode: the columns of the trade-off table (DESIGN.md) ---- */

static const struct mode_facts {
        const char *title;
        const char *sharing;
        const char *isolation;      /* short word for the option's "isolation" */
        const char *isolation_text;
        const char *predictability;
        bool live_migration;
        const char *live_migration_text;
        const char *licence;
} mode_facts[_GV_ADVISE_MODE_MAX] = {
        [GV_ADVISE_PASSTHROUGH] = { "pass-through", "none: one VM owns the card", "complete",
                                    "complete", "highest", false, "no", "none" },
        [GV_ADVISE_VGPU] = { "vGPU", "time-shared across VMs", "software", "software",
                             "varies under contention", true, "yes",
                             "per concurrent vGPU instance" },
        [GV_ADVISE_MIG] = { "MIG", "hardware-partitioned slices", "hardware",
                            "enforced in silicon", "guaranteed per slice", true,
                            "yes (MIG-backed vGPU)", "none for the slice itself" },
};

#define SRC_TABLE "DESIGN.md, trade-off table"

/* ---- the rules: conditions on the traits, what they do to which modes ---- */

#define KIND(k) (1u << GV_ADVISE_KIND_##k)
#define MODE(m) (1u << GV_ADVISE_##m)
enum { ANY = -1 };
#define EXCLUDE (-1000)

struct rule {
        const char *id;
        uint32_t kinds;       /* KIND() bits; 0: any kind */
        int8_t isolation;     /* the traits' isolation (enum gv_sched_isolation), or ANY */
        int8_t latency;       /* enum gv_advise_latency, or ANY */
        int8_t live_migration; /* 1, 0 or ANY */
        int8_t multi;         /* 1: more than one user or replica; 0: one; ANY */
        uint32_t modes;       /* MODE() bits the rule acts on */
        int effect;           /* EXCLUDE: the mode is ruled out; otherwise added to the score */
        const char *reason;
        const char *source;
};

static const struct rule rules[] = {
        /* what rules a mode out */
        { "isolation-hardware", 0, GV_SCHED_ISOLATION_HARDWARE, ANY, ANY, ANY, MODE(VGPU),
          EXCLUDE, "isolation hardware rules out time-sliced vGPU (software isolation)",
          SRC_TABLE ", isolation; vgpu.md §5 (hard isolation: MIG-backed vGPU)" },
        { "live-migration", 0, ANY, ANY, 1, ANY, MODE(PASSTHROUGH), EXCLUDE,
          "live migration rules out pass-through (vfio-pci cannot migrate a whole GPU's state)",
          SRC_TABLE ", live migration; passthrough.md §7" },
        /* best for */
        { "best-for-training", KIND(TRAINING), ANY, ANY, ANY, ANY, MODE(PASSTHROUGH), 30,
          "pass-through is best for LLM training: the whole card, predictability highest",
          SRC_TABLE ", best for" },
        { "best-for-simulation", KIND(SIMULATION), ANY, ANY, ANY, ANY, MODE(PASSTHROUGH), 30,
          "pass-through is best for full-GPU simulation and bare-metal-dependent software",
          SRC_TABLE ", best for" },
        { "best-for-vdi", KIND(VDI), ANY, ANY, ANY, ANY, MODE(VGPU), 30,
          "vGPU is best for VDI: desktops time-shared across VMs", SRC_TABLE ", best for" },
        { "best-for-development", KIND(DEVELOPMENT), ANY, ANY, ANY, ANY, MODE(VGPU), 30,
          "vGPU is best for developer access", SRC_TABLE ", best for" },
        { "best-for-multi-user-inference", KIND(INFERENCE), ANY, ANY, ANY, 1, MODE(VGPU), 15,
          "vGPU is best for multi-user inference", SRC_TABLE ", best for" },
        { "best-for-inference-sla", KIND(INFERENCE), ANY, ANY, ANY, ANY, MODE(MIG), 10,
          "MIG is best for guaranteed inference SLAs", SRC_TABLE ", best for" },
        { "multi-tenant-isolation", 0, GV_SCHED_ISOLATION_HARDWARE, ANY, ANY, 1, MODE(MIG), 25,
          "MIG is best for multi-tenant isolation: hardware-partitioned slices",
          SRC_TABLE ", best for and sharing" },
        /* isolation */
        { "isolation-complete", 0, GV_SCHED_ISOLATION_HARDWARE, ANY, ANY, ANY,
          MODE(PASSTHROUGH), 10, "hardware isolation: pass-through's is complete",
          SRC_TABLE ", isolation" },
        { "isolation-silicon", 0, GV_SCHED_ISOLATION_HARDWARE, ANY, ANY, ANY, MODE(MIG), 10,
          "hardware isolation: MIG's is enforced in silicon", SRC_TABLE ", isolation" },
        /* predictability */
        { "latency-strict-highest", 0, ANY, GV_ADVISE_LATENCY_STRICT, ANY, ANY,
          MODE(PASSTHROUGH), 20, "strict latency SLA: pass-through's predictability is the "
          "highest", SRC_TABLE ", predictability" },
        { "latency-strict-slice", 0, ANY, GV_ADVISE_LATENCY_STRICT, ANY, ANY, MODE(MIG), 20,
          "strict latency SLA: MIG's predictability is guaranteed per slice",
          SRC_TABLE ", predictability" },
        { "latency-strict-contention", 0, ANY, GV_ADVISE_LATENCY_STRICT, ANY, ANY, MODE(VGPU),
          -20, "strict latency SLA: time-sliced vGPU's throughput varies under contention",
          SRC_TABLE ", predictability; vgpu.md §10 (time slices)" },
        /* live migration */
        { "live-migration-vgpu", 0, ANY, ANY, 1, ANY, MODE(VGPU), 10,
          "live migration: yes for vGPU", SRC_TABLE ", live migration; vgpu.md §11" },
        { "live-migration-mig", 0, ANY, ANY, 1, ANY, MODE(MIG), 10,
          "live migration: yes, as MIG-backed vGPU", SRC_TABLE ", live migration; vgpu.md §11" },
        /* licence */
        { "licence-per-instance", 0, ANY, ANY, ANY, ANY, MODE(VGPU), -5,
          "licence: one seat per concurrent vGPU instance", SRC_TABLE ", licence; vgpu.md §12" },
};

/* The vGPU series a kind of workload uses (vgpu.md §6: the series names what the type is for
 * and which edition licenses it). VDI prefers Q (workstations) and accepts B (virtual PCs). */
static const struct series_rule {
        uint32_t kinds;
        enum gv_vgpu_series series;
        int bonus;
        const char *what;
} series_rules[] = {
        { KIND(TRAINING) | KIND(INFERENCE) | KIND(DEVELOPMENT) | KIND(SIMULATION),
          GV_VGPU_SERIES_C, 0, "C-series (compute)" },
        { KIND(VDI), GV_VGPU_SERIES_Q, 2, "Q-series (virtual workstation)" },
        { KIND(VDI), GV_VGPU_SERIES_B, 0, "B-series (virtual PC)" },
};

/* Kinds whose users are people, each with a VM of their own (never sharing one VM). */
#define PEOPLE_KINDS (KIND(VDI) | KIND(DEVELOPMENT))

/* How much score idle memory costs: the idle share of what the option takes, times this. */
#define IDLE_WEIGHT_WHOLE 20.0
#define IDLE_WEIGHT_SLICE 10.0

static bool rule_matches(const struct rule *r, const struct gv_advise_traits *t)
{
        if (r->kinds && !(r->kinds & (1u << t->kind)))
                return false;
        if (r->isolation != ANY && r->isolation != (int)t->isolation)
                return false;
        if (r->latency != ANY && r->latency != (int)t->latency)
                return false;
        if (r->live_migration != ANY && r->live_migration != (int)t->live_migration)
                return false;
        if (r->multi != ANY && r->multi != (t->users > 1))
                return false;
        return true;
}

/* ---- traits ---- */

void gv_advise_traits_done(struct gv_advise_traits *t)
{
        if (!t)
                return;
        t->models = strv_free(t->models);
}

static int bad_enum(struct gv_error **err, const char *key, const json_t *v,
                    const char *const *table, size_t n)
{
        _cleanup_free_ char *valid = gv_string_table_join(table, n, ", ");
        if (json_is_string(v))
                return gv_error_set(err, EINVAL, "%s: '%s' is not one of %s.", key,
                                    json_string_value(v), valid);
        return gv_error_set(err, EINVAL, "%s: a string, one of %s.", key, valid);
}

static int int_member(const json_t *v, const char *key, uint64_t min, uint64_t max,
                      const char *what, uint64_t *ret, struct gv_error **err)
{
        if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
            (uint64_t)json_integer_value(v) > max) {
                if (json_is_string(v))
                        return gv_error_set(err, EINVAL, "%s: '%s' is a string; %s, an integer "
                                            "from %llu to %llu.", key, json_string_value(v), what,
                                            (unsigned long long)min, (unsigned long long)max);
                return gv_error_set(err, EINVAL, "%s: %s, an integer from %llu to %llu.", key,
                                    what, (unsigned long long)min, (unsigned long long)max);
        }
        *ret = (uint64_t)json_integer_value(v);
        return 0;
}

int gv_advise_traits_from_json(const json_t *j, struct gv_advise_traits *ret,
                               struct gv_error **err)
{
        static const char *const keys[] = { "kind", "gpu_memory_mib", "isolation",
                                            "live_migration", "latency_sla", "users", "models",
                                            NULL };
        struct gv_advise_traits t = { .isolation = GV_SCHED_ISOLATION_NONE,
                                      .latency = GV_ADVISE_LATENCY_BEST_EFFORT, .users = 1 };
        const char *key;
        json_t *v;
        uint64_t u;
        int r;

        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "The traits are a JSON object: {\"kind\", "
                                    "\"gpu_memory_mib\", \"isolation\", \"live_migration\", "
                                    "\"latency_sla\", \"users\", \"models\"}.");
        json_object_foreach((json_t *)j, key, v) {
                bool known = false;
                for (size_t i = 0; keys[i]; i++)
                        known = known || strcmp(keys[i], key) == 0;
                if (!known)
                        return gv_error_set(err, EINVAL, "Unknown member '%s'; the traits are "
                                            "kind, gpu_memory_mib, isolation, live_migration, "
                                            "latency_sla, users, models.", key);
        }

        v = json_object_get(j, "kind");
        if (!v) {
                _cleanup_free_ char *valid = STRING_TABLE_JOIN(kind_table, ", ");
                return gv_error_set(err, EINVAL, "kind: required, one of %s.", valid);
        }
        t.kind = gv_advise_kind_from_string(json_string_value(v));
        if ((int)t.kind < 0)
                return bad_enum(err, "kind", v, kind_table, ELEMENTSOF(kind_table));

        v = json_object_get(j, "gpu_memory_mib");
        if (!v)
                return gv_error_set(err, EINVAL, "gpu_memory_mib: required: the GPU memory one "
                                    "instance needs, in MiB (20480 for 20 GiB).");
        r = int_member(v, "gpu_memory_mib", 1, GV_ADVISE_MEMORY_MAX_MIB,
                       "the GPU memory one instance needs in MiB", &u, err);
        if (r < 0)
                return r;
        t.gpu_memory_mib = u;

        v = json_object_get(j, "isolation");
        if (v) {
                t.isolation = gv_sched_isolation_from_string(json_string_value(v));
                if ((int)t.isolation < 0)
                        return bad_enum(err, "isolation", v, isolation_names,
                                        ELEMENTSOF(isolation_names));
        }
        v = json_object_get(j, "live_migration");
        if (v) {
                if (!json_is_boolean(v))
                        return gv_error_set(err, EINVAL, "live_migration: true or false.");
                t.live_migration = json_is_true(v);
        }
        v = json_object_get(j, "latency_sla");
        if (v) {
                t.latency = gv_advise_latency_from_string(json_string_value(v));
                if ((int)t.latency < 0)
                        return bad_enum(err, "latency_sla", v, latency_table,
                                        ELEMENTSOF(latency_table));
        }
        v = json_object_get(j, "users");
        if (v) {
                r = int_member(v, "users", 1, GV_ADVISE_USERS_MAX,
                               "how many users or replicas", &u, err);
                if (r < 0)
                        return r;
                t.users = (uint32_t)u;
        }
        v = json_object_get(j, "models");
        if (v && !json_is_null(v)) { /* null: any model, as gv_advise_traits_to_json() says */
                size_t i;
                json_t *m;
                if (!json_is_array(v) || json_array_size(v) == 0 ||
                    json_array_size(v) > GV_ADVISE_MODELS_MAX)
                        return gv_error_set(err, EINVAL, "models: a list of 1 to %u GPU model "
                                            "names (e.g. [\"H100-SXM5-80GB\"]).",
                                            GV_ADVISE_MODELS_MAX);
                json_array_foreach(v, i, m) {
                        if (!json_is_string(m) || !*json_string_value(m)) {
                                strv_free(t.models);
                                return gv_error_set(err, EINVAL, "models[%zu]: a GPU model name "
                                                    "(a string).", i);
                        }
                        if (!strv_contains(t.models, json_string_value(m)))
                                strv_extend(&t.models, json_string_value(m));
                }
        }
        *ret = t;
        return 0;
}

json_t *gv_advise_traits_to_json(const struct gv_advise_traits *t)
{
        json_t *models = json_null();
        if (t->models) {
                models = json_array();
                STRV_FOREACH(m, t->models)
                        json_array_append_new(models, json_string(*m));
        }
        return json_pack("{s:s, s:I, s:s, s:b, s:s, s:i, s:o}", "kind",
                         gv_advise_kind_to_string(t->kind), "gpu_memory_mib",
                         (json_int_t)t->gpu_memory_mib, "isolation",
                         gv_sched_isolation_to_string(t->isolation), "live_migration",
                         t->live_migration, "latency_sla", gv_advise_latency_to_string(t->latency),
                         "users", (int)t->users, "models", models);
}

/* ---- sizes ---- */

/* Sizes compare as NVIDIA names them (docs/advisor.md, "Sizes"): a MIG profile offers the GB of
 * its name ("2g.20gb": 20 GiB; NVML reports a little less, mig.md §3), a vGPU type its
 * framebuffer, a whole GPU its memory rounded to whole GiB. */
static uint64_t gi_nominal_mib(const struct gv_mig_gi_profile *gi)
{
        const char *dot = strchr(gi->name, '.');
        uint64_t gb = 0;
        const char *p;
        if (!dot)
                return gi->memory_mib;
        for (p = dot + 1; *p >= '0' && *p <= '9' && gb < 100000; p++)
                gb = gb * 10 + (uint64_t)(*p - '0');
        if (p == dot + 1 || strncmp(p, "gb", 2) != 0)
                return gi->memory_mib;
        return gb * 1024;
}

static uint64_t gpu_nominal_mib(const struct gv_gpu_model *m)
{
        return (m->memory_mib + 512) / 1024 * 1024;
}

static char *gib(uint64_t mib)
{
        if (mib % 1024 == 0)
                return xasprintf("%llu GiB", (unsigned long long)(mib / 1024));
        return xasprintf("%.1f GiB", (double)mib / 1024.0);
}

static uint32_t div_up(uint32_t a, uint32_t b)
{
        return b ? (a + b - 1) / b : UINT32_MAX;
}

/* ---- the result ---- */

static void license_done(struct gv_advise_license *l)
{
        free(l->note);
        l->note = NULL;
}

struct gv_advise_result *gv_advise_result_free(struct gv_advise_result *r)
{
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->n_options; i++) {
                struct gv_advise_option *o = &r->options[i];
                strv_free(o->reasons);
                license_done(&o->license);
                license_done(&o->as_vgpu);
                json_decref(o->where);
        }
        for (size_t i = 0; i < r->n_excluded; i++) {
                free(r->excluded[i].rule);
                free(r->excluded[i].reason);
        }
        free(r->options);
        free(r->excluded);
        free(r->none);
        free(r);
        return NULL;
}

static void exclude(struct gv_advise_result *r, enum gv_advise_mode mode,
                    const struct gv_gpu_model *model, const char *rule, const char *source,
                    char *reason /* stolen */)
{
        r->excluded = xreallocarray(r->excluded, r->n_excluded + 1, sizeof(*r->excluded));
        r->excluded[r->n_excluded++] = (struct gv_advise_exclusion){
                .mode = mode, .model = model, .rule = xstrdup(rule), .reason = reason,
                .source = source,
        };
}

static struct gv_advise_option *option_add(struct gv_advise_result *r, enum gv_advise_mode mode,
                                           const struct gv_gpu_model *model)
{
        r->options = xreallocarray(r->options, r->n_options + 1, sizeof(*r->options));
        struct gv_advise_option *o = &r->options[r->n_options++];
        *o = (struct gv_advise_option){
                .mode = mode,
                .model = model,
                .isolation = mode_facts[mode].isolation,
                .predictability = mode_facts[mode].predictability,
                .live_migration = mode_facts[mode].live_migration,
                .license = { .edition = -1 },
                .as_vgpu = { .edition = -1 },
        };
        return o;
}

/* The seats a vGPU of series s needs for `vms` VMs on `gpus` GPUs, priced from in->prices: the
 * first edition of the series (preferred first) with a priced pool, else one with a pool, else
 * the preferred one. */
static void license_for(const struct gv_advise_input *in, enum gv_vgpu_series s, uint32_t vms,
                        uint32_t gpus, struct gv_advise_license *ret)
{
        enum gv_license_edition eds[_GV_LICENSE_EDITION_MAX];
        size_t n = gv_license_editions_for_series(s, eds);
        const struct gv_advise_price *best = NULL;
        int edition = n ? (int)eds[0] : -1;

        for (size_t i = 0; in->prices && i < n && !best; i++)
                if (in->prices[eds[i]].pooled && in->prices[eds[i]].price_per_seat_year >= 0) {
                        best = &in->prices[eds[i]];
                        edition = (int)eds[i];
                }
        for (size_t i = 0; in->prices && i < n && !best; i++)
                if (in->prices[eds[i]].pooled) {
                        best = &in->prices[eds[i]];
                        edition = (int)eds[i];
                }
        struct gv_advise_license l = { .edition = edition, .counting = GV_LICENSE_COUNT_VM };
        if (edition < 0) {
                l.note = xstrdup("The catalog names no licence edition for this series.");
                *ret = l;
                return;
        }
        const char *ed = gv_license_edition_to_string(edition);
        if (best) {
                l.pooled = true;
                l.counting = best->counting;
                l.seats_free = best->seats_free;
                snprintf(l.currency, sizeof(l.currency), "%s", best->currency);
        }
        l.seats = l.counting == GV_LICENSE_COUNT_GPU ? gpus : vms;
        if (best && best->price_per_seat_year >= 0) {
                l.priced = true;
                l.price_per_seat_year = best->price_per_seat_year;
                l.cost_per_year = (double)l.seats * best->price_per_seat_year;
                if (best->seats_free < (int64_t)l.seats)
                        l.note = xasprintf("Only %lld %s seat%s free now: a pool with policy "
                                           "enforce refuses the VMs past them.",
                                           (long long)best->seats_free, ed,
                                           best->seats_free == 1 ? " is" : "s are");
        } else if (best) {
                l.note = xasprintf("No price: the %s pools have no price_per_seat_year.", ed);
        } else {
                l.note = xasprintf("No price: no %s pool is configured, and gpuvirt invents no "
                                   "price (PUT /api/v1/licenses/{pool} with price_per_seat_year).",
                                   ed);
        }
        *ret = l;
}

static char *money(double v, const char *currency)
{
        /* 13500 → "13,500"; cents only when there are any */
        char digits[64], out[96];
        long long whole = (long long)floor(v);
        int cents = (int)llround((v - (double)whole) * 100.0);
        if (cents == 100) {
                whole++;
                cents = 0;
        }
        int n = snprintf(digits, sizeof(digits), "%lld", whole), k = 0;
        for (int i = 0; i < n; i++) {
                if (i && (n - i) % 3 == 0)
                        out[k++] = ',';
                out[k++] = digits[i];
        }
        out[k] = 0;
        const char *cur = currency && *currency ? currency : "";
        if (strcmp(cur, "USD") == 0)
                return cents ? xasprintf("$%s.%02d", out, cents) : xasprintf("$%s", out);
        return cents ? xasprintf("%s.%02d%s%s", out, cents, *cur ? " " : "", cur)
                     : xasprintf("%s%s%s", out, *cur ? " " : "", cur);
}

/* "3 seats of nvaie ($13,500/yr at the configured price)" or "... (no price configured)" */
static char *license_text(const struct gv_advise_license *l)
{
        if (l->edition < 0)
                return xstrdup("no licence seat");
        const char *ed = gv_license_edition_to_string(l->edition);
        const char *per = l->counting == GV_LICENSE_COUNT_GPU ? " (one per GPU)" : "";
        if (l->priced) {
                _cleanup_free_ char *m = money(l->cost_per_year, l->currency);
                return xasprintf("%u seat%s of %s%s, %s/yr at the configured price", l->seats,
                                 l->seats == 1 ? "" : "s", ed, per, m);
        }
        return xasprintf("%u seat%s of %s%s, no price configured", l->seats,
                         l->seats == 1 ? "" : "s", ed, per);
}

/* A rule's words as a sentence: a full stop, and a capital first letter unless the first word
 * is a name that starts small ("vGPU"). */
static char *sentence(const char *s)
{
        char *x = xasprintf("%s.", s);
        if (x[0] >= 'a' && x[0] <= 'z' && !(x[1] >= 'A' && x[1] <= 'Z'))
                x[0] = (char)(x[0] - 'a' + 'A');
        return x;
}

static void reason(struct gv_advise_option *o, char *s /* stolen */)
{
        strv_consume(&o->reasons, s);
}

/* The idle share of what an option takes costs score; the reason says how much is idle. */
static void idle_penalty(struct gv_advise_option *o, uint64_t taken_mib, double weight)
{
        if (!taken_mib || !o->idle_mib)
                return;
        double share = (double)o->idle_mib / (double)taken_mib;
        o->score -= (int)lround(share * weight);
}

/* ---- the options of each mode on one model ---- */

static bool users_are_people(const struct gv_advise_traits *t)
{
        return (PEOPLE_KINDS & (1u << t->kind)) != 0;
}

static void capacity_exclusion(struct gv_advise_result *r, enum gv_advise_mode mode,
                               const struct gv_advise_gpus *g, uint32_t need, uint32_t per_gpu,
                               const char *what)
{
        exclude(r, mode, g->model, "capacity", "the cluster's GPU count",
                xasprintf("%s needs %u %s GPU%s (%u per GPU); the cluster has %u.", what, need,
                          g->model->name, need == 1 ? "" : "s", per_gpu, g->count));
}

static void option_passthrough(const struct gv_advise_input *in, struct gv_advise_result *r,
                               const struct gv_advise_gpus *g)
{
        const struct gv_advise_traits *t = in->traits;
        const struct gv_gpu_model *m = g->model;
        uint64_t cap = gpu_nominal_mib(m), M = t->gpu_memory_mib;
        _cleanup_free_ char *need = gib(M), *has = gib(cap);

        if (M > cap) {
                exclude(r, GV_ADVISE_PASSTHROUGH, m, "memory", "data/gpus (memory_mib)",
                        xasprintf("A %s has %s; the workload needs %s per instance.", m->name,
                                  has, need));
                return;
        }
        bool shared = t->users > 1 && !users_are_people(t) && (uint64_t)t->users * M <= cap;
        uint32_t vms = shared ? 1 : t->users;
        if (vms > g->count) {
                capacity_exclusion(r, GV_ADVISE_PASSTHROUGH, g, vms, 1, "Pass-through, one GPU "
                                   "per VM,");
                return;
        }
        struct gv_advise_option *o = option_add(r, GV_ADVISE_PASSTHROUGH, m);
        o->instances = vms;
        o->per_gpu = 1;
        o->gpus = vms;
        o->shared_vm = shared;
        o->memory_mib = m->memory_mib;
        uint64_t used = shared ? (uint64_t)t->users * M : (uint64_t)vms * M;
        uint64_t taken = (uint64_t)vms * m->memory_mib;
        o->idle_mib = taken > used ? taken - used : 0;
        reason(o, xasprintf("Pass-through: sharing %s; isolation %s; predictability %s; live "
                            "migration %s; licence %s.", mode_facts[o->mode].sharing,
                            mode_facts[o->mode].isolation_text, o->predictability,
                            mode_facts[o->mode].live_migration_text,
                            mode_facts[o->mode].licence));
        _cleanup_free_ char *idle = gib(o->idle_mib), *total = gib(m->memory_mib);
        _cleanup_free_ char *all = gib((uint64_t)t->users * M);
        if (shared)
                reason(o, xasprintf("The %u replicas share one VM and its whole %s (%s each, %s "
                                    "together); %s of its %s idle.", t->users, m->name, need,
                                    all, idle, total));
        else if (vms > 1)
                reason(o, xasprintf("One whole %s per VM (%u VMs, %u GPUs): %s idle in all.",
                                    m->name, vms, vms, idle));
        else
                reason(o, xasprintf("A whole %s: %s of its %s idle.", m->name, idle, total));
        idle_penalty(o, taken, IDLE_WEIGHT_WHOLE);
}

/* The smallest time-sliced type of series s on m whose framebuffer holds M (ties: the one more
 * fit on a GPU); NULL when none. *ret_largest: the largest of the series (NULL: none). */
static const struct gv_vgpu_type *pick_vgpu_type(const struct gv_gpu_model *m,
                                                 enum gv_vgpu_series s, uint64_t M,
                                                 const struct gv_vgpu_type **ret_largest)
{
        const struct gv_vgpu_type *best = NULL, *largest = NULL;
        for (size_t i = 0; i < m->n_vgpu_types; i++) {
                const struct gv_vgpu_type *v = &m->vgpu_types[i];
                if (v->series != s || v->gi_profile || v->max_instances == 0)
                        continue;
                if (!largest || v->framebuffer_mib > largest->framebuffer_mib)
                        largest = v;
                if (v->framebuffer_mib < M)
                        continue;
                if (!best || v->framebuffer_mib < best->framebuffer_mib ||
                    (v->framebuffer_mib == best->framebuffer_mib &&
                     v->max_instances > best->max_instances))
                        best = v;
        }
        *ret_largest = largest;
        return best;
}

static void option_vgpu(const struct gv_advise_input *in, struct gv_advise_result *r,
                        const struct gv_advise_gpus *g, const struct series_rule *sr)
{
        const struct gv_advise_traits *t = in->traits;
        const struct gv_gpu_model *m = g->model;
        const struct gv_vgpu_type *largest, *v;
        _cleanup_free_ char *need = gib(t->gpu_memory_mib);

        if (m->n_vgpu_types == 0) {
                exclude(r, GV_ADVISE_VGPU, m, "no-vgpu", "data/gpus (vgpu.types); " SRC_TABLE
                        ", hardware", xasprintf("%s has no vGPU types (vGPU needs a "
                                                "vGPU-capable data-center card).", m->name));
                return;
        }
        v = pick_vgpu_type(m, sr->series, t->gpu_memory_mib, &largest);
        if (!largest) {
                exclude(r, GV_ADVISE_VGPU, m, "series", "data/gpus (vgpu.types); vgpu.md §6",
                        xasprintf("%s has no time-sliced %s vGPU type (%s workloads use it).",
                                  m->name, sr->what, gv_advise_kind_to_string(t->kind)));
                return;
        }
        if (!v) {
                _cleanup_free_ char *l = gib(largest->framebuffer_mib);
                exclude(r, GV_ADVISE_VGPU, m, "memory", "data/gpus (framebuffer_mib)",
                        xasprintf("No %s vGPU type of %s holds %s (the largest, %s, has %s).",
                                  sr->what, m->name, need, largest->name, l));
                return;
        }
        uint32_t gpus = div_up(t->users, v->max_instances);
        if (gpus > g->count) {
                _cleanup_free_ char *what = xasprintf("vGPU %s ×%u", v->name, t->users);
                capacity_exclusion(r, GV_ADVISE_VGPU, g, gpus, v->max_instances, what);
                return;
        }
        struct gv_advise_option *o = option_add(r, GV_ADVISE_VGPU, m);
        o->vgpu = v;
        o->instances = t->users;
        o->per_gpu = v->max_instances;
        o->gpus = gpus;
        o->memory_mib = v->framebuffer_mib;
        o->idle_mib = (uint64_t)t->users * (v->framebuffer_mib - t->gpu_memory_mib);
        o->score += sr->bonus;
        license_for(in, v->series, o->instances, o->gpus, &o->license);
        reason(o, xasprintf("vGPU: sharing %s; isolation %s; predictability %s; live migration "
                            "%s; licence %s.", mode_facts[o->mode].sharing,
                            mode_facts[o->mode].isolation_text, o->predictability,
                            mode_facts[o->mode].live_migration_text,
                            mode_facts[o->mode].licence));
        _cleanup_free_ char *fb = gib(v->framebuffer_mib);
        reason(o, xasprintf("%s is the smallest %s type of %s that holds %s (%s, up to %u per "
                            "GPU).", v->name, sr->what, m->name, need, fb, v->max_instances));
        idle_penalty(o, (uint64_t)t->users * v->framebuffer_mib, IDLE_WEIGHT_SLICE);
}

/* The MIG-backed vGPU type of profile gi on m in one of the kind's series (C first, as
 * vms.c's mig_vgpu_type does); NULL when none. */
static const struct gv_vgpu_type *mig_backed_type(const struct gv_gpu_model *m,
                                                  const struct gv_mig_gi_profile *gi,
                                                  enum gv_advise_kind kind)
{
        for (size_t s = 0; s < ELEMENTSOF(series_rules); s++) {
                if (!(series_rules[s].kinds & (1u << kind)))
                        continue;
                for (size_t i = 0; i < m->n_vgpu_types; i++) {
                        const struct gv_vgpu_type *v = &m->vgpu_types[i];
                        if (v->gi_profile && strcasecmp(v->gi_profile, gi->name) == 0 &&
                            v->series == series_rules[s].series)
                                return v;
                }
        }
        return NULL;
}

/* The smallest GI profile holding M: the least nominal memory, then the fewest compute slices
 * (the most per GPU); media extensions left out (a +me profile exists once per GPU, for the
 * media engines). *ret_alt: a profile of the same memory with more compute, for the reasons. */
static const struct gv_mig_gi_profile *pick_gi(const struct gv_gpu_model *m, uint64_t M,
                                               const struct gv_mig_gi_profile **ret_largest,
                                               const struct gv_mig_gi_profile **ret_alt)
{
        const struct gv_mig_gi_profile *best = NULL, *largest = NULL, *alt = NULL;
        for (size_t i = 0; i < m->n_gi_profiles; i++) {
                const struct gv_mig_gi_profile *gi = &m->gi_profiles[i];
                uint64_t nom = gi_nominal_mib(gi);
                if (gi->media_extensions || gi->instances == 0)
                        continue;
                if (!largest || nom > gi_nominal_mib(largest))
                        largest = gi;
                if (nom < M)
                        continue;
                if (!best || nom < gi_nominal_mib(best) ||
                    (nom == gi_nominal_mib(best) && gi->slices < best->slices))
                        best = gi;
        }
        /* the same memory with more compute (2g.20gb beside 1g.20gb): named in the reasons */
        for (size_t i = 0; best && i < m->n_gi_profiles; i++) {
                const struct gv_mig_gi_profile *gi = &m->gi_profiles[i];
                if (gi != best && !gi->media_extensions && gi->instances > 0 &&
                    gi->slices > best->slices && gi_nominal_mib(gi) == gi_nominal_mib(best) &&
                    (!alt || gi->slices < alt->slices))
                        alt = gi;
        }
        *ret_largest = largest;
        *ret_alt = alt;
        return best;
}

static void option_mig(const struct gv_advise_input *in, struct gv_advise_result *r,
                       const struct gv_advise_gpus *g)
{
        const struct gv_advise_traits *t = in->traits;
        const struct gv_gpu_model *m = g->model;
        const struct gv_mig_gi_profile *gi, *largest, *alt;
        _cleanup_free_ char *need = gib(t->gpu_memory_mib);

        if (m->n_gi_profiles == 0) {
                exclude(r, GV_ADVISE_MIG, m, "no-mig", "mig.md §1; " SRC_TABLE ", hardware",
                        xasprintf("%s has no MIG.", m->name));
                return;
        }
        gi = pick_gi(m, t->gpu_memory_mib, &largest, &alt);
        if (!gi) {
                _cleanup_free_ char *l = largest ? gib(gi_nominal_mib(largest)) : xstrdup("?");
                exclude(r, GV_ADVISE_MIG, m, "memory", "data/gpus (mig.gi_profiles)",
                        xasprintf("No MIG profile of %s holds %s (the largest, %s, has %s).",
                                  m->name, need, largest ? largest->name : "?", l));
                return;
        }
        const struct gv_vgpu_type *v = mig_backed_type(m, gi, t->kind);
        if (!v) {
                exclude(r, GV_ADVISE_MIG, m, "series", "vgpu.md §5, §7.2; data/gpus",
                        xasprintf("A VM receives a MIG instance as a MIG-backed vGPU, and %s has "
                                  "none for %s of a series %s workloads use (its MIG-backed "
                                  "types are compute, C-series).", m->name, gi->name,
                                  gv_advise_kind_to_string(t->kind)));
                return;
        }
        uint32_t gpus = div_up(t->users, gi->instances);
        if (gpus > g->count) {
                _cleanup_free_ char *what = xasprintf("MIG %s ×%u", gi->name, t->users);
                capacity_exclusion(r, GV_ADVISE_MIG, g, gpus, gi->instances, what);
                return;
        }
        struct gv_advise_option *o = option_add(r, GV_ADVISE_MIG, m);
        o->gi = gi;
        o->vgpu = v;
        o->instances = t->users;
        o->per_gpu = gi->instances;
        o->gpus = gpus;
        o->memory_mib = gi->memory_mib;
        uint64_t nom = gi_nominal_mib(gi);
        o->idle_mib = (uint64_t)t->users * (nom - t->gpu_memory_mib);
        license_for(in, v->series, o->instances, o->gpus, &o->as_vgpu);
        reason(o, xasprintf("MIG: sharing %s; isolation %s; predictability %s; live migration "
                            "%s; licence %s.", mode_facts[o->mode].sharing,
                            mode_facts[o->mode].isolation_text, o->predictability,
                            mode_facts[o->mode].live_migration_text,
                            mode_facts[o->mode].licence));
        _cleanup_free_ char *nm = gib(nom), *as = license_text(&o->as_vgpu);
        reason(o, xasprintf("%s is the smallest MIG profile of %s that holds %s (%s, %u of %u "
                            "compute slices, up to %u per GPU).", gi->name, m->name, need, nm,
                            gi->slices, m->mig_compute_slices, gi->instances));
        if (alt)
                reason(o, xasprintf("%s has the same memory with %u compute slices instead of "
                                    "%u (up to %u per GPU).", alt->name, alt->slices, gi->slices,
                                    alt->instances));
        reason(o, xasprintf("A VM receives the instance as MIG-backed vGPU %s; where a licence "
                            "pool counts it, that is %s.", v->name, as));
        idle_penalty(o, (uint64_t)t->users * nom, IDLE_WEIGHT_SLICE);
}

/* ---- the whole advice ---- */

static const struct gv_gpu_model *find_model_ci(const struct gv_advise_input *in, const char *n)
{
        for (size_t i = 0; in->catalog && i < in->catalog->n_models; i++)
                if (strcasecmp(in->catalog->models[i].name, n) == 0)
                        return &in->catalog->models[i];
        for (size_t i = 0; i < in->n_gpus; i++)
                if (strcasecmp(in->gpus[i].model->name, n) == 0)
                        return in->gpus[i].model;
        return NULL;
}

static bool model_allowed(const struct gv_advise_traits *t, const struct gv_gpu_model *m)
{
        if (!t->models)
                return true;
        STRV_FOREACH(n, t->models)
                if (strcasecmp(*n, m->name) == 0)
                        return true;
        return false;
}

static int check_models(const struct gv_advise_input *in, struct gv_advise_result *r,
                        struct gv_error **err)
{
        STRV_FOREACH(n, in->traits->models) {
                const struct gv_gpu_model *m = find_model_ci(in, *n);
                bool present = false;
                if (!m) {
                        _cleanup_strv_free_ char **names = NULL;
                        for (size_t i = 0; in->catalog && i < in->catalog->n_models; i++)
                                strv_extend(&names, in->catalog->models[i].name);
                        for (size_t i = 0; !in->catalog && i < in->n_gpus; i++)
                                strv_extend(&names, in->gpus[i].model->name);
                        _cleanup_free_ char *valid = strv_join(names, ", ");
                        return gv_error_set(err, EINVAL, "models: '%s' is not a GPU model of the "
                                            "catalog; valid: %s.", *n, *valid ? valid : "none");
                }
                for (size_t i = 0; i < in->n_gpus; i++)
                        present = present || (in->gpus[i].model == m && in->gpus[i].count);
                if (!present)
                        for (int mode = 0; mode < _GV_ADVISE_MODE_MAX; mode++)
                                exclude(r, mode, m, "model-absent", "the cluster's GPUs",
                                        xasprintf("The cluster has no %s GPU.", m->name));
        }
        return 0;
}

int gv_advise(const struct gv_advise_input *in, struct gv_advise_result **ret,
              struct gv_error **err)
{
        const struct gv_advise_traits *t = in->traits;
        _cleanup_(gv_advise_result_freep) struct gv_advise_result *r =
                xnew0(struct gv_advise_result, 1);
        bool mode_out[_GV_ADVISE_MODE_MAX] = { false };
        const struct gv_gpu_model *biggest = NULL;
        size_t n_models = 0;
        int k = check_models(in, r, err);

        if (k < 0)
                return k;
        /* rules that rule a whole mode out */
        for (size_t i = 0; i < ELEMENTSOF(rules); i++) {
                if (rules[i].effect != EXCLUDE || !rule_matches(&rules[i], t))
                        continue;
                for (int mode = 0; mode < _GV_ADVISE_MODE_MAX; mode++)
                        if (rules[i].modes & (1u << mode) && !mode_out[mode]) {
                                mode_out[mode] = true;
                                exclude(r, mode, NULL, rules[i].id, rules[i].source,
                                        sentence(rules[i].reason));
                        }
        }
        /* the options each model can give */
        for (size_t i = 0; i < in->n_gpus; i++) {
                const struct gv_advise_gpus *g = &in->gpus[i];
                if (!g->model || !g->count || !model_allowed(t, g->model))
                        continue;
                n_models++;
                if (!biggest || g->model->memory_mib > biggest->memory_mib)
                        biggest = g->model;
                if (!mode_out[GV_ADVISE_PASSTHROUGH])
                        option_passthrough(in, r, g);
                for (size_t s = 0; !mode_out[GV_ADVISE_VGPU] && s < ELEMENTSOF(series_rules);
                     s++)
                        if (series_rules[s].kinds & (1u << t->kind))
                                option_vgpu(in, r, g, &series_rules[s]);
                if (!mode_out[GV_ADVISE_MIG])
                        option_mig(in, r, g);
        }
        /* the scoring rules, in table order, and the licence line last */
        for (size_t i = 0; i < r->n_options; i++) {
                struct gv_advise_option *o = &r->options[i];
                for (size_t j = 0; j < ELEMENTSOF(rules); j++)
                        if (rules[j].effect != EXCLUDE && rules[j].modes & (1u << o->mode) &&
                            rule_matches(&rules[j], t)) {
                                o->score += rules[j].effect;
                                reason(o, sentence(rules[j].reason));
                        }
                if (o->mode == GV_ADVISE_VGPU) {
                        _cleanup_free_ char *l = license_text(&o->license);
                        reason(o, xasprintf("Licence: %s.", l));
                        if (o->license.note)
                                reason(o, xstrdup(o->license.note));
                }
        }
        if (r->n_options == 0) {
                _cleanup_free_ char *need = gib(t->gpu_memory_mib);
                if (n_models == 0 && t->models)
                        r->none = xstrdup("The cluster has no GPU of the models asked for.");
                else if (n_models == 0)
                        r->none = xstrdup("The cluster has no GPU the catalog knows: no host "
                                          "has reported one.");
                else if (t->gpu_memory_mib > gpu_nominal_mib(biggest)) {
                        _cleanup_free_ char *b = gib(gpu_nominal_mib(biggest));
                        r->none = xasprintf("%s per instance is more than any GPU of the cluster "
                                            "has (the largest: %s, %s); the advisor sizes one GPU "
                                            "or a slice of one per instance, and a workload that "
                                            "needs several GPUs' memory is a multi-GPU "
                                            "pass-through VM (vm create --gpu passthrough:N).",
                                            need, biggest->name, b);
                } else
                        r->none = xstrdup("Every mode is ruled out for these traits; 'excluded' "
                                          "names the rule for each.");
        }
        gv_advise_sort(r);
        *ret = TAKE_PTR(r);
        return 0;
}

static int option_cmp(const void *a, const void *b)
{
        const struct gv_advise_option *x = a, *y = b;
        int c;
        if ((x->fit == GV_ADVISE_FIT_NO_ROOM) != (y->fit == GV_ADVISE_FIT_NO_ROOM))
                return x->fit == GV_ADVISE_FIT_NO_ROOM ? 1 : -1;
        if (x->score != y->score)
                return x->score > y->score ? -1 : 1;
        if (x->mode != y->mode)
                return x->mode < y->mode ? -1 : 1;
        if (x->gpus != y->gpus)
                return x->gpus < y->gpus ? -1 : 1;
        if (x->idle_mib != y->idle_mib)
                return x->idle_mib < y->idle_mib ? -1 : 1;
        c = strcmp(x->model->name, y->model->name);
        if (c)
                return c;
        const char *px = x->gi ? x->gi->name : x->vgpu ? x->vgpu->name : "";
        const char *py = y->gi ? y->gi->name : y->vgpu ? y->vgpu->name : "";
        return strcmp(px, py);
}

void gv_advise_sort(struct gv_advise_result *r)
{
        if (r->n_options > 1)
                qsort(r->options, r->n_options, sizeof(*r->options), option_cmp);
}

json_t *gv_advise_option_request(const struct gv_advise_option *o)
{
        switch (o->mode) {
        case GV_ADVISE_PASSTHROUGH:
                return json_pack("{s:s, s:i}", "kind", "passthrough", "count", 1);
        case GV_ADVISE_VGPU:
                return json_pack("{s:s, s:s}", "kind", "vgpu", "type", o->vgpu->name);
        case GV_ADVISE_MIG:
                return json_pack("{s:s, s:s}", "kind", "mig", "profile", o->gi->name);
        default:
                return json_null();
        }
}

uint32_t gv_advise_requests(const struct gv_advise_option *o)
{
        return o->instances;
}

static json_t *license_to_json(const struct gv_advise_license *l)
{
        if (l->edition < 0)
                return json_pack("{s:n, s:i, s:n, s:i, s:n, s:n, s:s?}", "edition", "seats", 0,
                                 "counting", "cost_per_year", 0, "price_per_seat_year",
                                 "currency", "note", l->note);
        return json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:s?}", "edition",
                         gv_license_edition_to_string(l->edition), "edition_title",
                         gv_license_edition_title(l->edition), "seats", (int)l->seats,
                         "counting", gv_license_counting_to_string(l->counting), "cost_per_year",
                         l->priced ? json_real(l->cost_per_year) : json_null(),
                         "price_per_seat_year",
                         l->priced ? json_real(l->price_per_seat_year) : json_null(), "currency",
                         l->pooled && *l->currency ? json_string(l->currency) : json_null(),
                         "seats_free",
                         l->pooled ? json_integer(l->seats_free) : json_null(), "note", l->note);
}

static const char *fit_name(enum gv_advise_fit f)
{
        return f == GV_ADVISE_FIT_NOW ? "now" : f == GV_ADVISE_FIT_NO_ROOM ? "no-room" : "unknown";
}

json_t *gv_advise_result_to_json(const struct gv_advise_result *r,
                                 const struct gv_advise_traits *t)
{
        json_t *options = json_array(), *excluded = json_array();
        for (size_t i = 0; i < r->n_options; i++) {
                const struct gv_advise_option *o = &r->options[i];
                json_t *reasons = json_array();
                STRV_FOREACH(s, o->reasons)
                        json_array_append_new(reasons, json_string(*s));
                const char *profile = o->gi ? o->gi->name : o->vgpu ? o->vgpu->name : NULL;
                json_t *j = json_pack(
                        "{s:i, s:s, s:s, s:s?, s:s?, s:s?, s:i, s:i, s:i, s:b, s:I, s:I, s:s, "
                        "s:s, s:b, s:o, s:i, s:o, s:s, s:o, s:o}",
                        "rank", (int)i + 1, "mode", gv_advise_mode_to_string(o->mode), "model",
                        o->model->name, "profile", profile, "vgpu_type",
                        o->vgpu ? o->vgpu->name : NULL, "series",
                        o->vgpu ? gv_vgpu_series_to_string(o->vgpu->series) : NULL, "instances",
                        (int)o->instances, "per_gpu", (int)o->per_gpu, "gpus", (int)o->gpus,
                        "shared_vm", o->shared_vm, "memory_mib", (json_int_t)o->memory_mib,
                        "idle_mib", (json_int_t)o->idle_mib, "isolation", o->isolation,
                        "predictability", o->predictability, "live_migration",
                        o->live_migration, "license", license_to_json(&o->license), "score",
                        o->score, "reasons", reasons, "fit", fit_name(o->fit), "request",
                        gv_advise_option_request(o), "where",
                        o->where ? json_incref(o->where) : json_null());
                if (o->mode == GV_ADVISE_MIG)
                        json_object_set_new(j, "as_vgpu", license_to_json(&o->as_vgpu));
                json_array_append_new(options, j);
        }
        for (size_t i = 0; i < r->n_excluded; i++) {
                const struct gv_advise_exclusion *e = &r->excluded[i];
                json_array_append_new(excluded,
                                      json_pack("{s:s, s:s?, s:s, s:s, s:s}", "mode",
                                                gv_advise_mode_to_string(e->mode), "model",
                                                e->model ? e->model->name : NULL, "rule",
                                                e->rule, "reason", e->reason, "source",
                                                e->source));
        }
        return json_pack("{s:o, s:o, s:o, s:s?}", "traits", gv_advise_traits_to_json(t),
                         "options", options, "excluded", excluded, "none", r->none);
}
