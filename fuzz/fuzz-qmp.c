/* SPDX-License-Identifier: MIT */
/*
 * fuzz-qmp — the QMP client reading what a monitor sends: the greeting, command replies and
 * asynchronous events (src/vmm/qmp.c), and the replies parsed on top of it: query-status,
 * query-migrate (migrate.c), query-block-jobs (block-mirror.c), query-migrate-parameters.
 *
 * The input is the monitor's whole output. It is written into one end of a socketpair whose
 * write side is then shut, and the client opens the other end with gv_qmp_open_fd(), exactly as
 * with QEMU's socket: the real reading, line splitting, greeting, capability negotiation, id
 * matching and event queue run, with no QEMU and no waiting (the stream ends, so every read
 * returns at once). The stream is the input after its first byte; when that byte is odd, a
 * valid greeting and the answer to qmp_capabilities come before it, so the fuzzer reaches the
 * commands' replies quickly.
 * Replies may carry the id the client uses (1 for qmp_capabilities, then 2, 3, ...) or none.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "util/alloc.h"
#include "vmm/block-mirror.h"
#include "vmm/migrate.h"
#include "vmm/qmp.h"

#define TIMEOUT_MS 2000

static const char greeting[] =
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
        "\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}\r\n"
        "{\"return\": {}, \"id\": 1}\r\n";

/* Write what fits without blocking (the socket buffer holds far more than -max_len). */
static void feed(int fd, const void *data, size_t size)
{
        const char *p = data;
        while (size > 0) {
                ssize_t n = send(fd, p, size, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return;
                p += n;
                size -= (size_t)n;
        }
}

static void drain_events(struct gv_qmp *q)
{
        for (;;) {
                struct gv_qmp_event ev = {};
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                if (gv_qmp_next_event(q, 0, &ev, &e) < 0)
                        return;
                if (!ev.name)
                        fuzz_fail("an event without a name was returned");
                (void)gv_qmp_event_kind_to_string(ev.kind);
                gv_qmp_event_done(&ev);
        }
}

static void commands(struct gv_qmp *q)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        (void)gv_qmp_process(q, &e);
        e = gv_error_free(e);
        drain_events(q);

        _cleanup_free_ char *status = NULL;
        (void)gv_qmp_query_status(q, TIMEOUT_MS, &status, &e);
        e = gv_error_free(e);

        struct gv_migrate_info mi = {};
        if (gv_migrate_query(q, TIMEOUT_MS, &mi, &e) >= 0) {
                json_decref(gv_migrate_info_to_json(&mi));
                (void)gv_migrate_status_is_final(mi.status);
                gv_migrate_info_done(&mi);
        }
        e = gv_error_free(e);

        struct gv_block_job *jobs = NULL;
        size_t n_jobs = 0;
        if (gv_block_jobs_query(q, TIMEOUT_MS, &jobs, &n_jobs, &e) >= 0) {
                for (size_t i = 0; i < n_jobs; i++) {
                        unsigned idx;
                        (void)gv_block_job_is_over(&jobs[i]);
                        if (jobs[i].id)
                                (void)gv_mirror_job_index(jobs[i].id, &idx);
                }
                gv_block_jobs_free(jobs, n_jobs);
        }
        e = gv_error_free(e);

        struct gv_migrate_params mp = {};
        (void)gv_migrate_get_params(q, TIMEOUT_MS, &mp, &e);
        e = gv_error_free(e);

        struct gv_qmp_event ev = {};
        if (gv_qmp_wait_event(q, GV_QMP_EVENT_STOP, 0, &ev, &e) >= 0)
                gv_qmp_event_done(&ev);
        e = gv_error_free(e);

        json_t *ret = NULL;
        if (gv_qmp_execute(q, "query-name", NULL, TIMEOUT_MS, &ret, &e) >= 0)
                json_decref(ret);
        e = gv_error_free(e);
        drain_events(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                fuzz_fail("socketpair: %s", strerror(errno));
        int big = 4 * 1024 * 1024;
        (void)setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
        (void)setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));

        if (size > 0 && (data[0] & 1))
                feed(sv[1], greeting, strlen(greeting));
        if (size > 0)
                feed(sv[1], data + 1, size - 1);
        (void)shutdown(sv[1], SHUT_WR);

        struct gv_qmp *q = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_qmp_open_fd(sv[0], TIMEOUT_MS, &q, &e); /* owns sv[0] */
        if (r >= 0) {
                (void)gv_qmp_qemu_version(q);
                (void)gv_qmp_qemu_package(q);
                commands(q);
                gv_qmp_free(q);
        } else if (!e) {
                fuzz_fail("gv_qmp_open_fd failed (%d) without an error", r);
        }
        close(sv[1]);
        return 0;
}
