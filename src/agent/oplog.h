/* SPDX-License-Identifier: MIT */
/*
 * oplog.h — the agent's operation journal: every mutation carries an operation id and is
 * idempotent (issue 4). The HTTP layer calls gv_oplog_begin() before a mutating request
 * (POST/DELETE) and gv_oplog_finish() or gv_oplog_forget() after it, so that a client that
 * retries with the same id (its connection dropped, its answer lost) gets the recorded answer
 * instead of a second execution. This is the Idempotency-Key pattern of
 * draft-ietf-httpapi-idempotency-key-header (reliability.md [S84]): the same key with the same
 * request replays; the same key with a different request is refused (422); a retry while the
 * first is still running is refused (409).
 *
 * On disk: one file per operation, DIR/ID.json (mode 0600; DIR is STATE/ops, mode 0700 when
 * created), written as a temp file DIR/ID.json.tmp, fsync'd, renamed over ID.json, and the
 * directory fsync'd — so a crash leaves the old or the new file whole, never a torn one:
 *
 *   { "id": "ID", "method": "POST", "path": "/v1/vms/a/start",
 *     "request_sha256": "<64 hex digits>", "state": "running" | "done",
 *     "started_ms": <unix ms>,
 *     "finished_ms": <unix ms>, "status": <100..599>, "response": <JSON or null> }
 *
 * (the last three only when "done"). Files are parsed strictly: unknown keys, wrong types, an
 * "id" that differs from the file name, or a "done" entry without its outcome make the file
 * corrupt; it is renamed to ID.json.corrupt and reported through gv_oplog_warnings() — not
 * fatal. Leftover ID.json.tmp files (a crash mid-write) are removed on open.
 *
 * The request hash is SHA-256 (FIPS 180-4) over method, NUL, path, NUL, body bytes; method and
 * path cannot contain NUL, so two different requests never frame to the same bytes.
 *
 * Threads: all calls may come from any thread; one mutex guards the index. File I/O for an
 * operation happens outside the mutex while the calling thread owns that operation (begin
 * gave it NEW, or forget/recover claimed it), so one slow fsync does not stall begin() of
 * other operations. Open takes flock(LOCK_EX) on DIR: a second journal on the same directory
 * (a second agent on one state directory) fails with -EBUSY.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

/* Largest journal file read or written (a recorded response is the agent's own answer, and
 * the HTTP layer caps bodies well below this). */
#define GV_OPLOG_FILE_MAX (4u * 1024u * 1024u)
/* Longest operation id, and the request path stored. */
#define GV_OPLOG_ID_MAX 64
#define GV_OPLOG_PATH_MAX 4096

struct gv_oplog;

/* Open (creating DIR with mode 0700 if needed) and load every DIR/ID.json into memory.
 * Corrupt files are moved aside (see above) and listed in gv_oplog_warnings(). */
int gv_oplog_open(const char *dir, struct gv_oplog **ret, struct gv_error **err);
struct gv_oplog *gv_oplog_free(struct gv_oplog *l);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_oplog *, gv_oplog_free);

/* One message per journal file moved aside by gv_oplog_open(), NULL-terminated; never NULL.
 * Owned by the journal; for the agent to log. */
const char *const *gv_oplog_warnings(const struct gv_oplog *l);

/* [A-Za-z0-9._-]{1,64}, and not "." or "..". */
bool gv_oplog_id_is_valid(const char *id);

enum gv_oplog_begin {
        GV_OPLOG_NEW,         /* recorded as running: execute the request, then finish/forget */
        GV_OPLOG_REPLAY,      /* finished before: answer with the recorded status and body */
        GV_OPLOG_IN_PROGRESS, /* the same request is running now (or was, when the agent died,
                               * and gv_oplog_recover() has not decided it yet): 409 */
        GV_OPLOG_MISMATCH,    /* the id was used for a different request: 422 */
};

/*
 * Start operation `id` for the request (method: 1 to 16 upper-case letters; path: starts with
 * '/', printable ASCII, at most GV_OPLOG_PATH_MAX bytes; body: body_len bytes, may be NULL
 * when body_len is 0). On success *ret_kind says what to do, and (each output may be NULL):
 *   NEW:         *ret_status = 0, *ret_body = NULL. The entry is durable (file and directory
 *                fsync'd) before this returns; the caller now owns the operation and must
 *                call gv_oplog_finish() or gv_oplog_forget() for it.
 *   REPLAY:      *ret_status and *ret_body (a new reference to a copy, or NULL when the
 *                response had no body) are the recorded answer.
 *   IN_PROGRESS: *ret_status = 409, *ret_body = the original request as
 *                {"id", "method", "path", "started_ms"} (new reference).
 *   MISMATCH:    *ret_status = 422, *ret_body as for IN_PROGRESS: the original request, to name
 *                it in the problem answered.
 * Fails with -EINVAL on a bad id, method or path, or the error of writing the entry.
 */
int gv_oplog_begin(struct gv_oplog *l, const char *id, const char *method, const char *path,
                   const void *body, size_t body_len, unsigned *ret_status, json_t **ret_body,
                   enum gv_oplog_begin *ret_kind, struct gv_error **err);

/* Record the outcome of an operation begin() gave NEW: state "done", status (100..599), the
 * response body (borrowed and copied; NULL for none), finished time; atomically (temp file,
 * fsync, rename, directory fsync). -ESRCH when `id` is not an operation this journal handed
 * out and has not finished. On failure the operation stays running and owned by the caller
 * (finish may be retried, or the operation forgotten). */
int gv_oplog_finish(struct gv_oplog *l, const char *id, unsigned status, const json_t *body,
                    struct gv_error **err);

/* Forget an operation (a rolled-back one, so a retry with the same id runs again; or one the
 * caller no longer needs): the file is removed and the directory fsync'd. -ENOENT when the id
 * is unknown; -EBUSY when another forget or a recover is working on it. The journal cannot
 * tell threads apart: forget a running operation only if begin() gave it to you. */
int gv_oplog_forget(struct gv_oplog *l, const char *id, struct gv_error **err);

/*
 * After a restart: for every entry loaded "running" (the agent died in the middle of it), fn
 * decides: return 1 to mark it done with *ret_status (100..599) and *ret_body (a new
 * reference or NULL, which the journal takes over), 0 to forget it (rolled back: a retry runs
 * it again), or a negative errno to stop: recover then fails with that error and the entry
 * stays running (a later recover asks again). fn runs without the journal's mutex held.
 * Returns the number of entries decided.
 */
typedef int (*gv_oplog_recover_fn)(const char *id, const char *method, const char *path,
                                   unsigned *ret_status, json_t **ret_body, void *userdata);
int gv_oplog_recover(struct gv_oplog *l, gv_oplog_recover_fn fn, void *userdata,
                     struct gv_error **err);

/* What the agent keeps of finished operations, for replaying an Operation-Id a client retries
 * (the controller resumes its operations with their ids after a restart): a day of them, at
 * most 10,000. Each holds its answer in memory (a VM's status is kilobytes of JSON), so the
 * count bounds the agent's memory too. Pruned at start and every GV_OPLOG_PRUNE_EVERY finished
 * operations: until then an agent pruned only at start and kept every answer in between. */
#define GV_OPLOG_KEEP_S (24 * 3600)
#define GV_OPLOG_KEEP_MAX 10000u
#define GV_OPLOG_PRUNE_EVERY 256u

/* Housekeeping: drop finished entries that finished more than max_age_s seconds ago
 * (max_age_s < 0: no age limit), then, while more than max_entries entries remain, finished
 * ones, oldest first (SIZE_MAX: no count limit; running entries are never dropped, so the
 * count may stay above max_entries). Returns the number dropped. */
int gv_oplog_prune(struct gv_oplog *l, int64_t max_age_s, size_t max_entries,
                   struct gv_error **err);

/* For tests: the clock used for started_ms and finished_ms and by prune (default:
 * CLOCK_REALTIME in milliseconds). fn NULL restores the default. */
void gv_oplog_set_clock(struct gv_oplog *l, int64_t (*fn)(void *userdata), void *userdata);

/* SHA-256 (FIPS 180-4) of data as 64 lower-case hex digits and a NUL into ret; the request
 * hash above. Exposed for tests. */
void gv_oplog_sha256_hex(const void *data, size_t len, char ret[static 65]);
