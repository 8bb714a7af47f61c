/* SPDX-License-Identifier: MIT */
/*
 * Live migration over QMP (src/vmm/migrate.h): the checks of addresses and parameters, each
 * command against a scripted fake monitor (the exact arguments sent, QEMU's refusals mapped),
 * query-migrate parsing of real answers (recorded from QEMU 7.2.22) and of malformed ones, and
 * two real QEMUs (TCG, an edu device each, no guest) migrating over loopback: completed (the
 * source paused in postmigrate, the destination running), cancelled (the source running), and
 * the destination killed mid-transfer (failed; the source running). The disks copied with a
 * migration (src/vmm/block-mirror.h): each command against the fake, query-block-jobs parsing,
 * and two real QEMUs with an overlay and an empty data disk each: the destination's NBD
 * server, the source's mirrors, the pause before the switch-over, the copies compared with
 * qemu-img; the destination killed during the copy (the job fails, the source runs on). The
 * real-QEMU tests skip with the reason when qemu-system-x86_64 is not installed.
 *
 * The fake monitor is a thread on the other end of a socketpair playing a script of steps, as
 * in test-qmp.c: send a line (@ID@ becomes the id of the last request), expect a command with
 * exactly these arguments. Failures in the thread are recorded and asserted after joining it.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/alloc.h"
#include "util/error.h"
#include "util/fileio.h"
#include "util/json.h"
#include "vmm/block-mirror.h"
#include "vmm/migrate.h"
#include "vmm/qmp.h"

/* ---- the fake monitor ---------------------------------------------------------------------- */

enum step_op { S_END, S_SEND, S_EXPECT };

struct step {
        enum step_op op;
        const char *text; /* S_SEND: a line (@ID@ substituted); S_EXPECT: the command */
        const char *args; /* S_EXPECT: exactly these "arguments" (JSON), or NULL for none */
};

#define SEND(t) { .op = S_SEND, .text = (t) }
#define EXPECT(cmd, a) { .op = S_EXPECT, .text = (cmd), .args = (a) }
#define END() { .op = S_END }
#define GREETING                                                                           \
        "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
        "\"package\": \"fake\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define OK "{\"return\": {}, \"id\": @ID@}\r\n"
#define RETURN(obj) "{\"return\": " obj ", \"id\": @ID@}\r\n"
#define REFUSE(desc)                                                                        \
        "{\"error\": {\"class\": \"GenericError\", \"desc\": \"" desc "\"}, \"id\": @ID@}\r\n"
#define HANDSHAKE SEND(GREETING), EXPECT("qmp_capabilities", NULL), SEND(OK)
#define CAPS_ARGS                                                                          \
        "{\"capabilities\": [{\"capability\": \"postcopy-ram\", \"state\": false}, "       \
        "{\"capability\": \"events\", \"state\": true}]}"
#define PAUSE_ARGS(b)                                                                      \
        "{\"capabilities\": [{\"capability\": \"pause-before-switchover\", \"state\": " b  \
        "}]}"

struct fake {
        int fd;
        const struct step *steps;
        pthread_t thread;
        FILE *in;
        json_t *id;
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

static char *fake_line(struct fake *f)
{
        char *line = NULL;
        size_t cap = 0;
        if (getline(&line, &cap, f->in) < 0) {
                free(line);
                return NULL;
        }
        return line;
}

static void fake_send(struct fake *f, const char *text)
{
        _cleanup_free_ char *id = f->id ? json_dumps(f->id, JSON_ENCODE_ANY) : xstrdup("null");
        _cleanup_free_ char *out = xstrdup(text);
        char *p;
        while ((p = strstr(out, "@ID@"))) {
                char *n = xasprintf("%.*s%s%s", (int)(p - out), out, id, p + 4);
                free(out);
                out = n;
        }
        size_t n = strlen(out);
        if (send(f->fd, out, n, MSG_NOSIGNAL) != (ssize_t)n)
                fake_fail(f, "fake monitor: send failed: %s", strerror(errno));
}

static void fake_expect(struct fake *f, const struct step *s)
{
        _cleanup_free_ char *line = fake_line(f);
        json_error_t je;
        if (!line) {
                fake_fail(f, "fake monitor: the client closed before sending '%s'", s->text);
                return;
        }
        _cleanup_json_ json_t *req = json_loads(line, 0, &je);
        const char *cmd = json_string_value(json_object_get(req, "execute"));
        if (!cmd || strcmp(cmd, s->text) != 0) {
                fake_fail(f, "fake monitor: expected '%s', got '%s'", s->text, line);
                return;
        }
        json_t *args = json_object_get(req, "arguments");
        _cleanup_json_ json_t *want = s->args ? json_loads(s->args, 0, &je) : NULL;
        if (s->args && !want) {
                fake_fail(f, "fake monitor: the script's arguments do not parse: %s", s->args);
                return;
        }
        if ((want || args) && !(want && args && json_equal(want, args))) {
                fake_fail(f, "fake monitor: '%s' has arguments other than %s: '%s'", s->text,
                          s->args ? s->args : "none", line);
                return;
        }
        json_decref(f->id);
        f->id = json_incref(json_object_get(req, "id"));
}

static void *fake_main(void *p)
{
        struct fake *f = p;
        for (const struct step *s = f->steps; s->op != S_END && !f->fail[0]; s++) {
                if (s->op == S_SEND)
                        fake_send(f, s->text);
                else
                        fake_expect(f, s);
        }
        if (!f->fail[0]) {
                /* Nothing else may come: wait for the client to close. */
                _cleanup_free_ char *extra = fake_line(f);
                if (extra)
                        fake_fail(f, "fake monitor: unexpected request after the script: '%s'",
                                  extra);
        }
        return NULL;
}

static struct gv_qmp *fake_open(const struct step *steps, struct fake **ret)
{
        int sv[2];
        struct gv_qmp *q = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        struct fake *f = xnew0(struct fake, 1);
        f->fd = sv[1];
        f->in = fdopen(dup(sv[1]), "r");
        assert_non_null(f->in);
        f->steps = steps;
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        int r = gv_qmp_open_fd(sv[0], 5000, &q, &e);
        if (r < 0)
                fail_msg("gv_qmp_open_fd: %s", gv_error_msg(e, r));
        *ret = f;
        return q;
}

/* Close the client, join the fake, fail the test if the script did not run as written. */
static void fake_finish(struct gv_qmp *q, struct fake *f)
{
        gv_qmp_free(q);
        assert_int_equal(pthread_join(f->thread, NULL), 0);
        fclose(f->in);
        safe_close(f->fd);
        json_decref(f->id);
        char fail[sizeof(f->fail)];
        memcpy(fail, f->fail, sizeof(fail));
        free(f);
        if (fail[0])
                fail_msg("%s", fail);
}

#define assert_error(r, e, errnum, substr)                                                  \
        do {                                                                                \
                int r_ = (r);                                                               \
                if (r_ != -(errnum))                                                        \
                        fail_msg("expected -%s, got %d (%s)", gv_errno_name(errnum), r_,   \
                                 gv_error_msg((e), r_));                                    \
                assert_non_null(e);                                                         \
                if (!strstr((e)->msg, (substr)))                                            \
                        fail_msg("message '%s' lacks '%s'", (e)->msg, (substr));           \
                (e) = gv_error_free(e);                                                     \
        } while (0)

/* ---- pure checks --------------------------------------------------------------------------- */

static void test_status_table(void **state)
{
        (void)state;
        assert_string_equal(gv_migrate_status_to_string(GV_MIGRATE_COMPLETED), "completed");
        assert_string_equal(gv_migrate_status_to_string(GV_MIGRATE_WAIT_UNPLUG), "wait-unplug");
        assert_null(gv_migrate_status_to_string(_GV_MIGRATE_STATUS_MAX));
        assert_int_equal(gv_migrate_status_from_string("postcopy-active"),
                         GV_MIGRATE_POSTCOPY_ACTIVE);
        assert_int_equal(gv_migrate_status_from_string("Completed"), -EINVAL);
        assert_int_equal(gv_migrate_status_from_string(NULL), -EINVAL);
        for (int s = 0; s < _GV_MIGRATE_STATUS_MAX; s++)
                assert_int_equal(gv_migrate_status_is_final(s),
                                 s == GV_MIGRATE_COMPLETED || s == GV_MIGRATE_FAILED ||
                                         s == GV_MIGRATE_CANCELLED);
        assert_false(gv_migrate_status_is_final(_GV_MIGRATE_STATUS_INVALID));
}

static void test_addresses(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char *host = NULL;
        uint16_t port = 0;

        assert_int_equal(gv_migrate_uri_parse("tcp:192.0.2.7:49152", false, &host, &port, &e), 0);
        assert_string_equal(host, "192.0.2.7");
        assert_int_equal(port, 49152);
        free(host);
        assert_int_equal(gv_migrate_address_parse("[2001:db8::7]:0", true, &host, &port, &e), 0);
        assert_string_equal(host, "2001:db8::7");
        assert_int_equal(port, 0);
        free(host);
        host = NULL;
        assert_int_equal(gv_migrate_address_parse("gpu-host-2.example.org:1", false, NULL, NULL,
                                                  &e), 0);

        /* Refusals name what is wrong; outputs untouched. */
        port = 7;
        assert_error(gv_migrate_uri_parse("exec:cat > /tmp/x", false, &host, &port, &e), e,
                     EINVAL, "only 'tcp:HOST:PORT'");
        assert_null(host);
        assert_int_equal(port, 7);
        assert_error(gv_migrate_uri_parse("unix:/run/m.sock", false, NULL, NULL, &e), e, EINVAL,
                     "unix:");
        assert_error(gv_migrate_uri_parse("tcp:10.0.0.1:0", false, NULL, NULL, &e), e, EINVAL,
                     "from 1 to 65535");
        assert_error(gv_migrate_address_parse("10.0.0.1:65536", true, NULL, NULL, &e), e,
                     EINVAL, "from 0 to 65535");
        assert_error(gv_migrate_address_parse("10.0.0.1:+80", true, NULL, NULL, &e), e, EINVAL,
                     "'+80'");
        assert_error(gv_migrate_address_parse("10.0.0.1", true, NULL, NULL, &e), e, EINVAL,
                     "has no port");
        assert_error(gv_migrate_address_parse("2001:db8::7:80", true, NULL, NULL, &e), e, EINVAL,
                     "brackets");
        assert_error(gv_migrate_address_parse("[zz::1]:80", true, NULL, NULL, &e), e, EINVAL,
                     "bracketed");
        assert_error(gv_migrate_address_parse("a b:80", true, NULL, NULL, &e), e, EINVAL,
                     "host 'a b'");
        assert_error(gv_migrate_address_parse(":80", true, NULL, NULL, &e), e, EINVAL, "host ''");
        assert_error(gv_migrate_address_parse("", true, NULL, NULL, &e), e, EINVAL, "empty");
        assert_error(gv_migrate_address_parse("a..b:80", true, NULL, NULL, &e), e, EINVAL,
                     "not an IPv4 address or a DNS name");
}

static void test_params_check(void **state)
{
        (void)state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_migrate_params p = { .downtime_limit_ms = 300, .max_bandwidth = 1024 };

        assert_int_equal(gv_migrate_params_check(&p, &e), 0);
        p.postcopy = true;
        assert_error(gv_migrate_params_check(&p, &e), e, EOPNOTSUPP, "VFIO");
        p.postcopy = false;
        p.downtime_limit_ms = 0;
        assert_error(gv_migrate_params_check(&p, &e), e, EINVAL, "1 to 2000000 ms");
        p.downtime_limit_ms = GV_MIGRATE_DOWNTIME_MAX_MS + 1;
        assert_error(gv_migrate_params_check(&p, &e), e, EINVAL, "out of range");
        p.downtime_limit_ms = GV_MIGRATE_DOWNTIME_MAX_MS;
        /* QEMU 7.2 applies the cap per 100 ms and reads a zero share as "no cap": below
         * 10 bytes/s a cap would mean none. */
        p.max_bandwidth = 1023;
        assert_error(gv_migrate_params_check(&p, &e), e, EINVAL, "1024 to");
        p.max_bandwidth = (uint64_t)INT64_MAX + 1;
        assert_error(gv_migrate_params_check(&p, &e), e, EINVAL, "bandwidth");
}

/* ---- commands against the fake ------------------------------------------------------------- */

static void test_setup_and_start(void **state)
{
        (void)state;
        static const struct step script[] = {
                HANDSHAKE,
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-set-capabilities", PAUSE_ARGS("false")), SEND(OK),
                EXPECT("migrate-set-parameters",
                       "{\"downtime-limit\": 500, \"max-bandwidth\": 1048576}"), SEND(OK),
                EXPECT("migrate", "{\"uri\": \"tcp:192.0.2.7:49152\"}"), SEND(OK),
                EXPECT("query-migrate-parameters", NULL),
                SEND(RETURN("{\"downtime-limit\": 500, \"max-bandwidth\": 1048576, "
                            "\"multifd-channels\": 2}")),
                EXPECT("migrate", "{\"uri\": \"tcp:192.0.2.7:49153\"}"),
                SEND(REFUSE("There's a migration process in progress")),
                EXPECT("migrate_cancel", NULL), SEND(OK),
                /* With disks to copy: the pause before the switch-over, then going on. */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-set-capabilities", PAUSE_ARGS("true")), SEND(OK),
                EXPECT("migrate-set-parameters",
                       "{\"downtime-limit\": 500, \"max-bandwidth\": 1048576}"), SEND(OK),
                EXPECT("migrate-continue", "{\"state\": \"pre-switchover\"}"), SEND(OK),
                EXPECT("migrate-continue", "{\"state\": \"pre-switchover\"}"),
                SEND(REFUSE("Cannot continue from state active")),
                END(),
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct fake *f;
        struct gv_qmp *q = fake_open(script, &f);
        struct gv_migrate_params p = { .downtime_limit_ms = 500, .max_bandwidth = 1 << 20 };
        struct gv_migrate_params got = { 0 };

        /* Refused before anything is sent: the script has no room for them. */
        p.postcopy = true;
        assert_error(gv_migrate_setup(q, &p, 2000, &e), e, EOPNOTSUPP, "Post-copy");
        p.postcopy = false;
        assert_error(gv_migrate_start(q, "exec:sh -c 'id'", 2000, &e), e, EINVAL, "exec:");

        assert_int_equal(gv_migrate_setup(q, &p, 2000, &e), 0);
        assert_int_equal(gv_migrate_start(q, "tcp:192.0.2.7:49152", 2000, &e), 0);
        assert_int_equal(gv_migrate_get_params(q, 2000, &got, &e), 0);
        assert_int_equal(got.downtime_limit_ms, 500);
        assert_int_equal(got.max_bandwidth, 1 << 20);
        assert_error(gv_migrate_start(q, "tcp:192.0.2.7:49153", 2000, &e), e, EREMOTEIO,
                     "Cannot start the migration to 'tcp:192.0.2.7:49153': QEMU refused "
                     "'migrate': There's a migration process in progress");
        assert_int_equal(gv_migrate_cancel(q, 2000, &e), 0);
        p.pause_before_switchover = true;
        assert_int_equal(gv_migrate_setup(q, &p, 2000, &e), 0);
        assert_int_equal(gv_migrate_continue(q, 2000, &e), 0);
        assert_error(gv_migrate_continue(q, 2000, &e), e, EREMOTEIO,
                     "Cannot go on with the switch-over: QEMU refused 'migrate-continue': "
                     "Cannot continue from state active");
        fake_finish(q, f);
}

/* ---- disks (block-mirror.h) against the fake ------------------------------------------------ */

static void test_nbd_destination(void **state)
{
        (void)state;
        static const struct step script[] = {
                HANDSHAKE,
                EXPECT("getfd", "{\"fdname\": \"gv-nbd\"}"), SEND(OK),
                EXPECT("nbd-server-start",
                       "{\"addr\": {\"type\": \"fd\", \"data\": {\"str\": \"gv-nbd\"}}}"),
                SEND(OK),
                EXPECT("block-export-add",
                       "{\"type\": \"nbd\", \"id\": \"gv-export2\", \"node-name\": \"disk2\", "
                       "\"name\": \"data\", \"writable\": true}"), SEND(OK),
                EXPECT("block-export-add",
                       "{\"type\": \"nbd\", \"id\": \"gv-export3\", \"node-name\": \"disk3\", "
                       "\"name\": \"nope\", \"writable\": true}"),
                SEND(REFUSE("Cannot find device='disk3' nor node-name='disk3'")),
                EXPECT("nbd-server-stop", NULL), SEND(OK),
                EXPECT("nbd-server-stop", NULL), SEND(REFUSE("NBD server not running")),
                /* A refused start gives the fd back. */
                EXPECT("getfd", "{\"fdname\": \"gv-nbd\"}"), SEND(OK),
                EXPECT("nbd-server-start",
                       "{\"addr\": {\"type\": \"fd\", \"data\": {\"str\": \"gv-nbd\"}}}"),
                SEND(REFUSE("NBD server already running")),
                EXPECT("closefd", "{\"fdname\": \"gv-nbd\"}"), SEND(OK),
                END(),
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_close_ int fd = -1;
        uint16_t port = 0;
        struct fake *f;

        /* The kernel picks the port; the socket listens already. */
        assert_int_equal(gv_nbd_listen("127.0.0.1", &fd, &port, &e), 0);
        assert_true(fd >= 0 && port > 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
        close(c);
        assert_error(gv_nbd_listen("192.0.2.1", &c, &port, &e), e, EINVAL, "no such address");
        assert_error(gv_nbd_listen("no-such-host.invalid", &c, &port, &e), e, EINVAL,
                     "no-such-host.invalid");

        struct gv_qmp *q = fake_open(script, &f);
        assert_int_equal(gv_nbd_server_start(q, fd, 2000, &e), 0);
        assert_int_equal(gv_nbd_export(q, 2, "data", 2000, &e), 0);
        assert_error(gv_nbd_export(q, 3, "nope", 2000, &e), e, EREMOTEIO,
                     "Cannot export disk 'nope' over NBD");
        assert_int_equal(gv_nbd_server_stop(q, 2000, &e), 0);
        assert_int_equal(gv_nbd_server_stop(q, 2000, &e), 0); /* not running: fine */
        assert_error(gv_nbd_server_start(q, fd, 2000, &e), e, EREMOTEIO,
                     "Cannot start QEMU's NBD server");
        fake_finish(q, f);
}

static void test_mirror_source(void **state)
{
        (void)state;
        static const struct step script[] = {
                HANDSHAKE,
                EXPECT("blockdev-add",
                       "{\"driver\": \"nbd\", \"node-name\": \"gv-nbd0\", \"server\": "
                       "{\"type\": \"inet\", \"host\": \"192.0.2.7\", \"port\": \"10809\"}, "
                       "\"export\": \"root\"}"), SEND(OK),
                EXPECT("blockdev-mirror",
                       "{\"job-id\": \"gv-mirror0\", \"device\": \"disk0\", \"target\": "
                       "\"gv-nbd0\", \"sync\": \"top\", \"copy-mode\": \"write-blocking\", "
                       "\"auto-dismiss\": false}"), SEND(OK),
                EXPECT("blockdev-add",
                       "{\"driver\": \"nbd\", \"node-name\": \"gv-nbd1\", \"server\": "
                       "{\"type\": \"inet\", \"host\": \"2001:db8::7\", \"port\": \"10809\"}, "
                       "\"export\": \"data\"}"), SEND(OK),
                EXPECT("blockdev-mirror",
                       "{\"job-id\": \"gv-mirror1\", \"device\": \"disk1\", \"target\": "
                       "\"gv-nbd1\", \"sync\": \"full\", \"copy-mode\": \"write-blocking\", "
                       "\"auto-dismiss\": false, \"speed\": 1048576, \"buf-size\": 262144}"),
                SEND(OK),
                /* A mirror QEMU refuses leaves no client node behind. */
                EXPECT("blockdev-add",
                       "{\"driver\": \"nbd\", \"node-name\": \"gv-nbd2\", \"server\": "
                       "{\"type\": \"inet\", \"host\": \"192.0.2.7\", \"port\": \"10809\"}, "
                       "\"export\": \"big\"}"), SEND(OK),
                EXPECT("blockdev-mirror",
                       "{\"job-id\": \"gv-mirror2\", \"device\": \"disk2\", \"target\": "
                       "\"gv-nbd2\", \"sync\": \"top\", \"copy-mode\": \"write-blocking\", "
                       "\"auto-dismiss\": false}"),
                SEND(REFUSE("Source and target image have different sizes")),
                EXPECT("blockdev-del", "{\"node-name\": \"gv-nbd2\"}"), SEND(OK),
                EXPECT("blockdev-add",
                       "{\"driver\": \"nbd\", \"node-name\": \"gv-nbd3\", \"server\": "
                       "{\"type\": \"inet\", \"host\": \"192.0.2.7\", \"port\": \"10809\"}, "
                       "\"export\": \"gone\"}"),
                SEND(REFUSE("Requested export not available")),
                EXPECT("query-block-jobs", NULL),
                SEND(RETURN("[{\"auto-finalize\": true, \"io-status\": \"ok\", \"device\": "
                            "\"gv-mirror0\", \"auto-dismiss\": false, \"busy\": false, "
                            "\"len\": 1048576, \"offset\": 1048576, \"status\": \"ready\", "
                            "\"paused\": false, \"speed\": 0, \"ready\": true, \"type\": "
                            "\"mirror\"}, {\"device\": \"gv-mirror1\", \"len\": 33554432, "
                            "\"offset\": 4096, \"status\": \"concluded\", \"ready\": false, "
                            "\"type\": \"mirror\", \"error\": \"Input/output error\"}]")),
                EXPECT("block-job-cancel", "{\"device\": \"gv-mirror0\", \"force\": false}"),
                SEND(OK),
                EXPECT("block-job-cancel", "{\"device\": \"gv-mirror1\", \"force\": true}"),
                SEND("{\"error\": {\"class\": \"DeviceNotActive\", \"desc\": \"No active "
                     "block job on device 'gv-mirror1'\"}, \"id\": @ID@}\r\n"),
                EXPECT("job-dismiss", "{\"id\": \"gv-mirror0\"}"), SEND(OK),
                EXPECT("blockdev-del", "{\"node-name\": \"gv-nbd0\"}"), SEND(OK),
                /* Gone already: fine. */
                EXPECT("job-dismiss", "{\"id\": \"gv-mirror1\"}"),
                SEND(REFUSE("Job not found")),
                EXPECT("blockdev-del", "{\"node-name\": \"gv-nbd1\"}"),
                SEND(REFUSE("Failed to find node with node-name='gv-nbd1'")),
                /* Still running: refused, the node kept. */
                EXPECT("job-dismiss", "{\"id\": \"gv-mirror2\"}"),
                SEND(REFUSE("Job 'gv-mirror2' in state 'running' cannot accept command verb "
                            "'dismiss'")),
                END(),
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_block_job *jobs = NULL;
        size_t n = 0;
        struct fake *f;
        struct gv_qmp *q = fake_open(script, &f);

        assert_int_equal(gv_mirror_start(q, 0, "192.0.2.7", 10809, "root", false, 0, 2000, &e), 0);
        assert_int_equal(gv_mirror_start(q, 1, "2001:db8::7", 10809, "data", true, 1 << 20, 2000,
                                         &e), 0);
        assert_error(gv_mirror_start(q, 2, "192.0.2.7", 10809, "big", false, 0, 2000, &e), e,
                     EREMOTEIO, "Cannot start copying disk 'big'");
        assert_error(gv_mirror_start(q, 3, "192.0.2.7", 10809, "gone", false, 0, 2000, &e), e,
                     EREMOTEIO, "export of disk 'gone' at '192.0.2.7' port 10809");
        assert_int_equal(gv_block_jobs_query(q, 2000, &jobs, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(jobs[0].id, "gv-mirror0");
        assert_string_equal(jobs[0].type, "mirror");
        assert_string_equal(jobs[0].status, "ready");
        assert_true(jobs[0].ready);
        assert_int_equal(jobs[0].len, 1048576);
        assert_null(jobs[0].error);
        assert_false(gv_block_job_is_over(&jobs[0]));
        assert_true(gv_block_job_is_over(&jobs[1]));
        assert_string_equal(jobs[1].error, "Input/output error");
        assert_int_equal(jobs[1].offset, 4096);
        gv_block_jobs_free(jobs, n);
        assert_int_equal(gv_mirror_cancel(q, 0, false, 2000, &e), 0);
        assert_error(gv_mirror_cancel(q, 1, true, 2000, &e), e, ENODEV, "no block job");
        assert_int_equal(gv_mirror_remove(q, 0, 2000, &e), 0);
        assert_int_equal(gv_mirror_remove(q, 1, 2000, &e), 0);
        assert_error(gv_mirror_remove(q, 2, 2000, &e), e, EREMOTEIO,
                     "Cannot dismiss block job 'gv-mirror2'");
        fake_finish(q, f);
}

static void test_block_jobs_parse(void **state)
{
        (void)state;
        static const char *const bad[][2] = {
                { "{}", "not a list" },
                { "[1]", "'[0]' that is not an object" },
                { "[{\"type\": \"mirror\"}]", "'[0].device' that is missing" },
                { "[{\"device\": \"j\", \"type\": \"mirror\", \"status\": \"ready\", "
                  "\"len\": -1, \"offset\": 0, \"ready\": true}]", "'[0].len'" },
                { "[{\"device\": \"j\", \"type\": \"mirror\", \"status\": \"ready\", "
                  "\"len\": 1, \"offset\": 0, \"ready\": 1}]", "'[0].ready'" },
                { "[{\"device\": \"j\", \"type\": \"mirror\", \"status\": 3, "
                  "\"len\": 1, \"offset\": 0, \"ready\": true}]", "'[0].status'" },
        };
        for (size_t k = 0; k < ELEMENTSOF(bad); k++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                _cleanup_json_ json_t *j = json_loads(bad[k][0], 0, NULL);
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                assert_non_null(j);
                assert_error(gv_block_jobs_from_json(j, &jobs, &n, &e), e, EPROTO, bad[k][1]);
        }
        unsigned idx = 99;
        assert_true(gv_mirror_job_index("gv-mirror7", &idx));
        assert_int_equal(idx, 7);
        assert_false(gv_mirror_job_index("gv-mirror", NULL));
        assert_false(gv_mirror_job_index("gv-mirror-1", NULL));
        assert_false(gv_mirror_job_index("mirror7", NULL));
        assert_false(gv_mirror_job_index("gv-mirror7x", NULL));
}

static void test_incoming(void **state)
{
        (void)state;
        static const struct step script[] = {
                HANDSHAKE,
                /* port 0: the port QEMU bound comes from query-migrate */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:127.0.0.1:0\"}"), SEND(OK),
                EXPECT("query-migrate", NULL),
                SEND(RETURN("{\"socket-address\": [{\"port\": \"46235\", \"ipv4\": true, "
                            "\"host\": \"127.0.0.1\", \"type\": \"inet\"}]}")),
                /* a port given: no query */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:[::1]:49152\"}"), SEND(OK),
                /* the port taken */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:127.0.0.1:49152\"}"),
                SEND(REFUSE("Failed to bind socket: Address already in use")),
                /* an address this host lacks */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:192.0.2.99:49152\"}"),
                SEND(REFUSE("Failed to bind socket: Cannot assign requested address")),
                /* QEMU not started with -incoming defer */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:127.0.0.1:0\"}"),
                SEND(REFUSE("'-incoming' was not specified on the command line")),
                /* port 0 and QEMU does not say which it bound */
                EXPECT("migrate-set-capabilities", CAPS_ARGS), SEND(OK),
                EXPECT("migrate-incoming", "{\"uri\": \"tcp:127.0.0.1:0\"}"), SEND(OK),
                EXPECT("query-migrate", NULL), SEND(RETURN("{\"status\": \"setup\"}")),
                END(),
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct fake *f;
        struct gv_qmp *q = fake_open(script, &f);
        char *uri = NULL;

        assert_int_equal(gv_migrate_incoming(q, "tcp:127.0.0.1:0", 2000, &uri, &e), 0);
        assert_string_equal(uri, "tcp:127.0.0.1:46235");
        free(uri);
        assert_int_equal(gv_migrate_incoming(q, "tcp:[::1]:49152", 2000, &uri, &e), 0);
        assert_string_equal(uri, "tcp:[::1]:49152");
        free(uri);
        uri = NULL;
        assert_error(gv_migrate_incoming(q, "tcp:127.0.0.1:49152", 2000, &uri, &e), e, EBUSY,
                     "the port is in use");
        assert_error(gv_migrate_incoming(q, "tcp:192.0.2.99:49152", 2000, &uri, &e), e, EINVAL,
                     "no address '192.0.2.99'");
        assert_error(gv_migrate_incoming(q, "tcp:127.0.0.1:0", 2000, &uri, &e), e, EREMOTEIO,
                     "'-incoming' was not specified");
        assert_error(gv_migrate_incoming(q, "tcp:127.0.0.1:0", 2000, &uri, &e), e, EPROTO,
                     "did not say on which port");
        assert_error(gv_migrate_incoming(q, "fd:3", 2000, &uri, &e), e, EINVAL, "fd:");
        assert_null(uri);
        fake_finish(q, f);
}

/* ---- query-migrate ------------------------------------------------------------------------- */

/* As QEMU 7.2.22 answered (two TCG QEMUs on loopback, 128 MiB, an edu device each). */
#define QM_ACTIVE                                                                           \
        "{\"expected-downtime\": 300, \"status\": \"active\", \"setup-time\": 2, "          \
        "\"total-time\": 1203, \"ram\": {\"total\": 134750208, \"postcopy-requests\": 0, "   \
        "\"dirty-sync-count\": 1, \"multifd-bytes\": 0, \"pages-per-second\": 32, "         \
        "\"page-size\": 4096, \"remaining\": 132120576, \"mbps\": 8.39, \"transferred\": "  \
        "1258291, \"duplicate\": 300, \"dirty-pages-rate\": 0, \"skipped\": 0, "            \
        "\"normal-bytes\": 1228800, \"normal\": 300}}"
#define QM_COMPLETED                                                                        \
        "{\"status\": \"completed\", \"setup-time\": 2, \"downtime\": 1, \"total-time\": 18, " \
        "\"ram\": {\"total\": 134750208, \"dirty-sync-count\": 2, \"remaining\": 0, "        \
        "\"mbps\": 514.483, \"transferred\": 952586, \"dirty-pages-rate\": 0}}"

static struct gv_migrate_info parse(const char *text)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_migrate_info i = { 0 };
        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        int r = gv_migrate_info_from_json(j, &i, &e);
        if (r < 0)
                fail_msg("%s: %s", text, gv_error_msg(e, r));
        return i;
}

static void expect_proto(const char *text, const char *substr)
{
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_migrate_info i = { .ram_total = 42 };
        assert_int_equal(gv_json_loads(text, &j, &e), 0);
        assert_error(gv_migrate_info_from_json(j, &i, &e), e, EPROTO, substr);
        assert_int_equal(i.ram_total, 42); /* untouched */
        assert_null(i.status_name);
}

static void test_query_parse(void **state)
{
        (void)state;
        struct gv_migrate_info i = parse(QM_ACTIVE);
        assert_int_equal(i.status, GV_MIGRATE_ACTIVE);
        assert_true(i.has_ram);
        assert_int_equal(i.ram_total, 134750208);
        assert_int_equal(i.ram_transferred, 1258291);
        assert_int_equal(i.ram_remaining, 132120576);
        assert_true(i.ram_mbps > 8.38 && i.ram_mbps < 8.40);
        assert_int_equal(i.ram_dirty_sync_count, 1);
        assert_int_equal(i.expected_downtime_ms, 300);
        assert_int_equal(i.downtime_ms, -1);
        assert_int_equal(i.total_time_ms, 1203);
        assert_false(i.has_device);
        assert_null(i.error_desc);
        json_t *j = gv_migrate_info_to_json(&i);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "active");
        assert_int_equal(json_integer_value(json_object_get(j, "ram_remaining")), 132120576);
        assert_int_equal(json_integer_value(json_object_get(j, "expected_downtime_ms")), 300);
        assert_true(json_is_null(json_object_get(j, "downtime_ms")));
        assert_true(json_is_null(json_object_get(j, "device_transferred")));
        assert_true(json_is_null(json_object_get(j, "error")));
        json_decref(j);
        gv_migrate_info_done(&i);
        assert_null(i.status_name);

        i = parse(QM_COMPLETED);
        assert_int_equal(i.status, GV_MIGRATE_COMPLETED);
        assert_int_equal(i.downtime_ms, 1);
        assert_int_equal(i.expected_downtime_ms, -1);
        gv_migrate_info_done(&i);

        i = parse("{\"status\": \"failed\", \"error-desc\": \"Unable to write to socket: "
                  "Broken pipe\", \"vfio\": {\"transferred\": 123456}}");
        assert_int_equal(i.status, GV_MIGRATE_FAILED);
        assert_string_equal(i.error_desc, "Unable to write to socket: Broken pipe");
        assert_true(i.has_device);
        assert_int_equal(i.device_transferred, 123456);
        assert_false(i.has_ram);
        j = gv_migrate_info_to_json(&i);
        assert_string_equal(json_string_value(json_object_get(j, "error")),
                            "Unable to write to socket: Broken pipe");
        assert_int_equal(json_integer_value(json_object_get(j, "device_transferred")), 123456);
        assert_true(json_is_null(json_object_get(j, "ram_total")));
        json_decref(j);
        gv_migrate_info_done(&i);

        /* {}: this QEMU never migrated. */
        i = parse("{}");
        assert_int_equal(i.status, GV_MIGRATE_NONE);
        assert_string_equal(i.status_name, "none");
        gv_migrate_info_done(&i);

        /* A status newer than this code: kept by name, never final. */
        i = parse("{\"status\": \"postcopy-recover-setup\"}");
        assert_int_equal(i.status, _GV_MIGRATE_STATUS_INVALID);
        assert_string_equal(i.status_name, "postcopy-recover-setup");
        assert_false(gv_migrate_status_is_final(i.status));
        gv_migrate_info_done(&i);

        expect_proto("{\"status\": 3}", "'status'");
        expect_proto("{\"status\": \"active\", \"ram\": []}", "'ram'");
        expect_proto("{\"status\": \"active\", \"ram\": {\"total\": -1}}", "'ram.total'");
        expect_proto("{\"status\": \"active\", \"ram\": {\"remaining\": \"5\"}}",
                     "'ram.remaining'");
        expect_proto("{\"status\": \"active\", \"ram\": {\"mbps\": \"fast\"}}", "'ram.mbps'");
        expect_proto("{\"status\": \"active\", \"total-time\": 1.5}", "'total-time'");
        expect_proto("{\"status\": \"failed\", \"error-desc\": 7}", "'error-desc'");
        expect_proto("{\"status\": \"active\", \"vfio\": {\"transferred\": null}}",
                     "'vfio.transferred'");
        expect_proto("{\"socket-address\": {}}", "'socket-address'");
        expect_proto("{\"socket-address\": [{\"type\": \"inet\", \"host\": \"h\", \"port\": "
                     "\"http\"}]}", "port 'http'");
}

static void test_query_over_qmp(void **state)
{
        (void)state;
        static const struct step script[] = {
                HANDSHAKE,
                EXPECT("query-migrate", NULL), SEND(RETURN(QM_ACTIVE)),
                EXPECT("query-migrate", NULL), SEND(RETURN("[]")),
                EXPECT("query-migrate", NULL),
                SEND("{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"The command "
                     "query-migrate has not been found\"}, \"id\": @ID@}\r\n"),
                END(),
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct fake *f;
        struct gv_qmp *q = fake_open(script, &f);
        struct gv_migrate_info i = { 0 };

        assert_int_equal(gv_migrate_query(q, 2000, &i, &e), 0);
        assert_int_equal(i.ram_remaining, 132120576);
        gv_migrate_info_done(&i);
        assert_error(gv_migrate_query(q, 2000, &i, &e), e, EPROTO, "not an object");
        assert_error(gv_migrate_query(q, 2000, &i, &e), e, EOPNOTSUPP, "query-migrate");
        fake_finish(q, f);
}

/* ---- two real QEMUs ------------------------------------------------------------------------ */

struct pair {
        char dir[64];
        pid_t src, dst;
};

static char *find_in_path(const char *name)
{
        const char *path = getenv("PATH");
        _cleanup_free_ char *copy = xstrdup(path ? path : "/usr/bin:/bin");
        char *save = NULL;
        for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
                char *p = gv_path_join(d, name);
                if (access(p, X_OK) == 0)
                        return p;
                free(p);
        }
        return NULL;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

/* disks: NULL, or qcow2 files NAME-root.qcow2 and NAME-data.qcow2 in dir as nodes disk0 and
 * disk1 (the agent's node names, qemu-cmd.c). */
static pid_t spawn_qemu(const char *qemu, const char *dir, const char *name, bool incoming,
                        bool disks)
{
        _cleanup_free_ char *sock = xasprintf("%s/%s.sock", dir, name);
        _cleanup_free_ char *log = xasprintf("%s/%s.log", dir, name);
        _cleanup_free_ char *qmp = xasprintf("unix:%s,server=on,wait=off", sock);
        char *bd[4] = { NULL };
        for (unsigned i = 0; disks && i < 2; i++) {
                bd[2 * i] = xasprintf("driver=file,filename=%s/%s-%s.qcow2,node-name=disk%u-file",
                                      dir, name, i ? "data" : "root", i);
                bd[2 * i + 1] = xasprintf("driver=qcow2,file=disk%u-file,node-name=disk%u", i, i);
        }
        /* The same machine on both sides, as a migration needs; TCG, whatever the host has. */
        const char *argv[32] = { qemu, "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m",
                                 "128M", "-nodefaults", "-display", "none", "-device", "edu",
                                 "-qmp", qmp };
        size_t k = 16;
        for (unsigned i = 0; disks && i < 2; i++) {
                argv[k++] = "-blockdev";
                argv[k++] = bd[2 * i];
                argv[k++] = "-blockdev";
                argv[k++] = bd[2 * i + 1];
                argv[k++] = "-device";
                argv[k++] = i ? "virtio-blk-pci,drive=disk1" : "virtio-blk-pci,drive=disk0";
        }
        if (incoming) {
                argv[k++] = "-incoming";
                argv[k++] = "defer";
        }
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                if (null < 0 || fd < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
                        _exit(126);
                execv(qemu, (char *const *)argv);
                _exit(127);
        }
        for (unsigned i = 0; i < 4; i++)
                free(bd[i]);
        return pid;
}

static struct gv_qmp *connect_to(const struct pair *p, const char *name)
{
        _cleanup_free_ char *sock = xasprintf("%s/%s.sock", p->dir, name);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_qmp *q = NULL;
        int r = gv_qmp_connect(sock, 20000, &q, &e);
        if (r < 0) {
                _cleanup_free_ char *log_path = xasprintf("%s/%s.log", p->dir, name);
                _cleanup_free_ char *log = NULL;
                (void)gv_read_file(log_path, 65536, &log, NULL);
                fail_msg("QMP of the %s QEMU: %s\n%s", name, gv_error_msg(e, r), log ? log : "");
        }
        return q;
}

static int pair_teardown(void **state)
{
        struct pair *p = *state;
        if (!p)
                return 0;
        pid_t pids[] = { p->src, p->dst };
        for (size_t i = 0; i < ELEMENTSOF(pids); i++)
                if (pids[i] > 0) {
                        (void)kill(pids[i], SIGKILL);
                        (void)waitpid(pids[i], NULL, 0);
                }
        if (p->dir[0])
                (void)gv_rm_rf(p->dir);
        free(p);
        *state = NULL;
        return 0;
}

/* Run a command line (qemu-img, qemu-io) through the shell; fail the test if it fails. */
static void sh(const char *fmt, ...) _printf_(1, 2);
static void sh(const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *cmd = NULL;
        assert_true(vasprintf(&cmd, fmt, ap) >= 0);
        va_end(ap);
        int st = system(cmd);
        if (st != 0)
                fail_msg("'%s' failed (status %d)", cmd, st);
}

/* A source and a destination QEMU; NULL (test skipped) without QEMU. With disks: an overlay
 * (disk0) on one base image and an empty data disk (disk1) each, the source's with data. */
static struct pair *pair_start_disks(void **state, bool disks, struct gv_qmp **ret_src,
                                     struct gv_qmp **ret_dst);
static struct pair *pair_start(void **state, struct gv_qmp **ret_src, struct gv_qmp **ret_dst)
{
        return pair_start_disks(state, false, ret_src, ret_dst);
}

static struct pair *pair_start_disks(void **state, bool disks, struct gv_qmp **ret_src,
                                     struct gv_qmp **ret_dst)
{
        _cleanup_free_ char *qemu = find_in_path("qemu-system-x86_64");
        if (!qemu) {
                print_message("qemu-system-x86_64 is not installed (not in PATH): skipping the "
                              "real migration\n");
                return NULL;
        }
        struct pair *p = xnew0(struct pair, 1);
        *state = p;
        snprintf(p->dir, sizeof(p->dir), "/tmp/gv-test-migrate-XXXXXX");
        assert_non_null(mkdtemp(p->dir));
        if (disks) {
                const char *d = p->dir;
                sh("qemu-img create -q -f qcow2 %s/base.qcow2 64M && "
                   "qemu-io -c 'write -P 0x11 0 4M' %s/base.qcow2 >/dev/null", d, d);
                for (unsigned i = 0; i < 2; i++) {
                        const char *n = i ? "dst" : "src";
                        sh("qemu-img create -q -f qcow2 -F qcow2 -b %s/base.qcow2 %s/%s-root.qcow2 "
                           "&& qemu-img create -q -f qcow2 %s/%s-data.qcow2 32M", d, d, n, d, n);
                }
                sh("qemu-io -c 'write -P 0x22 1M 1M' %s/src-root.qcow2 >/dev/null && "
                   "qemu-io -c 'write -P 0x33 8M 8M' %s/src-data.qcow2 >/dev/null", d, d);
        }
        p->src = spawn_qemu(qemu, p->dir, "src", false, disks);
        p->dst = spawn_qemu(qemu, p->dir, "dst", true, disks);
        *ret_src = connect_to(p, "src");
        *ret_dst = connect_to(p, "dst");
        return p;
}

static char *status_of(struct gv_qmp *q)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char *s = NULL;
        int r = gv_qmp_query_status(q, 10000, &s, &e);
        if (r < 0)
                fail_msg("query-status: %s", gv_error_msg(e, r));
        return s;
}

/* Poll the source until the migration is final (or 60 s pass). */
static struct gv_migrate_info wait_final(struct gv_qmp *src)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int64_t deadline = now_ms() + 60000;
        for (;;) {
                struct gv_migrate_info i = { 0 };
                int r = gv_migrate_query(src, 10000, &i, &e);
                if (r < 0)
                        fail_msg("query-migrate: %s", gv_error_msg(e, r));
                if (gv_migrate_status_is_final(i.status))
                        return i;
                if (now_ms() > deadline)
                        fail_msg("the migration is still '%s' after 60 s", i.status_name);
                gv_migrate_info_done(&i);
                sleep_ms(20);
        }
}

static void test_real_completed(void **state)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *src = NULL, *dst = NULL;
        _cleanup_free_ char *uri = NULL, *s = NULL, *d = NULL;
        struct gv_migrate_params p = { .downtime_limit_ms = 400, .max_bandwidth = 1ull << 40 };
        struct gv_migrate_params got = { 0 };

        if (!pair_start(state, &src, &dst))
                skip();
        d = status_of(dst);
        assert_string_equal(d, "inmigrate");
        free(TAKE_PTR(d));
        int r = gv_migrate_incoming(dst, "tcp:127.0.0.1:0", 10000, &uri, &e);
        if (r < 0)
                fail_msg("migrate-incoming: %s", gv_error_msg(e, r));
        assert_true(strncmp(uri, "tcp:127.0.0.1:", 14) == 0);
        assert_string_not_equal(uri, "tcp:127.0.0.1:0");
        assert_int_equal(gv_migrate_setup(src, &p, 10000, &e), 0);
        assert_int_equal(gv_migrate_get_params(src, 10000, &got, &e), 0);
        assert_int_equal(got.downtime_limit_ms, 400);
        assert_int_equal(got.max_bandwidth, 1ull << 40);
        assert_int_equal(gv_migrate_start(src, uri, 10000, &e), 0);

        struct gv_migrate_info i = wait_final(src);
        if (i.status != GV_MIGRATE_COMPLETED)
                fail_msg("migration ended '%s': %s", i.status_name,
                         i.error_desc ? i.error_desc : "(no reason)");
        assert_true(i.has_ram);
        /* 128 MiB of guest RAM plus QEMU's own RAM blocks (ROMs, firmware). */
        assert_true(i.ram_total >= 128u << 20 && i.ram_total < 160u << 20);
        assert_true(i.ram_transferred > 0);
        assert_int_equal(i.ram_remaining, 0);
        assert_true(i.downtime_ms >= 0);
        assert_true(i.total_time_ms >= 0);
        gv_migrate_info_done(&i);

        /* The source is paused for good; the destination runs without being told to. */
        s = status_of(src);
        assert_string_equal(s, "postmigrate");
        int64_t deadline = now_ms() + 10000;
        while ((d = status_of(dst)) && strcmp(d, "running") != 0 && now_ms() < deadline) {
                free(TAKE_PTR(d));
                sleep_ms(20);
        }
        assert_string_equal(d, "running");
        assert_int_equal(gv_migrate_query(dst, 10000, &i, &e), 0);
        assert_int_equal(i.status, GV_MIGRATE_COMPLETED);
        gv_migrate_info_done(&i);
}

static void test_real_cancelled(void **state)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *src = NULL, *dst = NULL;
        _cleanup_free_ char *uri = NULL, *s = NULL;
        /* 4 KiB/s: the transfer crawls, so it is surely still running when cancelled. */
        struct gv_migrate_params p = { .downtime_limit_ms = 300, .max_bandwidth = 4096 };
        struct gv_migrate_info i = { 0 };

        if (!pair_start(state, &src, &dst))
                skip();
        assert_int_equal(gv_migrate_incoming(dst, "tcp:127.0.0.1:0", 10000, &uri, &e), 0);
        assert_int_equal(gv_migrate_setup(src, &p, 10000, &e), 0);
        assert_int_equal(gv_migrate_start(src, uri, 10000, &e), 0);
        int64_t deadline = now_ms() + 10000;
        do {
                gv_migrate_info_done(&i);
                assert_int_equal(gv_migrate_query(src, 10000, &i, &e), 0);
        } while (i.status != GV_MIGRATE_ACTIVE && !gv_migrate_status_is_final(i.status) &&
                 now_ms() < deadline);
        assert_int_equal(i.status, GV_MIGRATE_ACTIVE);
        assert_true(i.ram_remaining > 0);
        gv_migrate_info_done(&i);
        /* A second migration while one runs: QEMU's refusal is passed on. */
        assert_error(gv_migrate_start(src, uri, 10000, &e), e, EREMOTEIO, "QEMU refused 'migrate'");

        assert_int_equal(gv_migrate_cancel(src, 10000, &e), 0);
        i = wait_final(src);
        assert_int_equal(i.status, GV_MIGRATE_CANCELLED);
        gv_migrate_info_done(&i);
        s = status_of(src);
        assert_string_equal(s, "running");
        /* Cancelling again, with nothing to cancel, is fine. */
        assert_int_equal(gv_migrate_cancel(src, 10000, &e), 0);
}

static void test_real_destination_killed(void **state)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *src = NULL, *dst = NULL;
        _cleanup_free_ char *uri = NULL, *s = NULL;
        struct gv_migrate_params p = { .downtime_limit_ms = 300, .max_bandwidth = 4096 };
        struct pair *pr;

        if (!(pr = pair_start(state, &src, &dst)))
                skip();
        assert_int_equal(gv_migrate_incoming(dst, "tcp:127.0.0.1:0", 10000, &uri, &e), 0);
        assert_int_equal(gv_migrate_setup(src, &p, 10000, &e), 0);
        assert_int_equal(gv_migrate_start(src, uri, 10000, &e), 0);
        sleep_ms(300);
        assert_int_equal(kill(pr->dst, SIGKILL), 0);
        assert_int_equal(waitpid(pr->dst, NULL, 0), pr->dst);
        pr->dst = 0;
        /* Next to nothing flows at 4 KiB/s: lift the cap so that the source notices the broken
         * socket. */
        _cleanup_json_ json_t *args = json_pack("{s:I}", "max-bandwidth", (json_int_t)(1ll << 30));
        assert_int_equal(gv_qmp_execute(src, "migrate-set-parameters", args, 10000, NULL, &e), 0);

        struct gv_migrate_info i = wait_final(src);
        assert_int_equal(i.status, GV_MIGRATE_FAILED);
        print_message("destination killed: %s\n", i.error_desc ? i.error_desc : "(no reason)");
        gv_migrate_info_done(&i);
        s = status_of(src);
        assert_string_equal(s, "running");
}

/* ---- disks over NBD with real QEMUs ---- */

static struct gv_block_job *find_job(struct gv_block_job *jobs, size_t n, const char *id)
{
        for (size_t k = 0; k < n; k++)
                if (strcmp(jobs[k].id, id) == 0)
                        return &jobs[k];
        return NULL;
}

/* The destination's server and exports, the source's mirrors to them (data capped at
 * `speed` bytes/s, 0: none); *ret_uri the migration's URI. */
static void disks_prepare(struct gv_qmp *src, struct gv_qmp *dst, uint64_t speed,
                          char **ret_uri)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_close_ int fd = -1;
        uint16_t port = 0;
        int r = gv_migrate_incoming(dst, "tcp:127.0.0.1:0", 10000, ret_uri, &e);
        if (r >= 0)
                r = gv_nbd_listen("127.0.0.1", &fd, &port, &e);
        if (r >= 0)
                r = gv_nbd_server_start(dst, fd, 10000, &e);
        if (r >= 0)
                r = gv_nbd_export(dst, 0, "root", 10000, &e);
        if (r >= 0)
                r = gv_nbd_export(dst, 1, "data", 10000, &e);
        if (r >= 0)
                r = gv_mirror_start(src, 0, "127.0.0.1", port, "root", false, 0, 10000, &e);
        if (r >= 0)
                r = gv_mirror_start(src, 1, "127.0.0.1", port, "data", true, speed, 10000, &e);
        if (r < 0)
                fail_msg("preparing the disk copy: %s", gv_error_msg(e, r));
}

static void test_real_disks(void **state)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *src = NULL, *dst = NULL;
        _cleanup_free_ char *uri = NULL, *d = NULL;
        struct gv_migrate_params p = { .downtime_limit_ms = 400, .max_bandwidth = 1ull << 40,
                                       .pause_before_switchover = true };
        struct gv_migrate_info i = { 0 };
        struct pair *pr;

        if (!(pr = pair_start_disks(state, true, &src, &dst)))
                skip();
        disks_prepare(src, dst, 0, &uri);
        /* Both mirrors become ready: the overlay's 1 MiB, the data disk's 32 MiB. */
        int64_t deadline = now_ms() + 30000;
        for (;;) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                assert_int_equal(gv_block_jobs_query(src, 10000, &jobs, &n, &e), 0);
                struct gv_block_job *j0 = find_job(jobs, n, "gv-mirror0");
                struct gv_block_job *j1 = find_job(jobs, n, "gv-mirror1");
                assert_non_null(j0);
                assert_non_null(j1);
                bool ready = j0->ready && j1->ready;
                if (ready) {
                        assert_int_equal(j0->len, 1u << 20); /* sync top: the overlay's own */
                        assert_int_equal(j1->len, 32u << 20);
                        assert_int_equal(j1->offset, j1->len);
                }
                gv_block_jobs_free(jobs, n);
                if (ready)
                        break;
                if (now_ms() > deadline)
                        fail_msg("the mirrors are not ready after 30 s");
                sleep_ms(20);
        }
        assert_int_equal(gv_migrate_setup(src, &p, 10000, &e), 0);
        assert_int_equal(gv_migrate_start(src, uri, 10000, &e), 0);
        /* The source stops before the switch-over, the guest paused, and waits. */
        deadline = now_ms() + 60000;
        do {
                gv_migrate_info_done(&i);
                assert_int_equal(gv_migrate_query(src, 10000, &i, &e), 0);
                assert_false(gv_migrate_status_is_final(i.status));
        } while (i.status != GV_MIGRATE_PRE_SWITCHOVER && now_ms() < deadline);
        assert_int_equal(i.status, GV_MIGRATE_PRE_SWITCHOVER);
        gv_migrate_info_done(&i);
        d = status_of(dst);
        assert_string_equal(d, "inmigrate");
        free(TAKE_PTR(d));
        for (unsigned k = 0; k < 2; k++)
                assert_int_equal(gv_mirror_cancel(src, k, false, 10000, &e), 0);
        deadline = now_ms() + 10000;
        for (bool over = false; !over;) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                assert_int_equal(gv_block_jobs_query(src, 10000, &jobs, &n, &e), 0);
                over = true;
                for (size_t k = 0; k < n; k++) {
                        assert_null(jobs[k].error);
                        over &= gv_block_job_is_over(&jobs[k]);
                }
                gv_block_jobs_free(jobs, n);
                assert_true(now_ms() < deadline);
                sleep_ms(5);
        }
        for (unsigned k = 0; k < 2; k++)
                assert_int_equal(gv_mirror_remove(src, k, 10000, &e), 0);
        assert_int_equal(gv_migrate_continue(src, 10000, &e), 0);
        i = wait_final(src);
        assert_int_equal(i.status, GV_MIGRATE_COMPLETED);
        gv_migrate_info_done(&i);
        deadline = now_ms() + 10000;
        while ((d = status_of(dst)) && strcmp(d, "running") != 0 && now_ms() < deadline) {
                free(TAKE_PTR(d));
                sleep_ms(20);
        }
        assert_string_equal(d, "running");
        assert_int_equal(gv_nbd_server_stop(dst, 10000, &e), 0);
        /* Both QEMUs gone, the files are what they wrote. */
        assert_int_equal(gv_qmp_execute(src, "quit", NULL, 10000, NULL, NULL) >= -ECONNRESET, 1);
        assert_int_equal(gv_qmp_execute(dst, "quit", NULL, 10000, NULL, NULL) >= -ECONNRESET, 1);
        assert_int_equal(waitpid(pr->src, NULL, 0), pr->src);
        assert_int_equal(waitpid(pr->dst, NULL, 0), pr->dst);
        pr->src = pr->dst = 0;
        sh("qemu-img compare -q %s/src-root.qcow2 %s/dst-root.qcow2", pr->dir, pr->dir);
        sh("qemu-img compare -q %s/src-data.qcow2 %s/dst-data.qcow2", pr->dir, pr->dir);
        sh("qemu-io -r -c 'read -P 0x22 1M 1M' -c 'read -P 0x11 2M 2M' %s/dst-root.qcow2 "
           ">/dev/null", pr->dir);
        sh("qemu-io -r -c 'read -P 0x33 8M 8M' %s/dst-data.qcow2 >/dev/null", pr->dir);
}

static void test_real_disks_destination_killed(void **state)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_(gv_qmp_freep) struct gv_qmp *src = NULL, *dst = NULL;
        _cleanup_free_ char *uri = NULL, *s = NULL;
        struct pair *pr;

        if (!(pr = pair_start_disks(state, true, &src, &dst)))
                skip();
        /* 1 MiB/s: the 8 MiB written to the data disk take seconds. */
        disks_prepare(src, dst, 1u << 20, &uri);
        sleep_ms(300);
        assert_int_equal(kill(pr->dst, SIGKILL), 0);
        assert_int_equal(waitpid(pr->dst, NULL, 0), pr->dst);
        pr->dst = 0;
        int64_t deadline = now_ms() + 30000;
        char *why = NULL;
        while (!why) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                assert_int_equal(gv_block_jobs_query(src, 10000, &jobs, &n, &e), 0);
                struct gv_block_job *j1 = find_job(jobs, n, "gv-mirror1");
                assert_non_null(j1);
                assert_false(j1->ready);
                if (gv_block_job_is_over(j1))
                        why = xstrdup(j1->error ? j1->error : "(over without an error)");
                gv_block_jobs_free(jobs, n);
                if (now_ms() > deadline)
                        fail_msg("the data disk's mirror did not fail within 30 s");
                sleep_ms(20);
        }
        print_message("destination killed during the disk copy: %s\n", why);
        assert_string_not_equal(why, "(over without an error)");
        free(why);
        (void)gv_mirror_cancel(src, 0, true, 10000, NULL);
        deadline = now_ms() + 10000;
        for (bool over = false; !over;) {
                struct gv_block_job *jobs = NULL;
                size_t n = 0;
                assert_int_equal(gv_block_jobs_query(src, 10000, &jobs, &n, &e), 0);
                over = true;
                for (size_t k = 0; k < n; k++)
                        over &= gv_block_job_is_over(&jobs[k]);
                gv_block_jobs_free(jobs, n);
                assert_true(now_ms() < deadline);
                sleep_ms(10);
        }
        for (unsigned k = 0; k < 2; k++)
                assert_int_equal(gv_mirror_remove(src, k, 10000, &e), 0);
        struct gv_block_job *jobs = NULL;
        size_t n = 0;
        assert_int_equal(gv_block_jobs_query(src, 10000, &jobs, &n, &e), 0);
        assert_int_equal(n, 0);
        gv_block_jobs_free(jobs, n);
        s = status_of(src);
        assert_string_equal(s, "running");
        sh("qemu-io -r -U -c 'read -P 0x33 8M 8M' %s/src-data.qcow2 >/dev/null", pr->dir);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_table),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_params_check),
                cmocka_unit_test(test_setup_and_start),
                cmocka_unit_test(test_incoming),
                cmocka_unit_test(test_nbd_destination),
                cmocka_unit_test(test_mirror_source),
                cmocka_unit_test(test_block_jobs_parse),
                cmocka_unit_test(test_query_parse),
                cmocka_unit_test(test_query_over_qmp),
                cmocka_unit_test_teardown(test_real_completed, pair_teardown),
                cmocka_unit_test_teardown(test_real_cancelled, pair_teardown),
                cmocka_unit_test_teardown(test_real_destination_killed, pair_teardown),
                cmocka_unit_test_teardown(test_real_disks, pair_teardown),
                cmocka_unit_test_teardown(test_real_disks_destination_killed, pair_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
