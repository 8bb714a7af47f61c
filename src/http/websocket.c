/* SPDX-License-Identifier: MIT */
/*
 * websocket.c — RFC 6455 handshakes, framing and bridges (websocket.h).
 *
 * The plan: a struct gv_ws buffers what the peer sent (in[]) and takes complete frames out of
 * it. A frame's header is checked before its payload is waited for, so a peer announcing a
 * payload over the limit is refused (1009) without our buffering it. Data frames are collected
 * into msg[] until the final fragment; control frames (which may come between fragments) are
 * handled where they stand. Sending takes a mutex so a reader thread and a writer thread can
 * share one connection (the serial console does).
 */
#include "http/websocket.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/route.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/parse.h"
#include "util/sha1.h"
#include "util/strv.h"

#define SEND_WAIT_MS 30000
#define READ_CHUNK 65536u
#define REFUSAL_MAX_BODY (64u * 1024u)
#define LINGER_MS 2000

/* ---------------------------------------------------------------------------------------- */
/* Pieces                                                                                      */

char *gv_ws_accept_for_key(const char *key)
{
        struct gv_sha1 s;
        uint8_t d[GV_SHA1_DIGEST_SIZE];

        gv_sha1_init(&s);
        gv_sha1_update(&s, key, strlen(key));
        gv_sha1_update(&s, GV_WS_GUID, strlen(GV_WS_GUID));
        gv_sha1_final(&s, d);
        return gv_base64_encode(d, sizeof(d));
}

bool gv_ws_key_is_valid(const char *key)
{
        _cleanup_free_ void *raw = NULL;
        size_t n = 0;
        return key && gv_base64_decode(key, &raw, &n) == 0 && n == 16;
}

int gv_ws_frame_parse(const uint8_t *buf, size_t n, bool expect_masked, uint64_t max_payload,
                      struct gv_ws_frame *ret, uint16_t *ret_code)
{
        struct gv_ws_frame f = { 0 };
        size_t need = 2;

        if (n < 2)
                return 0;
        f.fin = buf[0] & 0x80;
        f.opcode = buf[0] & 0x0f;
        f.masked = buf[1] & 0x80;
        uint8_t len7 = buf[1] & 0x7f;
        bool control = f.opcode & 0x8;

        /* No extension is negotiated, so no reserved bit may be set (section 5.2). */
        if (buf[0] & 0x70)
                goto protocol;
        if (f.opcode != GV_WS_CONTINUATION && f.opcode != GV_WS_TEXT &&
            f.opcode != GV_WS_BINARY && f.opcode != GV_WS_CLOSE && f.opcode != GV_WS_PING &&
            f.opcode != GV_WS_PONG)
                goto protocol;
        /* Section 5.1: a server closes on an unmasked client frame; a client on a masked server
         * frame. */
        if (f.masked != expect_masked)
                goto protocol;
        /* Section 5.5: control frames are not fragmented and carry at most 125 bytes. */
        if (control && (!f.fin || len7 > 125))
                goto protocol;

        need += len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        need += f.masked ? 4 : 0;
        if (n < need)
                return 0;
        const uint8_t *p = buf + 2;
        if (len7 == 126) {
                f.len = (uint64_t)p[0] << 8 | p[1];
                p += 2;
                if (f.len < 126) /* section 5.2: the minimal number of bytes */
                        goto protocol;
        } else if (len7 == 127) {
                f.len = 0;
                for (int i = 0; i < 8; i++)
                        f.len = f.len << 8 | p[i];
                p += 8;
                if (f.len >> 63) /* the most significant bit must be 0 */
                        goto protocol;
                if (f.len <= 0xffff)
                        goto protocol;
        } else {
                f.len = len7;
        }
        if (f.masked) {
                memcpy(f.mask, p, 4);
                p += 4;
        }
        if (!control && f.len > max_payload) {
                *ret_code = GV_WS_CLOSE_TOO_BIG;
                return -EMSGSIZE;
        }
        f.header_len = (size_t)(p - buf);
        *ret = f;
        return 1;
protocol:
        *ret_code = GV_WS_CLOSE_PROTOCOL_ERROR;
        return -EPROTO;
}

size_t gv_ws_frame_header(uint8_t out[static GV_WS_MAX_HEADER], bool fin, uint8_t opcode,
                          uint64_t len, const uint8_t *mask)
{
        size_t k = 0;
        uint8_t m = mask ? 0x80 : 0;

        out[k++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
        if (len < 126) {
                out[k++] = (uint8_t)(m | len);
        } else if (len <= 0xffff) {
                out[k++] = m | 126;
                out[k++] = (uint8_t)(len >> 8);
                out[k++] = (uint8_t)len;
        } else {
                out[k++] = m | 127;
                for (int i = 7; i >= 0; i--)
                        out[k++] = (uint8_t)(len >> (8 * i));
        }
        if (mask) {
                memcpy(out + k, mask, 4);
                k += 4;
        }
        return k;
}

void gv_ws_mask(uint8_t *data, size_t len, const uint8_t mask[static 4], uint64_t offset)
{
        for (size_t i = 0; i < len; i++)
                data[i] ^= mask[(offset + i) & 3];
}

/* ---------------------------------------------------------------------------------------- */
/* Connections                                                                                 */

struct gv_ws {
        int fd;
        bool is_server, own_fd;
        size_t max_message;

        uint8_t *in; /* unparsed bytes from the peer: in[0..n_in) */
        size_t n_in, cap_in;

        uint8_t *msg; /* the message being collected (fragments so far) */
        size_t n_msg, cap_msg;
        uint8_t msg_opcode; /* 0: none */
        uint8_t *out_msg;   /* the last message handed out */

        pthread_mutex_t send_lock;
        bool close_sent;
        uint16_t sent_code;
        uint16_t peer_code;
        char *error;
};

struct gv_ws *gv_ws_new(int fd, bool is_server, bool own_fd, const void *extra, size_t n_extra,
                        size_t max_message)
{
        struct gv_ws *ws = xnew0(struct gv_ws, 1);
        ws->fd = fd;
        ws->is_server = is_server;
        ws->own_fd = own_fd;
        ws->max_message = max_message ? max_message : GV_WS_MAX_MESSAGE_DEFAULT;
        ws->cap_in = MAX(n_extra, (size_t)READ_CHUNK);
        ws->in = xmalloc(ws->cap_in);
        if (n_extra)
                memcpy(ws->in, extra, n_extra);
        ws->n_in = n_extra;
        pthread_mutex_init(&ws->send_lock, NULL);
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0 && !(fl & O_NONBLOCK))
                (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        return ws;
}

struct gv_ws *gv_ws_free(struct gv_ws *ws)
{
        if (!ws)
                return NULL;
        if (ws->own_fd)
                safe_close(ws->fd);
        pthread_mutex_destroy(&ws->send_lock);
        free(ws->in);
        free(ws->msg);
        free(ws->out_msg);
        free(ws->error);
        free(ws);
        return NULL;
}

int gv_ws_fd(const struct gv_ws *ws)
{
        return ws->fd;
}

uint16_t gv_ws_peer_close_code(const struct gv_ws *ws)
{
        return ws->peer_code;
}

uint16_t gv_ws_sent_close_code(const struct gv_ws *ws)
{
        return ws->sent_code;
}

const char *gv_ws_error(const struct gv_ws *ws)
{
        return ws->error;
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Write all of buf to fd, waiting for a slow reader up to SEND_WAIT_MS. */
static int write_all(int fd, const void *buf, size_t len)
{
        const uint8_t *p = buf;
        int64_t deadline = now_ms() + SEND_WAIT_MS;

        while (len) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n > 0) {
                        p += n;
                        len -= (size_t)n;
                        continue;
                }
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == ENOTSOCK) {
                        n = write(fd, p, len);
                        if (n > 0) {
                                p += n;
                                len -= (size_t)n;
                                continue;
                        }
                }
                if (n < 0 && errno == EAGAIN) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        struct pollfd pf = { .fd = fd, .events = POLLOUT };
                        if (poll(&pf, 1, (int)left) < 0 && errno != EINTR)
                                return -errno;
                        continue;
                }
                return n < 0 ? -errno : -EPIPE;
        }
        return 0;
}

/* One frame, header and payload in one buffer (one write: no interleaving even without the
 * lock, and one packet for small frames). Called with send_lock held. */
static int send_frame_locked(struct gv_ws *ws, uint8_t opcode, const void *data, size_t len)
{
        uint8_t mask[4];
        uint8_t *frame = xmalloc(GV_WS_MAX_HEADER + len);
        size_t h;
        int r;

        if (!ws->is_server) {
                /* Section 5.3: a fresh, unpredictable key per frame. */
                if (getrandom(mask, sizeof(mask), 0) != (ssize_t)sizeof(mask)) {
                        free(frame);
                        return -EIO;
                }
        }
        h = gv_ws_frame_header(frame, true, opcode, len, ws->is_server ? NULL : mask);
        if (len)
                memcpy(frame + h, data, len);
        if (!ws->is_server)
                gv_ws_mask(frame + h, len, mask, 0);
        r = write_all(ws->fd, frame, h + len);
        free(frame);
        return r;
}

int gv_ws_send(struct gv_ws *ws, uint8_t opcode, const void *data, size_t len)
{
        int r;
        pthread_mutex_lock(&ws->send_lock);
        r = ws->close_sent ? -EPIPE : send_frame_locked(ws, opcode, data, len);
        pthread_mutex_unlock(&ws->send_lock);
        return r;
}

/* Cut s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t max)
{
        size_t n = strlen(s);
        if (n <= max)
                return n;
        n = max;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
                n--;
        return n;
}

int gv_ws_close(struct gv_ws *ws, uint16_t code, const char *reason)
{
        uint8_t body[125];
        size_t n = 0;
        int r = 0;

        pthread_mutex_lock(&ws->send_lock);
        if (!ws->close_sent) {
                if (code) {
                        body[0] = (uint8_t)(code >> 8);
                        body[1] = (uint8_t)code;
                        n = 2;
                        if (reason) {
                                size_t k = utf8_cut(reason, sizeof(body) - 2);
                                memcpy(body + 2, reason, k);
                                n += k;
                        }
                }
                r = send_frame_locked(ws, GV_WS_CLOSE, body, n);
                ws->close_sent = true;
                ws->sent_code = code;
                /* Section 7.1.1: no more data from us; the peer's close still comes in. */
                (void)shutdown(ws->fd, SHUT_WR);
        }
        pthread_mutex_unlock(&ws->send_lock);
        return r;
}

static int fail(struct gv_ws *ws, int r, uint16_t code, const char *fmt, ...) _printf_(4, 5);
static int fail(struct gv_ws *ws, int r, uint16_t code, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        free(ws->error);
        ws->error = xvasprintf(fmt, ap);
        va_end(ap);
        (void)gv_ws_close(ws, code, ws->error);
        return r;
}

int gv_ws_read(struct gv_ws *ws)
{
        if (ws->n_in == ws->cap_in) {
                /* A frame larger than the buffer: grow to hold it (bounded by max_message plus
                 * a header, as gv_ws_next() refused anything larger). */
                size_t want = MIN(ws->cap_in * 2, ws->max_message + GV_WS_MAX_HEADER);
                if (want <= ws->cap_in)
                        return -ENOBUFS;
                ws->in = xreallocarray(ws->in, want, 1);
                ws->cap_in = want;
        }
        for (;;) {
                ssize_t n = recv(ws->fd, ws->in + ws->n_in, ws->cap_in - ws->n_in, 0);
                if (n < 0 && errno == ENOTSOCK)
                        n = read(ws->fd, ws->in + ws->n_in, ws->cap_in - ws->n_in);
                if (n > 0) {
                        ws->n_in += (size_t)n;
                        return (int)MIN((size_t)n, (size_t)INT32_MAX);
                }
                if (n == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                return errno == EAGAIN ? -EAGAIN : -errno;
        }
}

static void consume(struct gv_ws *ws, size_t n)
{
        memmove(ws->in, ws->in + n, ws->n_in - n);
        ws->n_in -= n;
}

static bool close_code_is_valid(uint16_t c)
{
        /* Section 7.4: 1000-1003, 1007-1011 defined for sending; 3000-4999 registered and
         * private. 1004-1006, 1015 and the rest are never sent. */
        return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

static int handle_control(struct gv_ws *ws, uint8_t opcode, const uint8_t *p, size_t n)
{
        switch (opcode) {
        case GV_WS_PING: {
                int r = gv_ws_send(ws, GV_WS_PONG, p, n);
                return r == -EPIPE ? 0 : r;
        }
        case GV_WS_PONG:
                return 0;
        case GV_WS_CLOSE:
                if (n == 1)
                        return fail(ws, -EPROTO, GV_WS_CLOSE_PROTOCOL_ERROR,
                                    "a close frame with a 1-byte body");
                if (n >= 2) {
                        uint16_t code = (uint16_t)(p[0] << 8 | p[1]);
                        if (!close_code_is_valid(code))
                                return fail(ws, -EPROTO, GV_WS_CLOSE_PROTOCOL_ERROR,
                                            "close code %u is not one a peer may send", code);
                        if (!gv_http_utf8_is_valid((const char *)p + 2, n - 2))
                                return fail(ws, -EPROTO, GV_WS_CLOSE_INVALID_DATA,
                                            "the close reason is not UTF-8");
                        ws->peer_code = code;
                } else {
                        ws->peer_code = GV_WS_CLOSE_NO_STATUS;
                }
                /* Section 5.5.1: answer with a close (echoing the code), unless ours went
                 * first. */
                (void)gv_ws_close(ws, n >= 2 ? ws->peer_code : GV_WS_CLOSE_NORMAL, NULL);
                return -ESHUTDOWN;
        default:
                return 0;
        }
}

int gv_ws_next(struct gv_ws *ws, struct gv_ws_message *ret)
{
        for (;;) {
                struct gv_ws_frame f;
                uint16_t code = 0;
                size_t room = ws->max_message - MIN(ws->n_msg, ws->max_message);
                int r;

                if (ws->peer_code)
                        return -ESHUTDOWN;
                r = gv_ws_frame_parse(ws->in, ws->n_in, ws->is_server, room, &f, &code);
                if (r == -EMSGSIZE)
                        return fail(ws, r, code, "a message over %zu bytes", ws->max_message);
                if (r < 0)
                        return fail(ws, r, code, "a malformed frame (%s)",
                                    (ws->in[0] & 0x70) ? "reserved bits set"
                                    : (ws->in[1] & 0x80) != (ws->is_server ? 0x80 : 0)
                                            ? (ws->is_server ? "unmasked frame from a client"
                                                             : "masked frame from a server")
                                    : "bad opcode, length or fragmented control frame");
                if (r == 0)
                        return 0;
                if (ws->n_in - f.header_len < f.len)
                        return 0; /* the payload is still coming */

                uint8_t *p = ws->in + f.header_len;
                size_t n = (size_t)f.len;
                if (f.masked)
                        gv_ws_mask(p, n, f.mask, 0);

                if (f.opcode & 0x8) {
                        r = handle_control(ws, f.opcode, p, n);
                        consume(ws, f.header_len + n);
                        if (r < 0)
                                return r;
                        continue;
                }
                if (f.opcode == GV_WS_CONTINUATION && !ws->msg_opcode)
                        return fail(ws, -EPROTO, GV_WS_CLOSE_PROTOCOL_ERROR,
                                    "a continuation frame with no message to continue");
                if (f.opcode != GV_WS_CONTINUATION && ws->msg_opcode)
                        return fail(ws, -EPROTO, GV_WS_CLOSE_PROTOCOL_ERROR,
                                    "a new message before the last one's final fragment");
                if (f.opcode != GV_WS_CONTINUATION)
                        ws->msg_opcode = f.opcode;
                if (ws->n_msg + n > ws->cap_msg) {
                        ws->cap_msg = MAX(ws->n_msg + n, ws->cap_msg * 2);
                        ws->msg = xreallocarray(ws->msg, ws->cap_msg + 1, 1);
                }
                if (n)
                        memcpy(ws->msg + ws->n_msg, p, n);
                ws->n_msg += n;
                consume(ws, f.header_len + n);
                if (!f.fin)
                        continue;

                uint8_t op = ws->msg_opcode;
                if (op == GV_WS_TEXT && !gv_http_utf8_is_valid((const char *)ws->msg, ws->n_msg))
                        return fail(ws, -EILSEQ, GV_WS_CLOSE_INVALID_DATA,
                                    "a text message that is not UTF-8");
                free(ws->out_msg);
                ws->out_msg = ws->msg ? ws->msg : xnew0(uint8_t, 1);
                ret->opcode = op;
                ret->data = ws->out_msg;
                ret->len = ws->n_msg;
                ws->msg = NULL;
                ws->n_msg = ws->cap_msg = 0;
                ws->msg_opcode = 0;
                return 1;
        }
}

int gv_ws_recv(struct gv_ws *ws, int stop_fd, int timeout_ms, struct gv_ws_message *ret)
{
        int64_t deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : 0;

        for (;;) {
                int r = gv_ws_next(ws, ret);
                if (r != 0)
                        return r;
                r = gv_ws_read(ws);
                if (r > 0)
                        continue;
                if (r != -EAGAIN)
                        return r;
                int wait = -1;
                if (timeout_ms >= 0) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        wait = (int)MIN(left, (int64_t)INT32_MAX);
                }
                struct pollfd pf[2] = { { .fd = ws->fd, .events = POLLIN },
                                        { .fd = stop_fd, .events = POLLIN } };
                int k = poll(pf, stop_fd >= 0 ? 2 : 1, wait);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0 && stop_fd >= 0 && (pf[1].revents & POLLIN))
                        return -ECANCELED;
        }
}

/* ---------------------------------------------------------------------------------------- */
/* Server side                                                                                 */

/* Whether the comma-separated header value holds token (case-insensitive). */
static bool list_has_token(const char *value, const char *token)
{
        size_t tl = strlen(token);
        const char *p = value;

        while (p && *p) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                const char *e = p;
                while (*e && *e != ',')
                        e++;
                const char *t = e;
                while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                        t--;
                if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0)
                        return true;
                p = e;
        }
        return false;
}

bool gv_ws_is_upgrade_request(const struct gv_http_request *req)
{
        const char *u = gv_http_header(req, "Upgrade");
        return u && list_has_token(u, "websocket");
}

char **gv_ws_request_protocols(const struct gv_http_request *req)
{
        const char *v = gv_http_header(req, "Sec-WebSocket-Protocol");
        char **out = xnew0(char *, 1);

        for (const char *p = v; p && *p;) {
                while (*p == ' ' || *p == '\t' || *p == ',')
                        p++;
                const char *e = p;
                while (*e && *e != ',')
                        e++;
                const char *t = e;
                while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                        t--;
                if (t > p)
                        strv_consume(&out, xstrndup(p, (size_t)(t - p)));
                p = e;
        }
        return out;
}

struct accept_ctx {
        gv_ws_handler handler;
        void *cls;
        void (*free_cb)(void *cls);
        size_t max_message;
};

/* After our close, wait a moment for the peer's (section 7.1.1), reading what is still coming:
 * closing a socket with unread input sends a reset, which can destroy our close frame before
 * the peer reads it. Past a frame we refused, the rest is dropped unread. */
static void linger(struct gv_ws *ws, int stop_fd)
{
        int64_t deadline = now_ms() + LINGER_MS;
        bool raw = false;

        while (ws->close_sent && !ws->peer_code) {
                struct gv_ws_message m;
                int r = raw ? 0 : gv_ws_next(ws, &m);
                if (r < 0 && r != -ESHUTDOWN)
                        raw = true;
                if (r == -ESHUTDOWN)
                        return;
                if (raw)
                        ws->n_in = 0;
                if (r > 0)
                        continue;
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return;
                struct pollfd pf[2] = { { .fd = ws->fd, .events = POLLIN },
                                        { .fd = stop_fd, .events = POLLIN } };
                int k = poll(pf, stop_fd >= 0 ? 2 : 1, (int)left);
                if (k < 0 && errno != EINTR)
                        return;
                if (k > 0 && stop_fd >= 0 && (pf[1].revents & POLLIN))
                        return;
                r = gv_ws_read(ws);
                if (r < 0 && r != -EAGAIN)
                        return;
        }
}

static void accept_run(void *cls, int fd, const char *extra, size_t n_extra, int stop_fd)
{
        struct accept_ctx *c = cls;
        _cleanup_(gv_ws_freep) struct gv_ws *ws =
                gv_ws_new(fd, true, false, extra, n_extra, c->max_message);
        c->handler(ws, c->cls, stop_fd);
        linger(ws, stop_fd);
}

static void accept_free(void *cls)
{
        struct accept_ctx *c = cls;
        if (c->free_cb)
                c->free_cb(c->cls);
        free(c);
}

int gv_ws_reply_if_invalid(struct gv_http_request *req)
{
        const char *conn = gv_http_header(req, "Connection");
        const char *key = gv_http_header(req, "Sec-WebSocket-Key");
        const char *version = gv_http_header(req, "Sec-WebSocket-Version");
        int r;

        if (strcmp(gv_http_method(req), "GET") != 0 || !gv_ws_is_upgrade_request(req) ||
            !conn || !list_has_token(conn, "upgrade")) {
                r = gv_http_reply_problem(req, 426, "upgrade-required", NULL,
                                          "'%s' is a WebSocket: open it with GET and the headers "
                                          "'Upgrade: websocket' and 'Connection: Upgrade' "
                                          "(RFC 6455).", gv_http_path(req));
                if (r >= 0) {
                        (void)gv_http_reply_header(req, "Upgrade", "websocket");
                        (void)gv_http_reply_header(req, "Connection", "Upgrade");
                }
                return 1;
        }
        if (!version || strcmp(version, "13") != 0) {
                r = gv_http_reply_problem(req, 400, "websocket-version", NULL,
                                          "Sec-WebSocket-Version '%s' is not supported; this "
                                          "server speaks version 13 (RFC 6455).",
                                          version ? version : "");
                if (r >= 0)
                        (void)gv_http_reply_header(req, "Sec-WebSocket-Version", "13");
                return 1;
        }
        if (!gv_ws_key_is_valid(key)) {
                (void)gv_http_reply_problem(req, 400, "websocket-key", NULL,
                                            "Sec-WebSocket-Key must be the base64 of 16 random "
                                            "bytes (RFC 6455 section 4.1).");
                return 1;
        }
        return 0;
}

/* The 101 for a request gv_ws_reply_if_invalid() passed. */
static int reply_101(struct gv_http_request *req, const char *protocol, gv_http_upgrade_cb cb,
                     void *cls, void (*free_cb)(void *cls))
{
        _cleanup_free_ char *accept =
                gv_ws_accept_for_key(gv_http_header(req, "Sec-WebSocket-Key"));
        int r = gv_http_reply_upgrade(req, "websocket", cb, cls, free_cb);
        if (r < 0)
                return r;
        (void)gv_http_reply_header(req, "Sec-WebSocket-Accept", accept);
        if (protocol)
                (void)gv_http_reply_header(req, "Sec-WebSocket-Protocol", protocol);
        return 0;
}

int gv_ws_reply_accept(struct gv_http_request *req, const char *protocol, size_t max_message,
                       gv_ws_handler handler, void *cls, void (*free_cb)(void *cls))
{
        if (gv_ws_reply_if_invalid(req)) {
                if (free_cb)
                        free_cb(cls);
                return 0;
        }
        struct accept_ctx *c = xnew0(struct accept_ctx, 1);
        *c = (struct accept_ctx){ .handler = handler, .cls = cls, .free_cb = free_cb,
                                  .max_message = max_message };
        return reply_101(req, protocol, accept_run, c, accept_free);
}

struct relay_ctx {
        int fd;
        char *extra;
        size_t n_extra;
};

static void relay_run(void *cls, int fd, const char *extra, size_t n_extra, int stop_fd)
{
        struct relay_ctx *r = cls;
        (void)gv_ws_relay_raw(fd, extra, n_extra, r->fd, r->extra, r->n_extra, stop_fd);
}

static void relay_free(void *cls)
{
        struct relay_ctx *r = cls;
        safe_close(r->fd);
        free(r->extra);
        free(r);
}

int gv_ws_reply_relay(struct gv_http_request *req, const char *protocol, int fd, char *extra,
                      size_t n_extra)
{
        struct relay_ctx *r = xnew0(struct relay_ctx, 1);
        *r = (struct relay_ctx){ .fd = fd, .extra = extra, .n_extra = n_extra };
        if (gv_ws_reply_if_invalid(req)) {
                relay_free(r);
                return 0;
        }
        return reply_101(req, protocol, relay_run, r, relay_free);
}

/* ---------------------------------------------------------------------------------------- */
/* Client side                                                                                 */

static int wait_fd(int fd, short events, int64_t deadline)
{
        for (;;) {
                int wait = -1;
                if (deadline) {
                        int64_t left = deadline - now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        wait = (int)MIN(left, (int64_t)INT32_MAX);
                }
                struct pollfd pf = { .fd = fd, .events = events };
                int k = poll(&pf, 1, wait);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k > 0)
                        return 0;
        }
}

/* Read into *buf until "\r\n\r\n" (the head's end, returned in *ret_head_len) or the cap. */
static int read_head(int fd, char *buf, size_t cap, size_t *n, size_t *ret_head_len,
                     int64_t deadline)
{
        for (;;) {
                char *end = memmem(buf, *n, "\r\n\r\n", 4);
                if (end) {
                        *ret_head_len = (size_t)(end - buf) + 4;
                        return 0;
                }
                if (*n == cap)
                        return -EMSGSIZE;
                ssize_t k = recv(fd, buf + *n, cap - *n, 0);
                if (k > 0) {
                        *n += (size_t)k;
                        continue;
                }
                if (k == 0)
                        return -ECONNRESET;
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return -errno;
                int r = wait_fd(fd, POLLIN, deadline);
                if (r < 0)
                        return r;
        }
}

static const char *header_value(char *const *headers, const char *name)
{
        size_t nl = strlen(name);
        STRV_FOREACH(h, headers)
                if (strncasecmp(*h, name, nl) == 0 && (*h)[nl] == ':') {
                        const char *v = *h + nl + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        return NULL;
}

int gv_ws_dial(const struct gv_ws_dial *d, int *ret_fd, char **ret_extra, size_t *ret_n_extra,
               char **ret_protocol, struct gv_http_client_reply *ret_refusal,
               struct gv_error **err)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *host = NULL, *extra_hdrs = NULL, *req = NULL, *key = NULL;
        _cleanup_free_ char *accept = NULL, *buf = NULL;
        _cleanup_strv_free_ char **headers = NULL;
        int64_t deadline = d->timeout_ms > 0 ? now_ms() + d->timeout_ms : 0;
        uint8_t raw[16];
        size_t n = 0, head = 0;
        int status = 0, r;

        STRV_FOREACH(h, (char *const *)d->headers)
                if (strpbrk(*h, "\r\n") || !strchr(*h, ':'))
                        return gv_error_set(err, EINVAL, "extra header '%s' is not 'Name: "
                                            "value' on one line.", *h);
        if (d->protocols && strpbrk(d->protocols, "\r\n"))
                return gv_error_set(err, EINVAL, "the subprotocols hold a line break.");
        if (!d->path || d->path[0] != '/' || strpbrk(d->path, " \r\n"))
                return gv_error_set(err, EINVAL, "WebSocket path '%s' must start with '/' and "
                                    "hold no spaces or line breaks.", d->path ? d->path : "");
        r = gv_http_client_connect(d->endpoint, d->timeout_ms, &fd, &host, err);
        if (r < 0)
                return r;
        if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
                return gv_error_set(err, EIO, "cannot read random bytes for the WebSocket key.");
        key = gv_base64_encode(raw, sizeof(raw));
        accept = gv_ws_accept_for_key(key);
        extra_hdrs = strv_join((char *const *)d->headers, "\r\n");
        req = xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\n%s%s%s%s%s\r\n",
                        d->path, host, key,
                        d->protocols ? "Sec-WebSocket-Protocol: " : "",
                        d->protocols ? d->protocols : "", d->protocols ? "\r\n" : "",
                        extra_hdrs, *extra_hdrs ? "\r\n" : "");
        r = write_all(fd, req, strlen(req));
        if (r < 0)
                return gv_error_set(err, -r, "cannot send the WebSocket request to '%s': %s.",
                                    d->endpoint, strerror(-r));

        buf = xmalloc(GV_HTTP_CLIENT_MAX_HEADER + 1);
        r = read_head(fd, buf, GV_HTTP_CLIENT_MAX_HEADER, &n, &head, deadline);
        if (r == -ETIMEDOUT)
                return gv_error_set(err, ETIMEDOUT, "'%s' did not answer the WebSocket request "
                                    "within %d ms.", d->endpoint, d->timeout_ms);
        if (r < 0)
                return gv_error_set(err, -r, "no WebSocket answer from '%s': %s.", d->endpoint,
                                    strerror(-r));
        r = gv_http_client_parse_head(buf, head, &status, &headers, err);
        if (r < 0)
                return r;

        if (status != 101) {
                /* A refusal: its body (a problem) by Content-Length or up to the close. */
                const char *cl = header_value(headers, "content-length");
                uint64_t want = REFUSAL_MAX_BODY;
                if (cl && gv_parse_u64(cl, 10, &want) < 0)
                        want = REFUSAL_MAX_BODY;
                want = MIN(want, (uint64_t)REFUSAL_MAX_BODY);
                char *body = xmalloc(want + 1);
                size_t got = MIN(n - head, (size_t)want);
                memcpy(body, buf + head, got);
                while (got < want) {
                        ssize_t k = recv(fd, body + got, want - got, 0);
                        if (k > 0) {
                                got += (size_t)k;
                                continue;
                        }
                        if (k < 0 && errno == EINTR)
                                continue;
                        if (k < 0 && errno == EAGAIN && wait_fd(fd, POLLIN, deadline) == 0)
                                continue;
                        break;
                }
                body[got] = '\0';
                *ret_refusal = (struct gv_http_client_reply){
                        .status = status, .headers = TAKE_PTR(headers), .body = body,
                        .body_len = got };
                return 1;
        }
        const char *up = header_value(headers, "upgrade");
        const char *cn = header_value(headers, "connection");
        const char *acc = header_value(headers, "sec-websocket-accept");
        const char *proto = header_value(headers, "sec-websocket-protocol");
        if (!up || !list_has_token(up, "websocket") || !cn || !list_has_token(cn, "upgrade"))
                return gv_error_set(err, EPROTO, "'%s' answered 101 without 'Upgrade: websocket' "
                                    "and 'Connection: Upgrade'.", d->endpoint);
        if (!acc || strcmp(acc, accept) != 0)
                return gv_error_set(err, EPROTO, "'%s' answered with Sec-WebSocket-Accept '%s', "
                                    "not '%s' (RFC 6455 section 4.1).", d->endpoint,
                                    acc ? acc : "", accept);
        if (proto) {
                bool ok = false;
                if (d->protocols)
                        ok = list_has_token(d->protocols, proto);
                if (!ok)
                        return gv_error_set(err, EPROTO, "'%s' chose subprotocol '%s', which "
                                            "was not offered.", d->endpoint, proto);
        }
        if (ret_protocol)
                *ret_protocol = proto ? xstrdup(proto) : NULL;
        *ret_n_extra = n - head;
        char *extra = xmalloc(n - head + 1);
        memcpy(extra, buf + head, n - head);
        extra[n - head] = '\0';
        *ret_extra = extra;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Bridges                                                                                     */

int gv_ws_bridge(struct gv_ws *ws, int fd, bool send_text, const char *eof_reason, int stop_fd,
                 struct gv_error **err)
{
        _cleanup_free_ uint8_t *buf = xmalloc(READ_CHUNK);

        for (;;) {
                struct gv_ws_message m;
                int r;

                /* Whatever complete messages are buffered go first. */
                while ((r = gv_ws_next(ws, &m)) > 0) {
                        r = write_all(fd, m.data, m.len);
                        if (r < 0) {
                                (void)gv_ws_close(ws, GV_WS_CLOSE_INTERNAL_ERROR,
                                                  "the other end stopped reading");
                                return gv_error_set(err, -r, "cannot write to the bridged "
                                                    "socket: %s.", strerror(-r));
                        }
                }
                if (r == -ESHUTDOWN)
                        return 0;
                if (r < 0)
                        return gv_error_set(err, -r, "the WebSocket peer broke the protocol: "
                                            "%s.", gv_ws_error(ws));

                struct pollfd pf[3] = { { .fd = ws->fd, .events = POLLIN },
                                        { .fd = fd, .events = POLLIN },
                                        { .fd = stop_fd, .events = POLLIN } };
                int k = poll(pf, stop_fd >= 0 ? 3 : 2, -1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return gv_error_set(err, errno, "poll: %s.", strerror(errno));
                if (stop_fd >= 0 && (pf[2].revents & POLLIN)) {
                        (void)gv_ws_close(ws, GV_WS_CLOSE_GOING_AWAY, "the server is stopping");
                        return 0;
                }
                if (pf[0].revents) {
                        r = gv_ws_read(ws);
                        if (r == -ECONNRESET)
                                return 0; /* gone without a close: nothing more to do */
                        if (r < 0 && r != -EAGAIN)
                                return gv_error_set(err, -r, "cannot read from the WebSocket: "
                                                    "%s.", strerror(-r));
                }
                if (pf[1].revents) {
                        ssize_t n = read(fd, buf, READ_CHUNK);
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        if (n <= 0) {
                                (void)gv_ws_close(ws, n == 0 ? GV_WS_CLOSE_NORMAL
                                                             : GV_WS_CLOSE_INTERNAL_ERROR,
                                                  eof_reason);
                                if (n == 0)
                                        return 0;
                                return gv_error_set(err, errno, "cannot read the bridged "
                                                    "socket: %s.", strerror(errno));
                        }
                        r = gv_ws_send(ws, send_text ? GV_WS_TEXT : GV_WS_BINARY, buf,
                                       (size_t)n);
                        if (r < 0)
                                return gv_error_set(err, -r, "cannot send to the WebSocket: "
                                                    "%s.", strerror(-r));
                }
        }
}

struct pipe_dir {
        int from, to;
        uint8_t *buf;
        size_t n, off;
        bool eof;
};

int gv_ws_relay_raw(int a, const void *a_extra, size_t n_a_extra, int b, const void *b_extra,
                    size_t n_b_extra, int stop_fd)
{
        /* ab: bytes from a on their way to b. */
        struct pipe_dir ab = { .from = a, .to = b, .buf = xmalloc(READ_CHUNK) };
        struct pipe_dir ba = { .from = b, .to = a, .buf = xmalloc(READ_CHUNK) };
        int r = 0;

        int fl;
        if ((fl = fcntl(a, F_GETFL)) >= 0)
                (void)fcntl(a, F_SETFL, fl | O_NONBLOCK);
        if ((fl = fcntl(b, F_GETFL)) >= 0)
                (void)fcntl(b, F_SETFL, fl | O_NONBLOCK);
        r = write_all(b, a_extra, n_a_extra);
        if (r >= 0)
                r = write_all(a, b_extra, n_b_extra);

        while (r >= 0 && !(ab.eof && ba.eof)) {
                struct pipe_dir *d[2] = { &ab, &ba };
                struct pollfd pf[5];
                int idx[4], np = 0;

                for (int i = 0; i < 2; i++) {
                        idx[2 * i] = idx[2 * i + 1] = -1;
                        if (d[i]->n > d[i]->off) {
                                pf[np] = (struct pollfd){ .fd = d[i]->to, .events = POLLOUT };
                                idx[2 * i + 1] = np++;
                        } else if (!d[i]->eof) {
                                pf[np] = (struct pollfd){ .fd = d[i]->from, .events = POLLIN };
                                idx[2 * i] = np++;
                        }
                }
                int stop_idx = -1;
                if (stop_fd >= 0) {
                        pf[np] = (struct pollfd){ .fd = stop_fd, .events = POLLIN };
                        stop_idx = np++;
                }
                int k = poll(pf, (nfds_t)np, -1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        r = -errno;
                        break;
                }
                if (stop_idx >= 0 && (pf[stop_idx].revents & POLLIN))
                        break;
                for (int i = 0; i < 2; i++) {
                        struct pipe_dir *p = d[i];
                        if (idx[2 * i] >= 0 && pf[idx[2 * i]].revents) {
                                ssize_t n = recv(p->from, p->buf, READ_CHUNK, 0);
                                if (n > 0) {
                                        p->n = (size_t)n;
                                        p->off = 0;
                                } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                                        /* One side ended: the whole relay ends (a WebSocket
                                         * has no half-open life once either peer is gone). */
                                        p->eof = true;
                                        ab.eof = ba.eof = true;
                                        if (n < 0 && errno != ECONNRESET)
                                                r = -errno;
                                }
                        }
                        if (idx[2 * i + 1] >= 0 && pf[idx[2 * i + 1]].revents) {
                                ssize_t n = send(p->to, p->buf + p->off, p->n - p->off,
                                                 MSG_NOSIGNAL);
                                if (n > 0)
                                        p->off += (size_t)n;
                                else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                        ab.eof = ba.eof = true;
                                        if (errno != EPIPE && errno != ECONNRESET)
                                                r = -errno;
                                }
                        }
                }
        }
        /* What was read but not yet written goes out before the end (a close frame, say). */
        for (struct pipe_dir *p = &ab; p; p = p == &ab ? &ba : NULL)
                if (p->n > p->off)
                        (void)write_all(p->to, p->buf + p->off, p->n - p->off);
        free(ab.buf);
        free(ba.buf);
        return r;
}
