/* SPDX-License-Identifier: MIT */
/*
 * license.c — vGPU licence pools and the seats VMs hold (docs/licensing.md; facts in
 * ../shared/reference/vgpu.md §6 and §12, src/catalog/licensing.h).
 *
 * A pool is a store document (GV_STORE_LICENSE). Seats are never booked and returned: who holds
 * them follows from the VMs' documents every time it is asked, so a stop, a crash seen by the
 * poller, a delete or a move changes the count by changing the VM, and nothing can leak.
 *
 *   holds seats   a VM in a state that runs or may run a guest: pending, starting, running,
 *                 stopping, unknown (its host is down or a move is unresolved: it may run);
 *   needs         per GPU slice of its placement: vgpu and mig-vgpu → the editions of the
 *                 type's series (preferred first); whole (pass-through) → pools marked
 *                 "passthrough"; mig (a bare MIG instance) → pools marked "mig";
 *   order         VMs by the time they took their seats ("seat_since", else created_at), then
 *                 name: earlier holders keep theirs, the newest is the one that overflows;
 *   assignment    the first candidate pool with room (editions in preference order, pools by
 *                 name); none with room → the first candidate, marked over, whose policy
 *                 decides (enforce refuses, warn admits); no candidate pool at all →
 *                 unlicensed (listed, never refused: gpuvirt cannot know of licences it was
 *                 not told about);
 *   counting      "vm": one seat per VM (concurrent user, NV-PPL); "gpu": one seat per
 *                 physical GPU, shared by the VMs on it (NVIDIA AI Enterprise per GPU).
 *
 * Admission (gv_ctl_license_admit) runs under the controller's `mu`, like every decision, with
 * the VM's state written before `mu` is let go, so two starts cannot both take the last seat.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "controller/metrics.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define SEATS_MAX 1000000
#define PRICE_MAX 1e9

static const char *const pool_keys[] = { "edition",  "seats",   "policy",
                                         "counting", "passthrough", "mig",
                                         "term",     "price_per_seat_year", "currency",
                                         NULL };

/* States whose VM holds its seats (docs/api.md "vm"). */
static const char *const holding_states[] = { "pending", "starting", "running", "stopping",
                                              "unknown", NULL };

static const char *jstr(const json_t *o, const char *k)
{
        return json_string_value(json_object_get(o, k));
}

/* ---- pools ---- */

static bool date_is_valid(const char *s)
{
        unsigned y, m, d;
        char tail;
        if (!s || strlen(s) != 10 || sscanf(s, "%4u-%2u-%2u%c", &y, &m, &d, &tail) != 3 ||
            s[4] != '-' || s[7] != '-')
                return false;
        static const unsigned days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        if (y < 2000 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
                return false;
        return m != 2 || d < 29 || (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0));
}

static void today(char buf[11])
{
        time_t t = (time_t)(gv_ctl_now_ms() / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 11, "%Y-%m-%d", &tm);
}

/* A strict pool body → the stored document (name added). */
static int pool_parse(const char *name, const json_t *in, json_t **ret, struct gv_error **err)
{
        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "'%s' is not a valid pool name: 1-63 of a-z, "
                                    "0-9, '.', '_' and '-', starting with a letter or digit.",
                                    name);
        if (!json_is_object(in))
                return gv_error_set(err, EINVAL, "A licence pool is a JSON object "
                                    "(docs/licensing.md).");
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)in, k, v)
                if (!strv_contains((char **)pool_keys, k)) {
                        _cleanup_free_ char *valid = strv_join((char **)pool_keys, ", ");
                        return gv_error_set(err, EINVAL, "licence pool: unknown member '%s'; "
                                            "valid: %s.", k, valid);
                }

        const char *ed = jstr(in, "edition");
        enum gv_license_edition e = gv_license_edition_from_string(ed);
        if (e < 0) {
                _cleanup_free_ char *names = gv_license_edition_names();
                return gv_error_set(err, EINVAL, "edition: '%s' is not a licence edition; use "
                                    "one of %s (../shared/reference/vgpu.md §6).",
                                    ed ? ed : "(missing)", names);
        }
        const json_t *sj = json_object_get(in, "seats");
        if (!json_is_integer(sj) || json_integer_value(sj) < 0 ||
            json_integer_value(sj) > SEATS_MAX)
                return gv_error_set(err, EINVAL, "seats: a whole number from 0 to %d (how many "
                                    "concurrent VMs, or GPUs with counting \"gpu\", the pool "
                                    "licenses).", SEATS_MAX);
        const char *policy = jstr(in, "policy") ?: "enforce";
        if (json_object_get(in, "policy") && !jstr(in, "policy"))
                policy = "";
        if (strcmp(policy, "enforce") != 0 && strcmp(policy, "warn") != 0)
                return gv_error_set(err, EINVAL, "policy: use \"enforce\" (a start that would "
                                    "exceed the seats is refused) or \"warn\" (it starts, and "
                                    "the overflow is reported).");
        const char *cs = json_object_get(in, "counting") ? jstr(in, "counting") : "vm";
        enum gv_license_counting counting = gv_license_counting_from_string(cs);
        if (counting < 0)
                return gv_error_set(err, EINVAL, "counting: use \"vm\" (one seat per running "
                                    "VM, concurrent-user licensing) or \"gpu\" (one seat per "
                                    "physical GPU in use, as NVIDIA AI Enterprise is sold).");
        bool pt = false, mig = false;
        int r = gv_json_opt_bool(in, "passthrough", &pt, err);
        if (r >= 0)
                r = gv_json_opt_bool(in, "mig", &mig, err);
        if (r < 0)
                return r;
        if (pt && !gv_license_edition_covers_passthrough(e))
                return gv_error_set(err, EINVAL, "passthrough: %s does not license pass-through "
                                    "GPUs (vWS or vApps do for graphics, vCS for compute; "
                                    "../shared/reference/vgpu.md §6).",
                                    gv_license_edition_title(e));

        json_t *term = json_object_get(in, "term");
        if (term && !json_is_null(term)) {
                const char *a = jstr(term, "start"), *b = jstr(term, "end");
                if (!json_is_object(term) || json_object_size(term) != 2 || !date_is_valid(a) ||
                    !date_is_valid(b))
                        return gv_error_set(err, EINVAL, "term: {\"start\": \"YYYY-MM-DD\", "
                                            "\"end\": \"YYYY-MM-DD\"} (both real dates, nothing "
                                            "else), or null for no term.");
                if (strcmp(a, b) > 0)
                        return gv_error_set(err, EINVAL, "term: it ends (%s) before it starts "
                                            "(%s).", b, a);
        }
        json_t *price = json_object_get(in, "price_per_seat_year");
        if (price && !json_is_null(price) &&
            (!json_is_number(price) || json_number_value(price) < 0 ||
             json_number_value(price) > PRICE_MAX || isnan(json_number_value(price))))
                return gv_error_set(err, EINVAL, "price_per_seat_year: a number from 0 to %.0f, "
                                    "or null when you do not want costs computed (gpuvirt "
                                    "invents no price).", PRICE_MAX);
        const char *cur = json_object_get(in, "currency") ? jstr(in, "currency") : "USD";
        if (!cur || strlen(cur) != 3 || cur[0] < 'A' || cur[0] > 'Z' || cur[1] < 'A' ||
            cur[1] > 'Z' || cur[2] < 'A' || cur[2] > 'Z')
                return gv_error_set(err, EINVAL, "currency: an ISO 4217 code of three capital "
                                    "letters, such as \"USD\" or \"EUR\".");

        *ret = json_pack("{s:s, s:s, s:I, s:s, s:s, s:b, s:b, s:O, s:O, s:s}", "name", name,
                         "edition", gv_license_edition_to_string(e), "seats",
                         json_integer_value(sj), "policy", policy, "counting",
                         gv_license_counting_to_string(counting), "passthrough", pt, "mig", mig,
                         "term", term ?: json_null(), "price_per_seat_year",
                         price ?: json_null(), "currency", cur);
        return 0;
}

/* ---- the seat computation ---- */

struct pool {
        const json_t *doc;
        const char *name;
        enum gv_license_edition edition;
        int64_t seats;            /* 0 when the term is not running */
        bool enforce, by_gpu, passthrough, mig;
        const char *inactive;     /* "expired on ...", "starts on ...", or NULL */
        double price;             /* per seat per year; < 0: none */
        const char *currency;
        int64_t used;
        json_t *gpus;             /* counting gpu: the GPUs holding a seat, {"host/pci": n VMs} */
        json_t *holders;
};

struct need {
        bool any;                 /* the VM needs a licence at all */
        struct pool *cand[64];    /* candidate pools, preferred first */
        size_t n_cand;
        char **gpus;              /* its GPUs "host/pci" (for counting gpu) */
        char **needs;             /* the editions or pool flags it needs, for unlicensed */
};

static void need_done(struct need *n)
{
        strv_free(n->gpus);
        strv_free(n->needs);
}

static void add_cand(struct need *n, struct pool *p)
{
        for (size_t i = 0; i < n->n_cand; i++)
                if (n->cand[i] == p)
                        return;
        if (n->n_cand < ELEMENTSOF(n->cand))
                n->cand[n->n_cand++] = p;
}

/* The series of a vGPU type by its name, from the catalog; remembered in cache (a JSON
 * object: name → series) for the rest of one computation. */
static enum gv_vgpu_series type_series(const struct gv_catalog *cat, json_t *cache,
                                       const char *type)
{
        if (!type)
                return _GV_VGPU_SERIES_INVALID;
        const json_t *known = json_object_get(cache, type);
        if (known)
                return (enum gv_vgpu_series)json_integer_value(known);
        enum gv_vgpu_series s = _GV_VGPU_SERIES_INVALID;
        for (size_t m = 0; cat && m < cat->n_models && s < 0; m++) {
                const struct gv_vgpu_type *t = gv_gpu_model_find_vgpu_type(&cat->models[m], type);
                if (t)
                        s = t->series;
        }
        json_object_set_new(cache, type, json_integer(s));
        return s;
}

/* What a VM (with this placement) needs, as candidate pools. */
static void vm_need(const struct gv_catalog *cat, json_t *series, struct pool *pools,
                    size_t n_pools, const json_t *vm, const json_t *placement, struct need *ret)
{
        const json_t *s;
        size_t i;
        *ret = (struct need){ 0 };
        const char *host = jstr(placement, "host") ?: jstr(vm, "host") ?: "?";
        json_array_foreach(json_object_get(placement, "gpus"), i, s) {
                const char *alloc = jstr(s, "alloc") ?: "";
                strv_consume(&ret->gpus, xasprintf("%s/%s", host, jstr(s, "pci") ?: "?"));
                if (!strcmp(alloc, "vgpu") || !strcmp(alloc, "mig-vgpu")) {
                        enum gv_license_edition eds[_GV_LICENSE_EDITION_MAX];
                        size_t ne = gv_license_editions_for_series(
                                type_series(cat, series, jstr(s, "name")), eds);
                        ret->any = true;
                        for (size_t e = 0; e < ne; e++) {
                                const char *en = gv_license_edition_to_string(eds[e]);
                                if (!strv_contains(ret->needs, en))
                                        strv_extend(&ret->needs, en);
                                for (size_t p = 0; p < n_pools; p++)
                                        if (pools[p].edition == eds[e])
                                                add_cand(ret, &pools[p]);
                        }
                        if (!ne && !strv_contains(ret->needs, "unknown-type"))
                                strv_extend(&ret->needs, "unknown-type");
                } else if (!strcmp(alloc, "whole") || !strcmp(alloc, "mig")) {
                        bool pt = !strcmp(alloc, "whole");
                        for (size_t p = 0; p < n_pools; p++)
                                if (pt ? pools[p].passthrough : pools[p].mig) {
                                        ret->any = true;
                                        add_cand(ret, &pools[p]);
                                }
                }
        }
}

bool gv_ctl_license_state_holds(const char *state)
{
        return state && strv_contains((char **)holding_states, state);
}

/* When a VM took its seats, in ms: "seat_since", else its creation. */
static int64_t seat_since(const json_t *vm)
{
        const json_t *s = json_object_get(vm, "seat_since");
        if (json_is_integer(s))
                return json_integer_value(s);
        return json_integer_value(json_object_get(vm, "created_at")) * 1000;
}

struct usage {
        struct gv_store_obj *objs; /* the pools' documents */
        size_t n_objs;
        struct pool *pools;
        size_t n_pools;
        struct gv_store_obj *vms;
        size_t n_vms;
        json_t *unlicensed;
        json_t *series;            /* vGPU type name → series, looked up once */
        bool detail;               /* holders and unlicensed VMs listed (views, messages) */
        /* the VM being admitted, when there is one: where it went */
        struct pool *extra_pool;
        bool extra_over, extra_any;
        int64_t extra_seats;
};

static void usage_done(struct usage *u)
{
        for (size_t i = 0; i < u->n_pools; i++) {
                json_decref(u->pools[i].gpus);
                json_decref(u->pools[i].holders);
        }
        free(u->pools);
        gv_store_objs_free(u->objs, u->n_objs);
        gv_store_objs_free(u->vms, u->n_vms);
        json_decref(u->unlicensed);
        json_decref(u->series);
        *u = (struct usage){ 0 };
}

static int by_key(const void *a, const void *b)
{
        return strcmp(((const struct gv_store_obj *)a)->key, ((const struct gv_store_obj *)b)->key);
}

struct order {
        int64_t since;
        const struct gv_store_obj *vm;
};

static int by_since(const void *a, const void *b)
{
        const struct order *x = a, *y = b;
        if (x->since != y->since)
                return x->since < y->since ? -1 : 1;
        return strcmp(x->vm->key, y->vm->key);
}

static void pool_init(struct pool *p, const json_t *doc, const char *now)
{
        const json_t *term = json_object_get(doc, "term");
        const json_t *price = json_object_get(doc, "price_per_seat_year");
        *p = (struct pool){
                .doc = doc,
                .name = jstr(doc, "name") ?: "?",
                .edition = gv_license_edition_from_string(jstr(doc, "edition")),
                .seats = json_integer_value(json_object_get(doc, "seats")),
                .enforce = strcmp(jstr(doc, "policy") ?: "enforce", "warn") != 0,
                .by_gpu = strcmp(jstr(doc, "counting") ?: "vm", "gpu") == 0,
                .passthrough = json_is_true(json_object_get(doc, "passthrough")),
                .mig = json_is_true(json_object_get(doc, "mig")),
                .price = json_is_number(price) ? json_number_value(price) : -1,
                .currency = jstr(doc, "currency") ?: "USD",
                .gpus = json_object(),
                .holders = json_array(),
        };
        if (json_is_object(term)) {
                if (strcmp(now, jstr(term, "end") ?: "9999") > 0)
                        p->inactive = "expired";
                else if (strcmp(now, jstr(term, "start") ?: "0000") < 0)
                        p->inactive = "not started";
        }
}

/* Seats the VM would take in p now: 1 per VM, or its GPUs p does not count yet. */
static int64_t seats_needed(const struct pool *p, const struct need *n)
{
        if (!p->by_gpu)
                return 1;
        int64_t k = 0;
        for (size_t i = 0; n->gpus && n->gpus[i]; i++) {
                bool dup = false;
                for (size_t j = 0; j < i && !dup; j++)
                        dup = !strcmp(n->gpus[j], n->gpus[i]);
                if (!dup && !json_object_get(p->gpus, n->gpus[i]))
                        k++;
        }
        return k;
}

static bool has_room(const struct pool *p, int64_t k)
{
        return !p->inactive && p->used + k <= p->seats;
}

static void take(struct pool *p, const struct need *n, const json_t *vm, const char *name,
                 int64_t k, bool over, bool detail)
{
        p->used += k;
        /* counting gpu: how many holders share each GPU (seats_needed, costs) */
        for (size_t i = 0; p->by_gpu && n->gpus && n->gpus[i]; i++)
                json_object_set_new(p->gpus, n->gpus[i],
                                    json_integer(json_integer_value(
                                                         json_object_get(p->gpus, n->gpus[i])) +
                                                 1));
        if (!detail) /* a decision needs the counts only */
                return;
        json_t *gpus = json_array();
        for (size_t i = 0; n->gpus && n->gpus[i]; i++)
                json_array_append_new(gpus, json_string(n->gpus[i]));
        const json_t *spec = json_object_get(vm, "spec");
        json_array_append_new(p->holders,
                              json_pack("{s:s, s:s, s:s?, s:o, s:s?, s:I, s:I, s:b}", "vm", name,
                                        "tenant", jstr(spec, "tenant") ?: "default", "host",
                                        jstr(vm, "host"), "gpus", gpus, "state",
                                        jstr(vm, "state"), "since", (json_int_t)seat_since(vm),
                                        "seats", (json_int_t)k, "over", over));
}

/* Assign one VM: the first candidate with room, else the first candidate, over. Returns the
 * pool (NULL: it needs none, or none exists). */
static struct pool *assign(struct usage *u, const struct gv_catalog *cat, const json_t *vm,
                           const char *name, bool *ret_over, bool *ret_any, int64_t *ret_k)
{
        struct need n;
        vm_need(cat, u->series, u->pools, u->n_pools, vm, json_object_get(vm, "placement"), &n);
        struct pool *got = NULL;
        bool over = false;
        for (size_t i = 0; i < n.n_cand && !got; i++)
                if (has_room(n.cand[i], seats_needed(n.cand[i], &n)))
                        got = n.cand[i];
        /* None has room: it goes over in its most preferred pool, which decides (an
         * enforcing pool of the edition it needs is not bypassed through another's "warn"). */
        if (!got && n.n_cand)
                got = n.cand[0], over = true;
        int64_t k = got ? seats_needed(got, &n) : 0;
        if (got)
                take(got, &n, vm, name, k, over, u->detail);
        else if (n.needs && u->detail) {
                json_t *needs = json_array();
                for (size_t i = 0; n.needs[i]; i++)
                        json_array_append_new(needs, json_string(n.needs[i]));
                json_array_append_new(u->unlicensed,
                                      json_pack("{s:s, s:s, s:s?, s:s?, s:o}", "vm", name,
                                                "tenant",
                                                jstr(json_object_get(vm, "spec"), "tenant")
                                                        ?: "default",
                                                "host", jstr(vm, "host"), "state",
                                                jstr(vm, "state"), "needs", needs));
        }
        *ret_over = over;
        *ret_any = n.any || n.needs;
        *ret_k = k;
        need_done(&n);
        return got;
}

/* Who holds what now; with `extra` (a VM about to take seats, not yet holding), where it would
 * go. `skip`: a VM left out (the one being admitted, in whatever state it is stored). */
static int usage_compute(struct gv_controller *c, const json_t *extra, const char *skip,
                         bool detail, struct usage *ret, struct gv_error **err)
{
        struct usage u = { .unlicensed = json_array(), .series = json_object(),
                           .detail = detail };
        char now[11];
        today(now);
        int r = gv_store_list(c->store, GV_STORE_LICENSE, &u.objs, &u.n_objs, err);
        if (r >= 0)
                r = gv_store_list(c->store, GV_STORE_VM, &u.vms, &u.n_vms, err);
        if (r < 0) {
                usage_done(&u);
                return gv_error_wrap(err, r, "Cannot read the licence pools and VMs");
        }
        if (u.n_objs) /* qsort takes no NULL, even for 0 elements */
                qsort(u.objs, u.n_objs, sizeof(*u.objs), by_key);
        u.pools = xnew0(struct pool, u.n_objs ?: 1);
        for (size_t i = 0; i < u.n_objs; i++)
                pool_init(&u.pools[u.n_pools++], u.objs[i].doc, now);
        /* The holders in seat order, the key read once per VM */
        struct order *ord = xnew0(struct order, u.n_vms ?: 1);
        size_t n_ord = 0;
        for (size_t i = 0; i < u.n_vms; i++)
                if ((!skip || strcmp(u.vms[i].key, skip) != 0) &&
                    gv_ctl_license_state_holds(jstr(u.vms[i].doc, "state")))
                        ord[n_ord++] = (struct order){ .since = seat_since(u.vms[i].doc),
                                                       .vm = &u.vms[i] };
        qsort(ord, n_ord, sizeof(*ord), by_since);
        for (size_t i = 0; i < n_ord; i++) {
                bool over, any;
                int64_t k;
                (void)assign(&u, c->catalog, ord[i].vm->doc, ord[i].vm->key, &over, &any, &k);
        }
        free(ord);
        if (extra)
                u.extra_pool = assign(&u, c->catalog, extra, jstr(extra, "name") ?: "?",
                                      &u.extra_over, &u.extra_any, &u.extra_seats);
        *ret = u;
        return 0;
}

static json_t *history_json(struct gv_controller *c, const char *name);

/* ---- costs and the documents ---- */

static void add_money(json_t *map, const char *key, const char *currency, double v)
{
        json_t *m = json_object_get(map, key);
        if (!m) {
                m = json_object();
                json_object_set_new(map, key, m);
        }
        double had = json_number_value(json_object_get(m, currency));
        json_object_set_new(m, currency, json_real(round((had + v) * 100) / 100));
}

/* Monthly cost of each holder of p (a GPU seat split between the VMs on that GPU), into the
 * holders and the totals. */
static double pool_costs(struct pool *p, json_t *by_tenant, json_t *by_vm)
{
        if (p->price < 0)
                return -1;
        double seat_month = p->price / 12, total = 0;
        json_t *h;
        size_t i;
        json_array_foreach(p->holders, i, h) {
                double cost = 0;
                if (!p->by_gpu) {
                        cost = seat_month * (double)json_integer_value(json_object_get(h, "seats"));
                } else {
                        json_t *g;
                        size_t k;
                        json_array_foreach(json_object_get(h, "gpus"), k, g) {
                                json_int_t sharing = json_integer_value(
                                        json_object_get(p->gpus, json_string_value(g)));
                                cost += seat_month / (double)(sharing > 0 ? sharing : 1);
                        }
                }
                cost = round(cost * 100) / 100;
                json_object_set_new(h, "cost_per_month", json_real(cost));
                add_money(by_tenant, jstr(h, "tenant"), p->currency, cost);
                add_money(by_vm, jstr(h, "vm"), p->currency, cost);
                total += cost;
        }
        return round(p->price / 12 * (double)p->used * 100) / 100;
}

static json_t *pool_view(struct pool *p, double cost)
{
        json_t *v = json_deep_copy(p->doc);
        json_object_set_new(v, "used", json_integer(p->used));
        json_object_set_new(v, "free",
                            json_integer(p->inactive || p->used >= p->seats ? 0
                                                                            : p->seats - p->used));
        json_object_set_new(v, "over", json_integer(p->used > p->seats || (p->inactive && p->used)
                                                            ? (p->inactive ? p->used
                                                                           : p->used - p->seats)
                                                            : 0));
        json_object_set_new(v, "active", json_boolean(!p->inactive));
        json_object_set_new(v, "inactive_reason", p->inactive ? json_string(p->inactive)
                                                              : json_null());
        json_object_set_new(v, "cost_per_month", cost >= 0 ? json_real(cost) : json_null());
        json_object_set_new(v, "holders", json_incref(p->holders));
        return v;
}

static json_t *usage_view(struct usage *u)
{
        json_t *pools = json_array(), *by_tenant = json_object(), *by_vm = json_object();
        json_t *total = json_object();
        for (size_t i = 0; i < u->n_pools; i++) {
                struct pool *p = &u->pools[i];
                double cost = pool_costs(p, by_tenant, by_vm);
                if (cost >= 0) {
                        double had = json_number_value(json_object_get(total, p->currency));
                        json_object_set_new(total, p->currency,
                                            json_real(round((had + cost) * 100) / 100));
                }
                json_array_append_new(pools, pool_view(p, cost));
        }
        return json_pack("{s:o, s:O, s:{s:o, s:o, s:o}}", "pools", pools, "unlicensed",
                         u->unlicensed, "cost", "per_month", total, "by_tenant", by_tenant,
                         "by_vm", by_vm);
}

json_t *gv_controller_licenses(struct gv_controller *c)
{
        struct usage u;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        if (usage_compute(c, NULL, NULL, true, &u, &e) < 0)
                return json_pack("{s:[], s:[], s:n, s:s}", "pools", "unlicensed", "cost",
                                 "error", gv_error_msg(e, -EIO));
        json_t *v = usage_view(&u);
        usage_done(&u);
        return v;
}

int gv_controller_license_pool(struct gv_controller *c, const char *name, json_t **ret,
                               struct gv_error **err)
{
        struct usage u;
        int r = usage_compute(c, NULL, NULL, true, &u, err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *all = usage_view(&u);
        usage_done(&u);
        json_t *p;
        size_t i;
        json_array_foreach(json_object_get(all, "pools"), i, p)
                if (!strcmp(jstr(p, "name") ?: "", name)) {
                        json_object_set_new(p, "history", history_json(c, name));
                        *ret = json_incref(p);
                        return 0;
                }
        return gv_error_set(err, ENOENT, "No licence pool '%s' (gpuvirt license list shows "
                            "them).", name);
}

int gv_controller_license_pool_put(struct gv_controller *c, const char *name,
                                   const json_t *body, json_t **ret, struct gv_error **err)
{
        _cleanup_json_ json_t *doc = NULL;
        int r = pool_parse(name, body, &doc, err);
        if (r < 0)
                return r;
        for (unsigned attempt = 0;; attempt++) {
                struct gv_store_obj old = { 0 };
                r = gv_store_get(c->store, GV_STORE_LICENSE, name, &old, NULL);
                if (r < 0 && r != -ENOENT)
                        return gv_error_set(err, -r, "Cannot read licence pool '%s' from the "
                                            "store.", name);
                struct gv_store_write w = { .op = r == -ENOENT ? GV_STORE_CREATE
                                                                : GV_STORE_UPDATE,
                                            .kind = GV_STORE_LICENSE, .key = name, .doc = doc,
                                            .generation = old.generation };
                bool created = r == -ENOENT;
                gv_store_obj_done(&old);
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_ctl_write_event(c, &w, 1, created ? "license.created" : "license.updated",
                                       name, json_incref(doc), &e);
                if (r >= 0)
                        break;
                if ((r != -ESTALE && r != -EEXIST && r != -ENOENT) || attempt >= 8) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
        }
        return gv_controller_license_pool(c, name, ret, err);
}

int gv_controller_license_pool_delete(struct gv_controller *c, const char *name,
                                      struct gv_error **err)
{
        _cleanup_json_ json_t *view = NULL;
        int r = gv_controller_license_pool(c, name, &view, err);
        if (r < 0)
                return r;
        json_t *holders = json_object_get(view, "holders");
        if (json_array_size(holders)) {
                _cleanup_strv_free_ char **names = NULL;
                json_t *h;
                size_t i;
                json_array_foreach(holders, i, h)
                        strv_extend(&names, jstr(h, "vm") ?: "?");
                _cleanup_free_ char *list = strv_join(names, ", ");
                return gv_error_set(err, EBUSY, "Licence pool '%s' has seats held by %s: stop "
                                    "them, or create another pool of the edition first.", name,
                                    list);
        }
        struct gv_store_obj o = { 0 };
        r = gv_store_get(c->store, GV_STORE_LICENSE, name, &o, NULL);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot read licence pool '%s'.", name);
        struct gv_store_write w = { .op = GV_STORE_DELETE, .kind = GV_STORE_LICENSE, .key = name,
                                    .generation = o.generation };
        gv_store_obj_done(&o);
        return gv_ctl_write_event(c, &w, 1, "license.deleted", name, NULL, err);
}

/* ---- for the advisor and admission ---- */

void gv_ctl_license_quotes(struct gv_controller *c,
                           struct gv_ctl_license_quote ret[_GV_LICENSE_EDITION_MAX])
{
        struct gv_ctl_license_quote q[_GV_LICENSE_EDITION_MAX];
        for (int e = 0; e < _GV_LICENSE_EDITION_MAX; e++)
                q[e] = (struct gv_ctl_license_quote){ .price_per_seat_year = -1,
                                                      .counting = GV_LICENSE_COUNT_VM };
        struct usage u;
        if (usage_compute(c, NULL, NULL, false, &u, NULL) >= 0) {
                for (size_t i = 0; i < u.n_pools; i++) {
                        struct pool *p = &u.pools[i];
                        if (p->edition < 0 || p->edition >= _GV_LICENSE_EDITION_MAX)
                                continue;
                        struct gv_ctl_license_quote *x = &q[p->edition];
                        x->pooled = true;
                        if (!p->inactive && p->used < p->seats)
                                x->seats_free += p->seats - p->used;
                        if (p->price >= 0 && (x->price_per_seat_year < 0 ||
                                              p->price < x->price_per_seat_year)) {
                                x->price_per_seat_year = p->price;
                                snprintf(x->currency, sizeof(x->currency), "%s", p->currency);
                                x->counting = p->by_gpu ? GV_LICENSE_COUNT_GPU
                                                        : GV_LICENSE_COUNT_VM;
                        }
                }
                usage_done(&u);
        }
        memcpy(ret, q, sizeof(q));
}

int gv_ctl_license_admit(struct gv_controller *c, const json_t *vm, struct gv_error **err)
{
        struct usage u;
        const char *name = jstr(vm, "name") ?: "?";
        int r = usage_compute(c, vm, name, false, &u, err);
        if (r < 0)
                return r;
        struct pool *p = u.extra_pool;
        if (!p || !u.extra_over) {
                usage_done(&u);
                return 0;
        }
        /* Over: counted again with the holders, to name them (the refusal is the rare case) */
        usage_done(&u);
        r = usage_compute(c, vm, name, true, &u, err);
        if (r < 0)
                return r;
        p = u.extra_pool;
        if (!p || !u.extra_over) { /* a seat came free meanwhile */
                usage_done(&u);
                return 0;
        }
        /* Over: the pools it could use are full (or not running) */
        _cleanup_strv_free_ char **holders = NULL;
        json_t *h;
        size_t i;
        json_array_foreach(p->holders, i, h)
                if (strcmp(jstr(h, "vm") ?: "", name) != 0)
                        strv_extend(&holders, jstr(h, "vm") ?: "?");
        _cleanup_free_ char *list = holders ? strv_join(holders, ", ") : xstrdup("nobody");
        _cleanup_free_ char *term = p->inactive
                                            ? xasprintf(" Its term has %s (%s to %s).",
                                                        !strcmp(p->inactive, "expired")
                                                                ? "ended"
                                                                : "not started",
                                                        jstr(json_object_get(p->doc, "term"),
                                                             "start"),
                                                        jstr(json_object_get(p->doc, "term"),
                                                             "end"))
                                            : xstrdup("");
        if (!p->enforce) {
                gv_ctl_event(c, "license.over", name,
                             json_pack("{s:s, s:I, s:I}", "pool", p->name, "seats",
                                       (json_int_t)p->seats, "used", (json_int_t)p->used));
                usage_done(&u);
                return 0;
        }
        r = gv_error_set(err, EDQUOT, "VM '%s' needs a seat of %s and licence pool '%s' has "
                         "none free: %lld of %lld seats are held (by %s).%s Stop a VM that holds "
                         "one, raise the seats (gpuvirt license set %s --seats N), or set the "
                         "pool's policy to warn.", name, gv_license_edition_title(p->edition),
                         p->name, (long long)(p->used - u.extra_seats),
                         (long long)p->seats, list, term, p->name);
        usage_done(&u);
        return r;
}

/* ---- usage history: per pool, the most seats used in each minute of the last 24 h ---- */

#define HISTORY_MINUTES 1440
#define HISTORY_STEP_MS 60000
#define SAMPLE_EVERY_MS 10000

struct history_slot {
        int64_t minute; /* minute number since the epoch; 0: empty */
        int64_t used, seats;
};

struct history_pool {
        char *name;
        struct history_slot slot[HISTORY_MINUTES];
};

struct gv_license_history {
        pthread_mutex_t mu; /* a leaf, like the metrics history's */
        int64_t last_ms;
        struct history_pool *pools;
        size_t n;
};

struct gv_license_history *gv_ctl_license_history_new(void)
{
        struct gv_license_history *h = xnew0(struct gv_license_history, 1);
        pthread_mutex_init(&h->mu, NULL);
        return h;
}

struct gv_license_history *gv_ctl_license_history_free(struct gv_license_history *h)
{
        if (!h)
                return NULL;
        for (size_t i = 0; i < h->n; i++)
                free(h->pools[i].name);
        free(h->pools);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return NULL;
}

static struct history_pool *history_pool(struct gv_license_history *h, const char *name)
{
        for (size_t i = 0; i < h->n; i++)
                if (!strcmp(h->pools[i].name, name))
                        return &h->pools[i];
        h->pools = xreallocarray(h->pools, h->n + 1, sizeof(*h->pools));
        struct history_pool *p = &h->pools[h->n++];
        memset(p, 0, sizeof(*p));
        p->name = xstrdup(name);
        return p;
}

void gv_ctl_license_sample(struct gv_controller *c, int64_t now_ms)
{
        struct gv_license_history *h = c->license_history;
        if (!h || (h->last_ms && now_ms - h->last_ms < SAMPLE_EVERY_MS))
                return;
        struct usage u;
        if (usage_compute(c, NULL, NULL, false, &u, NULL) < 0)
                return;
        int64_t minute = now_ms / HISTORY_STEP_MS;
        pthread_mutex_lock(&h->mu);
        h->last_ms = now_ms;
        for (size_t i = 0; i < u.n_pools; i++) {
                struct history_pool *p = history_pool(h, u.pools[i].name);
                struct history_slot *sl = &p->slot[minute % HISTORY_MINUTES];
                if (sl->minute != minute)
                        *sl = (struct history_slot){ .minute = minute };
                if (u.pools[i].used > sl->used)
                        sl->used = u.pools[i].used;
                sl->seats = u.pools[i].inactive ? 0 : u.pools[i].seats;
        }
        pthread_mutex_unlock(&h->mu);
        usage_done(&u);
}

/* {"step_ms", "timestamps_ms", "used_max", "seats"}: the minutes of the last 24 h that were
 * sampled, oldest first. */
static json_t *history_json(struct gv_controller *c, const char *name)
{
        json_t *t = json_array(), *used = json_array(), *seats = json_array();
        struct gv_license_history *h = c->license_history;
        int64_t now_minute = gv_ctl_now_ms() / HISTORY_STEP_MS;
        if (h) {
                pthread_mutex_lock(&h->mu);
                for (size_t i = 0; i < h->n; i++) {
                        if (strcmp(h->pools[i].name, name) != 0)
                                continue;
                        for (int64_t m = now_minute - HISTORY_MINUTES + 1; m <= now_minute; m++) {
                                const struct history_slot *sl =
                                        &h->pools[i].slot[m % HISTORY_MINUTES];
                                if (sl->minute != m)
                                        continue;
                                json_array_append_new(t, json_integer(m * HISTORY_STEP_MS));
                                json_array_append_new(used, json_integer(sl->used));
                                json_array_append_new(seats, json_integer(sl->seats));
                        }
                }
                pthread_mutex_unlock(&h->mu);
        }
        return json_pack("{s:i, s:o, s:o, s:o}", "step_ms", HISTORY_STEP_MS, "timestamps_ms", t,
                         "used_max", used, "seats", seats);
}

/* The Prometheus gauges of the pools, appended to the metrics exposition. */
void gv_ctl_license_prometheus(struct gv_controller *c, struct gv_prom *p)
{
        struct usage u;
        if (usage_compute(c, NULL, NULL, false, &u, NULL) < 0)
                return;
        static const struct {
                const char *name, *help;
        } fam[] = {
                { "gpuvirt_license_seats", "Seats of a licence pool (0 outside its term)." },
                { "gpuvirt_license_seats_used", "Seats of a licence pool held by VMs." },
        };
        for (size_t f = 0; f < ELEMENTSOF(fam); f++) {
                gv_prom_family(p, fam[f].name, "gauge", fam[f].help);
                for (size_t i = 0; i < u.n_pools; i++) {
                        const struct gv_prom_label l[] = {
                                { "pool", u.pools[i].name },
                                { "edition", gv_license_edition_to_string(u.pools[i].edition) },
                        };
                        double v = f == 0 ? (u.pools[i].inactive ? 0 : (double)u.pools[i].seats)
                                          : (double)u.pools[i].used;
                        gv_prom_sample(p, fam[f].name, l, ELEMENTSOF(l), v);
                }
        }
        usage_done(&u);
}
