/* SPDX-License-Identifier: MIT */
/*
 * console-ws.c — the serial and graphical consoles over WebSocket (console-ws.h).
 *
 * Serial: two threads share the WebSocket (gv_ws_send() is thread-safe). A reader thread
 * follows the console log (gv_agent_console_follow(), the same stream as GET .../console?
 * follow=true, so the log and the relay stay the only readers of QEMU's socket) and sends what
 * it reads; the connection's thread takes the client's messages and writes them to the console
 * (gv_agent_console_write()). Whichever side ends first wakes the other through an eventfd.
 *
 * Graphical: each WebSocket is its own VNC client of QEMU (QEMU's VNC server takes several,
 * shared), bridged byte for byte (gv_ws_bridge()).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/console-ws.h"
#include "agent/console.h"
#include "http/problem.h"
#include "http/server.h"
#include "http/websocket.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

#define BACKLOG_DEFAULT 16384u
#define BACKLOG_MAX (4u << 20)
#define INPUT_MAX 65536u /* a paste; the console itself is a 115200-baud UART */
#define STOP_CHECK_MS 500

/* ---- serial ---- */

struct serial {
        struct gv_agent *a;
        char *name;
        struct gv_console_follow *follow;
        struct gv_ws *ws;
        int quit_fd;  /* the reader thread stops when this is readable */
        int ended_fd; /* readable once the reader thread ended the stream */
};

static void serial_free(void *cls)
{
        struct serial *s = cls;
        gv_console_follow_free(s->follow);
        safe_close(s->quit_fd);
        safe_close(s->ended_fd);
        free(s->name);
        free(s);
}

static void *serial_reader(void *arg)
{
        struct serial *s = arg;
        char buf[4096];
        uint64_t one = 1;

        for (;;) {
                ssize_t n = gv_console_follow_read(s->follow, buf, sizeof(buf), s->quit_fd);
                if (n > 0 && gv_ws_send(s->ws, GV_WS_BINARY, buf, (size_t)n) == 0)
                        continue;
                struct pollfd pf = { .fd = s->quit_fd, .events = POLLIN };
                if (poll(&pf, 1, 0) == 1)
                        break; /* asked to stop: the connection's thread closes */
                if (n == 0) {
                        _cleanup_free_ char *why = xasprintf("VM '%s' is not running.", s->name);
                        (void)gv_ws_close(s->ws, GV_WS_CLOSE_NORMAL, why);
                } else {
                        (void)gv_ws_close(s->ws, GV_WS_CLOSE_INTERNAL_ERROR,
                                          n < 0 ? "cannot read the console log" : NULL);
                }
                break;
        }
        (void)!write(s->ended_fd, &one, sizeof(one));
        return NULL;
}

static void serial_run(struct gv_ws *ws, void *cls, int stop_fd)
{
        struct serial *s = cls;
        pthread_t t;
        uint64_t one = 1;

        s->ws = ws;
        if (pthread_create(&t, NULL, serial_reader, s) != 0) {
                (void)gv_ws_close(ws, GV_WS_CLOSE_INTERNAL_ERROR, "cannot start the reader");
                return;
        }
        for (;;) {
                struct gv_ws_message m;
                int r = gv_ws_recv(ws, s->ended_fd, STOP_CHECK_MS, &m);
                if (r == -ETIMEDOUT) {
                        struct pollfd pf = { .fd = stop_fd, .events = POLLIN };
                        if (poll(&pf, 1, 0) == 1) {
                                (void)gv_ws_close(ws, GV_WS_CLOSE_GOING_AWAY,
                                                  "the agent is stopping");
                                break;
                        }
                        continue;
                }
                if (r <= 0)
                        break; /* closed by either side, or a protocol error (answered) */
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_agent_console_write(s->a, s->name, m.data, m.len, &e);
                if (r < 0) {
                        (void)gv_ws_close(ws, r == -EBUSY ? GV_WS_CLOSE_POLICY
                                                          : GV_WS_CLOSE_INTERNAL_ERROR,
                                          gv_error_msg(e, r));
                        break;
                }
        }
        (void)!write(s->quit_fd, &one, sizeof(one));
        pthread_join(t, NULL);
}

int gv_agent_console_ws(struct gv_http_request *req, struct gv_agent *a)
{
        static const char *const allowed[] = { "bytes", NULL };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        const char *name = gv_http_param(req, "name");
        const char *q = NULL;
        uint32_t backlog = BACKLOG_DEFAULT;
        int r = gv_http_query_check(req, allowed, &e);

        if (r >= 0)
                r = gv_http_query(req, "bytes", &q, &e);
        if (r >= 0 && q && (gv_parse_u32(q, 10, &backlog) < 0 || backlog > BACKLOG_MAX))
                r = gv_error_set(&e, EINVAL, "bytes: '%s' is not a count up to %u.", q,
                                 BACKLOG_MAX);
        if (r < 0)
                return gv_http_reply_error(req, r, e);

        struct serial *s = xnew0(struct serial, 1);
        s->a = a;
        s->name = xstrdup(name);
        s->quit_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        s->ended_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->quit_fd < 0 || s->ended_fd < 0) {
                r = -errno;
                serial_free(s);
                return gv_http_reply_error(req, r, NULL);
        }
        r = gv_agent_console_follow(a, name, backlog, &s->follow, &e);
        if (r < 0) {
                serial_free(s);
                return gv_http_reply_error(req, r, e);
        }
        return gv_ws_reply_accept(req, NULL, INPUT_MAX, serial_run, s, serial_free);
}

/* ---- VNC ---- */

struct vnc {
        int fd;
        char *name;
};

static void vnc_free(void *cls)
{
        struct vnc *v = cls;
        safe_close(v->fd);
        free(v->name);
        free(v);
}

static void vnc_run(struct gv_ws *ws, void *cls, int stop_fd)
{
        struct vnc *v = cls;
        _cleanup_free_ char *why = xasprintf("VM '%s': the display closed.", v->name);
        (void)gv_ws_bridge(ws, v->fd, false, why, stop_fd, NULL);
}

int gv_agent_vnc_ws(struct gv_http_request *req, struct gv_agent *a)
{
        const char *name = gv_http_param(req, "name");
        _cleanup_free_ char *path = NULL;
        _cleanup_strv_free_ char **offered = NULL;
        enum gv_vm_phase phase = GV_VM_STOPPED;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct gv_agent_vm *vm;
        int fd, r;

        r = gv_http_query_check(req, NULL, NULL);
        if (r < 0)
                return gv_http_reply_problem(req, 400, "invalid-request", NULL,
                                             "The display takes no query parameters.");
        pthread_mutex_lock(&a->lock);
        vm = gv_agent_vm_find_locked(a, name);
        if (vm) {
                /* Without the VM's lock, as the console follower does: an operation may hold
                 * it for seconds. */
                phase = __atomic_load_n(&vm->phase, __ATOMIC_RELAXED);
                path = gv_path_join(vm->run_dir, "vnc.sock");
        }
        pthread_mutex_unlock(&a->lock);
        if (!vm)
                return gv_http_reply_problem(req, 404, "not-found", NULL,
                                             "No VM '%s' on this host.", name);
        if (!gv_vm_phase_has_qemu(phase))
                return gv_http_reply_problem(req, 409, "not-running", NULL,
                                             "VM '%s' is %s; its display exists only while it "
                                             "runs. Start it first.", name,
                                             gv_vm_phase_to_string(phase));
        if (strlen(path) >= sizeof(sa.sun_path))
                return gv_http_reply_problem(req, 500, "internal", NULL,
                                             "The VNC socket path '%s' is too long.", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return gv_http_reply_error(req, -errno, NULL);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                int e = errno;
                close(fd);
                return gv_http_reply_problem(req, 503, "no-display", NULL,
                                             "VM '%s' has no graphical console ('%s': %s); a VM "
                                             "started by an older agent gets one at its next "
                                             "start.", name, path, strerror(e));
        }
        struct vnc *v = xnew0(struct vnc, 1);
        v->fd = fd;
        v->name = xstrdup(name);
        offered = gv_ws_request_protocols(req);
        return gv_ws_reply_accept(req, strv_contains(offered, "binary") ? "binary" : NULL,
                                  INPUT_MAX, vnc_run, v, vnc_free);
}
