/* SPDX-License-Identifier: MIT */
/*
 * controller.h — the controller (gpuvirtd in controller role; docs/api.md): every host, GPU,
 * slice and VM of the cluster, in the store (src/store) and, for placement, in memory
 * (src/sched). It places requests, reserves in the store (compare-and-swap on the host's
 * allocation document), drives the agents over their HTTP API, and keeps operations and events.
 *
 * The API layer (api-*.c) is thin: it parses, checks roles, and calls these. Every call is
 * thread-safe. Errors are -errno with a gv_error whose message says what to fix; the HTTP status
 * comes from the errno (src/http/problem.c): -ENOENT 404, -EEXIST/-EBUSY 409, -ENOSPC 409
 * (no capacity, with the engine's explanation), -EINVAL 400, -EACCES 401, -EPERM 403.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

struct gv_controller_config {
        const char *store_url;        /* required: "sqlite:PATH" */
        int host_down_after_ms;       /* no heartbeat for this long: host down; 0: 15 s */
        int poll_interval_ms;         /* inventory and VM state polled from each agent; 0: 2 s */
        int agent_timeout_ms;         /* one agent call; 0: 120 s (a start may take a while) */
        int migration_stall_ms;       /* a transfer that moves nothing this long fails; 0: 60 s */
        const char *image_dir;        /* where uploaded images are kept; NULL: no uploads */
        int metrics_interval_ms;      /* metrics collected from every agent; 0: 1 s (250..60000) */
        double api_rate;              /* requests a second per token; 0: 50 */
        unsigned api_burst;           /* ... of which at once; 0: 100 */
        unsigned api_max_inflight;    /* requests served at once (any token, either socket);
                                       * changes may take half; past it 503. 0: 64 */
        int audit_retention_days;     /* audit records older are dropped; 0: 90; < 0: never */
};

struct gv_controller;

int gv_controller_new(const struct gv_controller_config *cfg, struct gv_controller **ret,
                      struct gv_error **err);
/* Waits for running operations to reach a safe point (they are resumed at the next start). */
struct gv_controller *gv_controller_free(struct gv_controller *c);

/* ---- authentication (auth.c) ---- */

/* Cluster roles, lowest first: a route needs one of them (api.h). A member is not above a
 * viewer: it reaches only its own tenant's VMs and never anything cluster-wide (docs/security.md,
 * "Roles"). */
enum gv_role {
        GV_ROLE_MEMBER,
        GV_ROLE_VIEWER,
        GV_ROLE_OPERATOR,
        GV_ROLE_ADMIN,
        _GV_ROLE_MAX,
        _GV_ROLE_INVALID = -EINVAL,
};
const char *gv_role_to_string(enum gv_role r);
enum gv_role gv_role_from_string(const char *s);

/* Who is asking: from a token, or the local UNIX socket (admin, no token). */
struct gv_principal {
        enum gv_role role;
        char token_id[16];  /* "" on the UNIX socket */
        char name[64];      /* the token's name; "" on the UNIX socket */
        char tenant[64];    /* a member's tenant; "" for the cluster roles */
};

/* "Bearer SECRET" (the Authorization header's value) → who it is. -EACCES with a message when
 * it is missing, malformed or unknown (constant-time comparison of hashes). */
int gv_controller_authenticate(struct gv_controller *c, const char *authorization,
                               struct gv_principal *ret, struct gv_error **err);
/* A new token: *ret {"id", "name", "role", "tenant"?, "token": SECRET, "created_at"}; only its
 * SHA-256 is stored. A member token names its tenant (which must exist); the other roles take
 * none (NULL). */
int gv_controller_token_create(struct gv_controller *c, const char *name, enum gv_role role,
                               const char *tenant, json_t **ret, struct gv_error **err);
json_t *gv_controller_tokens(struct gv_controller *c);
int gv_controller_token_delete(struct gv_controller *c, const char *id, struct gv_error **err);

/* ---- request rate per token (ratelimit.c) ---- */

/* Take one request from the bucket of token `key`: true when there was one; false with
 * *ret_retry_s, the seconds until there is. */
bool gv_controller_rate_take(struct gv_controller *c, const char *key, double *ret_retry_s);
double gv_controller_rate_limit(struct gv_controller *c);
unsigned gv_controller_rate_burst(struct gv_controller *c);

/* Requests in flight (R17; Kubernetes caps in-flight requests, total and mutating [S43]): enter
 * before serving, leave after. false when the controller already serves its maximum, or half of
 * it in changes for a change: the caller answers 503 with Retry-After. *ret_max: the cap hit. */
bool gv_controller_inflight_enter(struct gv_controller *c, bool change, unsigned *ret_max);
void gv_controller_inflight_leave(struct gv_controller *c, bool change);
unsigned gv_controller_inflight_max(struct gv_controller *c);

/* ---- hosts and GPUs (hosts.c) ---- */

/* An agent registers (or re-registers with a new endpoint): the controller reads its inventory
 * at once (-EHOSTDOWN with the reason when it cannot reach it). *ret: the host. */
int gv_controller_host_register(struct gv_controller *c, const char *name, const char *endpoint,
                                json_t **ret, struct gv_error **err);
/* The same with the agent's secret (64 hex digits, or NULL for none): kept in the host's
 * document in the store (never in an API answer or event) and sent as "Authorization: Bearer
 * SECRET" on every call to the agent, this registration's first one included. An endpoint may
 * be unix:PATH, http://HOST:PORT or https://HOST:PORT (verified against the process's CA file,
 * gv_http_client_set_ca_file()). */
int gv_controller_host_register_agent(struct gv_controller *c, const char *name,
                                      const char *endpoint, const char *agent_secret,
                                      json_t **ret, struct gv_error **err);
int gv_controller_host_heartbeat(struct gv_controller *c, const char *name, json_t **ret,
                                 struct gv_error **err);
/* Maintenance (drain.c): body {"dry_run"?, "passthrough"?: "offline"|"stop"|"keep"}. A dry
 * run answers the plan (*ret_is_op false); otherwise the host goes into maintenance and *ret is
 * the operation that moves its VMs. */
int gv_controller_host_drain(struct gv_controller *c, const char *host, const json_t *body,
                             json_t **ret, bool *ret_is_op, struct gv_error **err);
int gv_controller_host_undrain(struct gv_controller *c, const char *host, json_t **ret,
                               struct gv_error **err);
/* Fencing (fence.c): the operator asserts that a host that is down is powered off (body
 * {"reason"?}; `by` names who, for the record); -EBUSY when the host answers. Unfence only
 * after the host answered again and its copies of VMs that live elsewhere were destroyed.
 * Evacuate: an operation re-placing every VM of a fenced, silent host (-EHOSTDOWN when the
 * host is down and not fenced). */
int gv_controller_host_fence(struct gv_controller *c, const char *host, const json_t *body,
                             const char *by, json_t **ret, struct gv_error **err);
int gv_controller_host_unfence(struct gv_controller *c, const char *host, json_t **ret,
                               struct gv_error **err);
int gv_controller_host_evacuate(struct gv_controller *c, const char *host, json_t **ret_op,
                                struct gv_error **err);
/* This controller among those sharing the store (lease.c): {"id", "leader", "lease_ms"}. */
json_t *gv_controller_lease(struct gv_controller *c);
json_t *gv_controller_hosts(struct gv_controller *c);
int gv_controller_host(struct gv_controller *c, const char *name, json_t **ret,
                       struct gv_error **err);
json_t *gv_controller_gpus(struct gv_controller *c);
int gv_controller_gpu(struct gv_controller *c, const char *host, const char *gpu, json_t **ret,
                      struct gv_error **err);
int gv_controller_gpu_vgpu_types(struct gv_controller *c, const char *host, const char *gpu,
                                 json_t **ret, struct gv_error **err);

/* ---- operations (operations.c): what every change answers ---- */

/* wait_ms: 0 answers at once; > 0 waits until it ends or the time passes. *ret: operation. */
int gv_controller_operation(struct gv_controller *c, const char *id, int wait_ms, json_t **ret,
                            struct gv_error **err);
json_t *gv_controller_operations(struct gv_controller *c, size_t limit);
/* Whether the operation JSON has ended (succeeded or failed). */
bool gv_controller_operation_done(const json_t *op);

/* Changes. Each checks what it can at once (names, the request, the state, placement): a
 * refusal is an error and nothing changed. Otherwise *ret_op is the operation that carries it
 * out (its state may already be final). */
int gv_controller_gpu_set_mode(struct gv_controller *c, const char *host, const char *gpu,
                               const char *mode, json_t **ret_op, struct gv_error **err);
int gv_controller_gpu_mig_apply(struct gv_controller *c, const char *host, const char *gpu,
                                const json_t *profiles, json_t **ret_op, struct gv_error **err);
/* Where a VM of this spec (vm-create's shape; name optional) would be placed now, reserving
 * nothing: *ret {"host", "placement", "spec" (defaults filled in), "reserved": false};
 * -ENOSPC with the engine's explanation when it fits nowhere. */
int gv_controller_vm_place(struct gv_controller *c, const json_t *spec, json_t **ret,
                           struct gv_error **err);
int gv_controller_vm_create(struct gv_controller *c, const json_t *spec, json_t **ret_op,
                            struct gv_error **err);
int gv_controller_vm_start(struct gv_controller *c, const char *name, json_t **ret_op,
                           struct gv_error **err);
int gv_controller_vm_stop(struct gv_controller *c, const char *name, int timeout_s,
                          json_t **ret_op, struct gv_error **err);
int gv_controller_vm_delete(struct gv_controller *c, const char *name, json_t **ret_op,
                            struct gv_error **err);
/* Move a VM to another host (migrate.c): body {"to"?, "mode"?: "live"|"offline",
 * "downtime_ms"?, "max_bandwidth_mib"?}. Refusals (pass-through live, no room, incompatible
 * hosts, target not up) change nothing. */
int gv_controller_vm_migrate(struct gv_controller *c, const char *name, const json_t *body,
                             json_t **ret_op, struct gv_error **err);

/* ---- VMs ---- */

json_t *gv_controller_vms(struct gv_controller *c);
/* The same as JSON text (compact, sorted keys, a final newline), newly allocated; served from a
 * cache that every VM write of this controller invalidates. */
char *gv_controller_vms_text(struct gv_controller *c);
int gv_controller_vm(struct gv_controller *c, const char *name, json_t **ret,
                     struct gv_error **err);

/* ---- images (images.c) ---- */

json_t *gv_controller_images(struct gv_controller *c);
int gv_controller_image_register(struct gv_controller *c, const json_t *body, json_t **ret,
                                 struct gv_error **err);
int gv_controller_image_delete(struct gv_controller *c, const char *name, struct gv_error **err);
/* An uploaded file (complete, in the same file system as image_dir) becomes image `name`:
 * moved to image_dir/NAME (never over an existing file), probed and registered as
 * gv_controller_image_register() does; on failure nothing is left. */
int gv_controller_image_upload(struct gv_controller *c, const char *name, const char *tmp_path,
                               json_t **ret, struct gv_error **err);

/* ---- metrics (metrics-collect.c, metrics.c; docs/api.md "Metrics") ---- */

/* The latest values of the whole cluster: hosts with their GPUs, VMs with CPU, memory and GPU
 * side by side, each with its host. */
json_t *gv_controller_metrics(struct gv_controller *c);
/* One entity's history as columnar arrays: series "host/NAME", "gpu/HOST/PCI" or "vm/NAME",
 * range "5m", "15m", "1h", "6h" or "24h" (NULL: "1h"). -EINVAL naming the valid values,
 * -ENOENT when nothing by that name is collected. */
int gv_controller_metrics_history(struct gv_controller *c, const char *series, const char *range,
                                  json_t **ret, struct gv_error **err);
/* The Prometheus text exposition (format 0.0.4), NUL-terminated, newly allocated. */
char *gv_controller_metrics_text(struct gv_controller *c, size_t *ret_len);

/* ---- the mode advisor (advise.c, src/advise, docs/advisor.md) ---- */

/* A workload's traits ({"kind", "gpu_memory_mib", "isolation"?, "live_migration"?,
 * "latency_sla"?, "users"?, "models"?}; advise.h) → *ret {"traits", "options": [{"rank",
 * "mode", "model", "profile", "vgpu_type", "instances", "gpus", "license", "score",
 * "reasons", "fit", "where": {"fits", "gpus", "mode_change", "text", "reason"}, ...}],
 * "excluded": [{"mode", "model", "rule", "reason", "source"}], "none"}: the options on the
 * cluster's GPU models, where each fits now (nothing reserved), their yearly licence cost at
 * the pools' prices. -EINVAL naming the trait and its valid values. */
int gv_controller_advise(struct gv_controller *c, const json_t *traits, json_t **ret,
                         struct gv_error **err);

/* ---- licence seats (license.c, docs/licensing.md) ---- */

/* GET /api/v1/licenses: {"pools": [pool + "used", "free", "over", "expired",
 * "cost_per_month", "holders": [{"vm", "tenant", "host", "gpus", "state", "since", "seats",
 * "over", "cost_per_month"}]], "unlicensed": [{"vm", "tenant", "host", "state", "needs":
 * ["vws", ...]}], "cost": {"currency", "per_month", "by_tenant": {T: n}, "by_vm": {V: n}}}.
 * Seats are held by VMs in a state that runs or may run a guest (pending, starting, running,
 * stopping, unknown); a VM's seats follow from its placement, so stop, crash, delete and
 * migrate need no bookkeeping of their own. */
json_t *gv_controller_licenses(struct gv_controller *c);
/* A pool: {"name", "edition", "seats", "policy": "enforce|warn", "counting": "vm|gpu",
 * "passthrough", "mig", "term": {"start", "end"} | null, "price_per_seat_year" | null,
 * "currency"} with the usage above. -ENOENT when absent. */
int gv_controller_license_pool(struct gv_controller *c, const char *name, json_t **ret,
                               struct gv_error **err);
/* Create or replace a pool from a strict body (unknown members, editions, negative seats,
 * impossible terms are -EINVAL naming the member). *ret: the pool as stored. */
int gv_controller_license_pool_put(struct gv_controller *c, const char *name,
                                   const json_t *body, json_t **ret, struct gv_error **err);
/* -EBUSY while VMs hold its seats (stop them, or give their seats another pool first). */
int gv_controller_license_pool_delete(struct gv_controller *c, const char *name,
                                      struct gv_error **err);

/* ---- utilization insights (insights.c, docs/insights.md) ---- */

/* From the metrics history over window ("5m", "15m", "1h", "6h", "24h"; NULL: "1h") with
 * threshold_pct (0..100; under it on average counts as idle). *ret:
 * {"window", "window_ms", "threshold", "generated_ms", "evidence": {word: meaning},
 *  "idle_passthrough": [{"host", "gpu" (PCI), "name", "model", "vm", "state", "evidence":
 *      "vm-stopped" | "vm-cpu", "proxy", "value" (mean %, null for vm-stopped), "peak",
 *      "samples", "since" (ms or null), "gpu_util" (why none is shown), "frees": {"gpus",
 *      "memory_mib"}, "convert": [{"mode": "mig", "profile", "memory_mib", "instances",
 *      "layout", "licence": "none" | "pool", ...}, {"mode": "vgpu", "type", "series",
 *      "framebuffer_mib", "instances", "edition", "edition_title", "counting", "seats",
 *      "seats_free", "cost_per_year" | null, "currency", "cost_reason"}]}],
 *  "fragmentation": [{"host", "gpu", "name", "model", "instances": [{"vm", "profile", "start",
 *      "held_by"}], "layout", "measure" (0..1, every profile alike), "measure_demand"
 *      (weighted by the profiles the cluster's VMs use), "free_slices", "largest_free_run",
 *      "largest_free_profile", "verdict" (relayout.h), "why", "plan": null | {"moves": [{"vm",
 *      "profile", "from", "to", "from_slices", "to_slices", "step", "direct", "park_before",
 *      "needs_live_migration"}], "frees_profile", "largest_free_run", "live_migrations",
 *      "layout"}}],
 *  "idle_seats": [{"pool", "edition", "vm", "host", "state", "seats", "cost_per_month",
 *      "evidence": "gpu-util" | "vm-cpu" | "vm-stopped" | "vm-unknown", "proxy", "value",
 *      "peak", "samples", "since"}]}
 * A pass-through GPU's utilization is never shown: the host cannot read it. -EINVAL naming
 * the parameter and its valid values. */
int gv_controller_insights(struct gv_controller *c, const char *window, double threshold_pct,
                           json_t **ret, struct gv_error **err);

/* ---- tenants (tenants.c, docs/security.md "Tenants") ---- */

/* Every tenant (only is NULL) or the one named: [{"name", "description"?, "quota", "gpu_pools"
 * (null: every pool), "usage": {"vms", "vcpus", "memory_mib", "gpus", "slices", "seats"},
 * "created_at"}]. */
json_t *gv_controller_tenants(struct gv_controller *c, const char *only);
int gv_controller_tenant(struct gv_controller *c, const char *name, json_t **ret,
                         struct gv_error **err);
/* Create or replace tenant `name` from body {"description"?, "quota"?, "gpu_pools"?}. */
int gv_controller_tenant_put(struct gv_controller *c, const char *name, const json_t *body,
                             json_t **ret, struct gv_error **err);
/* -EBUSY while VMs or member tokens belong to it. */
int gv_controller_tenant_delete(struct gv_controller *c, const char *name, struct gv_error **err);
/* The GPU pool a host's GPUs are in (tenants may be limited to pools): *ret {"host", "pool"}. */
int gv_controller_host_set_pool(struct gv_controller *c, const char *host, const char *pool,
                                json_t **ret, struct gv_error **err);

/* ---- the audit log (audit.c, docs/audit.md) ---- */

/* One request that asked for a change (POST, PUT, DELETE), allowed or denied, as api.c saw it.
 * Every string may be NULL (absent). */
struct gv_audit_entry {
        const char *principal;    /* "token:NAME" (id in token_id), "local:uid=0", "anonymous" */
        const char *token_id;
        const char *role;         /* "admin", "operator", "viewer", "member"; NULL: unknown */
        const char *tenant;       /* the caller's tenant (members) */
        const char *source;       /* "tcp:192.0.2.1:41234" or "unix:uid=0,pid=123" */
        const char *method;       /* "POST" */
        const char *path;         /* "/api/v1/vms/web-1/start" (no query) */
        const char *object;       /* "vm/web-1", "host/node-a", "tenant/acme"; NULL: none */
        const char *request_id;   /* X-Request-Id */
        const char *operation_id; /* when the answer was an operation */
        unsigned status;          /* the HTTP status answered */
        const char *detail;       /* a refusal's or failure's problem detail */
};
/* Append the record ("outcome": "allowed" for 1xx-3xx, "denied" for 401/403/429, "failed" for
 * the rest, and "time" in ms). Never blocks the request on the reader side. A failure to write
 * is reported (the error log, the counter in /api/v1/health and gpuvirt_audit_write_failures_
 * total on /metrics, an "audit.write-failed" event) and returned. */
int gv_controller_audit(struct gv_controller *c, const struct gv_audit_entry *a,
                        struct gv_error **err);
/* Records matching query (a JSON object of strings from GET /api/v1/audit's query: "since",
 * "until" (RFC 3339 or ms), "principal", "tenant", "object", "outcome", "method", "limit",
 * "after"), newest first: *ret {"records": [...], "next": CURSOR or null}. -EINVAL names the bad
 * member. */
int gv_controller_audit_query(struct gv_controller *c, const json_t *query, json_t **ret,
                              struct gv_error **err);
/* Failed audit writes since the controller started. */
uint64_t gv_controller_audit_failures(struct gv_controller *c);

/* ---- events (events.c) ---- */

/* Events with seq > after, at most max; waits up to wait_ms for the first when there are none.
 * *ret: an array of {"seq", "time", "type", "subject", "data"}. */
int gv_controller_events(struct gv_controller *c, int64_t after, size_t max, int wait_ms,
                         json_t **ret, struct gv_error **err);
