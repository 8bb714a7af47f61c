/* SPDX-License-Identifier: MIT */
/*
 * migrate.h — live migration of one QEMU over QMP (typed wrappers on qmp.h): capabilities and
 * parameters, an outgoing migration to a URI, an incoming one (`migrate-incoming` into a QEMU
 * started with `-incoming defer`, qemu-cmd.h), cancel, and `query-migrate` parsed.
 *
 * Pre-copy only. Post-copy is never turned on: QEMU does not support it with VFIO devices
 * ("Postcopy migration is currently not supported for VFIO devices", ../shared/reference/
 * reliability.md §1.2, passthrough.md §7; Red Hat and Nova forbid it on vGPU hosts, vgpu.md
 * §11), and asking for it is refused here (-EOPNOTSUPP). A failed or cancelled pre-copy leaves
 * the source running with its devices back in _RUNNING (reliability.md F6).
 *
 * Transport: `tcp:HOST:PORT` only. QEMU's other transports are not offered: `exec:` runs a
 * command as QEMU's user (reliability.md §1.2: "`migrate` can spawn arbitrary processes"),
 * `unix:` and `fd:` reach no other host.
 *
 * The QMP facts, as QEMU 7.2 speaks them (checked against qemu-system-x86_64 7.2.22):
 *   migrate-set-capabilities {"capabilities": [{"capability": "postcopy-ram", "state": false}]}
 *   migrate-set-parameters   {"downtime-limit": MS, "max-bandwidth": BYTES_PER_S}
 *                            (downtime-limit: 0 to 2,000,000 ms; QEMU's default is 300 ms)
 *   migrate                  {"uri": "tcp:HOST:PORT"}  — returns at once; the transfer runs
 *   migrate-incoming         {"uri": "tcp:HOST:PORT"}  — port 0: the kernel picks one, and
 *                            query-migrate's "socket-address" says which
 *   migrate_cancel
 *   migrate-set-capabilities {"capabilities": [{"capability": "pause-before-switchover", ...}]}
 *                            the source stops in status "pre-switchover" with the guest paused
 *                            and its disks still active, until
 *   migrate-continue         {"state": "pre-switchover"}
 *   query-migrate            {"status", "setup-time", "total-time", "expected-downtime",
 *                             "downtime", "ram": {"total", "transferred", "remaining", "mbps",
 *                             "dirty-pages-rate", "dirty-sync-count", ...}, "vfio":
 *                             {"transferred"} (newer QEMU), "error-desc", "socket-address"}
 * After `completed` the source is paused in run state `postmigrate`; the destination runs at
 * once unless it was started with -S (it autostarts, and says RESUME).
 */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "util/error.h"
#include "vmm/qmp.h"

/* QEMU's MigrationStatus (qapi/migration.json), in its order. */
enum gv_migrate_status {
        GV_MIGRATE_NONE,
        GV_MIGRATE_SETUP,
        GV_MIGRATE_CANCELLING,
        GV_MIGRATE_CANCELLED,
        GV_MIGRATE_ACTIVE,
        GV_MIGRATE_POSTCOPY_ACTIVE,
        GV_MIGRATE_POSTCOPY_PAUSED,
        GV_MIGRATE_POSTCOPY_RECOVER,
        GV_MIGRATE_COMPLETED,
        GV_MIGRATE_FAILED,
        GV_MIGRATE_COLO,
        GV_MIGRATE_PRE_SWITCHOVER,
        GV_MIGRATE_DEVICE,
        GV_MIGRATE_WAIT_UNPLUG,
        _GV_MIGRATE_STATUS_MAX,
        _GV_MIGRATE_STATUS_INVALID = -EINVAL,
};
/* "none", "setup", "cancelling", ..., "wait-unplug" (QEMU's names). */
const char *gv_migrate_status_to_string(enum gv_migrate_status s);
enum gv_migrate_status gv_migrate_status_from_string(const char *s);
/* completed, failed, cancelled: nothing moves any more. */
bool gv_migrate_status_is_final(enum gv_migrate_status s);

#define GV_MIGRATE_DOWNTIME_MAX_MS 2000000u  /* QEMU's own bound for downtime-limit */
#define GV_MIGRATE_DOWNTIME_DEFAULT_MS 300u  /* QEMU's default */

/* QEMU 7.2 applies max-bandwidth per 100 ms (a tenth each) and reads a zero tenth as "no cap"
 * (measured: 1 byte/s migrated 128 MiB as fast as no cap, 4 KiB/s crawled); a floor well
 * above that keeps a cap a cap. */
#define GV_MIGRATE_BANDWIDTH_MIN 1024u

struct gv_migrate_params {
        uint32_t downtime_limit_ms; /* 1 .. GV_MIGRATE_DOWNTIME_MAX_MS */
        uint64_t max_bandwidth;     /* bytes per second, GV_MIGRATE_BANDWIDTH_MIN .. INT64_MAX */
        bool postcopy;              /* refused: -EOPNOTSUPP, naming VFIO */
        bool pause_before_switchover; /* stop in status pre-switchover, the guest paused,
                                       * until gv_migrate_continue() (block-mirror.h: the
                                       * disks' mirrors are finished there) */
};

/* query-migrate, parsed. Members QEMU left out are -1 (times) or has_* false. */
struct gv_migrate_info {
        enum gv_migrate_status status; /* _GV_MIGRATE_STATUS_INVALID: a status newer than this
                                        * code; status_name says which (never final) */
        char *status_name;             /* as QEMU sent it; "none" when it sent none */
        bool has_ram;
        uint64_t ram_total, ram_transferred, ram_remaining; /* bytes */
        double ram_mbps;                                    /* megabits per second */
        uint64_t ram_dirty_pages_rate;                      /* pages per second */
        uint64_t ram_dirty_sync_count;                      /* passes over RAM */
        bool has_device;
        uint64_t device_transferred;                        /* VFIO device state, bytes */
        int64_t setup_time_ms, total_time_ms, expected_downtime_ms, downtime_ms;
        char *error_desc;                                   /* why it failed, or NULL */
        char *listen_host;                                  /* incoming: the first TCP address */
        uint16_t listen_port;                               /* QEMU listens on, else NULL / 0 */
};
void gv_migrate_info_done(struct gv_migrate_info *i);

/* The QMP-independent checks. An address is HOST:PORT: HOST an IPv4 address, a DNS name
 * ([A-Za-z0-9.-], at most 253 characters) or a bracketed IPv6 address; PORT 1-65535 (0 too
 * when allow_port0: "pick a free one"). A URI is "tcp:" + an address. ret_* may be NULL. */
int gv_migrate_address_parse(const char *address, bool allow_port0, char **ret_host,
                             uint16_t *ret_port, struct gv_error **err);
int gv_migrate_uri_parse(const char *uri, bool allow_port0, char **ret_host, uint16_t *ret_port,
                         struct gv_error **err);
/* Checks the ranges (and refuses post-copy) without talking to QEMU. */
int gv_migrate_params_check(const struct gv_migrate_params *p, struct gv_error **err);

/* Pre-copy capabilities on either side: postcopy-ram off, events on (MIGRATION events); the
 * source sets pause-before-switchover with gv_migrate_setup(). */
int gv_migrate_set_capabilities(struct gv_qmp *q, int timeout_ms, struct gv_error **err);
/* Capabilities (pause-before-switchover on or off as p says), then downtime-limit and
 * max-bandwidth (QEMU keeps all of them for later migrations, so each is always set). */
int gv_migrate_setup(struct gv_qmp *q, const struct gv_migrate_params *p, int timeout_ms,
                     struct gv_error **err);
/* The parameters QEMU holds now (query-migrate-parameters). */
int gv_migrate_get_params(struct gv_qmp *q, int timeout_ms, struct gv_migrate_params *ret,
                          struct gv_error **err);
/* Start the transfer to `uri` (checked: tcp, port 1-65535). Returns when QEMU has accepted it;
 * follow it with gv_migrate_query(). A refusal (a migration already running, a blocker such as
 * a VFIO device without migration support) is QEMU's message in the error. */
int gv_migrate_start(struct gv_qmp *q, const char *uri, int timeout_ms, struct gv_error **err);
/* On a QEMU started with -incoming defer: capabilities, then listen on `uri` (port 0 allowed).
 * *ret_uri: the URI the source must use, with the port QEMU bound. -EBUSY when the port is in
 * use; -EINVAL when this host has no such address; other refusals -EREMOTEIO (QEMU's words). */
int gv_migrate_incoming(struct gv_qmp *q, const char *uri, int timeout_ms, char **ret_uri,
                        struct gv_error **err);
/* In status pre-switchover (pause_before_switchover): go on with the switch-over
 * (migrate-continue {"state": "pre-switchover"}). */
int gv_migrate_continue(struct gv_qmp *q, int timeout_ms, struct gv_error **err);
/* migrate_cancel: the source keeps running (a no-op when nothing is migrating; in
 * pre-switchover the guest, paused there, runs again). */
int gv_migrate_cancel(struct gv_qmp *q, int timeout_ms, struct gv_error **err);
int gv_migrate_query(struct gv_qmp *q, int timeout_ms, struct gv_migrate_info *ret,
                     struct gv_error **err);
/* Parse a query-migrate "return" object (exposed for tests and for callers that already hold
 * the reply). -EPROTO naming the member when a member has the wrong type. */
int gv_migrate_info_from_json(const json_t *j, struct gv_migrate_info *ret,
                              struct gv_error **err);
/* The progress as the agent's API answers it (docs/agent.md, "Migration"): status, ram_total,
 * ram_transferred, ram_remaining (bytes), mbps, dirty_pages_rate, device_transferred,
 * setup_time_ms, total_time_ms, expected_downtime_ms, downtime_ms, error; null for what QEMU
 * did not report. */
json_t *gv_migrate_info_to_json(const struct gv_migrate_info *i);
