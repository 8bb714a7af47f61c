/* SPDX-License-Identifier: MIT */
/*
 * relayout.c — MIG re-layout planner and the per-GPU MIG fragmentation measure (relayout.h).
 */
#include "sched/relayout.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/strv.h"

/* Search budget (never reached with 8 memory slices; the best found within it is used). */
#define RELAYOUT_NODE_BUDGET 2000000u

static const char *const verdict_table[_GV_RELAYOUT_VERDICT_MAX] = {
        [GV_RELAYOUT_PLAN] = "plan",     [GV_RELAYOUT_COMPACT] = "compact",
        [GV_RELAYOUT_EMPTY] = "empty",   [GV_RELAYOUT_FULL] = "full",
        [GV_RELAYOUT_LIMITS] = "limits", [GV_RELAYOUT_GEOMETRY] = "geometry",
};
DEFINE_STRING_TABLE_LOOKUP(gv_relayout_verdict, enum gv_relayout_verdict, verdict_table);

/* ---- geometry helpers ---- */

static int profile_index(const struct gv_mig_geometry *g, const struct gv_mig_gi_profile *p)
{
        for (size_t i = 0; i < g->n_profiles; i++)
                if (&g->profiles[i] == p || g->profiles[i].id == p->id)
                        return (int)i;
        return -1;
}

static uint32_t slice_mask(uint32_t start, uint32_t size)
{
        struct gv_mig_placement p = { .start = start, .size = size };
        return gv_mig_placement_mask(&p);
}

static uint32_t gpu_mask(const struct gv_mig_geometry *g)
{
        return g->memory_slices >= 32 ? UINT32_MAX : (UINT32_C(1) << g->memory_slices) - 1;
}

static bool placement_inside(const struct gv_mig_geometry *g, const struct gv_mig_placement *pl,
                             const struct gv_mig_gi_profile *p)
{
        return pl->size == p->memory_slices && gv_mig_placement_mask(pl) != 0 &&
               pl->start + pl->size <= g->memory_slices;
}

/* Larger is better; 0 for none. Memory slices, then compute slices, then without "+me". */
static uint64_t profile_rank(const struct gv_mig_gi_profile *p)
{
        if (!p)
                return 0;
        return ((uint64_t)p->memory_slices << 33) | ((uint64_t)p->slices << 1) |
               (p->media_extensions ? 0u : 1u);
}

/* May one more instance of p be added beside these (its count, the GPU's instance limit, the
 * compute slices)? The instances' profiles do not change in a re-layout, so this holds for
 * every arrangement of them. */
static bool can_add_one(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                        size_t n, const struct gv_mig_gi_profile *p)
{
        uint64_t compute = 0;
        size_t count = 0;

        for (size_t i = 0; i < n; i++) {
                compute += inst[i].profile->slices;
                if (inst[i].profile->id == p->id)
                        count++;
        }
        return n < g->max_instances && count < p->instances &&
               compute + p->slices <= g->compute_slices;
}

static bool has_free_placement(const struct gv_mig_geometry *g, const struct gv_mig_gi_profile *p,
                               uint32_t occupied)
{
        for (size_t j = 0; j < p->n_placements; j++) {
                const struct gv_mig_placement *pl = &p->placements[j];
                if (placement_inside(g, pl, p) && !(gv_mig_placement_mask(pl) & occupied))
                        return true;
        }
        return false;
}

/* The state of a layout given as its occupied mask; can_add per geometry profile. */
static void state_of_mask(const struct gv_mig_geometry *g, const bool *can_add, uint32_t occupied,
                          struct gv_relayout_state *ret)
{
        struct gv_relayout_state s = { 0 };
        uint32_t run = 0;

        for (uint32_t k = 0; k < g->memory_slices && k < 32; k++) {
                if (occupied & (UINT32_C(1) << k)) {
                        run = 0;
                        continue;
                }
                s.free_slices++;
                run++;
                s.largest_run = MAX(s.largest_run, run);
        }
        for (size_t k = 0; k < g->n_profiles; k++) {
                const struct gv_mig_gi_profile *p = &g->profiles[k];
                if (can_add[k] && profile_rank(p) > profile_rank(s.largest) &&
                    has_free_placement(g, p, occupied))
                        s.largest = p;
        }
        *ret = s;
}

static uint32_t occupied_of(const struct gv_relayout_instance *inst, size_t n)
{
        uint32_t m = 0;
        for (size_t i = 0; i < n; i++)
                m |= slice_mask(inst[i].start, inst[i].profile->memory_slices);
        return m;
}

void gv_relayout_state(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                       size_t n, struct gv_relayout_state *ret)
{
        struct gv_relayout_state s = { 0 };
        uint32_t occupied = occupied_of(inst, n), run = 0;

        for (uint32_t k = 0; k < g->memory_slices && k < 32; k++) {
                if (occupied & (UINT32_C(1) << k)) {
                        run = 0;
                        continue;
                }
                s.free_slices++;
                run++;
                s.largest_run = MAX(s.largest_run, run);
        }
        for (size_t k = 0; k < g->n_profiles; k++) {
                const struct gv_mig_gi_profile *p = &g->profiles[k];
                if (profile_rank(p) > profile_rank(s.largest) && can_add_one(g, inst, n, p) &&
                    has_free_placement(g, p, occupied))
                        s.largest = p;
        }
        *ret = s;
}

/* ---- the search ---- */

struct search {
        const struct gv_mig_geometry *g;
        const struct gv_relayout_instance *inst;
        size_t n;
        bool can_add[GV_RELAYOUT_MAX_PROFILES];
        uint32_t ord[GV_RELAYOUT_MAX_INSTANCES]; /* instance indices, largest first */
        uint32_t cur[GV_RELAYOUT_MAX_INSTANCES]; /* start per position of ord */
        uint64_t nodes;
        /* the best arrangement so far */
        bool have_best;
        uint64_t best_rank;
        uint32_t best_run, best_live, best_moves;
        struct gv_relayout_state best_state;
        uint32_t best_to[GV_RELAYOUT_MAX_INSTANCES]; /* per instance index */
};

/* Largest first; equal profiles together, in slice order. */
static int cmp_inst(const struct gv_relayout_instance *x, const struct gv_relayout_instance *y)
{
        if (x->profile->memory_slices != y->profile->memory_slices)
                return x->profile->memory_slices > y->profile->memory_slices ? -1 : 1;
        if (x->profile->slices != y->profile->slices)
                return x->profile->slices > y->profile->slices ? -1 : 1;
        if (x->profile->id != y->profile->id)
                return x->profile->id < y->profile->id ? -1 : 1;
        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        return 0;
}

static bool contains(const uint32_t *set, size_t n, uint32_t v)
{
        for (size_t i = 0; i < n; i++)
                if (set[i] == v)
                        return true;
        return false;
}

/* Which instance of a group of equal profiles goes to which new start: those whose start is
 * among the new starts stay (as many as can), the others take the remaining starts in slice
 * order. Equal profiles are interchangeable, so this is the fewest moves for the group. */
static void assign(struct search *s, uint32_t *to, uint32_t *ret_live, uint32_t *ret_moves)
{
        uint32_t live = 0, moves = 0;

        for (size_t a = 0; a < s->n;) {
                size_t b = a;
                uint32_t starts[GV_RELAYOUT_MAX_INSTANCES], targets[GV_RELAYOUT_MAX_INSTANCES];
                while (b < s->n && s->inst[s->ord[b]].profile->id == s->inst[s->ord[a]].profile->id)
                        b++;
                size_t k = b - a, n_left = 0;
                for (size_t i = 0; i < k; i++)
                        starts[i] = s->inst[s->ord[a + i]].start;
                for (size_t i = 0; i < k; i++)
                        if (!contains(starts, k, s->cur[a + i]))
                                targets[n_left++] = s->cur[a + i]; /* increasing: cur is */
                size_t t = 0;
                for (size_t i = 0; i < k; i++) {
                        uint32_t idx = s->ord[a + i];
                        if (contains(s->cur + a, k, starts[i])) {
                                to[idx] = starts[i];
                                continue;
                        }
                        to[idx] = targets[t++];
                        moves++;
                        if (s->inst[idx].live)
                                live++;
                }
                a = b;
        }
        *ret_live = live;
        *ret_moves = moves;
}

static void leaf(struct search *s, uint32_t occupied)
{
        struct gv_relayout_state st;
        uint32_t to[GV_RELAYOUT_MAX_INSTANCES], live, moves;
        uint64_t rank;

        state_of_mask(s->g, s->can_add, occupied, &st);
        rank = profile_rank(st.largest);
        if (s->have_best) {
                if (rank != s->best_rank) {
                        if (rank < s->best_rank)
                                return;
                } else if (st.largest_run != s->best_run) {
                        if (st.largest_run < s->best_run)
                                return;
                } else {
                        assign(s, to, &live, &moves);
                        if (live > s->best_live || (live == s->best_live && moves >= s->best_moves))
                                return;
                        goto keep;
                }
        }
        assign(s, to, &live, &moves);
keep:
        s->have_best = true;
        s->best_rank = rank;
        s->best_run = st.largest_run;
        s->best_live = live;
        s->best_moves = moves;
        s->best_state = st;
        memcpy(s->best_to, to, s->n * sizeof(uint32_t));
}

static void search(struct search *s, size_t i, uint32_t occupied)
{
        if (s->nodes++ > RELAYOUT_NODE_BUDGET && s->have_best)
                return;
        if (i == s->n) {
                leaf(s, occupied);
                return;
        }
        const struct gv_mig_gi_profile *p = s->inst[s->ord[i]].profile;
        bool same_as_prev = i > 0 && s->inst[s->ord[i - 1]].profile->id == p->id;
        for (size_t k = 0; k < p->n_placements; k++) {
                const struct gv_mig_placement *pl = &p->placements[k];
                uint32_t m = gv_mig_placement_mask(pl);
                if (!placement_inside(s->g, pl, p) || (m & occupied))
                        continue;
                if (same_as_prev && pl->start <= s->cur[i - 1])
                        continue;
                s->cur[i] = pl->start;
                search(s, i + 1, occupied | m);
        }
}

/* The order to carry the moves out in: a move whose target slices are free goes next; when
 * none is, the first waiting instance is parked elsewhere (its slices freed) and lands later. */
static void sequence(const struct gv_relayout_instance *inst, size_t n, const uint32_t *to,
                     struct gv_relayout_plan *p)
{
        uint32_t pending[GV_RELAYOUT_MAX_INSTANCES], n_pending = 0, step = 0;
        bool parked[GV_RELAYOUT_MAX_INSTANCES] = { false };
        uint32_t park_before[GV_RELAYOUT_MAX_INSTANCES] = { 0 };
        uint32_t occupied = occupied_of(inst, n);

        for (uint32_t i = 0; i < n; i++)
                if (to[i] != inst[i].start)
                        pending[n_pending++] = i;
        p->n_moves = 0;
        p->n_live = 0;
        while (n_pending > 0) {
                bool landed = false;
                for (uint32_t k = 0; k < n_pending && !landed; k++) {
                        uint32_t i = pending[k], size = inst[i].profile->memory_slices;
                        uint32_t own = parked[i] ? 0 : slice_mask(inst[i].start, size);
                        uint32_t target = slice_mask(to[i], size);
                        if (target & (occupied & ~own))
                                continue;
                        occupied = (occupied & ~own) | target;
                        p->moves[p->n_moves++] = (struct gv_relayout_move){
                                .index = i, .from = inst[i].start, .to = to[i],
                                .step = ++step, .direct = !parked[i],
                                .park_before = park_before[i],
                        };
                        if (inst[i].live)
                                p->n_live++;
                        memmove(&pending[k], &pending[k + 1],
                                (n_pending - k - 1) * sizeof(uint32_t));
                        n_pending--;
                        landed = true;
                }
                if (landed)
                        continue;
                for (uint32_t k = 0; k < n_pending; k++) {
                        uint32_t i = pending[k];
                        if (parked[i])
                                continue;
                        parked[i] = true;
                        park_before[i] = step + 1;
                        occupied &= ~slice_mask(inst[i].start, inst[i].profile->memory_slices);
                        break;
                }
        }
}

int gv_relayout_plan(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                     size_t n, struct gv_relayout_plan *ret, struct gv_error **err)
{
        _cleanup_free_ struct gv_mig_instance *mi = NULL;
        struct gv_relayout_plan p = { .verdict = GV_RELAYOUT_COMPACT };
        struct search *s;
        int r;

        if (n > GV_RELAYOUT_MAX_INSTANCES || g->n_profiles > GV_RELAYOUT_MAX_PROFILES)
                return gv_error_set(err, E2BIG,
                                    "%zu GPU instances and %zu profiles given; the re-layout "
                                    "planner takes at most %u and %u",
                                    n, g->n_profiles, GV_RELAYOUT_MAX_INSTANCES,
                                    GV_RELAYOUT_MAX_PROFILES);
        if (g->memory_slices == 0 || g->memory_slices > 32)
                return gv_error_set(err, EINVAL,
                                    "the GPU reports %u memory slices; MIG geometry handles 1 to "
                                    "32",
                                    g->memory_slices);
        mi = xnew0(struct gv_mig_instance, n ? n : 1);
        for (size_t i = 0; i < n; i++) {
                if (!inst[i].profile || profile_index(g, inst[i].profile) < 0)
                        return gv_error_set(err, EINVAL,
                                            "GPU instance %zu (at slice %u) has a profile that "
                                            "is not one of the GPU's",
                                            i, inst[i].start);
                mi[i] = (struct gv_mig_instance){
                        .profile = inst[i].profile,
                        .placement = { .start = inst[i].start,
                                       .size = inst[i].profile->memory_slices },
                };
        }
        r = gv_mig_layout_check(g, mi, n, err);
        if (r < 0)
                return r;

        p.n_instances = (uint32_t)n;
        for (size_t i = 0; i < n; i++)
                p.compute_used += inst[i].profile->slices;
        gv_relayout_state(g, inst, n, &p.before);
        p.after = p.before;
        for (size_t i = 0; i < n; i++)
                p.to[i] = inst[i].start;

        if (n == 0)
                p.verdict = GV_RELAYOUT_EMPTY;
        else if (p.before.free_slices == 0)
                p.verdict = GV_RELAYOUT_FULL;
        if (p.verdict != GV_RELAYOUT_COMPACT) {
                *ret = p;
                return 0;
        }

        s = xnew0(struct search, 1);
        s->g = g;
        s->inst = inst;
        s->n = n;
        for (size_t k = 0; k < g->n_profiles; k++)
                s->can_add[k] = can_add_one(g, inst, n, &g->profiles[k]);
        for (uint32_t i = 0; i < n; i++) { /* insertion sort: n is small, and no globals */
                uint32_t k = i;
                while (k > 0 && cmp_inst(&inst[i], &inst[s->ord[k - 1]]) < 0) {
                        s->ord[k] = s->ord[k - 1];
                        k--;
                }
                s->ord[k] = i;
        }
        search(s, 0, 0);

        if (s->have_best && s->best_rank > profile_rank(p.before.largest)) {
                p.verdict = GV_RELAYOUT_PLAN;
                p.after = s->best_state;
                memcpy(p.to, s->best_to, n * sizeof(uint32_t));
                sequence(inst, n, p.to, &p);
        } else {
                bool any = false;
                for (size_t k = 0; k < g->n_profiles; k++) {
                        const struct gv_mig_gi_profile *q = &g->profiles[k];
                        bool fits_somewhere = false;
                        if (!s->can_add[k])
                                continue;
                        any = true;
                        for (size_t j = 0; j < q->n_placements; j++)
                                if (placement_inside(g, &q->placements[j], q))
                                        fits_somewhere = true;
                        if (fits_somewhere && q->memory_slices <= p.before.free_slices &&
                            profile_rank(q) > profile_rank(p.wanted))
                                p.wanted = q;
                }
                if (!any)
                        p.verdict = GV_RELAYOUT_LIMITS;
                else if (profile_rank(p.wanted) > profile_rank(p.before.largest))
                        p.verdict = GV_RELAYOUT_GEOMETRY;
                else
                        p.wanted = NULL;
        }
        free(s);
        *ret = p;
        return 0;
}

/* ---- words ---- */

static const char *pname(const struct gv_mig_gi_profile *p)
{
        return p ? (p->name ? p->name : "(unnamed profile)") : "nothing";
}

char *gv_relayout_explain(const struct gv_mig_geometry *g, const struct gv_relayout_plan *p)
{
        switch (p->verdict) {
        case GV_RELAYOUT_PLAN:
                return xasprintf("moving %u GPU instance%s (%u VM%s live-migrated) makes room for "
                                 "%s (largest now: %s; free slices in one range: %u, then %u)",
                                 p->n_moves, p->n_moves == 1 ? "" : "s", p->n_live,
                                 p->n_live == 1 ? "" : "s", pname(p->after.largest),
                                 pname(p->before.largest), p->before.largest_run,
                                 p->after.largest_run);
        case GV_RELAYOUT_EMPTY:
                return xstrdup("no GPU instances: the whole GPU is free");
        case GV_RELAYOUT_FULL:
                return xstrdup("every memory slice is taken: nothing to gain by moving instances");
        case GV_RELAYOUT_LIMITS:
                if (p->n_instances >= g->max_instances)
                        return xasprintf("%u free memory slice%s, but the GPU holds its maximum "
                                         "of %u instances: moving instances cannot help",
                                         p->before.free_slices,
                                         p->before.free_slices == 1 ? "" : "s",
                                         g->max_instances);
                return xasprintf("%u free memory slice%s, but %u of the GPU's %u compute slices "
                                 "are in use and no profile fits in the rest (or its instance "
                                 "count is reached): moving instances cannot help",
                                 p->before.free_slices, p->before.free_slices == 1 ? "" : "s",
                                 p->compute_used, g->compute_slices);
        case GV_RELAYOUT_GEOMETRY: {
                _cleanup_strv_free_ char **places = NULL;
                _cleanup_free_ char *pl = NULL;
                for (size_t j = 0; p->wanted && j < p->wanted->n_placements; j++) {
                        char b[32];
                        strv_extend(&places, gv_mig_placement_format(&p->wanted->placements[j], b,
                                                                      sizeof b));
                }
                pl = places ? strv_join(places, ", ") : xstrdup("none");
                return xasprintf("%u free memory slices would hold %s, but no arrangement of "
                                 "these instances frees one of its placements (slices %s); "
                                 "largest now: %s",
                                 p->before.free_slices, pname(p->wanted), pl,
                                 pname(p->before.largest));
        }
        case GV_RELAYOUT_COMPACT:
        default:
                return xasprintf("already compact: no arrangement of these instances leaves room "
                                 "for a larger profile than %s",
                                 pname(p->before.largest));
        }
}

/* ---- the fragmentation measure ---- */

double gv_relayout_frag(const struct gv_mig_geometry *g, const struct gv_relayout_instance *inst,
                        size_t n, const double *weights)
{
        uint32_t occupied = occupied_of(inst, n), free_slices = 0;
        double sum_w = 0, f = 0;
        bool equal = true;

        if (g->memory_slices == 0 || g->memory_slices > 32 || g->n_profiles == 0)
                return 0;
        free_slices = (uint32_t)__builtin_popcount(gpu_mask(g) & ~occupied);
        for (size_t k = 0; weights && k < g->n_profiles; k++)
                if (weights[k] > 0)
                        equal = false;
        for (size_t k = 0; k < g->n_profiles; k++) {
                const struct gv_mig_gi_profile *p = &g->profiles[k];
                double w = equal ? (p->media_extensions ? 0 : 1)
                                 : (weights[k] > 0 ? weights[k] : 0);
                if (w <= 0)
                        continue;
                sum_w += w;
                /* FGD: the free resource is fragment for a shape that cannot be placed. */
                if (!can_add_one(g, inst, n, p) || !has_free_placement(g, p, occupied))
                        f += w * (double)free_slices;
        }
        if (sum_w <= 0)
                return 0;
        return f / (sum_w * (double)g->memory_slices);
}
