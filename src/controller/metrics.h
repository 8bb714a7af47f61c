/* SPDX-License-Identifier: MIT */
/*
 * metrics.h — the controller's metrics history (issue 7; docs/api.md "Metrics"): what the
 * agents' samplers report (GET /v1/metrics, docs/agent.md "Metrics"), kept in memory as ring
 * buffers per series, served as the latest values, as columnar history and as a Prometheus
 * exposition. Not for the API layer: api.c reaches it through controller.h.
 *
 * Series. An entity is a host ("host/NAME"), a GPU ("gpu/HOST/PCI"), a VM ("vm/NAME") or one GPU
 * slice of a VM ("vm/NAME/gpu/SLOT", SLOT its index in the VM's GPU list); each has a fixed set
 * of metrics (host: cpu_util_pct, memory_used_mib; GPU: util_pct, memory_used_mib, power_w,
 * temperature_c; VM: cpu_util_pct, rss_mib; slice: util_pct, memory_used_mib). A series is one
 * metric of one entity.
 *
 * Rings. Every collection round has one timestamp (the controller's clock when it began), so
 * every series shares one time axis. Per series:
 *   fine    one float per round, 1 h of rounds (3600 at the default 1 s interval)
 *   coarse  min, avg and max per minute, 24 h (1440 minutes), the current minute from a running
 *           accumulator
 * A value the agent gave as null, a round in which the host did not answer, and the rounds
 * before a series existed are NaN: null in the history, a gap, never zero.
 *
 * Memory: gv_metrics_series_bytes(interval) per series (31.7 KiB at 1 s: 3600 × 4 bytes fine,
 * 1440 × 12 bytes coarse, plus the entity's labels), at most max_series series (new series past
 * the cap are not kept and are counted); an entity not reported for GV_METRICS_DROP_AFTER_MS
 * (a deleted VM, a GPU gone, a host removed) is dropped with its rings.
 *
 * Thread safety: every call takes the history's own mutex, a leaf lock (nothing else is taken
 * while it is held; see controller-internal.h).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/macro.h"

#define GV_METRICS_INTERVAL_MIN_MS 250
#define GV_METRICS_INTERVAL_MAX_MS 60000
#define GV_METRICS_INTERVAL_DEFAULT_MS 1000
#define GV_METRICS_FINE_SPAN_MS (3600 * 1000)    /* the fine ring: 1 h at the interval */
#define GV_METRICS_COARSE_STEP_MS (60 * 1000)    /* the coarse ring: 1 min per point ... */
#define GV_METRICS_COARSE_POINTS 1440            /* ... for 24 h */
#define GV_METRICS_MAX_SERIES_DEFAULT 20000
#define GV_METRICS_DROP_AFTER_MS (15 * 60 * 1000)
/* A host whose last answer is older than this has no current values (absent from /metrics). */
#define GV_METRICS_STALE_MS 10000

struct gv_metrics;

/* interval_ms within GV_METRICS_INTERVAL_{MIN,MAX}_MS (clamped); max_series 0: the default. */
struct gv_metrics *gv_metrics_new(int interval_ms, size_t max_series);
struct gv_metrics *gv_metrics_free(struct gv_metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_metrics *, gv_metrics_free);

/* Bytes one series takes at this interval (its rings and its share of the entity). */
size_t gv_metrics_series_bytes(int interval_ms);
size_t gv_metrics_series_count(struct gv_metrics *m);
int gv_metrics_interval_ms(const struct gv_metrics *m);

/* ---- feeding (the collector; tests and the benchmark feed synthetic samples) ---- */

/* A round: begin with its timestamp, then one gv_metrics_host_sample() or
 * gv_metrics_host_failed() per host, then end (drops entities unseen for
 * GV_METRICS_DROP_AFTER_MS). A timestamp not after the previous round's is moved 1 ms past it. */
void gv_metrics_round_begin(struct gv_metrics *m, int64_t now_ms);
/* One agent's sample (GET /v1/metrics, docs/agent.md) for this round. profiles: what the
 * controller's placements say each VM's GPUs are, {"VM": [{"gpu": PCI, "profile": NAME}, ...]}
 * in the VM's GPU order, or NULL. -EINVAL when the sample is not an agent's sample. */
int gv_metrics_host_sample(struct gv_metrics *m, const char *host, const json_t *sample,
                           const json_t *profiles, struct gv_error **err);
/* The host did not answer this round (or is down): its series get a gap; why is shown. */
void gv_metrics_host_failed(struct gv_metrics *m, const char *host, const char *why);
void gv_metrics_round_end(struct gv_metrics *m);

/* ---- reading ---- */

/* The latest values of the whole cluster: {"timestamp_ms", "interval_ms", "series",
 * "hosts": [...], "vms": [...]} (docs/api.md "Metrics"). */
json_t *gv_metrics_latest(struct gv_metrics *m);
/* The history of one entity as columnar arrays. series "host/NAME", "gpu/HOST/PCI" or
 * "vm/NAME"; range one of "5m", "15m", "1h" (every round), "6h", "24h" (per minute: avg,
 * min, max); NULL: "1h". -EINVAL naming the valid forms, -ENOENT for an entity not collected. */
int gv_metrics_history(struct gv_metrics *m, const char *series, const char *range,
                       json_t **ret, struct gv_error **err);
/* The Prometheus text exposition (format 0.0.4) of the current values, NUL-terminated. */
char *gv_metrics_exposition(struct gv_metrics *m, size_t *ret_len);

/* ---- the exposition writer (metrics-prom.c), exposed for tests ---- */

struct gv_prom {
        char *buf;
        size_t len, cap;
};
struct gv_prom_label {
        const char *name;
        const char *value; /* NULL: the label is left out */
};
/* "# HELP name help" (help escaped: '\\' and newline) and "# TYPE name type". */
void gv_prom_family(struct gv_prom *p, const char *name, const char *type, const char *help);
/* "name{l="v",...} value": label values escaped ('\\', '"', newline); a NaN value writes
 * nothing (absent, never 0); infinities as +Inf/-Inf. */
void gv_prom_sample(struct gv_prom *p, const char *name, const struct gv_prom_label *labels,
                    size_t n_labels, double value);
/* The text so far (NUL-terminated, owned by the caller); p is emptied. */
char *gv_prom_steal(struct gv_prom *p, size_t *ret_len);
void gv_prom_done(struct gv_prom *p);
