/* SPDX-License-Identifier: MIT */
/*
 * The rows of `gpuvirt top` (top-model.h): the controller's latest metrics (docs/api.md
 * "Metrics"), its host list and VM list merged into hosts, GPUs and VMs; sorting; and the plain
 * text lines both the --batch frames and the ncurses screen show.
 */
#include "cli/top-model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/parse.h"
#include "util/strv.h"

/* Why a value is not there, as the rows show it (docs/agent.md "Metrics"). */
#define WHY_PASSTHROUGH "n/a: passthrough" /* bound to vfio-pci: only the guest's driver sees it */
#define WHY_MIG "n/a: MIG"                 /* "not reported by this GPU" for a MIG slice */
#define WHY_HIDDEN "n/a: not visible"      /* not visible to the host driver, another reason */

static const char *const sort_table[_GV_TOP_SORT_MAX] = {
        [GV_TOP_SORT_CPU] = "cpu",
        [GV_TOP_SORT_MEMORY] = "memory",
        [GV_TOP_SORT_GPU] = "gpu",
        [GV_TOP_SORT_NAME] = "name",
};
DEFINE_STRING_TABLE_LOOKUP(gv_top_sort, enum gv_top_sort, sort_table);

char *gv_top_sort_list(void)
{
        return STRING_TABLE_JOIN(sort_table, ", ");
}

/* ---- JSON helpers: numbers may be integers or reals; null and absent are unknown ---- */

static const char *jstr(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static struct gv_top_value jnum(const json_t *o, const char *key)
{
        const json_t *v = json_object_get(o, key);
        if (!json_is_number(v))
                return (struct gv_top_value){};
        return (struct gv_top_value){ .known = true, .v = json_number_value(v) };
}

static char *xstrdup_or_null(const char *s)
{
        return s ? xstrdup(s) : NULL;
}

static struct gv_top_value unknown(const char *why)
{
        return (struct gv_top_value){ .why = why };
}

/* ---- freeing ---- */

static void host_done(struct gv_top_host *h)
{
        free(h->name);
        free(h->state);
        free(h->error);
}

static void gpu_done(struct gv_top_gpu *g)
{
        free(g->host);
        free(g->pci);
        free(g->model);
        free(g->mode);
        free(g->users);
}

static void vm_done(struct gv_top_vm *v)
{
        free(v->name);
        free(v->host);
        free(v->state);
        free(v->mode);
}

struct gv_top_model *gv_top_model_free(struct gv_top_model *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_hosts; i++)
                host_done(&m->hosts[i]);
        for (size_t i = 0; i < m->n_gpus; i++)
                gpu_done(&m->gpus[i]);
        for (size_t i = 0; i < m->n_vms; i++)
                vm_done(&m->vms[i]);
        free(m->hosts);
        free(m->gpus);
        free(m->vms);
        free(m);
        return NULL;
}

/* ---- building ---- */

static struct gv_top_host *find_host(struct gv_top_model *m, const char *name)
{
        for (size_t i = 0; i < m->n_hosts; i++)
                if (strcmp(m->hosts[i].name, name) == 0)
                        return &m->hosts[i];
        return NULL;
}

static struct gv_top_vm *find_vm(struct gv_top_model *m, const char *name)
{
        for (size_t i = 0; i < m->n_vms; i++)
                if (strcmp(m->vms[i].name, name) == 0)
                        return &m->vms[i];
        return NULL;
}

static struct gv_top_host *add_host(struct gv_top_model *m, const char *name)
{
        m->hosts = xreallocarray(m->hosts, m->n_hosts + 1, sizeof(*m->hosts));
        struct gv_top_host *h = &m->hosts[m->n_hosts++];
        *h = (struct gv_top_host){ .name = xstrdup(name) };
        return h;
}

static struct gv_top_vm *add_vm(struct gv_top_model *m, const char *name)
{
        m->vms = xreallocarray(m->vms, m->n_vms + 1, sizeof(*m->vms));
        struct gv_top_vm *v = &m->vms[m->n_vms++];
        *v = (struct gv_top_vm){ .name = xstrdup(name) };
        return v;
}

static void add_gpu(struct gv_top_model *m, const char *host, const json_t *g)
{
        m->gpus = xreallocarray(m->gpus, m->n_gpus + 1, sizeof(*m->gpus));
        struct gv_top_gpu *r = &m->gpus[m->n_gpus++];
        const char *mode = jstr(g, "mode");
        const json_t *vis = json_object_get(g, "visible");
        const json_t *idx = json_object_get(g, "index");
        const char *why = NULL;

        *r = (struct gv_top_gpu){
                .host = xstrdup(host),
                .pci = xstrdup_or_null(jstr(g, "gpu")),
                .index = json_is_integer(idx) ? (int)json_integer_value(idx) : -1,
                .model = xstrdup_or_null(jstr(g, "model")),
                .mode = xstrdup_or_null(mode),
                .util = jnum(g, "util_pct"),
                .mem_used_mib = jnum(g, "memory_used_mib"),
                .mem_total_mib = jnum(g, "memory_total_mib"),
                .power_w = jnum(g, "power_mw"),
                .temperature_c = jnum(g, "temperature_c"),
        };
        if (r->power_w.known)
                r->power_w.v /= 1000.0;
        if (mode && strcmp(mode, "passthrough") == 0)
                why = WHY_PASSTHROUGH;
        else if (json_is_false(vis))
                why = WHY_HIDDEN;
        struct gv_top_value *vals[] = { &r->util, &r->mem_used_mib, &r->mem_total_mib,
                                        &r->power_w, &r->temperature_c };
        for (size_t i = 0; i < ELEMENTSOF(vals); i++)
                if (!vals[i]->known)
                        vals[i]->why = why;
}

/* One host of the metrics: its values unless the controller says why there are none. */
static void host_from_metrics(struct gv_top_model *m, const json_t *jh)
{
        const char *name = jstr(jh, "host");
        const json_t *cpu = json_object_get(jh, "cpu"), *mem = json_object_get(jh, "memory");
        size_t i;
        json_t *g;

        if (!name || find_host(m, name))
                return;
        struct gv_top_host *h = add_host(m, name);
        h->error = xstrdup_or_null(jstr(jh, "error"));
        h->cpus = jnum(cpu, "cpus");
        h->cpu = jnum(cpu, "util_pct");
        h->mem_used_mib = jnum(mem, "used_mib");
        h->mem_total_mib = jnum(mem, "total_mib");
        json_array_foreach(json_object_get(jh, "gpus"), i, g) {
                if (!json_is_object(g))
                        continue;
                add_gpu(m, name, g);
                h->n_gpus++;
        }
}

/* "vgpu H100XM-20C" for one slice of the metrics (mode, profile) or of a placement (alloc,
 * name). */
static char *slice_mode(const char *mode, const char *profile)
{
        if (!mode)
                mode = "?";
        if (strcmp(mode, "whole") == 0)
                mode = "passthrough";
        if (!profile || !*profile || strcmp(mode, "passthrough") == 0)
                return xstrdup(mode);
        return xasprintf("%s %s", mode, profile);
}

static char *join_modes(char **modes)
{
        return modes ? strv_join(modes, " + ") : NULL;
}

/* One VM of the metrics: CPU, memory and every GPU slice beside them. */
static void vm_from_metrics(struct gv_top_model *m, const json_t *jv)
{
        const char *name = jstr(jv, "vm");
        const json_t *cpu = json_object_get(jv, "cpu"), *mem = json_object_get(jv, "memory");
        _cleanup_strv_free_ char **modes = NULL;
        double util_sum = 0, used = 0, total = 0;
        unsigned n_util = 0, n_used = 0, n_total = 0;
        bool passthrough = false, mig = false;
        size_t i;
        json_t *s;

        if (!name || find_vm(m, name))
                return; /* the controller shows the copy that runs; one row per VM */
        struct gv_top_vm *v = add_vm(m, name);
        v->host = xstrdup_or_null(jstr(jv, "host"));
        v->state = xstrdup_or_null(jstr(jv, "phase"));
        v->cpu = jnum(cpu, "util_pct");
        v->vcpus = jnum(cpu, "vcpus");
        v->mem_rss_mib = jnum(mem, "rss_mib");
        v->mem_total_mib = jnum(mem, "configured_mib");
        json_array_foreach(json_object_get(jv, "gpus"), i, s) {
                const char *mode = jstr(s, "mode");
                struct gv_top_value u = jnum(s, "util_pct"), mu = jnum(s, "memory_used_mib"),
                                    mt = jnum(s, "memory_total_mib");
                v->n_gpus++;
                strv_consume(&modes, slice_mode(mode, jstr(s, "profile")));
                if (mode && strcmp(mode, "passthrough") == 0)
                        passthrough = true;
                else if ((mode && strstr(mode, "mig")) || jstr(s, "util"))
                        mig = true;
                if (u.known) {
                        util_sum += u.v;
                        n_util++;
                }
                if (mu.known) {
                        used += mu.v;
                        n_used++;
                }
                if (mt.known) {
                        total += mt.v;
                        n_total++;
                }
        }
        v->mode = join_modes(modes);
        const char *why = passthrough ? WHY_PASSTHROUGH : mig ? WHY_MIG : NULL;
        v->gpu_util = n_util ? (struct gv_top_value){ .known = true, .v = util_sum / n_util }
                             : unknown(v->n_gpus ? why : NULL);
        /* memory: a pass-through slice's is unknown; MIG instances report theirs */
        why = passthrough ? WHY_PASSTHROUGH : NULL;
        v->gpu_mem_used_mib = n_used ? (struct gv_top_value){ .known = true, .v = used }
                                     : unknown(v->n_gpus ? why : NULL);
        v->gpu_mem_total_mib = n_total ? (struct gv_top_value){ .known = true, .v = total }
                                       : unknown(v->n_gpus ? why : NULL);
}

/* The controller's VM record: its state wins (the controller's truth), and a VM the metrics do
 * not show (stopped, pending, on a silent host) gets a row with unknown values. */
static void vm_from_list(struct gv_top_model *m, const json_t *jv)
{
        const char *name = jstr(jv, "name");
        const json_t *spec = json_object_get(jv, "spec");
        const json_t *pl = json_object_get(jv, "placement");
        if (!name)
                return;
        struct gv_top_vm *v = find_vm(m, name);
        if (!v)
                v = add_vm(m, name);
        if (jstr(jv, "state")) {
                free(v->state);
                v->state = xstrdup(jstr(jv, "state"));
        }
        if (!v->host)
                v->host = xstrdup_or_null(jstr(jv, "host"));
        if (!v->vcpus.known)
                v->vcpus = jnum(spec, "vcpus");
        if (!v->mem_total_mib.known)
                v->mem_total_mib = jnum(spec, "memory_mib");
        if (!v->mode) {
                _cleanup_strv_free_ char **modes = NULL;
                size_t i;
                json_t *s;
                json_array_foreach(json_object_get(pl, "gpus"), i, s)
                        strv_consume(&modes, slice_mode(jstr(s, "alloc"), jstr(s, "name")));
                v->mode = join_modes(modes);
                if (!v->n_gpus)
                        v->n_gpus = (unsigned)json_array_size(json_object_get(pl, "gpus"));
        }
}

/* Who uses each GPU: the VMs whose slices name it, and its vGPUs' and MIG instances' "vm". */
static void gpu_users(struct gv_top_model *m, const json_t *metrics)
{
        for (size_t k = 0; k < m->n_gpus; k++) {
                struct gv_top_gpu *g = &m->gpus[k];
                _cleanup_strv_free_ char **users = NULL;
                size_t i, j;
                json_t *jv, *s, *jh;

                if (!g->pci)
                        continue;
                json_array_foreach(json_object_get(metrics, "vms"), i, jv) {
                        const char *host = jstr(jv, "host"), *name = jstr(jv, "vm");
                        if (!host || !name || strcmp(host, g->host) != 0)
                                continue;
                        json_array_foreach(json_object_get(jv, "gpus"), j, s)
                                if (jstr(s, "gpu") && strcmp(jstr(s, "gpu"), g->pci) == 0 &&
                                    !strv_contains(users, name))
                                        strv_extend(&users, name);
                }
                json_array_foreach(json_object_get(metrics, "hosts"), i, jh) {
                        if (!jstr(jh, "host") || strcmp(jstr(jh, "host"), g->host) != 0)
                                continue;
                        json_array_foreach(json_object_get(jh, "gpus"), j, s) {
                                if (!jstr(s, "gpu") || strcmp(jstr(s, "gpu"), g->pci) != 0)
                                        continue;
                                const char *lists[] = { "vgpus", "mig" };
                                for (size_t l = 0; l < ELEMENTSOF(lists); l++) {
                                        size_t n;
                                        json_t *x;
                                        json_array_foreach(json_object_get(s, lists[l]), n, x) {
                                                const char *vm = jstr(x, "vm");
                                                if (vm && !strv_contains(users, vm))
                                                        strv_extend(&users, vm);
                                        }
                                }
                        }
                }
                if (users) {
                        strv_sort(users);
                        g->users = strv_join(users, " ");
                }
        }
}

static void totals(struct gv_top_model *m)
{
        double cpu_w = 0, cpus = 0, used = 0, total = 0, util = 0;
        bool mem_known = false;

        for (size_t i = 0; i < m->n_hosts; i++) {
                struct gv_top_host *h = &m->hosts[i];
                double sum = 0;
                h->n_gpus_known = 0;
                for (size_t k = 0; k < m->n_gpus; k++)
                        if (strcmp(m->gpus[k].host, h->name) == 0 && m->gpus[k].util.known) {
                                sum += m->gpus[k].util.v;
                                h->n_gpus_known++;
                        }
                h->gpu = h->n_gpus_known
                                 ? (struct gv_top_value){ .known = true,
                                                          .v = sum / h->n_gpus_known }
                                 : unknown(NULL);
                h->n_vms = 0;
                for (size_t k = 0; k < m->n_vms; k++)
                        if (m->vms[k].host && strcmp(m->vms[k].host, h->name) == 0)
                                h->n_vms++;
                if (h->state ? strcmp(h->state, "up") == 0 : !h->error)
                        m->hosts_up++;
                if (h->cpu.known && h->cpus.known && h->cpus.v > 0) {
                        cpu_w += h->cpu.v * h->cpus.v;
                        cpus += h->cpus.v;
                }
                if (h->mem_used_mib.known && h->mem_total_mib.known) {
                        used += h->mem_used_mib.v;
                        total += h->mem_total_mib.v;
                        mem_known = true;
                }
        }
        for (size_t k = 0; k < m->n_gpus; k++)
                if (m->gpus[k].util.known) {
                        util += m->gpus[k].util.v;
                        m->gpus_known++;
                }
        for (size_t k = 0; k < m->n_vms; k++)
                if (m->vms[k].state && strcmp(m->vms[k].state, "running") == 0)
                        m->vms_running++;
        m->cpu = cpus > 0 ? (struct gv_top_value){ .known = true, .v = cpu_w / cpus }
                          : unknown(NULL);
        m->mem_used_mib = mem_known ? (struct gv_top_value){ .known = true, .v = used }
                                    : unknown(NULL);
        m->mem_total_mib = mem_known ? (struct gv_top_value){ .known = true, .v = total }
                                     : unknown(NULL);
        m->gpu_util = m->gpus_known ? (struct gv_top_value){ .known = true,
                                                             .v = util / m->gpus_known }
                                    : unknown(NULL);
}

int gv_top_model_build(const json_t *metrics, const json_t *hosts, const json_t *vms,
                       struct gv_top_model **ret, struct gv_error **err)
{
        size_t i;
        json_t *x;

        if (!json_is_object(metrics))
                return gv_error_set(err, EINVAL, "The controller's metrics answer is not a JSON "
                                    "object; is the endpoint a gpuvirt controller?");
        if (!json_is_array(json_object_get(metrics, "hosts")) ||
            !json_is_array(json_object_get(metrics, "vms")))
                return gv_error_set(err, EINVAL, "The controller's metrics answer has no '%s' "
                                    "list; a controller that serves GET /api/v1/metrics "
                                    "(docs/api.md \"Metrics\") is needed.",
                                    json_is_array(json_object_get(metrics, "hosts")) ? "vms"
                                                                                      : "hosts");
        if (hosts && !json_is_array(hosts))
                return gv_error_set(err, EINVAL, "The controller's host list is not a JSON "
                                    "array.");
        if (vms && !json_is_array(vms))
                return gv_error_set(err, EINVAL, "The controller's VM list is not a JSON array.");

        _cleanup_(gv_top_model_freep) struct gv_top_model *m = xnew0(struct gv_top_model, 1);
        struct gv_top_value ts = jnum(metrics, "timestamp_ms"), iv = jnum(metrics, "interval_ms");
        m->timestamp_ms = ts.known ? (int64_t)ts.v : 0;
        m->interval_ms = iv.known && iv.v > 0 && iv.v < 4e9 ? (uint32_t)iv.v : 0;

        json_array_foreach(json_object_get(metrics, "hosts"), i, x)
                host_from_metrics(m, x);
        json_array_foreach(hosts, i, x) {
                const char *name = jstr(x, "name");
                if (!name)
                        continue;
                struct gv_top_host *h = find_host(m, name);
                if (!h) {
                        h = add_host(m, name);
                        h->cpus = jnum(x, "cpus");
                        h->error = xstrdup("no metrics from this host yet");
                }
                free(h->state);
                h->state = xstrdup_or_null(jstr(x, "state"));
        }
        json_array_foreach(json_object_get(metrics, "vms"), i, x)
                vm_from_metrics(m, x);
        json_array_foreach(vms, i, x)
                vm_from_list(m, x);
        gpu_users(m, metrics);
        totals(m);
        gv_top_model_sort(m, GV_TOP_SORT_NAME);
        *ret = TAKE_PTR(m);
        return 0;
}

/* ---- sorting ---- */

/* Known before unknown; then larger first. 0 when both are unknown or equal. */
static int cmp_value_desc(const struct gv_top_value *a, const struct gv_top_value *b)
{
        if (a->known != b->known)
                return a->known ? -1 : 1;
        if (!a->known || a->v == b->v)
                return 0;
        return a->v > b->v ? -1 : 1;
}

static int cmp_str(const char *a, const char *b)
{
        return strcmp(a ? a : "", b ? b : "");
}

static int cmp_host(const void *x, const void *y, void *userdata)
{
        const struct gv_top_host *a = x, *b = y;
        enum gv_top_sort sort_key = *(const enum gv_top_sort *)userdata;
        int r = 0;
        switch (sort_key) {
        case GV_TOP_SORT_CPU:
                r = cmp_value_desc(&a->cpu, &b->cpu);
                break;
        case GV_TOP_SORT_MEMORY:
                r = cmp_value_desc(&a->mem_used_mib, &b->mem_used_mib);
                break;
        case GV_TOP_SORT_GPU:
                r = cmp_value_desc(&a->gpu, &b->gpu);
                break;
        default:
                break;
        }
        return r ? r : cmp_str(a->name, b->name);
}

static int cmp_gpu(const void *x, const void *y, void *userdata)
{
        const struct gv_top_gpu *a = x, *b = y;
        enum gv_top_sort sort_key = *(const enum gv_top_sort *)userdata;
        int r = 0;
        if (sort_key == GV_TOP_SORT_MEMORY)
                r = cmp_value_desc(&a->mem_used_mib, &b->mem_used_mib);
        else if (sort_key == GV_TOP_SORT_GPU)
                r = cmp_value_desc(&a->util, &b->util);
        if (!r)
                r = cmp_str(a->host, b->host);
        if (!r)
                r = a->index < b->index ? -1 : a->index > b->index;
        return r ? r : cmp_str(a->pci, b->pci);
}

static int cmp_vm(const void *x, const void *y, void *userdata)
{
        const struct gv_top_vm *a = x, *b = y;
        enum gv_top_sort sort_key = *(const enum gv_top_sort *)userdata;
        int r = 0;
        switch (sort_key) {
        case GV_TOP_SORT_CPU:
                r = cmp_value_desc(&a->cpu, &b->cpu);
                break;
        case GV_TOP_SORT_MEMORY:
                r = cmp_value_desc(&a->mem_rss_mib, &b->mem_rss_mib);
                break;
        case GV_TOP_SORT_GPU:
                r = cmp_value_desc(&a->gpu_util, &b->gpu_util);
                if (!r) /* a MIG slice reports memory, not utilization */
                        r = cmp_value_desc(&a->gpu_mem_used_mib, &b->gpu_mem_used_mib);
                break;
        default:
                break;
        }
        return r ? r : cmp_str(a->name, b->name);
}

void gv_top_model_sort(struct gv_top_model *m, enum gv_top_sort key)
{
        if ((int)key < 0 || key >= _GV_TOP_SORT_MAX)
                key = GV_TOP_SORT_NAME;
        if (m->n_hosts)
                qsort_r(m->hosts, m->n_hosts, sizeof(*m->hosts), cmp_host, &key);
        if (m->n_gpus)
                qsort_r(m->gpus, m->n_gpus, sizeof(*m->gpus), cmp_gpu, &key);
        if (m->n_vms)
                qsort_r(m->vms, m->n_vms, sizeof(*m->vms), cmp_vm, &key);
}

/* ---- text ---- */

/* "73%", "4.5%", or the reason. */
static void fmt_pct(char *buf, size_t n, const struct gv_top_value *v)
{
        if (!v->known)
                snprintf(buf, n, "%s", v->why ? v->why : "-");
        else if (v->v > 0 && v->v < 10 && v->v != floor(v->v))
                snprintf(buf, n, "%.1f%%", v->v);
        else
                snprintf(buf, n, "%.0f%%", v->v);
}

/* MiB as "512M", "15.4G", "512G" */
static void fmt_mib(char *buf, size_t n, double mib)
{
        if (mib < 1024)
                snprintf(buf, n, "%.0fM", mib);
        else if (mib < 100 * 1024)
                snprintf(buf, n, "%.1fG", mib / 1024);
        else
                snprintf(buf, n, "%.0fG", mib / 1024);
}

/* "15.4G/20.0G", "44M/128M", "15.4G" without a total, or the reason. */
static void fmt_used_total(char *buf, size_t n, const struct gv_top_value *used,
                           const struct gv_top_value *total)
{
        char a[32], b[32];
        if (!used->known) {
                snprintf(buf, n, "%s", used->why ? used->why : "-");
                return;
        }
        fmt_mib(a, sizeof(a), used->v);
        if (!total->known) {
                snprintf(buf, n, "%s", a);
                return;
        }
        fmt_mib(b, sizeof(b), total->v);
        snprintf(buf, n, "%s/%s", a, b);
}

/* ---- rendering ---- */

struct cell {
        char text[128];
        bool bar;
        double fill; /* 0..100 when the bar has a value; < 0 none */
};

struct column {
        const char *title;
        unsigned min, max; /* max 0: takes what is left (the last column) */
        bool right, bar;
};

struct builder {
        struct gv_top_frame *f;
        unsigned width;
};

static void push_line(struct builder *b, enum gv_top_line_kind kind, int section,
                      const char *text, const char *marks)
{
        struct gv_top_frame *f = b->f;
        size_t n = strnlen(text, b->width);
        f->lines = xreallocarray(f->lines, f->n_lines + 1, sizeof(*f->lines));
        struct gv_top_line *l = &f->lines[f->n_lines++];
        l->kind = kind;
        l->section = section;
        l->text = xstrndup(text, n);
        l->marks = xmalloc(n + 1);
        for (size_t i = 0; i < n; i++)
                l->marks[i] = marks ? marks[i] : ' ';
        l->marks[n] = '\0';
        /* one character set on the screen: anything else is '?' */
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)l->text[i] < 0x20 || (unsigned char)l->text[i] > 0x7e)
                        l->text[i] = '?';
}

/* Column widths for width: each its minimum, then the text columns whose cells are wider grow
 * to fit (up to their max; the last column has none), then bars grow evenly, then the last
 * column takes the rest. */
static void layout(const struct column *cols, size_t n_cols, const struct cell *cells,
                   size_t n_rows, unsigned width, unsigned *w)
{
        unsigned used = (unsigned)n_cols - 1; /* one space between columns */
        for (size_t c = 0; c < n_cols; c++) {
                w[c] = MAX(cols[c].min, (unsigned)strlen(cols[c].title));
                used += w[c];
        }
        unsigned left = width > used ? width - used : 0;
        for (size_t c = 0; c < n_cols && left; c++) {
                if (cols[c].bar)
                        continue;
                unsigned want = w[c];
                for (size_t r = 0; r < n_rows; r++)
                        want = MAX(want, (unsigned)strlen(cells[r * n_cols + c].text));
                want = MIN(want, cols[c].max ? cols[c].max : want);
                unsigned add = MIN(want > w[c] ? want - w[c] : 0, left);
                w[c] += add;
                left -= add;
        }
        for (bool grew = true; grew && left;) {
                grew = false;
                for (size_t c = 0; c < n_cols && left; c++)
                        if (cols[c].bar && w[c] < cols[c].max) {
                                w[c]++;
                                left--;
                                grew = true;
                        }
        }
        w[n_cols - 1] += left;
}

/* Write one cell of width w at text+pos (marks alike). */
static void put_cell(char *text, char *marks, unsigned pos, unsigned w, const struct column *col,
                     const struct cell *c)
{
        size_t len = strlen(c->text);
        if (!c->bar) {
                size_t n = MIN(len, (size_t)w);
                unsigned at = col->right ? pos + w - (unsigned)n : pos;
                memcpy(text + at, c->text, n);
                return;
        }
        if (w < 3)
                return;
        unsigned inner = w - 2;
        text[pos] = '[';
        text[pos + w - 1] = ']';
        if (c->fill >= 0) {
                unsigned filled = (unsigned)lround(MIN(c->fill, 100.0) / 100.0 * inner);
                for (unsigned i = 0; i < filled; i++) {
                        text[pos + 1 + i] = '|';
                        marks[pos + 1 + i] = 'b';
                }
                /* the value right-aligned inside the bar */
                size_t n = MIN(len, (size_t)inner);
                memcpy(text + pos + 1 + inner - n, c->text, n);
                for (size_t i = 0; i < n; i++)
                        marks[pos + 1 + inner - n + i] = ' ';
        } else {
                /* no value: the reason (or "-") where the bar would be */
                size_t n = MIN(len, (size_t)inner);
                memcpy(text + pos + 1, c->text, n);
        }
}

static void render_table(struct builder *b, int section, const char *title,
                         const struct column *cols, size_t n_cols, const struct cell *cells,
                         size_t n_rows)
{
        unsigned w[16];
        _cleanup_free_ char *text = xmalloc(b->width + 1), *marks = xmalloc(b->width + 1);

        layout(cols, n_cols, cells, n_rows, b->width, w);
        push_line(b, GV_TOP_LINE_TITLE, section, title, NULL);
        for (size_t r = 0; r <= n_rows; r++) {
                memset(text, ' ', b->width);
                memset(marks, ' ', b->width);
                unsigned pos = 0;
                for (size_t c = 0; c < n_cols && pos < b->width; c++) {
                        unsigned cw = MIN(w[c], b->width - pos);
                        if (r == 0) {
                                struct cell h = {};
                                snprintf(h.text, sizeof(h.text), "%s", cols[c].title);
                                put_cell(text, marks, pos, cw, &cols[c], &h);
                        } else {
                                put_cell(text, marks, pos, cw, &cols[c],
                                         &cells[(r - 1) * n_cols + c]);
                        }
                        pos += cw + 1;
                }
                /* trailing blanks go */
                size_t end = b->width;
                while (end > 0 && text[end - 1] == ' ' && marks[end - 1] == ' ')
                        end--;
                text[end] = marks[end] = '\0';
                push_line(b, r == 0 ? GV_TOP_LINE_COLUMNS : GV_TOP_LINE_ROW, section, text,
                          marks);
        }
}

static void set_text(struct cell *c, const char *s)
{
        snprintf(c->text, sizeof(c->text), "%s", s ? s : "-");
        c->bar = false;
}

static void set_bar(struct cell *c, const struct gv_top_value *v, double fill, const char *label)
{
        c->bar = true;
        c->fill = v->known ? MAX(fill, 0.0) : -1;
        snprintf(c->text, sizeof(c->text), "%s", label);
}

static void set_pct_bar(struct cell *c, const struct gv_top_value *v, double full)
{
        char t[64];
        fmt_pct(t, sizeof(t), v);
        set_bar(c, v, v->known && full > 0 ? v->v * 100.0 / full : 0, t);
}

static void set_mem_bar(struct cell *c, const struct gv_top_value *used,
                        const struct gv_top_value *total)
{
        char t[80];
        fmt_used_total(t, sizeof(t), used, total);
        set_bar(c, used, total->known && total->v > 0 ? used->v * 100.0 / total->v : 0, t);
}

static void render_hosts(struct builder *b, const struct gv_top_model *m, const char *sort)
{
        static const struct column cols[] = {
                { "HOST", 6, 24, false, false },   { "STATE", 5, 10, false, false },
                { "CPUS", 4, 5, true, false },     { "CPU", 10, 26, false, true },
                { "MEMORY", 13, 28, false, true }, { "GPUS", 4, 5, true, false },
                { "GPU", 10, 26, false, true },    { "VMS", 3, 4, true, false },
                { "NOTE", 0, 0, false, false },
        };
        enum { N = ELEMENTSOF(cols) };
        _cleanup_free_ struct cell *cells = xnew0(struct cell, m->n_hosts * N + 1);
        for (size_t i = 0; i < m->n_hosts; i++) {
                const struct gv_top_host *h = &m->hosts[i];
                struct cell *c = &cells[i * N];
                char t[64];
                set_text(&c[0], h->name);
                set_text(&c[1], h->state ? h->state : h->error ? "stale" : "up");
                if (h->cpus.known)
                        snprintf(t, sizeof(t), "%.0f", h->cpus.v);
                set_text(&c[2], h->cpus.known ? t : "-");
                set_pct_bar(&c[3], &h->cpu, 100);
                set_mem_bar(&c[4], &h->mem_used_mib, &h->mem_total_mib);
                snprintf(t, sizeof(t), "%u", h->n_gpus);
                set_text(&c[5], t);
                set_pct_bar(&c[6], &h->gpu, 100);
                snprintf(t, sizeof(t), "%u", h->n_vms);
                set_text(&c[7], t);
                set_text(&c[8], h->error ? h->error : "");
        }
        _cleanup_free_ char *title = xasprintf("HOSTS %zu (%u up), sorted by %s", m->n_hosts,
                                               m->hosts_up, sort);
        render_table(b, GV_TOP_HOSTS, title, cols, N, cells, m->n_hosts);
}

static void render_gpus(struct builder *b, const struct gv_top_model *m, const char *sort)
{
        static const struct column cols[] = {
                { "HOST", 6, 24, false, false },   { "GPU", 3, 12, true, false },
                { "MODEL", 8, 20, false, false },  { "MODE", 5, 11, false, false },
                { "UTIL", 10, 26, false, true },   { "MEMORY", 13, 28, false, true },
                { "POWER", 5, 6, true, false },    { "TEMP", 4, 5, true, false },
                { "USED BY", 0, 0, false, false },
        };
        enum { N = ELEMENTSOF(cols) };
        _cleanup_free_ struct cell *cells = xnew0(struct cell, m->n_gpus * N + 1);
        for (size_t i = 0; i < m->n_gpus; i++) {
                const struct gv_top_gpu *g = &m->gpus[i];
                struct cell *c = &cells[i * N];
                char t[64];
                set_text(&c[0], g->host);
                if (g->index >= 0)
                        snprintf(t, sizeof(t), "%d", g->index);
                set_text(&c[1], g->index >= 0 ? t : g->pci);
                set_text(&c[2], g->model);
                set_text(&c[3], g->mode);
                set_pct_bar(&c[4], &g->util, 100);
                set_mem_bar(&c[5], &g->mem_used_mib, &g->mem_total_mib);
                if (g->power_w.known)
                        snprintf(t, sizeof(t), "%.0fW", g->power_w.v);
                set_text(&c[6], g->power_w.known ? t : "-");
                if (g->temperature_c.known)
                        snprintf(t, sizeof(t), "%.0fC", g->temperature_c.v);
                set_text(&c[7], g->temperature_c.known ? t : "-");
                set_text(&c[8], g->users ? g->users : "");
        }
        _cleanup_free_ char *title = xasprintf("GPUS %zu (%u report utilization), sorted by %s",
                                               m->n_gpus, m->gpus_known,
                                               strcmp(sort, "cpu") == 0 ? "host" : sort);
        render_table(b, GV_TOP_GPUS, title, cols, N, cells, m->n_gpus);
}

static void render_vms(struct builder *b, const struct gv_top_model *m, const char *sort)
{
        static const struct column cols[] = {
                { "VM", 6, 32, false, false },       { "HOST", 6, 24, false, false },
                { "STATE", 7, 10, false, false },    { "GPU MODE", 10, 30, false, false },
                { "CPU", 9, 24, false, true },       { "MEMORY", 11, 24, false, true },
                { "GPU", 10, 26, false, true },      { "GPU MEMORY", 0, 0, false, false },
        };
        enum { N = ELEMENTSOF(cols) };
        _cleanup_free_ struct cell *cells = xnew0(struct cell, m->n_vms * N + 1);
        for (size_t i = 0; i < m->n_vms; i++) {
                const struct gv_top_vm *v = &m->vms[i];
                struct cell *c = &cells[i * N];
                char t[80];
                set_text(&c[0], v->name);
                set_text(&c[1], v->host);
                set_text(&c[2], v->state);
                set_text(&c[3], v->mode ? v->mode : v->n_gpus ? "?" : "none");
                /* QEMU's CPU is % of one core: the bar is full at every vCPU busy */
                set_pct_bar(&c[4], &v->cpu, 100.0 * (v->vcpus.known && v->vcpus.v >= 1
                                                             ? v->vcpus.v : 1));
                set_mem_bar(&c[5], &v->mem_rss_mib, &v->mem_total_mib);
                if (v->n_gpus || v->gpu_util.known) {
                        set_pct_bar(&c[6], &v->gpu_util, 100);
                        fmt_used_total(t, sizeof(t), &v->gpu_mem_used_mib,
                                       &v->gpu_mem_total_mib);
                        set_text(&c[7], t);
                } else {
                        set_text(&c[6], "");
                        set_text(&c[7], "");
                }
        }
        _cleanup_free_ char *title = xasprintf("VMS %zu (%u running), sorted by %s", m->n_vms,
                                               m->vms_running, sort);
        render_table(b, GV_TOP_VMS, title, cols, N, cells, m->n_vms);
}

void gv_top_frame_done(struct gv_top_frame *f)
{
        for (size_t i = 0; i < f->n_lines; i++) {
                free(f->lines[i].text);
                free(f->lines[i].marks);
        }
        free(f->lines);
        *f = (struct gv_top_frame){};
}

int gv_top_render(const struct gv_top_model *m, enum gv_top_sort sort, unsigned width,
                  const char *clock, struct gv_top_frame *ret, struct gv_error **err)
{
        const char *s = gv_top_sort_to_string(sort);
        char cpu[32], mem[80], gpu[32];

        if (!s)
                return gv_error_set(err, EINVAL, "Unknown sort key %d.", (int)sort);
        if (width < GV_TOP_MIN_WIDTH || width > GV_TOP_MAX_WIDTH)
                return gv_error_set(err, ERANGE, "A width of %u columns is outside what gpuvirt "
                                    "top draws (%u to %u); widen the terminal.", width,
                                    GV_TOP_MIN_WIDTH, GV_TOP_MAX_WIDTH);

        struct gv_top_frame f = {};
        struct builder b = { .f = &f, .width = width };
        fmt_pct(cpu, sizeof(cpu), &m->cpu);
        fmt_used_total(mem, sizeof(mem), &m->mem_used_mib, &m->mem_total_mib);
        fmt_pct(gpu, sizeof(gpu), &m->gpu_util);
        _cleanup_free_ char *header = xasprintf(
                "gpuvirt top%s%s - hosts %u/%zu up, GPUs %zu, VMs %u/%zu running - CPU %s, "
                "memory %s, GPU %s (%u of %zu GPUs report)", clock ? " " : "",
                clock ? clock : "", m->hosts_up, m->n_hosts, m->n_gpus, m->vms_running,
                m->n_vms, cpu, mem, gpu, m->gpus_known, m->n_gpus);
        push_line(&b, GV_TOP_LINE_HEADER, -1, header, NULL);
        push_line(&b, GV_TOP_LINE_BLANK, -1, "", NULL);
        render_hosts(&b, m, s);
        push_line(&b, GV_TOP_LINE_BLANK, GV_TOP_HOSTS, "", NULL);
        render_gpus(&b, m, s);
        push_line(&b, GV_TOP_LINE_BLANK, GV_TOP_GPUS, "", NULL);
        render_vms(&b, m, s);
        *ret = f;
        return 0;
}

int gv_top_parse_interval(const char *s, uint32_t *ret_ms)
{
        const char *dot = s ? strchr(s, '.') : NULL;
        uint32_t whole = 0, frac = 0;

        if (!s || !*s)
                return -EINVAL;
        _cleanup_free_ char *ip = dot ? xstrndup(s, (size_t)(dot - s)) : xstrdup(s);
        if (*ip && (ip[0] < '0' || ip[0] > '9'))
                return -EINVAL; /* no sign, no space */
        if (*ip && gv_parse_u32(ip, 10, &whole) < 0)
                return -EINVAL;
        if (dot) {
                const char *d = dot + 1;
                size_t n = strlen(d);
                if (n == 0 || n > 3 || (!*ip && n == 0))
                        return -EINVAL;
                for (size_t i = 0; i < n; i++)
                        if (d[i] < '0' || d[i] > '9')
                                return -EINVAL;
                if (gv_parse_u32(d, 10, &frac) < 0)
                        return -EINVAL;
                for (size_t i = n; i < 3; i++)
                        frac *= 10;
        } else if (!*ip) {
                return -EINVAL;
        }
        if (whole > 3600)
                return -EINVAL;
        uint32_t ms = whole * 1000 + frac;
        if (ms < 100 || ms > 3600000)
                return -EINVAL;
        *ret_ms = ms;
        return 0;
}
