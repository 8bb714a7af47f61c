/* SPDX-License-Identifier: MIT */
/*
 * mig-layout.c — MIG geometry and the GI planner (mig-layout.h). Pure functions, no I/O.
 *
 * The planner enumerates arrangements by backtracking: wanted profiles sorted largest first,
 * identical profiles placed in increasing slice order (any arrangement can be sorted that way,
 * so nothing is lost), every complete arrangement scored, the best kept. With 8 memory slices
 * and at most 7 instances this is a few thousand nodes at worst.
 */
#include "catalog/mig-layout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/strv.h"

/* Search budget: the best arrangement found within it is used (never hit with 8 slices). */
#define PLAN_NODE_BUDGET 2000000u

void gv_mig_geometry_from_model(const struct gv_gpu_model *m, struct gv_mig_geometry *ret)
{
        *ret = (struct gv_mig_geometry){
                .memory_slices = m->mig_memory_slices,
                .compute_slices = m->mig_compute_slices,
                .max_instances = m->mig_max_instances,
                .profiles = m->gi_profiles,
                .n_profiles = m->n_gi_profiles,
        };
}

uint32_t gv_mig_placement_mask(const struct gv_mig_placement *p)
{
        if (p->size == 0 || p->start >= 32 || p->size > 32 - p->start)
                return 0;
        uint32_t m = p->size == 32 ? UINT32_MAX : ((UINT32_C(1) << p->size) - 1);
        return m << p->start;
}

uint32_t gv_mig_occupied(const struct gv_mig_instance *inst, size_t n)
{
        uint32_t mask = 0;
        for (size_t i = 0; i < n; i++)
                mask |= gv_mig_placement_mask(&inst[i].placement);
        return mask;
}

size_t gv_mig_free_placements(const struct gv_mig_gi_profile *p, uint32_t occupied,
                              struct gv_mig_placement *buf)
{
        size_t n = 0;
        for (size_t i = 0; i < p->n_placements; i++) {
                uint32_t m = gv_mig_placement_mask(&p->placements[i]);
                if (m == 0 || (m & occupied))
                        continue;
                if (buf)
                        buf[n] = p->placements[i];
                n++;
        }
        return n;
}

char *gv_mig_placement_format(const struct gv_mig_placement *p, char *buf, size_t size)
{
        if (p->size <= 1)
                snprintf(buf, size, "%u", p->start);
        else
                snprintf(buf, size, "%u-%u", p->start, p->start + p->size - 1);
        return buf;
}

static const char *profile_name(const struct gv_mig_gi_profile *p)
{
        return p->name ? p->name : "(unnamed profile)";
}

/* "slice 2" / "slices 4-5" */
static char *slices_text(const struct gv_mig_placement *p)
{
        char b[32];
        return xasprintf("%s %s", p->size <= 1 ? "slice" : "slices",
                         gv_mig_placement_format(p, b, sizeof b));
}

static bool placement_allowed(const struct gv_mig_gi_profile *p, const struct gv_mig_placement *pl)
{
        for (size_t i = 0; i < p->n_placements; i++)
                if (p->placements[i].start == pl->start && p->placements[i].size == pl->size)
                        return true;
        return false;
}

static size_t count_profile(const struct gv_mig_instance *inst, size_t n,
                            const struct gv_mig_gi_profile *p)
{
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
                if (inst[i].profile->id == p->id)
                        c++;
        return c;
}

int gv_mig_layout_check(const struct gv_mig_geometry *g, const struct gv_mig_instance *inst,
                        size_t n, struct gv_error **err)
{
        uint64_t compute = 0;

        if (n > g->max_instances)
                return gv_error_set(err, EINVAL,
                                    "%zu GPU instances exist but the GPU allows at most %u", n,
                                    g->max_instances);
        for (size_t i = 0; i < n; i++) {
                const struct gv_mig_instance *a = &inst[i];
                _cleanup_free_ char *at = slices_text(&a->placement);
                uint32_t m = gv_mig_placement_mask(&a->placement);

                if (m == 0 || a->placement.start + a->placement.size > g->memory_slices)
                        return gv_error_set(err, EINVAL,
                                            "%s at %s lies outside the GPU's %u memory slices",
                                            profile_name(a->profile), at, g->memory_slices);
                if (!placement_allowed(a->profile, &a->placement))
                        return gv_error_set(err, EINVAL,
                                            "%s at %s is not one of the profile's placements",
                                            profile_name(a->profile), at);
                for (size_t j = 0; j < i; j++) {
                        const struct gv_mig_instance *b = &inst[j];
                        if (!(gv_mig_placement_mask(&b->placement) & m))
                                continue;
                        _cleanup_free_ char *bt = slices_text(&b->placement);
                        return gv_error_set(err, EINVAL, "%s at %s overlaps %s at %s",
                                            profile_name(a->profile), at,
                                            profile_name(b->profile), bt);
                }
                size_t c = count_profile(inst, i + 1, a->profile);
                if (c > a->profile->instances)
                        return gv_error_set(err, EINVAL,
                                            "%zu instances of %s exist but the profile allows %u",
                                            c, profile_name(a->profile), a->profile->instances);
                compute += a->profile->slices;
        }
        if (compute > g->compute_slices)
                return gv_error_set(err, EINVAL,
                                    "the GPU instances use %llu compute slices but the GPU has %u",
                                    (unsigned long long)compute, g->compute_slices);
        return 0;
}

/* ---- planner ---- */

struct plan_item {
        const struct gv_mig_gi_profile *p;
        size_t wanted_index;
};

struct plan_score {
        uint32_t largest_mem; /* memory slices of the largest profile still placeable, 0 none */
        uint32_t largest_compute;
        uint64_t free_placements;
};

struct plan {
        const struct gv_mig_geometry *g;
        struct plan_item *items;
        size_t n;          /* items placed by this search (a prefix when diagnosing) */
        uint32_t *cur;     /* start of each item, sorted order */
        uint32_t *best;
        bool have_best;
        struct plan_score best_score;
        uint32_t *best_tie;   /* per slice: rank of the planned instance there, free = max */
        uint32_t *tie;
        bool *can_add;        /* per geometry profile: another instance is allowed */
        uint64_t nodes;
};

static int cmp_items(const void *a, const void *b)
{
        const struct plan_item *x = a, *y = b;
        if (x->p->memory_slices != y->p->memory_slices)
                return x->p->memory_slices > y->p->memory_slices ? -1 : 1;
        if (x->p->slices != y->p->slices)
                return x->p->slices > y->p->slices ? -1 : 1;
        if (x->p->n_placements != y->p->n_placements)
                return x->p->n_placements < y->p->n_placements ? -1 : 1;
        if (x->p->id != y->p->id)
                return x->p->id < y->p->id ? -1 : 1;
        return x->wanted_index < y->wanted_index ? -1 : x->wanted_index > y->wanted_index;
}

static void plan_evaluate(struct plan *pl, uint32_t mask)
{
        const struct gv_mig_geometry *g = pl->g;
        struct plan_score s = {};

        for (size_t i = 0; i < g->n_profiles; i++) {
                const struct gv_mig_gi_profile *p = &g->profiles[i];
                if (!pl->can_add[i])
                        continue;
                size_t f = gv_mig_free_placements(p, mask, NULL);
                if (f == 0)
                        continue;
                s.free_placements += f;
                if (p->memory_slices > s.largest_mem ||
                    (p->memory_slices == s.largest_mem && p->slices > s.largest_compute)) {
                        s.largest_mem = p->memory_slices;
                        s.largest_compute = p->slices;
                }
        }
        for (uint32_t k = 0; k < g->memory_slices; k++)
                pl->tie[k] = UINT32_MAX;
        for (size_t i = 0; i < pl->n; i++) {
                const struct gv_mig_gi_profile *p = pl->items[i].p;
                for (uint32_t k = pl->cur[i]; k < pl->cur[i] + p->memory_slices; k++)
                        pl->tie[k] = p->memory_slices * 256 + p->slices;
        }

        int better = 0;
        if (!pl->have_best)
                better = 1;
        else if (s.largest_mem != pl->best_score.largest_mem)
                better = s.largest_mem > pl->best_score.largest_mem;
        else if (s.largest_compute != pl->best_score.largest_compute)
                better = s.largest_compute > pl->best_score.largest_compute;
        else if (s.free_placements != pl->best_score.free_placements)
                better = s.free_placements > pl->best_score.free_placements;
        else
                for (uint32_t k = 0; k < g->memory_slices; k++)
                        if (pl->tie[k] != pl->best_tie[k]) {
                                better = pl->tie[k] < pl->best_tie[k];
                                break;
                        }
        if (!better)
                return;
        pl->have_best = true;
        pl->best_score = s;
        memcpy(pl->best, pl->cur, pl->n * sizeof(uint32_t));
        memcpy(pl->best_tie, pl->tie, g->memory_slices * sizeof(uint32_t));
}

static void plan_search(struct plan *pl, size_t i, uint32_t mask)
{
        if (pl->nodes++ > PLAN_NODE_BUDGET && pl->have_best)
                return;
        if (i == pl->n) {
                plan_evaluate(pl, mask);
                return;
        }
        const struct plan_item *it = &pl->items[i];
        bool same_as_prev = i > 0 && pl->items[i - 1].p->id == it->p->id;
        for (size_t k = 0; k < it->p->n_placements; k++) {
                const struct gv_mig_placement *cand = &it->p->placements[k];
                uint32_t m = gv_mig_placement_mask(cand);
                if (m == 0 || cand->start + cand->size > pl->g->memory_slices || (m & mask))
                        continue;
                if (cand->size != it->p->memory_slices)
                        continue;
                if (same_as_prev && cand->start <= pl->cur[i - 1])
                        continue;
                pl->cur[i] = cand->start;
                plan_search(pl, i + 1, mask | m);
        }
}

/* Run the search over the first n items; true when an arrangement exists (in pl->best). */
static bool plan_run(struct plan *pl, size_t n, uint32_t existing_mask)
{
        pl->n = n;
        pl->have_best = false;
        pl->nodes = 0;
        plan_search(pl, 0, existing_mask);
        return pl->have_best;
}

/* "a", "a and b", "a, b and c" */
static char *join_and(char **l)
{
        size_t n = strv_length(l);
        if (n == 0)
                return xstrdup("");
        if (n == 1)
                return xstrdup(l[0]);
        char *last = l[n - 1];
        l[n - 1] = NULL;
        _cleanup_free_ char *head = strv_join(l, ", ");
        l[n - 1] = last;
        return xasprintf("%s and %s", head, last);
}

static int explain_blocked(const struct plan *pl, size_t k, const struct gv_mig_instance *existing,
                           size_t n_existing, struct gv_error **err)
{
        const struct gv_mig_gi_profile *p = pl->items[k].p;
        _cleanup_free_ struct gv_mig_instance *layout =
                xnew0(struct gv_mig_instance, n_existing + k + 1);
        _cleanup_strv_free_ char **places = NULL, **blockers = NULL;
        size_t n_layout = 0;
        bool *used;

        for (size_t i = 0; i < n_existing; i++)
                layout[n_layout++] = existing[i];
        for (size_t i = 0; i < k; i++)
                layout[n_layout++] = (struct gv_mig_instance){
                        .profile = pl->items[i].p,
                        .placement = { .start = pl->best[i], .size = pl->items[i].p->memory_slices },
                };
        used = xnew0(bool, n_layout ? n_layout : 1);

        for (size_t j = 0; j < p->n_placements; j++) {
                char b[32];
                uint32_t m = gv_mig_placement_mask(&p->placements[j]);
                strv_extend(&places, gv_mig_placement_format(&p->placements[j], b, sizeof b));
                /* Blocking instances, in slice order. */
                for (uint32_t s = 0; s < pl->g->memory_slices; s++) {
                        if (!(m & (UINT32_C(1) << s)))
                                continue;
                        for (size_t i = 0; i < n_layout; i++) {
                                const struct gv_mig_placement *q = &layout[i].placement;
                                if (used[i] || s < q->start || s >= q->start + q->size)
                                        continue;
                                used[i] = true;
                                _cleanup_free_ char *at = slices_text(q);
                                strv_consume(&blockers,
                                             xasprintf("%s at %s (%s)",
                                                       profile_name(layout[i].profile), at,
                                                       i < n_existing ? "existing" : "planned"));
                        }
                }
        }
        free(used);

        _cleanup_free_ char *ptext = join_and(places);
        _cleanup_free_ char *btext = join_and(blockers);
        _cleanup_free_ char *ltext = gv_mig_layout_format(pl->g, layout, n_layout);
        if (p->n_placements == 0)
                return gv_error_set(err, ENOSPC, "cannot place %s: the profile has no placements",
                                    profile_name(p));
        return gv_error_set(err, ENOSPC,
                            "cannot place %s: its %s %s %s blocked by %s, and no other "
                            "arrangement of the planned instances leaves room (layout: %s); "
                            "remove a blocking instance or ask for a smaller profile",
                            profile_name(p), p->n_placements == 1 ? "placement" : "placements",
                            ptext, p->n_placements == 1 ? "is" : "are", btext, ltext);
}

int gv_mig_plan(const struct gv_mig_geometry *g, const struct gv_mig_instance *existing,
                size_t n_existing, const struct gv_mig_gi_profile *const *wanted, size_t n_wanted,
                struct gv_mig_placement *ret_placements, struct gv_error **err)
{
        uint64_t compute = 0, want_compute = 0;
        int r;

        if (g->memory_slices == 0 || g->memory_slices > 32)
                return gv_error_set(err, EINVAL,
                                    "the GPU reports %u memory slices; MIG geometry handles 1 to "
                                    "32",
                                    g->memory_slices);
        r = gv_mig_layout_check(g, existing, n_existing, err);
        if (r < 0)
                return gv_error_wrap(err, -r, "the existing GPU instances are inconsistent");
        if (n_wanted == 0)
                return 0;

        /* Limits that no arrangement can change: counts and compute slices. */
        if (n_existing + n_wanted > g->max_instances)
                return gv_error_set(err, ENOSPC,
                                    "cannot place %zu more GPU instances: the GPU allows at most "
                                    "%u (%zu exist, %zu wanted)",
                                    n_wanted, g->max_instances, n_existing, n_wanted);
        for (size_t i = 0; i < n_wanted; i++) {
                const struct gv_mig_gi_profile *p = wanted[i];
                size_t have = count_profile(existing, n_existing, p), want = 0;
                bool first = true;
                for (size_t j = 0; j < n_wanted; j++)
                        if (wanted[j]->id == p->id) {
                                if (j < i)
                                        first = false;
                                want++;
                        }
                if (first && have + want > p->instances)
                        return gv_error_set(err, ENOSPC,
                                            "cannot place %zu x %s: %s allows %u instance%s per "
                                            "GPU (%zu exist, %zu wanted)",
                                            want, profile_name(p), profile_name(p), p->instances,
                                            p->instances == 1 ? "" : "s", have, want);
                want_compute += p->slices;
        }
        for (size_t i = 0; i < n_existing; i++)
                compute += existing[i].profile->slices;
        if (compute + want_compute > g->compute_slices)
                return gv_error_set(err, ENOSPC,
                                    "cannot place the wanted GPU instances: the layout needs %llu "
                                    "compute slices and the GPU has %u (%llu for the new "
                                    "instances, %llu held by the existing ones)",
                                    (unsigned long long)(compute + want_compute),
                                    g->compute_slices, (unsigned long long)want_compute,
                                    (unsigned long long)compute);

        struct plan pl = { .g = g };
        _cleanup_free_ struct plan_item *items = xnew0(struct plan_item, n_wanted);
        _cleanup_free_ uint32_t *cur = xnew0(uint32_t, n_wanted);
        _cleanup_free_ uint32_t *best = xnew0(uint32_t, n_wanted);
        _cleanup_free_ uint32_t *tie = xnew0(uint32_t, g->memory_slices);
        _cleanup_free_ uint32_t *best_tie = xnew0(uint32_t, g->memory_slices);
        _cleanup_free_ bool *can_add = xnew0(bool, g->n_profiles ? g->n_profiles : 1);
        for (size_t i = 0; i < n_wanted; i++)
                items[i] = (struct plan_item){ .p = wanted[i], .wanted_index = i };
        qsort(items, n_wanted, sizeof *items, cmp_items);
        pl.items = items;
        pl.cur = cur;
        pl.best = best;
        pl.tie = tie;
        pl.best_tie = best_tie;
        pl.can_add = can_add;

        /* What could still be added once everything wanted is placed (for the score). */
        for (size_t i = 0; i < g->n_profiles; i++) {
                const struct gv_mig_gi_profile *p = &g->profiles[i];
                size_t c = count_profile(existing, n_existing, p);
                for (size_t j = 0; j < n_wanted; j++)
                        if (wanted[j]->id == p->id)
                                c++;
                can_add[i] = c < p->instances && n_existing + n_wanted < g->max_instances &&
                             compute + want_compute + p->slices <= g->compute_slices;
        }

        uint32_t existing_mask = gv_mig_occupied(existing, n_existing);
        if (!plan_run(&pl, n_wanted, existing_mask)) {
                /* The first profile (largest first) that no arrangement of those before it
                 * leaves room for; explain it against the best arrangement of those. */
                for (size_t k = 0; k < n_wanted; k++) {
                        if (plan_run(&pl, k + 1, existing_mask))
                                continue;
                        if (k > 0)
                                plan_run(&pl, k, existing_mask);
                        return explain_blocked(&pl, k, existing, n_existing, err);
                }
                return gv_error_set(err, ENOSPC, "cannot place the wanted GPU instances");
        }

        for (size_t i = 0; i < n_wanted; i++)
                ret_placements[items[i].wanted_index] = (struct gv_mig_placement){
                        .start = best[i],
                        .size = items[i].p->memory_slices,
                };
        return 0;
}

char *gv_mig_layout_format(const struct gv_mig_geometry *g, const struct gv_mig_instance *inst,
                           size_t n)
{
        _cleanup_strv_free_ char **parts = NULL;
        uint32_t s = 0;

        while (s < g->memory_slices) {
                const struct gv_mig_instance *at = NULL;
                for (size_t i = 0; i < n; i++)
                        if (inst[i].placement.start == s && inst[i].placement.size > 0) {
                                at = &inst[i];
                                break;
                        }
                if (at) {
                        char b[32];
                        strv_consume(&parts, xasprintf("%s:%s",
                                                       gv_mig_placement_format(&at->placement, b,
                                                                               sizeof b),
                                                       profile_name(at->profile)));
                        s += at->placement.size;
                        continue;
                }
                /* A run of free slices up to the next instance start or covered slice. */
                uint32_t occupied = gv_mig_occupied(inst, n), e = s;
                while (e + 1 < g->memory_slices && !(occupied & (UINT32_C(1) << (e + 1)))) {
                        bool starts = false;
                        for (size_t i = 0; i < n; i++)
                                if (inst[i].placement.start == e + 1)
                                        starts = true;
                        if (starts)
                                break;
                        e++;
                }
                struct gv_mig_placement run = { .start = s, .size = e - s + 1 };
                char b[32];
                if (occupied & (UINT32_C(1) << s))
                        /* Covered by an instance that started earlier (overlap): show it. */
                        strv_consume(&parts, xasprintf("%u:overlap", s));
                else
                        strv_consume(&parts,
                                     xasprintf("%s:free", gv_mig_placement_format(&run, b,
                                                                                  sizeof b)));
                s = (occupied & (UINT32_C(1) << s)) ? s + 1 : e + 1;
        }
        return strv_join(parts, " ");
}
