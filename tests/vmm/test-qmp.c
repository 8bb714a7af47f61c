/* SPDX-License-Identifier: MIT */
/*
 * The QMP client against a scripted fake monitor and against real QEMU.
 *
 * The fake monitor is a thread on the other end of a socketpair (or of a listening UNIX socket,
 * for gv_qmp_connect()) that plays a script: send bytes (whole, or in small pieces so that lines
 * span reads), expect a request (its command and arguments are checked, its id remembered),
 * reply with the remembered id substituted for @ID@ (@PREV@: the id before it), sleep, close.
 * Failures inside the thread are recorded and asserted by the test after joining it (cmocka's
 * assertions are not thread-safe). The real-QEMU test starts qemu-system-x86_64 paused with no
 * guest, and skips with the reason when the binary is not installed.
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "vmm/qmp.h"

/* ---- the fake monitor ---------------------------------------------------------------------- */

enum step_op { S_END, S_SEND, S_PIECES, S_EXPECT, S_SLEEP, S_CLOSE };

struct step {
        enum step_op op;
        const char *text; /* S_SEND/S_PIECES: bytes (@ID@, @PREV@ substituted); S_EXPECT: command */
        const char *args; /* S_EXPECT: expected "arguments" as JSON, or NULL for none */
        int n;            /* S_PIECES: piece size; S_SLEEP: milliseconds */
};

#define SEND(t) {.op = S_SEND, .text = (t)}
#define PIECES(t, size) {.op = S_PIECES, .text = (t), .n = (size)}
#define EXPECT(cmd) {.op = S_EXPECT, .text = (cmd)}
#define EXPECT_ARGS(cmd, a) {.op = S_EXPECT, .text = (cmd), .args = (a)}
#define SLEEP(ms) {.op = S_SLEEP, .n = (ms)}
#define CLOSE() {.op = S_CLOSE}
#define END() {.op = S_END}

#define GREETING                                                                                   \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, "         \
        "\"package\": \"fake 7.2\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define OK_REPLY "{\"return\": {}, \"id\": @ID@}\r\n"
#define HANDSHAKE SEND(GREETING), EXPECT("qmp_capabilities"), SEND(OK_REPLY)
#define EV(name, data)                                                                             \
        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 42}, \"event\": \"" name    \
        "\"" data "}\r\n"

struct fake {
        int fd;
        const char *listen_path; /* listen there (after listen_delay_ms) instead of a socketpair */
        int listen_delay_ms;
        const struct step *steps;
        pthread_t thread;
        char rbuf[4096];
        size_t rlen;
        json_t *id, *prev_id;
        char fail[512];
};

static void fake_fail(struct fake *f, const char *fmt, ...) _printf_(2, 3);
static void fake_fail(struct fake *f, const char *fmt, ...)
{
        if (f->fail[0])
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(f->fail, sizeof(f->fail), fmt, ap);
        va_end(ap);
}

static void sleep_ms(int ms)
{
        struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One request line from the client; NULL at end of stream. */
static char *fake_read_line(struct fake *f)
{
        for (;;) {
                char *nl = memchr(f->rbuf, '\n', f->rlen);
                if (nl) {
                        size_t n = (size_t)(nl - f->rbuf);
                        char *line = xstrndup(f->rbuf, n);
                        memmove(f->rbuf, nl + 1, f->rlen - n - 1);
                        f->rlen -= n + 1;
                        return line;
                }
                if (f->rlen == sizeof(f->rbuf))
                        return NULL;
                ssize_t r = read(f->fd, f->rbuf + f->rlen, sizeof(f->rbuf) - f->rlen);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0)
                        return NULL;
                f->rlen += (size_t)r;
        }
}

static char *fake_substitute(const struct fake *f, const char *text)
{
        _cleanup_free_ char *id = f->id ? json_dumps(f->id, JSON_ENCODE_ANY) : xstrdup("null");
        _cleanup_free_ char *prev =
                f->prev_id ? json_dumps(f->prev_id, JSON_ENCODE_ANY) : xstrdup("null");
        char *out = xstrdup(text);
        const char *keys[] = {"@ID@", "@PREV@"};
        const char *vals[] = {id, prev};
        for (size_t k = 0; k < ELEMENTSOF(keys); k++) {
                char *p;
                while ((p = strstr(out, keys[k]))) {
                        char *n = xasprintf("%.*s%s%s", (int)(p - out), out, vals[k],
                                            p + strlen(keys[k]));
                        free(out);
                        out = n;
                }
        }
        return out;
}

static bool fake_write(struct fake *f, const char *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(f->fd, p, n, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        fake_fail(f, "fake monitor: send failed: %s", strerror(errno));
                        return false;
                }
                p += w;
                n -= (size_t)w;
        }
        return true;
}

static void fake_expect(struct fake *f, const struct step *s)
{
        _cleanup_free_ char *line = fake_read_line(f);
        if (!line) {
                fake_fail(f, "fake monitor: the client closed before sending '%s'", s->text);
                return;
        }
        json_error_t je;
        _cleanup_json_ json_t *req = json_loads(line, 0, &je);
        const char *cmd = json_string_value(json_object_get(req, "execute"));
        if (!cmd || strcmp(cmd, s->text) != 0) {
                fake_fail(f, "fake monitor: expected '%s', got '%s'", s->text, line);
                return;
        }
        json_t *args = json_object_get(req, "arguments");
        _cleanup_json_ json_t *want = s->args ? json_loads(s->args, 0, &je) : NULL;
        if ((want || args) && !(want && args && json_equal(want, args))) {
                fake_fail(f, "fake monitor: '%s' has arguments other than %s: '%s'", s->text,
                          s->args ? s->args : "none", line);
                return;
        }
        json_t *id = json_object_get(req, "id");
        if (!id) {
                fake_fail(f, "fake monitor: '%s' has no id: '%s'", s->text, line);
                return;
        }
        json_decref(f->prev_id);
        f->prev_id = f->id;
        f->id = json_incref(id);
}

static void *fake_main(void *p)
{
        struct fake *f = p;
        bool closed = false;

        if (f->listen_path) {
                sleep_ms(f->listen_delay_ms);
                int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                struct sockaddr_un sa = {.sun_family = AF_UNIX};
                snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->listen_path);
                if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(l, 1) < 0) {
                        fake_fail(f, "fake monitor: cannot listen on '%s': %s", f->listen_path,
                                  strerror(errno));
                        safe_close(l);
                        return NULL;
                }
                f->fd = accept4(l, NULL, NULL, SOCK_CLOEXEC);
                safe_close(l);
                if (f->fd < 0) {
                        fake_fail(f, "fake monitor: accept failed: %s", strerror(errno));
                        return NULL;
                }
        }

        for (const struct step *s = f->steps; s->op != S_END && !f->fail[0] && !closed; s++) {
                switch (s->op) {
                case S_SEND:
                case S_PIECES: {
                        _cleanup_free_ char *t = fake_substitute(f, s->text);
                        size_t n = strlen(t), piece = s->op == S_PIECES ? (size_t)s->n : n;
                        for (size_t off = 0; off < n; off += piece) {
                                if (!fake_write(f, t + off, MIN(piece, n - off)))
                                        break;
                                if (s->op == S_PIECES)
                                        sleep_ms(1);
                        }
                        break;
                }
                case S_EXPECT:
                        fake_expect(f, s);
                        break;
                case S_SLEEP:
                        sleep_ms(s->n);
                        break;
                case S_CLOSE:
                        f->fd = safe_close(f->fd);
                        closed = true;
                        break;
                case S_END:
                        break;
                }
        }

        /* End of script: the client must not send anything else; wait until it closes. */
        if (!closed && !f->fail[0]) {
                _cleanup_free_ char *extra = fake_read_line(f);
                if (extra)
                        fake_fail(f, "fake monitor: unexpected request after the script: '%s'",
                                  extra);
        }
        f->fd = safe_close(f->fd);
        return NULL;
}

/* Start a fake on a socketpair; *ret_client gets the client's end (blocking, as a caller's fd
 * may be). */
static struct fake *fake_start(const struct step *steps, int *ret_client)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct fake *f = xnew0(struct fake, 1);
        f->fd = sv[1];
        f->steps = steps;
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        *ret_client = sv[0];
        return f;
}

static struct fake *fake_listen(const struct step *steps, const char *path, int delay_ms)
{
        struct fake *f = xnew0(struct fake, 1);
        f->fd = -1;
        f->listen_path = path;
        f->listen_delay_ms = delay_ms;
        f->steps = steps;
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        return f;
}

/* Join the fake (the client must have closed its end or the script must end in CLOSE) and
 * fail the test if the script did not run as written. */
static void fake_finish(struct fake *f)
{
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        json_decref(f->id);
        json_decref(f->prev_id);
        char fail[sizeof(f->fail)];
        memcpy(fail, f->fail, sizeof(fail));
        free(f);
        if (fail[0])
                fail_msg("%s", fail);
}

static struct gv_qmp *open_fake(const struct step *steps, struct fake **ret_fake)
{
        int fd;
        struct gv_qmp *q = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        *ret_fake = fake_start(steps, &fd);
        int r = gv_qmp_open_fd(fd, 5000, &q, &e);
        if (r < 0)
                fail_msg("gv_qmp_open_fd: %s", gv_error_msg(e, r));
        return q;
}

#define assert_error(r, e, errnum, substr)                                                         \
        do {                                                                                       \
                int r_ = (r);                                                                      \
                if (r_ != -(errnum))                                                               \
                        fail_msg("expected -%s, got %d (%s)", gv_errno_name(errnum), r_,          \
                                 gv_error_msg((e), r_));                                           \
                assert_non_null(e);                                                                \
                assert_int_equal((e)->code, (errnum));                                            \
                if (!strstr((e)->msg, (substr)))                                                   \
                        fail_msg("message '%s' lacks '%s'", (e)->msg, (substr));                  \
        } while (0)

/* ---- tests against the fake ---------------------------------------------------------------- */

static void test_event_kind_table(void **state)
{
        (void)state;
        assert_string_equal(gv_qmp_event_kind_to_string(GV_QMP_EVENT_STOP), "STOP");
        assert_string_equal(gv_qmp_event_kind_to_string(GV_QMP_EVENT_DEVICE_DELETED),
                            "DEVICE_DELETED");
        assert_null(gv_qmp_event_kind_to_string(_GV_QMP_EVENT_MAX));
        assert_int_equal(gv_qmp_event_kind_from_string("MIGRATION_PASS"),
                         GV_QMP_EVENT_MIGRATION_PASS);
        assert_int_equal(gv_qmp_event_kind_from_string("stop"), -EINVAL);
        assert_int_equal(gv_qmp_event_kind_from_string(NULL), -EINVAL);
        for (int k = 0; k < _GV_QMP_EVENT_MAX; k++)
                assert_int_equal(gv_qmp_event_kind_from_string(gv_qmp_event_kind_to_string(k)),
                                 k);
}

static void test_handshake(void **state)
{
        (void)state;
        static const struct step steps[] = {HANDSHAKE, END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        assert_string_equal(gv_qmp_qemu_version(q), "7.2.22");
        assert_string_equal(gv_qmp_qemu_package(q), "fake 7.2");
        int fl = fcntl(gv_qmp_fd(q), F_GETFL);
        assert_true(fl >= 0 && (fl & O_NONBLOCK));
        assert_true(fcntl(gv_qmp_fd(q), F_GETFD) & FD_CLOEXEC);
        assert_int_equal(gv_qmp_events_queued(q), 0);
        gv_qmp_free(q);
        fake_finish(f);
        assert_null(gv_qmp_free(NULL));
}

static void expect_open_error(const struct step *steps, int timeout_ms, int errnum,
                              const char *substr)
{
        int fd;
        struct gv_qmp *q = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct fake *f = fake_start(steps, &fd);
        assert_error(gv_qmp_open_fd(fd, timeout_ms, &q, &e), e, errnum, substr);
        assert_null(q);
        fake_finish(f);
}

static void test_greeting_not_qmp(void **state)
{
        (void)state;
        static const struct step not_qmp[] = {SEND("{\"hello\": {\"version\": 1}}\r\n"), END()};
        static const struct step hmp[] = {
                SEND("QEMU 7.2.22 monitor - type 'help' for more information\r\n"), END()};
        static const struct step no_version[] = {
                SEND("{\"QMP\": {\"version\": {\"qemu\": {\"major\": \"7\"}}}}\r\n"), END()};
        expect_open_error(not_qmp, 2000, EPROTO, "is not a QMP greeting");
        expect_open_error(hmp, 2000, EPROTO, "malformed JSON");
        expect_open_error(no_version, 2000, EPROTO, "is not a QMP greeting");
}

static void test_greeting_timeout(void **state)
{
        (void)state;
        static const struct step steps[] = {SLEEP(400), CLOSE(), END()};
        int64_t t0 = now_ms();
        expect_open_error(steps, 100, ETIMEDOUT, "no QMP greeting arrived");
        /* fake_finish joined the 400 ms script; the error itself came after 100 ms. */
        assert_true(now_ms() - t0 >= 100);
}

static void test_closed_during_handshake(void **state)
{
        (void)state;
        static const struct step at_once[] = {CLOSE(), END()};
        static const struct step in_caps[] = {SEND(GREETING), EXPECT("qmp_capabilities"),
                                              CLOSE(), END()};
        static const struct step caps_refused[] = {
                SEND(GREETING), EXPECT("qmp_capabilities"),
                SEND("{\"id\": @ID@, \"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"Capabilities negotiation is already complete\"}}\r\n"),
                END()};
        expect_open_error(at_once, 2000, ECONNRESET, "before its greeting");
        expect_open_error(in_caps, 2000, ECONNRESET, "in 'qmp_capabilities'");
        expect_open_error(caps_refused, 2000, EREMOTEIO,
                          "QEMU refused 'qmp_capabilities': Capabilities negotiation is already "
                          "complete (GenericError).");
}

static void test_execute_pieces_and_events(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT_ARGS("device_del", "{\"id\": \"gpu0\"}"),
                PIECES(EV("STOP", "") EV("DEVICE_DELETED", ", \"data\": {\"device\": \"gpu0\"}")
                               "{\"return\": {\"ok\": true}, \"id\": @ID@}\r\n",
                       7),
                END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_json_ json_t *args = json_pack("{s:s}", "id", "gpu0");
        _cleanup_json_ json_t *ret = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        assert_int_equal(gv_qmp_execute(q, "device_del", args, 5000, &ret, &e), 0);
        assert_null(e);
        assert_true(json_is_true(json_object_get(ret, "ok")));
        assert_int_equal(gv_qmp_events_queued(q), 2);

        struct gv_qmp_event ev = {0};
        assert_int_equal(gv_qmp_next_event(q, 0, &ev, &e), 0);
        assert_int_equal(ev.kind, GV_QMP_EVENT_STOP);
        assert_string_equal(ev.name, "STOP");
        assert_null(ev.data);
        assert_int_equal(ev.ts_sec, 1700000000);
        assert_int_equal(ev.ts_usec, 42);
        gv_qmp_event_done(&ev);
        assert_null(ev.name);

        assert_int_equal(gv_qmp_next_event(q, 0, &ev, &e), 0);
        assert_int_equal(ev.kind, GV_QMP_EVENT_DEVICE_DELETED);
        assert_string_equal(json_string_value(json_object_get(ev.data, "device")), "gpu0");
        gv_qmp_event_done(&ev);

        assert_error(gv_qmp_next_event(q, 0, &ev, &e), e, EAGAIN, "No QMP event is queued");
        assert_null(ev.name);
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_reply_ids(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT("query-status"),
                /* A reply to nobody, a late reply to an older command, then ours. */
                SEND("{\"return\": {\"status\": \"wrong\"}, \"id\": 9999}\r\n"
                     "{\"return\": {\"status\": \"older\"}, \"id\": @PREV@}\r\n"
                     "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": @ID@}\r\n"
                     EV("RESUME", "")),
                EXPECT("query-status"),
                /* No id: QEMU could not read the request; it answers the command in flight. */
                SEND("{\"error\": {\"class\": \"GenericError\", "
                     "\"desc\": \"JSON parse error\"}}\r\n"),
                END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_free_ char *status = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_qmp_query_status(q, 5000, &status, &e), 0);
        assert_string_equal(status, "running");
        /* The event that came in the same read as the reply is queued, not left buffered
         * where poll() on the fd cannot see it. */
        assert_int_equal(gv_qmp_events_queued(q), 1);
        assert_error(gv_qmp_query_status(q, 5000, &status, &e), e, EREMOTEIO,
                     "QEMU refused 'query-status': JSON parse error (GenericError).");
        assert_string_equal(status, "running"); /* ret_ untouched on failure */
        gv_qmp_free(q);
        fake_finish(f);
}

#define ERR_REPLY(cls, desc)                                                                       \
        SEND("{\"id\": @ID@, \"error\": {\"class\": \"" cls "\", \"desc\": \"" desc "\"}}\r\n")

static void test_error_classes(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT("x-nope"),
                ERR_REPLY("CommandNotFound", "The command x-nope has not been found"),
                EXPECT("device_del"), ERR_REPLY("DeviceNotFound", "Device 'gpu0' not found"),
                EXPECT("device_del"), ERR_REPLY("DeviceNotActive", "No active device 'gpu0'"),
                EXPECT("query-kvm"), ERR_REPLY("KVMMissingCap", "KVM lacks a capability"),
                EXPECT("cont"), ERR_REPLY("GenericError", "Resetting the VM failed"),
                EXPECT("migrate"),
                ERR_REPLY("MigrationExpected", "An incoming migration is expected"),
                EXPECT("stop"), SEND("{\"id\": @ID@, \"error\": {\"desc\": \"no class\"}}\r\n"),
                END()};
        static const struct {
                const char *cmd;
                int errnum;
                const char *msg;
        } cases[] = {
                {"x-nope", EOPNOTSUPP,
                 "QEMU refused 'x-nope': The command x-nope has not been found (CommandNotFound)."},
                {"device_del", ENODEV,
                 "QEMU refused 'device_del': Device 'gpu0' not found (DeviceNotFound)."},
                {"device_del", ENODEV, "(DeviceNotActive)."},
                {"query-kvm", EOPNOTSUPP, "(KVMMissingCap)."},
                {"cont", EREMOTEIO, "QEMU refused 'cont': Resetting the VM failed (GenericError)."},
                {"migrate", EREMOTEIO, "(MigrationExpected)."},
                {"stop", EPROTO, "QEMU answered 'stop' with a malformed error"},
        };
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                json_t *ret = NULL;
                assert_error(gv_qmp_execute(q, cases[i].cmd, NULL, 5000, &ret, &e), e,
                             cases[i].errnum, cases[i].msg);
                assert_null(ret);
        }
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_closed_mid_command(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT("quit"),
                SEND(EV("SHUTDOWN",
                        ", \"data\": {\"guest\": false, \"reason\": \"host-qmp-quit\"}")),
                CLOSE(), END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_error(gv_qmp_execute(q, "quit", NULL, 5000, NULL, &e), e, ECONNRESET,
                     "QEMU closed its monitor while running 'quit'");
        e = gv_error_free(e);

        /* The event that came before the close is still there, then the end. */
        struct gv_qmp_event ev = {0};
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_SHUTDOWN, 1000, &ev, &e), 0);
        assert_string_equal(json_string_value(json_object_get(ev.data, "reason")),
                            "host-qmp-quit");
        gv_qmp_event_done(&ev);
        assert_error(gv_qmp_next_event(q, 1000, &ev, &e), e, ECONNRESET, "closed its monitor");
        e = gv_error_free(e);
        assert_error(gv_qmp_process(q, &e), e, ECONNRESET, "closed its monitor");
        e = gv_error_free(e);
        assert_error(gv_qmp_execute(q, "stop", NULL, 1000, NULL, &e), e, ECONNRESET,
                     "while running 'stop'");
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_sigpipe(void **state)
{
        (void)state;
        static const struct step steps[] = {HANDSHAKE, CLOSE(), END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        fake_finish(f); /* the peer is gone before we write */

        /* Default SIGPIPE disposition: a plain write() to the closed socket would kill us. */
        void (*old)(int) = signal(SIGPIPE, SIG_DFL);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_qmp_execute(q, "stop", NULL, 1000, NULL, &e);
        signal(SIGPIPE, old);
        assert_error(r, e, ECONNRESET, "QEMU closed its monitor while running 'stop'");
        gv_qmp_free(q);
}

static void test_garbage(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT("query-status"), SEND("{\"return\": {\"status\": \r\n"),
                EXPECT("query-status"), SEND("[1, 2, 3]\r\n"),
                EXPECT("query-status"), SEND("{\"id\": @ID@, \"answer\": 42}\r\n"),
                EXPECT("query-status"), SEND("{\"event\": 7}\r\n"),
                /* The connection survives all of that. */
                EXPECT("stop"), SEND("\r\n" OK_REPLY),
                END()};
        static const struct {
                int errnum;
                const char *msg;
        } cases[] = {
                {EPROTO, "While running 'query-status': QEMU sent malformed JSON on its monitor"},
                {EPROTO, "not a JSON object: '[1, 2, 3]'"},
                {EPROTO, "QEMU answered 'query-status' with a message that is neither a return "
                         "nor an error"},
                {EPROTO, "event whose 'event' is not a string"},
        };
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                _cleanup_free_ char *status = NULL;
                assert_error(gv_qmp_query_status(q, 5000, &status, &e), e, cases[i].errnum,
                             cases[i].msg);
                assert_null(status);
        }
        assert_int_equal(gv_qmp_execute(q, "stop", NULL, 5000, NULL, NULL), 0);
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_slow_monitor(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                EXPECT("query-status"),
                SLEEP(400),
                SEND("{\"return\": {\"status\": \"paused\"}, \"id\": @ID@}\r\n"),
                EXPECT("cont"),
                SEND("{\"return\": {\"x\": 2}, \"id\": @ID@}\r\n"),
                END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *status = NULL;

        int64_t t0 = now_ms();
        assert_error(gv_qmp_query_status(q, 100, &status, &e), e, ETIMEDOUT,
                     "QEMU did not answer 'query-status' within 100 ms.");
        int64_t dt = now_ms() - t0;
        assert_true(dt >= 100 && dt < 390);
        assert_null(status);

        /* The late answer to query-status arrives first and is not taken for cont's. */
        _cleanup_json_ json_t *ret = NULL;
        assert_int_equal(gv_qmp_execute(q, "cont", NULL, 5000, &ret, NULL), 0);
        assert_int_equal(json_integer_value(json_object_get(ret, "x")), 2);
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_process_and_wait(void **state)
{
        (void)state;
        static const struct step steps[] = {
                HANDSHAKE,
                PIECES(EV("RESUME", "") EV("RESET", ", \"data\": {\"guest\": true}")
                               "{\"return\": {}, \"id\": 777}\r\n" EV("STOP", ""),
                       50),
                SLEEP(100),
                SEND(EV("SHUTDOWN", "") EV("MIGRATION", ", \"data\": {\"status\": \"active\"}")),
                END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_qmp_event ev = {0};

        /* Nothing yet (the fake sends in 1 ms steps): a poll loop collects the first three. */
        int64_t t0 = now_ms();
        while (gv_qmp_events_queued(q) < 3) {
                struct pollfd p = {.fd = gv_qmp_fd(q), .events = POLLIN};
                assert_true(poll(&p, 1, 2000) > 0);
                int r = gv_qmp_process(q, &e);
                assert_true(r >= 0);
                assert_int_equal((size_t)r, gv_qmp_events_queued(q));
                assert_true(now_ms() - t0 < 3000);
        }
        assert_int_equal(gv_qmp_events_queued(q), 3);

        /* STOP is taken from the middle of the queue; the others keep their order. */
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_STOP, 0, &ev, &e), 0);
        assert_string_equal(ev.name, "STOP");
        gv_qmp_event_done(&ev);
        assert_int_equal(gv_qmp_events_queued(q), 2);

        /* MIGRATION is read from the socket; SHUTDOWN before it is queued on the way. */
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_MIGRATION, 5000, &ev, &e), 0);
        assert_string_equal(json_string_value(json_object_get(ev.data, "status")), "active");
        gv_qmp_event_done(&ev);

        const char *order[] = {"RESUME", "RESET", "SHUTDOWN"};
        for (size_t i = 0; i < ELEMENTSOF(order); i++) {
                assert_int_equal(gv_qmp_next_event(q, 0, &ev, &e), 0);
                assert_string_equal(ev.name, order[i]);
                gv_qmp_event_done(&ev);
        }
        assert_error(gv_qmp_next_event(q, 0, &ev, &e), e, EAGAIN, "is queued");
        e = gv_error_free(e);
        t0 = now_ms();
        assert_error(gv_qmp_next_event(q, 60, &ev, &e), e, ETIMEDOUT,
                     "No QMP event arrived within 60 ms.");
        assert_true(now_ms() - t0 >= 60);
        e = gv_error_free(e);
        assert_error(gv_qmp_wait_event(q, GV_QMP_EVENT_POWERDOWN, 0, &ev, &e), e, EAGAIN,
                     "No QMP 'POWERDOWN' event is queued.");
        e = gv_error_free(e);
        assert_error(gv_qmp_wait_event(q, GV_QMP_EVENT_RESET, 30, &ev, &e), e, ETIMEDOUT,
                     "No QMP 'RESET' event arrived within 30 ms.");
        e = gv_error_free(e);
        assert_error(gv_qmp_wait_event(q, _GV_QMP_EVENT_MAX, 30, &ev, &e), e, EINVAL,
                     "Unknown QMP event kind");
        assert_int_equal(gv_qmp_process(q, NULL), 0);
        gv_qmp_free(q);
        fake_finish(f);
}

static const char big_head[] = "{\"event\": \"BIG\", \"data\": {\"s\": \"";
static const char big_tail[] = "\"}}";

static char *big_event(size_t line_len)
{
        const char *head = big_head, *tail = big_tail;
        size_t fill = line_len - strlen(head) - strlen(tail);
        char *s = xmalloc(line_len + 3);
        memcpy(s, head, strlen(head));
        memset(s + strlen(head), 'x', fill);
        memcpy(s + strlen(head) + fill, tail, strlen(tail));
        memcpy(s + line_len, "\r\n", 3);
        return s;
}

static void test_line_limit(void **state)
{
        (void)state;
        /* A line of exactly the limit is taken; one byte more is discarded, and the line after
         * it is read as usual. */
        _cleanup_free_ char *at_limit = big_event(GV_QMP_LINE_MAX);
        _cleanup_free_ char *over = big_event(GV_QMP_LINE_MAX + 1);
        const struct step steps[] = {HANDSHAKE, SEND(at_limit), SEND(over),
                                     SEND(EV("STOP", "")), END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_qmp_event ev = {0};

        assert_int_equal(gv_qmp_next_event(q, 10000, &ev, &e), 0);
        assert_string_equal(ev.name, "BIG");
        assert_int_equal(strlen(json_string_value(json_object_get(ev.data, "s"))),
                         GV_QMP_LINE_MAX - strlen(big_head) - strlen(big_tail));
        gv_qmp_event_done(&ev);
        assert_error(gv_qmp_next_event(q, 10000, &ev, &e), e, EMSGSIZE,
                     "longer than 16777216 bytes; it was discarded");
        e = gv_error_free(e);
        assert_int_equal(gv_qmp_next_event(q, 10000, &ev, &e), 0);
        assert_string_equal(ev.name, "STOP");
        gv_qmp_event_done(&ev);
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_queue_overflow(void **state)
{
        (void)state;
        const size_t n = GV_QMP_EVENT_QUEUE_MAX + 6;
        size_t len = 0, alloc = n * 128;
        _cleanup_free_ char *flood = xmalloc(alloc);
        for (size_t i = 0; i < n; i++)
                len += (size_t)snprintf(flood + len, alloc - len,
                                        EV("RESET", ", \"data\": {\"seq\": %zu}"), i);
        const struct step steps[] = {HANDSHAKE, SEND(flood), CLOSE(), END()};
        struct fake *f;
        struct gv_qmp *q = open_fake(steps, &f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        int r;
        for (;;) {
                struct pollfd p = {.fd = gv_qmp_fd(q), .events = POLLIN};
                assert_true(poll(&p, 1, 5000) > 0);
                r = gv_qmp_process(q, &e);
                if (r < 0)
                        break;
                assert_true(r <= (int)GV_QMP_EVENT_QUEUE_MAX);
        }
        assert_error(r, e, ECONNRESET, "closed its monitor");
        e = gv_error_free(e);
        assert_int_equal(gv_qmp_events_queued(q), GV_QMP_EVENT_QUEUE_MAX);
        assert_int_equal(gv_qmp_events_dropped(q), 6);

        /* The oldest were dropped: the queue runs from seq 6 to the last. */
        struct gv_qmp_event ev = {0};
        for (size_t i = 6; i < n; i++) {
                assert_int_equal(gv_qmp_next_event(q, 0, &ev, &e), 0);
                assert_int_equal(json_integer_value(json_object_get(ev.data, "seq")), i);
                gv_qmp_event_done(&ev);
        }
        assert_error(gv_qmp_next_event(q, 0, &ev, &e), e, ECONNRESET, "closed its monitor");
        gv_qmp_free(q);
        fake_finish(f);
}

static void test_connect(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-test-qmp-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *path = gv_path_join(dir, "qmp.sock");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_qmp *q = NULL;

        /* No socket at all: retried until the timeout. */
        int64_t t0 = now_ms();
        assert_error(gv_qmp_connect(path, 150, &q, &e), e, ETIMEDOUT, "No QMP monitor at '");
        assert_non_null(strstr(e->msg, "' after 150 ms: No such file or directory."));
        assert_true(now_ms() - t0 >= 150);
        assert_null(q);
        e = gv_error_free(e);

        /* The monitor appears 100 ms after we start trying, as QEMU's does after exec. */
        static const struct step steps[] = {HANDSHAKE, EXPECT("stop"), SEND(OK_REPLY), END()};
        struct fake *f = fake_listen(steps, path, 100);
        assert_int_equal(gv_qmp_connect(path, 5000, &q, &e), 0);
        assert_null(e);
        assert_string_equal(gv_qmp_qemu_version(q), "7.2.22");
        int fl = fcntl(gv_qmp_fd(q), F_GETFL);
        assert_true(fl >= 0 && (fl & O_NONBLOCK));
        assert_true(fcntl(gv_qmp_fd(q), F_GETFD) & FD_CLOEXEC);
        assert_int_equal(gv_qmp_execute(q, "stop", NULL, 5000, NULL, &e), 0);
        q = gv_qmp_free(q);
        fake_finish(f);

        /* A path that no sockaddr_un holds. */
        char long_path[200];
        memset(long_path, 'a', sizeof(long_path) - 1);
        long_path[0] = '/';
        long_path[sizeof(long_path) - 1] = 0;
        assert_error(gv_qmp_connect(long_path, 100, &q, &e), e, ENAMETOOLONG,
                     "use a shorter runtime directory");
        e = gv_error_free(e);
        assert_error(gv_qmp_open_fd(-1, 100, &q, &e), e, EBADF, "Invalid QMP monitor fd");

        assert_int_equal(gv_rm_rf(dir), 0);
}

/* ---- real QEMU ----------------------------------------------------------------------------- */

struct qemu_run {
        pid_t pid;
        char dir[64];
};

static char *find_in_path(const char *name)
{
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/bin:/bin";
        _cleanup_free_ char *copy = xstrdup(path);
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char *p = gv_path_join(d, name);
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

static int qemu_teardown(void **state)
{
        struct qemu_run *run = *state;
        if (!run)
                return 0;
        if (run->pid > 0) {
                (void)kill(run->pid, SIGKILL);
                (void)waitpid(run->pid, NULL, 0);
        }
        if (run->dir[0])
                (void)gv_rm_rf(run->dir);
        free(run);
        *state = NULL;
        return 0;
}

static void print_qemu_log(const struct qemu_run *run)
{
        _cleanup_free_ char *log_path = gv_path_join(run->dir, "qemu.log");
        _cleanup_free_ char *log = NULL;
        if (gv_read_file(log_path, 64 * 1024, &log, NULL) >= 0)
                print_message("qemu.log:\n%s\n", log);
}

static void test_real_qemu(void **state)
{
        _cleanup_free_ char *qemu = find_in_path("qemu-system-x86_64");
        if (!qemu) {
                print_message("qemu-system-x86_64 is not installed (not in PATH): skipping the "
                              "real-QEMU test\n");
                skip();
        }

        struct qemu_run *run = xnew0(struct qemu_run, 1);
        *state = run;
        snprintf(run->dir, sizeof(run->dir), "/tmp/gv-test-qmp-XXXXXX");
        assert_non_null(mkdtemp(run->dir));
        _cleanup_free_ char *sock = gv_path_join(run->dir, "qmp.sock");
        _cleanup_free_ char *log_path = gv_path_join(run->dir, "qemu.log");
        _cleanup_free_ char *qmp_arg = xasprintf("unix:%s,server=on,wait=off", sock);

        /* KVM when /dev/kvm opens read-write (TCG as QEMU's own fallback should KVM still fail
         * to initialise), else TCG. */
        int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        bool use_kvm = kvm >= 0;
        safe_close(kvm);
        print_message("real QEMU at '%s', accel %s\n", qemu, use_kvm ? "kvm" : "tcg");

        const char *argv[] = {qemu, "-machine", "q35", "-nodefaults", "-display", "none",
                              "-S", "-qmp", qmp_arg,
                              "-accel", use_kvm ? "kvm" : "tcg",
                              use_kvm ? "-accel" : NULL, "tcg", NULL};
        run->pid = fork();
        assert_true(run->pid >= 0);
        if (run->pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int log = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (null < 0 || log < 0 || dup2(null, 0) < 0 || dup2(log, 1) < 0 ||
                    dup2(log, 2) < 0)
                        _exit(126);
                execv(qemu, (char *const *)argv);
                _exit(127);
        }

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = NULL;
        int r = gv_qmp_connect(sock, 20000, &q, &e);
        if (r < 0) {
                print_qemu_log(run);
                fail_msg("gv_qmp_connect: %s", gv_error_msg(e, r));
        }
        unsigned maj, min, mic;
        assert_int_equal(sscanf(gv_qmp_qemu_version(q), "%u.%u.%u", &maj, &min, &mic), 3);
        print_message("QEMU %s (%s)\n", gv_qmp_qemu_version(q), gv_qmp_qemu_package(q));

        _cleanup_free_ char *status = NULL;
        assert_int_equal(gv_qmp_query_status(q, 10000, &status, &e), 0);
        if (strcmp(status, "prelaunch") != 0 && strcmp(status, "paused") != 0)
                fail_msg("a QEMU started with -S is '%s', not prelaunch or paused", status);
        free(TAKE_PTR(status));

        struct gv_qmp_event ev = {0};
        assert_int_equal(gv_qmp_execute(q, "cont", NULL, 10000, NULL, &e), 0);
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_RESUME, 10000, &ev, &e), 0);
        assert_true(ev.ts_sec > 0);
        gv_qmp_event_done(&ev);
        assert_int_equal(gv_qmp_query_status(q, 10000, &status, &e), 0);
        assert_string_equal(status, "running");

        assert_int_equal(gv_qmp_execute(q, "stop", NULL, 10000, NULL, &e), 0);
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_STOP, 10000, &ev, &e), 0);
        gv_qmp_event_done(&ev);

        assert_error(gv_qmp_execute(q, "x-gpuvirt-no-such-command", NULL, 10000, NULL, &e), e,
                     EOPNOTSUPP, "QEMU refused 'x-gpuvirt-no-such-command': ");
        assert_non_null(strstr(e->msg, "(CommandNotFound)."));
        e = gv_error_free(e);

        r = gv_qmp_execute(q, "quit", NULL, 10000, NULL, &e);
        if (r < 0 && r != -ECONNRESET)
                fail_msg("quit: %s", gv_error_msg(e, r));
        e = gv_error_free(e);
        assert_int_equal(gv_qmp_wait_event(q, GV_QMP_EVENT_SHUTDOWN, 10000, &ev, &e), 0);
        assert_string_equal(json_string_value(json_object_get(ev.data, "reason")),
                            "host-qmp-quit");
        gv_qmp_event_done(&ev);

        int wstatus;
        assert_int_equal(waitpid(run->pid, &wstatus, 0), run->pid);
        run->pid = 0;
        assert_true(WIFEXITED(wstatus));
        assert_int_equal(WEXITSTATUS(wstatus), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_event_kind_table),
                cmocka_unit_test(test_handshake),
                cmocka_unit_test(test_greeting_not_qmp),
                cmocka_unit_test(test_greeting_timeout),
                cmocka_unit_test(test_closed_during_handshake),
                cmocka_unit_test(test_execute_pieces_and_events),
                cmocka_unit_test(test_reply_ids),
                cmocka_unit_test(test_error_classes),
                cmocka_unit_test(test_closed_mid_command),
                cmocka_unit_test(test_sigpipe),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_slow_monitor),
                cmocka_unit_test(test_process_and_wait),
                cmocka_unit_test(test_line_limit),
                cmocka_unit_test(test_queue_overflow),
                cmocka_unit_test(test_connect),
                cmocka_unit_test_teardown(test_real_qemu, qemu_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
