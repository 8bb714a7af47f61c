/* SPDX-License-Identifier: MIT */
/*
 * qmp.h — the QMP client: one connection to a QEMU monitor (the transport layer of the VM
 * runtime; typed wrappers such as gv_qmp_query_status() sit on top of gv_qmp_execute()).
 *
 * The QEMU Machine Protocol, as QEMU 7.2 speaks it: one JSON object per line (QEMU ends each
 * with "\r\n"). The server opens with a greeting
 *   {"QMP": {"version": {"qemu": {"major", "minor", "micro"}, "package"}, "capabilities": [...]}}
 * and accepts commands only after "qmp_capabilities". A command is
 *   {"execute": NAME, "arguments": {...}, "id": ID}
 * and its reply is {"return": ..., "id": ID} or {"error": {"class", "desc"}, "id": ID}.
 * Asynchronous events {"event": NAME, "data": {...}, "timestamp": {"seconds", "microseconds"}}
 * may arrive at any time, also between a command and its reply.
 *
 * Every call that reads from the monitor queues the events it sees: after any call, drain the
 * queue with gv_qmp_next_event(q, 0, ...) until -EAGAIN before waiting in poll() on gv_qmp_fd(),
 * since events already read from the socket no longer make the fd readable.
 *
 * Bounds: a line longer than GV_QMP_LINE_MAX is discarded and reported as -EMSGSIZE (the
 * connection stays usable: reading resumes after the line's end). The event queue holds at most
 * GV_QMP_EVENT_QUEUE_MAX events; when it is full the OLDEST event is dropped and counted
 * (gv_qmp_events_dropped()), so a flood of events never makes commands fail.
 *
 * Timeouts are in milliseconds, measured on CLOCK_MONOTONIC; a negative timeout waits forever.
 * A connection is not thread-safe: the caller serialises calls.
 */
#pragma once

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"
#include "util/macro.h"

#define GV_QMP_LINE_MAX (16u * 1024u * 1024u)
#define GV_QMP_EVENT_QUEUE_MAX 1024u

struct gv_qmp; /* one monitor connection; not thread-safe (caller serialises) */

enum gv_qmp_event_kind {
        GV_QMP_EVENT_OTHER,
        GV_QMP_EVENT_STOP,
        GV_QMP_EVENT_RESUME,
        GV_QMP_EVENT_SHUTDOWN,
        GV_QMP_EVENT_POWERDOWN,
        GV_QMP_EVENT_RESET,
        GV_QMP_EVENT_MIGRATION,
        GV_QMP_EVENT_MIGRATION_PASS,
        GV_QMP_EVENT_DEVICE_DELETED,
        _GV_QMP_EVENT_MAX,
        _GV_QMP_EVENT_INVALID = -EINVAL,
};
/* "OTHER", "STOP", "RESUME", ..., "DEVICE_DELETED" (QEMU's event names). */
const char *gv_qmp_event_kind_to_string(enum gv_qmp_event_kind k);
enum gv_qmp_event_kind gv_qmp_event_kind_from_string(const char *s);

struct gv_qmp_event {
        enum gv_qmp_event_kind kind;
        char *name;              /* as QEMU sent it */
        json_t *data;            /* owned; NULL when the event had none */
        int64_t ts_sec, ts_usec; /* QEMU's timestamp */
};
/* Frees the members, leaves *e zeroed. NULL-safe. */
void gv_qmp_event_done(struct gv_qmp_event *e);

/* Connect to a monitor socket, retrying while the socket does not exist yet or refuses
 * (QEMU creates it a few ms after exec) until timeout_ms; read the greeting; negotiate
 * capabilities. Errors: -ETIMEDOUT ("No QMP monitor at '%s' after %d ms: ..."), -EPROTO
 * (not a QMP greeting), -ECONNRESET (closed during the handshake), -ENAMETOOLONG (path does not
 * fit a UNIX socket address), other -errno when connect() fails for a reason retrying cannot
 * fix (EACCES, ENOTSOCK, ...). */
int gv_qmp_connect(const char *socket_path, int timeout_ms, struct gv_qmp **ret,
                   struct gv_error **err);
/* The same over an already connected stream fd (takes ownership, also on failure). The fd is
 * made O_CLOEXEC and non-blocking. */
int gv_qmp_open_fd(int fd, int timeout_ms, struct gv_qmp **ret, struct gv_error **err);
/* NULL-safe; frees queued events and closes the fd. Returns NULL. */
struct gv_qmp *gv_qmp_free(struct gv_qmp *q);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_qmp *, gv_qmp_free);

const char *gv_qmp_qemu_version(const struct gv_qmp *q); /* "7.2.22" */
const char *gv_qmp_qemu_package(const struct gv_qmp *q); /* "Debian 1:7.2+dfsg-7", or "" */
int gv_qmp_fd(const struct gv_qmp *q);                   /* for poll(): readable = process it */
/* Events queued now, and events dropped so far because the queue was full. */
size_t gv_qmp_events_queued(const struct gv_qmp *q);
uint64_t gv_qmp_events_dropped(const struct gv_qmp *q);

/* Run one command with a fresh id and wait for ITS reply (replies are matched by id; events
 * that arrive meanwhile are queued; a reply with an unknown id is skipped). args: borrowed,
 * may be NULL, else a JSON object. *ret_return (may be NULL) gets a new reference to "return".
 * Errors: -ETIMEDOUT naming the command and timeout; -ECONNRESET when the monitor closes
 * ("QEMU closed its monitor while running 'quit'" — the caller treats that as success for
 * quit); -EPROTO for malformed JSON or a reply that is neither return nor error; -EMSGSIZE for
 * a line over GV_QMP_LINE_MAX; QMP error replies by class: CommandNotFound -> -EOPNOTSUPP,
 * DeviceNotFound and DeviceNotActive -> -ENODEV, KVMMissingCap -> -EOPNOTSUPP, GenericError
 * and others -> -EREMOTEIO, each with the message "QEMU refused 'CMD': DESC (CLASS)." */
int gv_qmp_execute(struct gv_qmp *q, const char *command, json_t *args, int timeout_ms,
                   json_t **ret_return, struct gv_error **err);
/* Read what is available without blocking and queue events (for a poll loop on gv_qmp_fd).
 * Returns the number of events now queued, -ECONNRESET when the monitor closed (the events read
 * before stay queued), -EPROTO / -EMSGSIZE for a bad line. */
int gv_qmp_process(struct gv_qmp *q, struct gv_error **err);
/* Pop the oldest queued event, reading (and blocking up to timeout_ms) if none is queued.
 * timeout_ms 0: do not block. -EAGAIN when none arrived (timeout 0), -ETIMEDOUT otherwise,
 * -ECONNRESET when the monitor closed and nothing is queued. */
int gv_qmp_next_event(struct gv_qmp *q, int timeout_ms, struct gv_qmp_event *ret,
                      struct gv_error **err);
/* Wait for an event of one kind; events of other kinds stay queued, in order. Errors as
 * gv_qmp_next_event(). */
int gv_qmp_wait_event(struct gv_qmp *q, enum gv_qmp_event_kind kind, int timeout_ms,
                      struct gv_qmp_event *ret, struct gv_error **err);
/* query-status: "running", "paused", "prelaunch", "shutdown", ... (*ret_status malloc'd). */
int gv_qmp_query_status(struct gv_qmp *q, int timeout_ms, char **ret_status,
                        struct gv_error **err);
