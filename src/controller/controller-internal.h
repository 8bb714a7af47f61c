/* SPDX-License-Identifier: MIT */
/*
 * controller-internal.h — what the controller's files share (not for the API layer).
 *
 * State: the store is the truth (hosts with their last inventory, allocations per host, VMs
 * with their placement, operations, events). In memory: the placement model (a gv_sched_cluster
 * rebuilt from the store whenever a host's inventory or a placement changes outside the
 * decision path) and the running operations' threads.
 *
 * Locking: `mu` guards the model and serialises decisions (place + reserve + the store batch);
 * store calls are thread-safe on their own. `notify_mu` (a leaf: taken last, also under `mu`)
 * guards `cond`, `changes` and `stopping`: `cond` is broadcast on every operation change and
 * event, for waiters. Agent calls are never made with `mu` held.
 * The metrics history (`metrics`, metrics.h) has its own mutex, a leaf below all of these: it is
 * taken only inside gv_metrics_*(), which call nothing that locks; the collector thread holds
 * no other lock while it asks the agents.
 */
#pragma once

#include <pthread.h>

#include "catalog/catalog.h"
#include "catalog/licensing.h"
#include "util/macro.h"
#include "controller/controller.h"
#include "sched/sched.h"
#include "store/store.h"

struct gv_controller {
        struct gv_controller_config cfg;
        char *image_dir;                  /* cfg.image_dir, owned */
        struct gv_store *store;
        struct gv_catalog *catalog;
        pthread_mutex_t mu;
        pthread_mutex_t notify_mu;
        pthread_cond_t cond;
        uint64_t changes;                 /* bumped (under mu) with every broadcast of cond */
        bool poll_now;                    /* the poller should not wait for its next tick */
        struct gv_sched_cluster *cluster; /* the model; NULL until built */
        bool model_dirty;
        char **model_problems;            /* what the last rebuild could not place (strv) */
        char **gpu_pci;                   /* per model GPU id: its PCI address (strv) */
        unsigned *gpu_index;              /* per model GPU id: the agent's index (unhealthy GPUs are left out) */
        /* GET /api/v1/vms as text, valid while vms_version (bumped by every VM write, atomic)
         * is vms_cache_version and the store's change counter (gv_store_version, moved by
         * other controllers' writes too) is vms_cache_store_version. */
        pthread_mutex_t vms_cache_mu;
        char *vms_cache;
        uint64_t vms_cache_version;
        uint64_t vms_version;
        /* operations' threads */
        pthread_t *threads;
        size_t n_threads;
        /* the poller */
        pthread_t poller;
        bool poller_running;
        /* the metrics history and its collector (metrics-collect.c) */
        struct gv_metrics *metrics;
        struct gv_license_history *license_history; /* license.c; its own leaf mutex */
        struct gv_ratelimit *ratelimit;   /* ratelimit.c; its own leaf mutex */
        pthread_t metrics_thread;
        bool metrics_running;
        bool stopping;
        /* several controllers on one store (lease.c): this one's id, its lease length, the
         * time its leader lease runs out by its own clock (atomic; 0: not the leader) and the
         * operations it runs (lease_mu, a leaf). */
        char *ctl_id;
        json_t *ctl_who;                  /* {"id", "host", "pid", "boot_id"} */
        int lease_ms;
        int64_t leader_until_ms;
        pthread_mutex_t lease_mu;
        char **owned_ops;
        pthread_t lease_thread;
        bool lease_running;
        bool lease_stop;                  /* notify_mu */
        int64_t events_trimmed_ms;        /* the keeper thread's */
        /* The model's guard against other writers (model.c): each host's allocation document
         * generation the model reflects (model_gen_mu, a leaf), and the store's change counter
         * when it was built. */
        pthread_mutex_t model_gen_mu;
        json_t *model_alloc_gen;
        int64_t model_store_version;
        int64_t model_built_ms;
        int64_t vms_cache_store_version;  /* vms_cache_mu */
        /* the audit log (audit.c): counters since start, atomic (no lock) */
        uint64_t audit_records;   /* written */
        uint64_t audit_failures;  /* that could not be written */
        uint64_t audit_appends;   /* counts appends to the next retention trim */
};

/* ---- controller.c ---- */
int64_t gv_ctl_now_ms(void);
/* A new random id "PREFIX-" + 16 hex digits. */
char *gv_ctl_new_id(const char *prefix);
/* Start a joinable thread that the controller waits for when freed. */
void gv_ctl_spawn(struct gv_controller *c, void *(*fn)(void *), void *arg);

/* ---- lease.c: several controllers on one store ---- */
#define GV_CTL_LEASE_DEFAULT_MS 10000
/* GPUVIRT_LEASE_MS (300..600000) or GV_CTL_LEASE_DEFAULT_MS. */
int gv_ctl_lease_ms(void);
void gv_ctl_lease_init(struct gv_controller *c);
/* One round of the keeper: the leader lease, the renewal of this controller's operations, the
 * takeover of expired ones and, as the leader, the once-per-cluster duties. */
void gv_ctl_lease_round(struct gv_controller *c);
void gv_ctl_lease_start(struct gv_controller *c);
/* Stop the keeper and give the leader lease back (after the operations' threads ended). */
void gv_ctl_lease_stop(struct gv_controller *c);
void gv_ctl_lease_done(struct gv_controller *c);
/* Whether this controller holds the leader lease now (its own deadline not passed). */
bool gv_ctl_is_leader(struct gv_controller *c);
bool gv_ctl_lease_expired(const struct gv_controller *c, const json_t *who, int64_t until_ms,
                          int64_t now_ms);
/* An operation's document: owner = this controller, lease_until = now + lease_ms. */
void gv_ctl_lease_stamp(struct gv_controller *c, json_t *op_doc);
bool gv_ctl_lease_owns(struct gv_controller *c, const json_t *op_doc);
void gv_ctl_lease_own(struct gv_controller *c, const char *op_id);
void gv_ctl_lease_disown(struct gv_controller *c, const char *op_id);
/* Claim (CAS) and run every unfinished operation whose owner's lease expired. */
void gv_ctl_lease_takeover(struct gv_controller *c);

/* ---- ratelimit.c ---- */
struct gv_ratelimit *gv_ctl_ratelimit_new(double rate, unsigned burst, unsigned max_inflight);
struct gv_ratelimit *gv_ctl_ratelimit_free(struct gv_ratelimit *l);

/* ---- events.c ---- */
/* Append one event (no store write besides it); wakes waiters. Best effort: a failure to
 * record an event never fails the change it tells of. */
void gv_ctl_event(struct gv_controller *c, const char *type, const char *subject,
                  json_t *data /* stolen */);
/* A batch and its event, atomically; wakes waiters. */
int gv_ctl_write_event(struct gv_controller *c, struct gv_store_write *w, size_t n,
                       const char *type, const char *subject, json_t *data /* stolen */,
                       struct gv_error **err);

/* ---- operations.c ---- */
typedef int (*gv_ctl_op_fn)(struct gv_controller *c, const char *op_id, json_t *arg,
                            json_t **ret_result, struct gv_error **err);
/* Record a new operation (state pending) and run fn in a thread; *ret_op: its document. The
 * kind names the function for a resume after a restart (gv_ctl_op_resume_all). */
int gv_ctl_op_start(struct gv_controller *c, const char *kind, const char *target,
                    json_t *arg /* stolen */, json_t **ret_op, struct gv_error **err);
void gv_ctl_op_progress(struct gv_controller *c, const char *op_id, int pct, const char *fmt,
                        ...) _printf_(4, 5);
/* One operation at a time per VM: -EBUSY, saying which, while the operation the VM document
 * names ("operation") is pending or running (gv_ctl_op_start records it and refuses a second). */
int gv_ctl_vm_idle(struct gv_controller *c, const json_t *vm_doc, struct gv_error **err);
/* Wait up to wait_ms for the operation under way on VM `name` (if any) to end. */
int gv_ctl_vm_wait_idle(struct gv_controller *c, const char *name, int wait_ms);
/* Operations the store says were running when the controller stopped: run again (every step
 * of every operation is idempotent). */
void gv_ctl_op_resume_all(struct gv_controller *c);
/* Run operation id (claimed by this controller already) in a thread. */
void gv_ctl_op_run(struct gv_controller *c, const char *id);
/* The function of a kind (vms.c and hosts.c register theirs in this table). */
gv_ctl_op_fn gv_ctl_op_fn_of(const char *kind);

/* ---- hosts.c ---- */
void *gv_ctl_poller(void *controller);
/* Call a host's agent: method path body → status and JSON. -EHOSTDOWN when unreachable;
 * a problem answer (4xx/5xx) becomes an error carrying its detail and the errno it names. */
int gv_ctl_agent_call(struct gv_controller *c, const char *host, const char *method,
                      const char *path, const json_t *body, const char *operation_id,
                      json_t **ret, struct gv_error **err);
/* How to reach host's agent: its endpoint and the "Authorization: Bearer SECRET" header line
 * (NULL when the host registered no secret), for calls that do not go through
 * gv_ctl_agent_call (WebSocket dials, the metrics collector). */
int gv_ctl_agent_target(struct gv_controller *c, const char *host, char **ret_endpoint,
                        char **ret_auth, struct gv_error **err);
/* The same from a host document read already. */
char *gv_ctl_agent_auth_header(const json_t *host_doc);
int gv_ctl_host_refresh(struct gv_controller *c, const char *host, struct gv_error **err);
/* Read-modify-write of a host document with CAS (retried); *ret_was: its state before. */
int gv_ctl_host_update(struct gv_controller *c, const char *name,
                       void (*fn)(json_t *doc, void *arg), void *arg, const char **ret_was,
                       struct gv_error **err);
/* Ask the poller for a pass now (the hosts' inventories after a change), without waiting. */
void gv_ctl_poll_soon(struct gv_controller *c);
/* The name of a VM whose placement holds anything on host's GPU pci, or NULL. */
char *gv_ctl_gpu_user(struct gv_controller *c, const char *host, const char *pci);
int gv_ctl_op_gpu_mode(struct gv_controller *c, const char *op_id, json_t *arg,
                       json_t **ret_result, struct gv_error **err);
int gv_ctl_op_gpu_mig(struct gv_controller *c, const char *op_id, json_t *arg,
                      json_t **ret_result, struct gv_error **err);

/* ---- metrics-collect.c ---- */
/* The collector thread: a round every cfg.metrics_interval_ms until c->stopping. */
void *gv_ctl_metrics_collector(void *controller);
/* The history, for feeding synthetic samples (the benchmark; metrics.h). */
struct gv_metrics *gv_ctl_metrics(struct gv_controller *c);

/* ---- license.c ---- */
/* What seats of one edition look like now, for the advisor and the insights: whether any pool
 * of the edition exists, the free seats over all of them, and the price of a seat per year
 * (the cheapest priced pool; price_per_seat_year < 0 when no pool of it has a price). */
struct gv_ctl_license_quote {
        bool pooled;
        int64_t seats_free;
        double price_per_seat_year;
        char currency[8];
        enum gv_license_counting counting; /* of the cheapest pool (GV_LICENSE_COUNT_VM if none) */
};
/* Every edition's quote from one count (each count reads every VM): ret[edition]. */
void gv_ctl_license_quotes(struct gv_controller *c,
                           struct gv_ctl_license_quote ret[_GV_LICENSE_EDITION_MAX]);
/* Before VM `name` (document vm) starts: 0 when it gets its seats or needs none, or when the
 * pool it would overflow says "warn" (an event license.over is recorded); -EDQUOT when the pool
 * says "enforce", the message naming the pool, its seats and who holds them. */
int gv_ctl_license_admit(struct gv_controller *c, const json_t *vm, struct gv_error **err);
/* Whether a VM in this state holds its seats (pending, starting, running, stopping, unknown). */
bool gv_ctl_license_state_holds(const char *state);
/* The licence pools' usage history (the most seats used per minute, 24 h, in memory like the
 * metrics history): sampled by the metrics collector every round, at most every 10 s; shown as
 * "history" in GET /api/v1/licenses/{pool}. */
struct gv_license_history *gv_ctl_license_history_new(void);
struct gv_license_history *gv_ctl_license_history_free(struct gv_license_history *h);
void gv_ctl_license_sample(struct gv_controller *c, int64_t now_ms);
struct gv_prom;
/* gpuvirt_license_seats and gpuvirt_license_seats_used per pool, for /metrics. */
void gv_ctl_license_prometheus(struct gv_controller *c, struct gv_prom *p);

/* ---- tenants.c ---- */
/* 0 when tenant `name` exists; -ENOENT saying how to make one. */
int gv_ctl_tenant_exists(struct gv_controller *c, const char *name, struct gv_error **err);
/* Under mu, before VM document vm is written (create: every quota; a start: the seats):
 * 0 when it fits its tenant's quotas (or has no tenant), -EUSERS naming the quota, its use and
 * what to do. */
int gv_ctl_tenant_admit(struct gv_controller *c, const json_t *vm, bool create,
                        struct gv_error **err);
/* Under mu, with the model built: rq->any_labels = the tenant's GPU pools ("pool=NAME" labels)
 * for a spec with a tenant that names pools; -ENOSPC when no host is in any of them. */
int gv_ctl_tenant_restrict(struct gv_controller *c, const json_t *spec,
                           struct gv_sched_request *rq, struct gv_error **err);
/* A host document's GPU pool ("default" when none was set). */
const char *gv_ctl_host_pool(const json_t *host_doc);

/* ---- audit.c ---- */
/* gpuvirt_audit_records_total and gpuvirt_audit_write_failures_total, for /metrics. */
void gv_ctl_audit_prometheus(struct gv_controller *c, struct gv_prom *p);

/* ---- model.c ---- */
/* The generation of host's allocation document the model reflects: > 0, 0 when the host had
 * none when the model was built, -1 when the model does not know it. */
int64_t gv_ctl_model_alloc_gen(struct gv_controller *c, const char *host);
/* After a write of host's allocations from generation `from` to `to`: the model follows when
 * it reflected `from` (a reservation it made, or a release: the model holds at least what the
 * store does). */
void gv_ctl_model_alloc_moved(struct gv_controller *c, const char *host, int64_t from,
                              int64_t to);
/* Rebuild the model from the store when dirty (mu held). */
int gv_ctl_model_ensure(struct gv_controller *c, struct gv_error **err);
void gv_ctl_model_dirty(struct gv_controller *c);
/* The request a VM spec's "gpus" (and vcpus, memory) asks for; names borrowed from spec. */
int gv_ctl_request_from_spec(struct gv_controller *c, const json_t *spec,
                             struct gv_sched_request *ret, struct gv_error **err);
json_t *gv_ctl_placement_to_json(struct gv_controller *c, const struct gv_sched_placement *pl,
                                 const char *policy);
int gv_ctl_placement_from_json(struct gv_controller *c, const json_t *j,
                               struct gv_sched_placement *ret, struct gv_error **err);

/* ---- vms.c ---- */
void gv_ctl_vms_changed(struct gv_controller *c);
int gv_ctl_op_vm_create(struct gv_controller *c, const char *op_id, json_t *arg,
                        json_t **ret_result, struct gv_error **err);
int gv_ctl_op_vm_start(struct gv_controller *c, const char *op_id, json_t *arg,
                       json_t **ret_result, struct gv_error **err);
int gv_ctl_op_vm_stop(struct gv_controller *c, const char *op_id, json_t *arg,
                      json_t **ret_result, struct gv_error **err);
int gv_ctl_op_vm_delete(struct gv_controller *c, const char *op_id, json_t *arg,
                        json_t **ret_result, struct gv_error **err);
/* ---- drain.c ---- */
int gv_ctl_op_host_drain(struct gv_controller *c, const char *op_id, json_t *arg,
                         json_t **ret_result, struct gv_error **err);
/* ---- fence.c ---- */
/* Before a move of VM vm off src_host in mode ("live", "offline", "evacuate"): -EBUSY, saying
 * why and what to do, when the host is down and not fenced (it may still run the VM), fenced
 * and silent while the mode is not "evacuate", or for an evacuation off a host that is not
 * fenced or answered again. */
int gv_ctl_fence_check_move(struct gv_controller *c, const char *vm, const char *src_host,
                            const char *mode, struct gv_error **err);
/* A host answered a poll with agent_vms: if it is fenced, its copies of VMs that live elsewhere
 * (or nowhere) are killed and deleted first (the agent releases their hardware), and the fence
 * records that the host answered. -EIO when a copy could not be destroyed (tried again on the
 * next poll). */
int gv_ctl_fence_settle(struct gv_controller *c, const char *host, const json_t *agent_vms);
int gv_ctl_op_host_evacuate(struct gv_controller *c, const char *op_id, json_t *arg,
                            json_t **ret_result, struct gv_error **err);
/* ---- migrate.c ---- */
int gv_ctl_op_vm_migrate(struct gv_controller *c, const char *op_id, json_t *arg,
                         json_t **ret_result, struct gv_error **err);
/* ---- migrate-settle.c: who has the VM after a move ---- */
enum gv_ctl_settle {
        GV_CTL_SETTLE_SOURCE,   /* the transfer cannot complete any more: the source keeps it */
        GV_CTL_SETTLE_TARGET,   /* the target's copy runs */
        GV_CTL_SETTLE_UNKNOWN,  /* completed, and the target does not answer */
};
/* The phase of VM `name` on `host` ("running", "incoming", ...), "gone" when its agent does
 * not have it, NULL when the agent does not answer. `fresh`: from its migration report, for
 * which the agent asks QEMU (a copy that just took over is "running" at once). */
char *gv_ctl_vm_phase_on(struct gv_controller *c, const char *host, const char *name,
                         bool fresh);
/* The store's switch to the target: the VM's host and placement, the source's reservation
 * released (one batch); 0 when it was switched already. */
int gv_ctl_migration_switch(struct gv_controller *c, const char *name, const char *src_host,
                            struct gv_error **err);
/* The target's reservation released, the VM's "migration" cleared and `why` recorded. */
void gv_ctl_migration_drop(struct gv_controller *c, const char *op_id, const char *name,
                           const char *dst_host, const json_t *dst_pl, const char *why);
/* The target runs the VM: switch, release the source, restore its GPUs' modes. */
int gv_ctl_migration_finish(struct gv_controller *c, const char *op_id, const char *name,
                            const char *src_host, const json_t *src_pl, struct gv_error **err);
/* The source keeps the VM (SOURCE) or nobody knows yet (UNKNOWN): 0 when settled on the source,
 * -EAGAIN when the move is left unresolved in the VM document for the poller. */
int gv_ctl_migration_undo(struct gv_controller *c, const char *op_id, const char *name,
                          const char *src_host, const char *dst_host, const json_t *dst_pl,
                          bool started, bool unknown, const char *why);
/* After a host's poll: unresolved moves touching it, and leftover copies on it. */
void gv_ctl_migrations_reconcile(struct gv_controller *c, const char *host,
                                 const json_t *agent_vms, const struct gv_store_obj *before,
                                 size_t n_before);
/* A VM reserved (pending) whose create operation was never recorded (the controller stopped
 * between the two): record and run it. After gv_ctl_op_resume_all(); the leader's, for VMs
 * written at least min_age_ms ago (another controller may be between the two steps). */
void gv_ctl_vms_resume(struct gv_controller *c, int64_t min_age_ms);
/* The poller saw the agent's view of a host's VMs: bring their states up to date. */
/* `before`: the VM documents as read BEFORE the agent was asked: a VM written since (by an
 * operation) is left alone — its state is newer than what the agent said (compare-and-swap on
 * the generation read). */
void gv_ctl_vms_observe(struct gv_controller *c, const char *host, const json_t *agent_vms,
                        bool host_down, const struct gv_store_obj *before, size_t n_before);

/* ---- vms.c, shared with migrate.c ---- */
int gv_ctl_vm_get(struct gv_controller *c, const char *name, struct gv_store_obj *ret,
                  struct gv_error **err);
/* Read-modify-write of a VM document with CAS (retried) and an event. */
int gv_ctl_vm_update(struct gv_controller *c, const char *name,
                     void (*fn)(json_t *doc, void *arg), void *arg, const char *event,
                     struct gv_error **err);
int gv_ctl_vm_set_state(struct gv_controller *c, const char *name, const char *state,
                        const char *error);
/* The batch that reserves (placement) or releases (NULL) `name` on `host`, with vm_write. */
int gv_ctl_alloc_write(struct gv_controller *c, const char *host, const char *name,
                       const json_t *placement, struct gv_store_write *vm_write,
                       const char *event, json_t *event_data, struct gv_error **err);
/* Release a VM's reservation and record why (failed), or delete it. */
int gv_ctl_vm_release(struct gv_controller *c, const char *name, const char *error, bool delete);
/* A placement's bare MIG slots get the MIG-backed vGPU type a VM receives them as
 * ("vgpu_type"); EOPNOTSUPP when the catalog has none for the profile. */
int gv_ctl_placement_agent_types(struct gv_controller *c, const struct gv_sched_placement *p,
                                 json_t *pl, struct gv_error **err);
/* The agent's VM definition of a VM document. */
json_t *gv_ctl_agent_definition(struct gv_controller *c, const json_t *vm, struct gv_error **err);
/* An agent call of operation op_id, step `step` (its Operation-Id: OP-STEP). */
int gv_ctl_agent_vm(struct gv_controller *c, const char *op_id, const char *step,
                    const char *host, const char *method, const char *path, const json_t *body,
                    json_t **ret, struct gv_error **err);
int gv_ctl_switch_modes(struct gv_controller *c, const char *op_id, const char *name,
                        const char *host, const json_t *placement, struct gv_error **err);
void gv_ctl_restore_modes(struct gv_controller *c, const char *op_id, const char *host,
                          const json_t *placement);
