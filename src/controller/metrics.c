/* SPDX-License-Identifier: MIT */
/*
 * metrics.c — the metrics history (metrics.h): entities and their ring buffers, fed one round
 * at a time with the agents' samples, read as the latest values, as columnar history and as the
 * Prometheus exposition (names in the style of dcgm-exporter, docs/api.md "Metrics").
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/metrics.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

enum kind { K_HOST, K_GPU, K_VM, K_SLICE, _K_MAX };

struct metric_def {
        const char *column; /* the history's column name */
        const char *unit;
        const char *prom;   /* the exposition's family */
        const char *help;
};

/* DCGM field names carried over (dcgm-exporter's default counters: DCGM_FI_DEV_GPU_UTIL "GPU
 * utilization (in %)", DCGM_FI_DEV_FB_USED "Framebuffer memory used (in MiB)",
 * DCGM_FI_DEV_POWER_USAGE "Power draw (in W)", DCGM_FI_DEV_GPU_TEMP "GPU temperature (in C)"),
 * lower-cased under gpuvirt_; hosts and VMs named the same way. */
static const struct metric_def defs_host[] = {
        { "cpu_util_pct", "%", "gpuvirt_host_cpu_util",
          "Host CPU utilization, all CPUs (in %)." },
        { "memory_used_mib", "MiB", "gpuvirt_host_mem_used",
          "Host memory used, MemTotal - MemAvailable (in MiB)." },
};
static const struct metric_def defs_gpu[] = {
        { "util_pct", "%", "gpuvirt_gpu_util", "GPU utilization (in %)." },
        { "memory_used_mib", "MiB", "gpuvirt_gpu_fb_used", "Framebuffer memory used (in MiB)." },
        { "power_w", "W", "gpuvirt_gpu_power_usage", "Power draw (in W)." },
        { "temperature_c", "C", "gpuvirt_gpu_temp", "GPU temperature (in C)." },
};
static const struct metric_def defs_vm[] = {
        { "cpu_util_pct", "%", "gpuvirt_vm_cpu_util",
          "VM (QEMU process) CPU utilization (in % of one core)." },
        { "rss_mib", "MiB", "gpuvirt_vm_mem_rss", "VM (QEMU process) resident memory (in MiB)." },
};
static const struct metric_def defs_slice[] = {
        { "util_pct", "%", "gpuvirt_vm_gpu_util",
          "Utilization of a VM's GPU slice: its vGPU's SM utilization (in %)." },
        { "memory_used_mib", "MiB", "gpuvirt_vm_gpu_fb_used",
          "Framebuffer memory used by a VM's GPU slice (in MiB)." },
};
static const struct {
        const char *name;
        const struct metric_def *defs;
        size_t n;
} kinds[_K_MAX] = {
        [K_HOST] = { "host", defs_host, ELEMENTSOF(defs_host) },
        [K_GPU] = { "gpu", defs_gpu, ELEMENTSOF(defs_gpu) },
        [K_VM] = { "vm", defs_vm, ELEMENTSOF(defs_vm) },
        [K_SLICE] = { "vm-gpu", defs_slice, ELEMENTSOF(defs_slice) },
};
#define MAX_METRICS 4

struct ring {
        float *fine;            /* fine_cap floats, slot = round % fine_cap */
        float *cmin, *cavg, *cmax; /* GV_METRICS_COARSE_POINTS each, slot = minute % POINTS */
        uint64_t last;          /* the last round written (slots up to it are valid) */
        int64_t coarse_last;    /* the last minute flushed to the coarse ring */
        int64_t acc_minute;     /* the minute being accumulated */
        double acc_min, acc_max, acc_sum;
        uint32_t acc_n;
        double value;           /* the latest value (NaN: null) */
};

struct entity {
        char *key;              /* "host/NAME", "gpu/HOST/PCI", "vm/NAME", "vm/NAME/gpu/SLOT" */
        enum kind kind;
        char *host, *vm, *gpu, *gpu_uuid, *mode, *profile, *model;
        int slot;
        uint64_t seen_round;
        int64_t seen_ms;
        bool vm_running;        /* K_VM: the phase seen this round was "running" */
        struct ring rings[MAX_METRICS];
        float *block;           /* every ring's storage */
        struct entity *hnext;   /* hash chain */
};

struct hostrec {
        char *name;
        json_t *sample;         /* the last sample answered, or NULL */
        uint64_t ok_round;      /* the last round it answered in (0: never) */
        int64_t ok_ms;
        int64_t seen_ms;        /* the last round it was mentioned in */
        char *error;            /* why the last round got nothing; NULL when it answered */
};

#define HASH_BUCKETS 4096u

struct gv_metrics {
        pthread_mutex_t mu;
        int interval_ms;
        size_t fine_cap;
        size_t max_series;
        uint64_t round;         /* rounds so far; round r has timestamp ts[r % fine_cap] */
        int64_t *ts;
        int64_t now_ms, minute;
        struct entity **ents;   /* in the order they appeared */
        size_t n_ents, n_series;
        uint64_t refused;       /* series not kept: over max_series */
        struct entity *hash[HASH_BUCKETS];
        struct hostrec *hosts;
        size_t n_hosts;
};

/* ---- construction ---- */

static size_t fine_cap_of(int interval_ms)
{
        return (size_t)((GV_METRICS_FINE_SPAN_MS + interval_ms - 1) / interval_ms);
}

static int clamp_interval(int interval_ms)
{
        return interval_ms < GV_METRICS_INTERVAL_MIN_MS   ? GV_METRICS_INTERVAL_MIN_MS
               : interval_ms > GV_METRICS_INTERVAL_MAX_MS ? GV_METRICS_INTERVAL_MAX_MS
                                                          : interval_ms;
}

size_t gv_metrics_series_bytes(int interval_ms)
{
        /* The rings, and an entity (with its labels, about 200 bytes) shared by 2 to 4 series:
         * counted as a third of one per series. */
        return (fine_cap_of(clamp_interval(interval_ms)) + 3 * GV_METRICS_COARSE_POINTS) *
                       sizeof(float) + sizeof(struct ring) + (sizeof(struct entity) + 200) / 3;
}

struct gv_metrics *gv_metrics_new(int interval_ms, size_t max_series)
{
        struct gv_metrics *m = xnew0(struct gv_metrics, 1);
        pthread_mutex_init(&m->mu, NULL);
        m->interval_ms = clamp_interval(interval_ms);
        m->fine_cap = fine_cap_of(m->interval_ms);
        m->max_series = max_series ? max_series : GV_METRICS_MAX_SERIES_DEFAULT;
        m->ts = xnew0(int64_t, m->fine_cap);
        return m;
}

static void entity_free(struct entity *e)
{
        free(e->key);
        free(e->host);
        free(e->vm);
        free(e->gpu);
        free(e->gpu_uuid);
        free(e->mode);
        free(e->profile);
        free(e->model);
        free(e->block);
        free(e);
}

struct gv_metrics *gv_metrics_free(struct gv_metrics *m)
{
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_ents; i++)
                entity_free(m->ents[i]);
        free(m->ents);
        for (size_t i = 0; i < m->n_hosts; i++) {
                free(m->hosts[i].name);
                free(m->hosts[i].error);
                json_decref(m->hosts[i].sample);
        }
        free(m->hosts);
        free(m->ts);
        pthread_mutex_destroy(&m->mu);
        free(m);
        return NULL;
}

size_t gv_metrics_series_count(struct gv_metrics *m)
{
        pthread_mutex_lock(&m->mu);
        size_t n = m->n_series;
        pthread_mutex_unlock(&m->mu);
        return n;
}

int gv_metrics_interval_ms(const struct gv_metrics *m)
{
        return m->interval_ms;
}

/* ---- entities ---- */

static unsigned hash_of(const char *s)
{
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 16777619u;
        return h % HASH_BUCKETS;
}

static struct entity *entity_find(struct gv_metrics *m, const char *key)
{
        for (struct entity *e = m->hash[hash_of(key)]; e; e = e->hnext)
                if (strcmp(e->key, key) == 0)
                        return e;
        return NULL;
}

/* The entity of key, made when new (NULL when the series cap is reached). */
static struct entity *entity_get(struct gv_metrics *m, const char *key, enum kind kind)
{
        struct entity *e = entity_find(m, key);
        if (e)
                return e;
        size_t n = kinds[kind].n;
        if (m->n_series + n > m->max_series) {
                m->refused += n;
                return NULL;
        }
        size_t per = m->fine_cap + 3 * GV_METRICS_COARSE_POINTS;
        e = xnew0(struct entity, 1);
        e->key = xstrdup(key);
        e->kind = kind;
        e->slot = -1;
        e->block = xreallocarray(NULL, per * n, sizeof(float));
        for (size_t i = 0; i < per * n; i++)
                e->block[i] = NAN;
        for (size_t i = 0; i < n; i++) {
                struct ring *r = &e->rings[i];
                r->fine = e->block + per * i;
                r->cmin = r->fine + m->fine_cap;
                r->cavg = r->cmin + GV_METRICS_COARSE_POINTS;
                r->cmax = r->cavg + GV_METRICS_COARSE_POINTS;
                r->last = m->round - 1; /* the rounds before it: NaN, a gap */
                r->coarse_last = m->minute - 1;
                r->acc_minute = m->minute;
                r->acc_min = INFINITY;
                r->acc_max = -INFINITY;
                r->value = NAN;
        }
        unsigned h = hash_of(key);
        e->hnext = m->hash[h];
        m->hash[h] = e;
        m->ents = xreallocarray(m->ents, m->n_ents + 1, sizeof(*m->ents));
        m->ents[m->n_ents++] = e;
        m->n_series += n;
        return e;
}

static void set_label(char **l, const char *v)
{
        if (v && *l && strcmp(*l, v) == 0)
                return;
        free(*l);
        *l = v ? xstrdup(v) : NULL;
}

static void flush_minute(struct ring *r)
{
        size_t s = (size_t)(r->acc_minute % GV_METRICS_COARSE_POINTS);
        r->cmin[s] = r->acc_n ? (float)r->acc_min : NAN;
        r->cmax[s] = r->acc_n ? (float)r->acc_max : NAN;
        r->cavg[s] = r->acc_n ? (float)(r->acc_sum / r->acc_n) : NAN;
        r->coarse_last = r->acc_minute;
}

/* Value v (NaN: null) for this round. */
static void ring_put(struct gv_metrics *m, struct ring *r, double v)
{
        uint64_t k = m->round;
        if (r->last < k) {
                uint64_t from = r->last + 1;
                if (k - from >= m->fine_cap)
                        from = k - m->fine_cap + 1;
                for (uint64_t j = from; j < k; j++)
                        r->fine[j % m->fine_cap] = NAN;
                r->last = k;
        }
        /* Written twice in one round (a migrating VM's running copy after its other one): the
         * slot takes the second value; the minute's accumulator keeps both. */
        r->fine[k % m->fine_cap] = (float)v;
        r->value = v;
        if (m->minute != r->acc_minute) {
                flush_minute(r);
                int64_t from = r->acc_minute + 1;
                if (m->minute - from > GV_METRICS_COARSE_POINTS)
                        from = m->minute - GV_METRICS_COARSE_POINTS;
                for (int64_t x = from; x < m->minute; x++) {
                        size_t s = (size_t)(x % GV_METRICS_COARSE_POINTS);
                        r->cmin[s] = r->cavg[s] = r->cmax[s] = NAN;
                }
                r->coarse_last = m->minute - 1;
                r->acc_minute = m->minute;
                r->acc_n = 0;
                r->acc_sum = 0;
                r->acc_min = INFINITY;
                r->acc_max = -INFINITY;
        }
        if (!isnan(v)) {
                r->acc_n++;
                r->acc_sum += v;
                if (v < r->acc_min)
                        r->acc_min = v;
                if (v > r->acc_max)
                        r->acc_max = v;
        }
}

static double num(const json_t *o, const char *key)
{
        const json_t *v = json_object_get(o, key);
        return json_is_number(v) ? json_number_value(v) : NAN;
}

static const char *str(const json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

/* ---- rounds ---- */

void gv_metrics_round_begin(struct gv_metrics *m, int64_t now_ms)
{
        pthread_mutex_lock(&m->mu);
        if (m->round && now_ms <= m->now_ms)
                now_ms = m->now_ms + 1;
        m->round++;
        m->now_ms = now_ms;
        m->minute = now_ms / GV_METRICS_COARSE_STEP_MS;
        m->ts[m->round % m->fine_cap] = now_ms;
        pthread_mutex_unlock(&m->mu);
}

static struct hostrec *host_get(struct gv_metrics *m, const char *name)
{
        for (size_t i = 0; i < m->n_hosts; i++)
                if (strcmp(m->hosts[i].name, name) == 0)
                        return &m->hosts[i];
        m->hosts = xreallocarray(m->hosts, m->n_hosts + 1, sizeof(*m->hosts));
        struct hostrec *h = &m->hosts[m->n_hosts++];
        *h = (struct hostrec){ .name = xstrdup(name) };
        return h;
}

static void seen(struct gv_metrics *m, struct entity *e, const char *host)
{
        e->seen_round = m->round;
        e->seen_ms = m->now_ms;
        set_label(&e->host, host);
}

/* The profile the controller's placement gives slot i of a VM whose GPUs (the agent's list)
 * are gpus: the placement's entries on the same GPU, taken in order (a VM may hold two slices
 * of one GPU), or NULL. */
static const char *profile_of(const json_t *profiles, const char *vm, const json_t *gpus,
                              size_t i)
{
        const char *pci = str(json_array_get(gpus, i), "gpu");
        size_t before = 0, k;
        json_t *x;
        if (!pci)
                return NULL;
        for (k = 0; k < i; k++)
                if (str(json_array_get(gpus, k), "gpu") &&
                    strcmp(str(json_array_get(gpus, k), "gpu"), pci) == 0)
                        before++;
        json_array_foreach(json_object_get(profiles, vm), k, x) {
                if (!str(x, "gpu") || strcmp(str(x, "gpu"), pci) != 0)
                        continue;
                if (before-- == 0)
                        return str(x, "profile");
        }
        return NULL;
}

static const char *gpu_uuid_of(const json_t *sample, const char *pci)
{
        size_t i;
        json_t *g;
        json_array_foreach(json_object_get(sample, "gpus"), i, g)
                if (pci && str(g, "gpu") && strcmp(str(g, "gpu"), pci) == 0)
                        return str(g, "uuid");
        return NULL;
}

int gv_metrics_host_sample(struct gv_metrics *m, const char *host, const json_t *sample,
                           const json_t *profiles, struct gv_error **err)
{
        const json_t *hs = json_object_get(sample, "host");
        const json_t *gpus = json_object_get(sample, "gpus"), *vms = json_object_get(sample, "vms");
        char key[512];
        size_t i;
        json_t *g, *v;

        if (!json_is_object(sample) || !json_is_object(hs) || !json_is_array(gpus) ||
            !json_is_array(vms))
                return gv_error_set(err, EINVAL, "host '%s': the metrics sample has no 'host' "
                                    "object or no 'gpus' and 'vms' arrays; is the agent older "
                                    "than the controller?", host);
        pthread_mutex_lock(&m->mu);
        struct hostrec *h = host_get(m, host);
        json_decref(h->sample);
        h->sample = json_deep_copy(sample);
        h->ok_round = m->round;
        h->ok_ms = m->now_ms;
        h->seen_ms = m->now_ms;
        free(TAKE_PTR(h->error));

        snprintf(key, sizeof(key), "host/%s", host);
        struct entity *e = entity_get(m, key, K_HOST);
        if (e) {
                seen(m, e, host);
                ring_put(m, &e->rings[0], num(json_object_get(hs, "cpu"), "util_pct"));
                ring_put(m, &e->rings[1], num(json_object_get(hs, "memory"), "used_mib"));
        }
        json_array_foreach(gpus, i, g) {
                const char *pci = str(g, "gpu");
                if (!pci)
                        continue;
                snprintf(key, sizeof(key), "gpu/%s/%s", host, pci);
                e = entity_get(m, key, K_GPU);
                if (!e)
                        continue;
                seen(m, e, host);
                set_label(&e->gpu, pci);
                set_label(&e->gpu_uuid, str(g, "uuid"));
                set_label(&e->mode, str(g, "mode"));
                set_label(&e->model, str(g, "model"));
                e->slot = (int)json_integer_value(json_object_get(g, "index"));
                ring_put(m, &e->rings[0], num(g, "util_pct"));
                ring_put(m, &e->rings[1], num(g, "memory_used_mib"));
                ring_put(m, &e->rings[2], num(g, "power_mw") / 1000.0);
                ring_put(m, &e->rings[3], num(g, "temperature_c"));
        }
        json_array_foreach(vms, i, v) {
                const char *name = str(v, "vm"), *phase = str(v, "phase");
                bool running = phase && strcmp(phase, "running") == 0;
                size_t j;
                json_t *s;
                if (!name)
                        continue;
                snprintf(key, sizeof(key), "vm/%s", name);
                e = entity_get(m, key, K_VM);
                if (!e)
                        continue;
                /* During a live migration both hosts report the VM: the running copy wins. */
                if (e->seen_round == m->round && e->host && strcmp(e->host, host) != 0 &&
                    (e->vm_running || !running))
                        continue;
                seen(m, e, host);
                set_label(&e->vm, name);
                e->vm_running = running;
                ring_put(m, &e->rings[0], num(json_object_get(v, "cpu"), "util_pct"));
                ring_put(m, &e->rings[1], num(json_object_get(v, "memory"), "rss_mib"));
                json_array_foreach(json_object_get(v, "gpus"), j, s) {
                        const char *pci = str(s, "gpu");
                        snprintf(key, sizeof(key), "vm/%s/gpu/%zu", name, j);
                        struct entity *x = entity_get(m, key, K_SLICE);
                        if (!x)
                                continue;
                        seen(m, x, host);
                        set_label(&x->vm, name);
                        set_label(&x->gpu, pci);
                        set_label(&x->gpu_uuid, gpu_uuid_of(sample, pci));
                        set_label(&x->mode, str(s, "mode"));
                        const char *prof = profile_of(profiles, name, json_object_get(v, "gpus"), j);
                        set_label(&x->profile, prof ? prof : str(s, "profile"));
                        x->slot = (int)j;
                        ring_put(m, &x->rings[0], num(s, "util_pct"));
                        ring_put(m, &x->rings[1], num(s, "memory_used_mib"));
                }
        }
        pthread_mutex_unlock(&m->mu);
        return 0;
}

void gv_metrics_host_failed(struct gv_metrics *m, const char *host, const char *why)
{
        pthread_mutex_lock(&m->mu);
        struct hostrec *h = host_get(m, host);
        h->seen_ms = m->now_ms;
        set_label(&h->error, why ? why : "no answer");
        pthread_mutex_unlock(&m->mu);
}

void gv_metrics_round_end(struct gv_metrics *m)
{
        pthread_mutex_lock(&m->mu);
        size_t o = 0;
        for (size_t i = 0; i < m->n_ents; i++) {
                struct entity *e = m->ents[i];
                if (m->now_ms - e->seen_ms <= GV_METRICS_DROP_AFTER_MS) {
                        m->ents[o++] = e;
                        continue;
                }
                struct entity **pp = &m->hash[hash_of(e->key)];
                while (*pp != e)
                        pp = &(*pp)->hnext;
                *pp = e->hnext;
                m->n_series -= kinds[e->kind].n;
                entity_free(e);
        }
        m->n_ents = o;
        o = 0;
        for (size_t i = 0; i < m->n_hosts; i++) {
                struct hostrec *h = &m->hosts[i];
                if (m->now_ms - h->seen_ms <= GV_METRICS_DROP_AFTER_MS) {
                        m->hosts[o++] = *h;
                        continue;
                }
                free(h->name);
                free(h->error);
                json_decref(h->sample);
        }
        m->n_hosts = o;
        pthread_mutex_unlock(&m->mu);
}

/* ---- reading ---- */

static const struct hostrec *host_find(const struct gv_metrics *m, const char *name)
{
        for (size_t i = 0; name && i < m->n_hosts; i++)
                if (strcmp(m->hosts[i].name, name) == 0)
                        return &m->hosts[i];
        return NULL;
}

static bool host_fresh(const struct gv_metrics *m, const struct hostrec *h)
{
        return h && h->ok_round && m->now_ms - h->ok_ms <= GV_METRICS_STALE_MS;
}

/* Whether the entity's latest values are current: its host answered recently and the entity
 * was in that answer. */
static bool entity_current(const struct gv_metrics *m, const struct entity *e)
{
        const struct hostrec *h = host_find(m, e->host);
        return host_fresh(m, h) && e->seen_round == h->ok_round;
}

static int cmp_vm(const void *a, const void *b)
{
        return strcmp(str(*(json_t *const *)a, "vm") ?: "", str(*(json_t *const *)b, "vm") ?: "");
}

static json_t *ref_or(json_t *v, json_t *fallback)
{
        if (v) {
                json_decref(fallback);
                return json_incref(v);
        }
        return fallback;
}

/* A VM of a host's sample with its host, and each GPU slice's GPU UUID and profile. */
static json_t *vm_latest(const struct gv_metrics *m, const char *host, const json_t *v)
{
        json_t *x = json_deep_copy(v), *g;
        char key[512];
        size_t k;
        json_object_set_new(x, "host", json_string(host));
        json_array_foreach(json_object_get(x, "gpus"), k, g) {
                snprintf(key, sizeof(key), "vm/%s/gpu/%zu", str(v, "vm"), k);
                const struct entity *e = entity_find((struct gv_metrics *)m, key);
                json_object_set_new(g, "gpu_uuid", e && e->gpu_uuid ? json_string(e->gpu_uuid)
                                                                    : json_null());
                json_object_set_new(g, "profile", e && e->profile ? json_string(e->profile)
                                                                  : json_null());
        }
        return x;
}

json_t *gv_metrics_latest(struct gv_metrics *m)
{
        json_t *hosts = json_array(), *byvm = json_object();
        pthread_mutex_lock(&m->mu);
        for (size_t i = 0; i < m->n_hosts; i++) {
                const struct hostrec *h = &m->hosts[i];
                bool fresh = host_fresh(m, h);
                const json_t *s = fresh ? h->sample : NULL;
                const json_t *hs = json_object_get(s, "host");
                const char *error = h->error ? h->error
                                  : fresh    ? NULL
                                             : "no sample for over 10 s";
                json_t *o = json_object();
                json_object_set_new(o, "host", json_string(h->name));
                json_object_set_new(o, "timestamp_ms",
                                    h->ok_round ? json_integer(h->ok_ms) : json_null());
                json_object_set_new(o, "age_ms", h->ok_round ? json_integer(m->now_ms - h->ok_ms)
                                                             : json_null());
                json_object_set_new(o, "error", error ? json_string(error) : json_null());
                json_object_set_new(o, "cpu", ref_or(json_object_get(hs, "cpu"), json_null()));
                json_object_set_new(o, "memory",
                                    ref_or(json_object_get(hs, "memory"), json_null()));
                json_object_set_new(o, "gpus", ref_or(json_object_get(s, "gpus"), json_array()));
                json_array_append_new(hosts, o);
                size_t j;
                json_t *v;
                json_array_foreach(json_object_get(s, "vms"), j, v) {
                        const char *name = str(v, "vm"), *ph = str(v, "phase");
                        if (!name)
                                continue;
                        /* A live migration's two copies: the running one wins. */
                        if (json_object_get(byvm, name) && (!ph || strcmp(ph, "running") != 0))
                                continue;
                        json_object_set_new(byvm, name, vm_latest(m, h->name, v));
                }
        }
        json_t *out = json_pack("{s:I, s:i, s:I, s:I, s:o}", "timestamp_ms",
                                (json_int_t)m->now_ms, "interval_ms", m->interval_ms, "series",
                                (json_int_t)m->n_series, "series_refused",
                                (json_int_t)m->refused, "hosts", hosts);
        pthread_mutex_unlock(&m->mu);

        size_t n = json_object_size(byvm), i = 0;
        json_t **arr = xreallocarray(NULL, n ? n : 1, sizeof(json_t *)), *v;
        const char *k;
        json_object_foreach(byvm, k, v)
                arr[i++] = json_incref(v);
        json_decref(byvm);
        qsort(arr, n, sizeof(*arr), cmp_vm);
        json_t *vms = json_array();
        for (i = 0; i < n; i++)
                json_array_append_new(vms, arr[i]);
        free(arr);
        json_object_set_new(out, "vms", vms);
        return out;
}

/* ---- history ---- */

static const struct {
        const char *name;
        int64_t span_ms;
        bool coarse;
} ranges[] = {
        { "5m", 5 * 60 * 1000, false },   { "15m", 15 * 60 * 1000, false },
        { "1h", 60 * 60 * 1000, false },  { "6h", 6 * 60 * 60 * 1000, true },
        { "24h", 24 * 60 * 60 * 1000, true },
};

/* A float's value as JSON: an integer when whole, else the shortest decimal a float needs
 * (so 0.1f is 0.1, not 0.10000000149011612). */
static json_t *jnum(double v)
{
        if (isnan(v))
                return json_null();
        if (fabs(v) < 9e15 && v == (double)(int64_t)v)
                return json_integer((json_int_t)v);
        char b[32];
        snprintf(b, sizeof(b), "%.7g", v);
        return json_real(strtod(b, NULL));
}

static double fine_at(const struct gv_metrics *m, const struct ring *r, uint64_t j)
{
        if (j > r->last || j + m->fine_cap <= r->last)
                return NAN;
        return r->fine[j % m->fine_cap];
}

/* min, avg, max of minute x: *ret[3]. */
static void coarse_at(const struct ring *r, int64_t x, double ret[3])
{
        if (x == r->acc_minute) {
                ret[0] = r->acc_n ? r->acc_min : NAN;
                ret[1] = r->acc_n ? r->acc_sum / r->acc_n : NAN;
                ret[2] = r->acc_n ? r->acc_max : NAN;
        } else if (x <= r->coarse_last && x > r->coarse_last - GV_METRICS_COARSE_POINTS) {
                size_t s = (size_t)(x % GV_METRICS_COARSE_POINTS);
                ret[0] = r->cmin[s];
                ret[1] = r->cavg[s];
                ret[2] = r->cmax[s];
        } else {
                ret[0] = ret[1] = ret[2] = NAN;
        }
}

struct window {
        bool coarse;
        uint64_t first_round;  /* fine */
        int64_t first_minute;  /* coarse */
        size_t n;
};

static void add_columns(const struct gv_metrics *m, const struct entity *e, const char *prefix,
                        const struct window *w, json_t *cols)
{
        for (size_t i = 0; i < kinds[e->kind].n; i++) {
                const struct metric_def *d = &kinds[e->kind].defs[i];
                const struct ring *r = &e->rings[i];
                json_t *vals = json_array(), *mins = NULL, *maxs = NULL;
                char name[64];
                snprintf(name, sizeof(name), "%s%s", prefix, d->column);
                if (w->coarse) {
                        mins = json_array();
                        maxs = json_array();
                }
                for (size_t k = 0; k < w->n; k++) {
                        if (w->coarse) {
                                double x[3];
                                coarse_at(r, w->first_minute + (int64_t)k, x);
                                json_array_append_new(mins, jnum(x[0]));
                                json_array_append_new(vals, jnum(x[1]));
                                json_array_append_new(maxs, jnum(x[2]));
                        } else {
                                json_array_append_new(vals, jnum(fine_at(m, r, w->first_round +
                                                                               k)));
                        }
                }
                json_t *c = json_pack("{s:s, s:s, s:o}", "name", name, "unit", d->unit, "values",
                                      vals);
                if (e->kind == K_SLICE)
                        json_object_set_new(c, "slot", json_integer(e->slot));
                if (w->coarse) {
                        json_object_set_new(c, "min", mins);
                        json_object_set_new(c, "max", maxs);
                }
                json_array_append_new(cols, c);
        }
}

static json_t *labels_of(const struct entity *e)
{
        json_t *l = json_object();
        const struct {
                const char *k, *v;
        } all[] = { { "host", e->host }, { "vm", e->vm }, { "gpu", e->gpu },
                    { "gpu_uuid", e->gpu_uuid }, { "model", e->model }, { "mode", e->mode },
                    { "profile", e->profile } };
        for (size_t i = 0; i < ELEMENTSOF(all); i++)
                if (all[i].v)
                        json_object_set_new(l, all[i].k, json_string(all[i].v));
        if (e->kind == K_SLICE)
                json_object_set_new(l, "slot", json_integer(e->slot));
        return l;
}

/* series checked: "host/NAME", "gpu/HOST/PCI" or "vm/NAME", each part non-empty and free of
 * '/' (a PCI address has none). *ret_kind. */
static bool series_valid(const char *s, enum kind *ret_kind)
{
        static const struct {
                const char *prefix;
                enum kind kind;
                int slashes;
        } forms[] = { { "host/", K_HOST, 0 }, { "gpu/", K_GPU, 1 }, { "vm/", K_VM, 0 } };
        for (size_t i = 0; i < ELEMENTSOF(forms); i++) {
                size_t pl = strlen(forms[i].prefix);
                if (strncmp(s, forms[i].prefix, pl) != 0)
                        continue;
                const char *rest = s + pl;
                int slashes = 0;
                if (!*rest || *rest == '/' || rest[strlen(rest) - 1] == '/' || strstr(rest, "//"))
                        return false;
                for (const char *c = rest; *c; c++)
                        slashes += *c == '/';
                if (slashes != forms[i].slashes)
                        return false;
                *ret_kind = forms[i].kind;
                return true;
        }
        return false;
}

int gv_metrics_history(struct gv_metrics *m, const char *series, const char *range,
                       json_t **ret, struct gv_error **err)
{
        enum kind kind;
        size_t ri;

        if (!series_valid(series, &kind))
                return gv_error_set(err, EINVAL, "series '%s' is not valid; use host/HOST, "
                                    "gpu/HOST/PCI (e.g. gpu/node-a/0000:18:00.0) or vm/VM.",
                                    series);
        if (!range)
                range = "1h";
        for (ri = 0; ri < ELEMENTSOF(ranges); ri++)
                if (strcmp(ranges[ri].name, range) == 0)
                        break;
        if (ri == ELEMENTSOF(ranges))
                return gv_error_set(err, EINVAL, "range '%s' is not valid; valid: 5m, 15m, 1h "
                                    "(every sample), 6h, 24h (per minute: min, avg, max).",
                                    range);

        pthread_mutex_lock(&m->mu);
        const struct entity *e = entity_find(m, series);
        if (!e) {
                pthread_mutex_unlock(&m->mu);
                return gv_error_set(err, ENOENT, "No metrics for '%s': nothing by that name was "
                                    "reported in the last %d minutes (GET /api/v1/metrics lists "
                                    "what is collected).", series,
                                    GV_METRICS_DROP_AFTER_MS / 60000);
        }
        struct window w = { .coarse = ranges[ri].coarse };
        json_t *ts = json_array();
        if (w.coarse) {
                int64_t n = ranges[ri].span_ms / GV_METRICS_COARSE_STEP_MS;
                w.first_minute = m->minute - n + 1;
                w.n = (size_t)n;
                for (size_t k = 0; k < w.n; k++)
                        json_array_append_new(ts, json_integer((w.first_minute + (int64_t)k) *
                                                               GV_METRICS_COARSE_STEP_MS));
        } else {
                uint64_t n = (uint64_t)(ranges[ri].span_ms / m->interval_ms);
                if (n > m->fine_cap)
                        n = m->fine_cap;
                if (n > m->round)
                        n = m->round;
                w.first_round = m->round - n + 1;
                w.n = (size_t)n;
                for (size_t k = 0; k < w.n; k++)
                        json_array_append_new(ts, json_integer(m->ts[(w.first_round + k) %
                                                                    m->fine_cap]));
        }
        json_t *cols = json_array(), *slices = NULL;
        add_columns(m, e, "", &w, cols);
        if (kind == K_VM) {
                char key[512];
                slices = json_array();
                for (int slot = 0; slot < 64; slot++) {
                        snprintf(key, sizeof(key), "%s/gpu/%d", series, slot);
                        const struct entity *x = entity_find(m, key);
                        if (!x)
                                continue;
                        char prefix[32];
                        snprintf(prefix, sizeof(prefix), "gpu%d_", slot);
                        add_columns(m, x, prefix, &w, cols);
                        json_array_append_new(slices, labels_of(x));
                }
        }
        json_t *out = json_pack("{s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:o}", "series", series,
                                "kind", kinds[kind].name, "range", ranges[ri].name, "step_ms",
                                (json_int_t)(w.coarse ? GV_METRICS_COARSE_STEP_MS
                                                      : m->interval_ms),
                                "aggregate", w.coarse ? "minute" : "none", "labels",
                                labels_of(e), "timestamps_ms", ts, "columns", cols);
        if (slices)
                json_object_set_new(out, "gpus", slices);
        pthread_mutex_unlock(&m->mu);
        *ret = out;
        return 0;
}

/* ---- the exposition ---- */

static void family(struct gv_prom *p, const struct gv_metrics *m, const bool *current,
                   enum kind kind, size_t metric)
{
        const struct metric_def *d = &kinds[kind].defs[metric];
        gv_prom_family(p, d->prom, "gauge", d->help);
        for (size_t i = 0; i < m->n_ents; i++) {
                const struct entity *e = m->ents[i];
                if (e->kind != kind || !current[i])
                        continue;
                char slot[DECIMAL_STR_MAX(int)];
                snprintf(slot, sizeof(slot), "%d", e->slot);
                struct gv_prom_label l[] = {
                        { "host", e->host },
                        { "vm", e->vm },
                        { "slot", kind == K_SLICE ? slot : NULL },
                        { "gpu", e->gpu },
                        { "gpu_uuid", e->gpu_uuid },
                        { "model", e->model },
                        { "mode", e->mode },
                        { "profile", e->profile },
                };
                gv_prom_sample(p, d->prom, l, ELEMENTSOF(l), e->rings[metric].value);
        }
}

char *gv_metrics_exposition(struct gv_metrics *m, size_t *ret_len)
{
        struct gv_prom p = { 0 };
        pthread_mutex_lock(&m->mu);
        bool *current = xnew0(bool, m->n_ents ? m->n_ents : 1);
        for (size_t i = 0; i < m->n_ents; i++)
                current[i] = entity_current(m, m->ents[i]);

        gv_prom_family(&p, "gpuvirt_host_up", "gauge",
                       "Whether the host's agent answered the controller's last metrics "
                       "collections (1) or not for over 10 s (0).");
        for (size_t i = 0; i < m->n_hosts; i++) {
                struct gv_prom_label l[] = { { "host", m->hosts[i].name } };
                gv_prom_sample(&p, "gpuvirt_host_up", l, 1, host_fresh(m, &m->hosts[i]));
        }
        for (enum kind k = 0; k < _K_MAX; k++)
                for (size_t i = 0; i < kinds[k].n; i++)
                        family(&p, m, current, k, i);

        gv_prom_family(&p, "gpuvirt_vm_gpu_info", "gauge",
                       "A VM's GPU slice: the GPU it is on (gpu, gpu_uuid), its mode and "
                       "profile; always 1.");
        for (size_t i = 0; i < m->n_ents; i++) {
                const struct entity *e = m->ents[i];
                if (e->kind != K_SLICE || !current[i])
                        continue;
                char slot[DECIMAL_STR_MAX(int)];
                snprintf(slot, sizeof(slot), "%d", e->slot);
                struct gv_prom_label l[] = {
                        { "host", e->host },         { "vm", e->vm },
                        { "slot", slot },            { "gpu", e->gpu },
                        { "gpu_uuid", e->gpu_uuid ? e->gpu_uuid : "" },
                        { "mode", e->mode },         { "profile", e->profile ? e->profile : "" },
                };
                gv_prom_sample(&p, "gpuvirt_vm_gpu_info", l, ELEMENTSOF(l), 1);
        }
        gv_prom_family(&p, "gpuvirt_metrics_series", "gauge",
                       "Series kept in the controller's metrics history.");
        gv_prom_sample(&p, "gpuvirt_metrics_series", NULL, 0, (double)m->n_series);
        gv_prom_family(&p, "gpuvirt_metrics_series_refused_total", "counter",
                       "Series not kept because the history was full.");
        gv_prom_sample(&p, "gpuvirt_metrics_series_refused_total", NULL, 0,
                       (double)m->refused);
        free(current);
        pthread_mutex_unlock(&m->mu);
        return gv_prom_steal(&p, ret_len);
}
