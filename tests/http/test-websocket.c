/* SPDX-License-Identifier: MIT */
/*
 * WebSocket (src/http/websocket.c): the RFC 6455 examples (section 1.3's handshake, section
 * 5.7's frames), malformed frames over a socketpair (each answered with the close code section
 * 7.4.1 names), and whole connections through the HTTP server's upgrade: an echo route reached
 * with gv_ws_dial() over TCP and UNIX, refused handshakes (426, 400), a bridge to a byte stream
 * and a raw relay in the middle (the controller's way of reaching an agent).
 */
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/client.h"
#include "http/server.h"
#include "http/websocket.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/strv.h"

#define TIMEOUT_MS 10000

/* ---- pieces ---- */

static void test_accept_example(void **state)
{
        (void)state;
        _cleanup_free_ char *a = gv_ws_accept_for_key("dGhlIHNhbXBsZSBub25jZQ==");
        assert_string_equal(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        assert_true(gv_ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQ=="));
        assert_false(gv_ws_key_is_valid("dGhlIHNhbXBsZSBub25j"));   /* 15 bytes... no pad */
        assert_false(gv_ws_key_is_valid("aGVsbG8="));               /* 5 bytes */
        assert_false(gv_ws_key_is_valid(NULL));
        assert_false(gv_ws_key_is_valid("dGhlIHNhbXBsZSBub25jZQ"));  /* unpadded */
}

/* Section 5.7's examples, parsed and re-encoded. */
static void test_frame_examples(void **state)
{
        static const uint8_t hello_unmasked[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
        static const uint8_t hello_masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                                0x9f, 0x4d, 0x51, 0x58 };
        static const uint8_t frag1[] = { 0x01, 0x03, 0x48, 0x65, 0x6c };
        static const uint8_t frag2[] = { 0x80, 0x02, 0x6c, 0x6f };
        static const uint8_t ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
        static const uint8_t len256[] = { 0x82, 0x7e, 0x01, 0x00 };
        static const uint8_t len64k[] = { 0x82, 0x7f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00,
                                          0x00 };
        struct gv_ws_frame f;
        uint16_t code = 0;
        uint8_t out[GV_WS_MAX_HEADER];
        (void)state;

        assert_int_equal(gv_ws_frame_parse(hello_unmasked, sizeof(hello_unmasked), false, 1024,
                                           &f, &code), 1);
        assert_true(f.fin);
        assert_int_equal(f.opcode, GV_WS_TEXT);
        assert_int_equal(f.len, 5);
        assert_int_equal(f.header_len, 2);
        assert_int_equal(gv_ws_frame_header(out, true, GV_WS_TEXT, 5, NULL), 2);
        assert_memory_equal(out, hello_unmasked, 2);

        assert_int_equal(gv_ws_frame_parse(hello_masked, sizeof(hello_masked), true, 1024, &f,
                                           &code), 1);
        assert_true(f.masked);
        assert_int_equal(f.header_len, 6);
        uint8_t payload[5];
        memcpy(payload, hello_masked + 6, 5);
        gv_ws_mask(payload, 5, f.mask, 0);
        assert_memory_equal(payload, "Hello", 5);
        assert_int_equal(gv_ws_frame_header(out, true, GV_WS_TEXT, 5, f.mask), 6);
        assert_memory_equal(out, hello_masked, 6);

        assert_int_equal(gv_ws_frame_parse(frag1, sizeof(frag1), false, 1024, &f, &code), 1);
        assert_false(f.fin);
        assert_int_equal(f.opcode, GV_WS_TEXT);
        assert_int_equal(gv_ws_frame_parse(frag2, sizeof(frag2), false, 1024, &f, &code), 1);
        assert_true(f.fin);
        assert_int_equal(f.opcode, GV_WS_CONTINUATION);

        assert_int_equal(gv_ws_frame_parse(ping, sizeof(ping), false, 1024, &f, &code), 1);
        assert_int_equal(f.opcode, GV_WS_PING);

        assert_int_equal(gv_ws_frame_parse(len256, sizeof(len256), false, 1 << 20, &f, &code),
                         1);
        assert_int_equal(f.len, 256);
        assert_int_equal(gv_ws_frame_header(out, true, GV_WS_BINARY, 256, NULL), 4);
        assert_memory_equal(out, len256, 4);

        assert_int_equal(gv_ws_frame_parse(len64k, sizeof(len64k), false, 1 << 20, &f, &code),
                         1);
        assert_int_equal(f.len, 65536);
        assert_int_equal(gv_ws_frame_header(out, true, GV_WS_BINARY, 65536, NULL), 10);
        assert_memory_equal(out, len64k, 10);

        /* Incomplete headers ask for more. */
        assert_int_equal(gv_ws_frame_parse(len64k, 1, false, 1 << 20, &f, &code), 0);
        assert_int_equal(gv_ws_frame_parse(len64k, 9, false, 1 << 20, &f, &code), 0);
        assert_int_equal(gv_ws_frame_parse(hello_masked, 5, true, 1024, &f, &code), 0);
}

static void test_frame_header_errors(void **state)
{
        static const struct {
                const char *what;
                uint8_t b[14];
                size_t n;
                uint16_t code;
        } bad[] = {
                { "unmasked from a client", { 0x81, 0x05 }, 2, 1002 },
                { "reserved bit 1", { 0xc1, 0x85, 1, 2, 3, 4 }, 6, 1002 },
                { "reserved bit 3", { 0x91, 0x85, 1, 2, 3, 4 }, 6, 1002 },
                { "opcode 3", { 0x83, 0x80, 1, 2, 3, 4 }, 6, 1002 },
                { "opcode 0xb", { 0x8b, 0x80, 1, 2, 3, 4 }, 6, 1002 },
                { "fragmented ping", { 0x09, 0x80, 1, 2, 3, 4 }, 6, 1002 },
                { "ping of 126 bytes", { 0x89, 0xfe, 0x00, 0x7e }, 4, 1002 },
                { "16-bit length for 5 bytes", { 0x82, 0xfe, 0x00, 0x05, 1, 2, 3, 4 }, 8, 1002 },
                { "64-bit length, top bit", { 0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4 },
                  14, 1002 },
                { "64-bit length for 256", { 0x82, 0xff, 0, 0, 0, 0, 0, 0, 1, 0, 1, 2, 3, 4 }, 14,
                  1002 },
                { "2000 bytes over a 1024 limit", { 0x82, 0xfe, 0x07, 0xd0, 1, 2, 3, 4 }, 8,
                  1009 },
        };
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                struct gv_ws_frame f;
                uint16_t code = 0;
                int r = gv_ws_frame_parse(bad[i].b, bad[i].n, true, 1024, &f, &code);
                if (r >= 0 || code != bad[i].code)
                        fail_msg("%s: r=%d code=%u, want code %u", bad[i].what, r, code,
                                 bad[i].code);
        }
        /* A masked frame from a server is refused by a client. */
        struct gv_ws_frame f;
        uint16_t code = 0;
        static const uint8_t m[] = { 0x81, 0x85, 1, 2, 3, 4 };
        assert_int_equal(gv_ws_frame_parse(m, sizeof(m), false, 1024, &f, &code), -EPROTO);
        assert_int_equal(code, 1002);
}

/* ---- connections over a socketpair: the server end under test, the peer raw ---- */

struct pair {
        struct gv_ws *ws;
        int peer;
};

static void pair_open(struct pair *p, size_t max_message)
{
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        p->ws = gv_ws_new(sv[0], true, true, NULL, 0, max_message);
        p->peer = sv[1];
}

static void pair_close(struct pair *p)
{
        p->ws = gv_ws_free(p->ws);
        p->peer = safe_close(p->peer);
}

/* A masked client frame. */
static void peer_send(struct pair *p, uint8_t first, const void *data, size_t len)
{
        static const uint8_t mask[4] = { 0x37, 0xfa, 0x21, 0x3d };
        uint8_t *buf = xmalloc(GV_WS_MAX_HEADER + len);
        size_t h = gv_ws_frame_header(buf, first & 0x80, first & 0x0f, len, mask);
        buf[0] = first; /* reserved bits as given */
        memcpy(buf + h, data, len);
        gv_ws_mask(buf + h, len, mask, 0);
        assert_int_equal(write(p->peer, buf, h + len), (ssize_t)(h + len));
        free(buf);
}

static void peer_raw(struct pair *p, const void *b, size_t n)
{
        assert_int_equal(write(p->peer, b, n), (ssize_t)n);
}

/* Read one unmasked server frame at the peer: its opcode and payload. */
static size_t peer_read_frame(struct pair *p, uint8_t *ret_opcode, uint8_t *payload, size_t max)
{
        uint8_t buf[GV_WS_MAX_HEADER + 256 * 1024];
        size_t n = 0;
        for (;;) {
                struct gv_ws_frame f;
                uint16_t code;
                int r = gv_ws_frame_parse(buf, n, false, sizeof(buf), &f, &code);
                assert_true(r >= 0);
                if (r == 1 && n >= f.header_len + f.len) {
                        assert_true(f.len <= max);
                        memcpy(payload, buf + f.header_len, (size_t)f.len);
                        *ret_opcode = f.opcode;
                        assert_int_equal(n, f.header_len + f.len); /* one frame at a time */
                        return (size_t)f.len;
                }
                struct pollfd pf = { .fd = p->peer, .events = POLLIN };
                assert_int_equal(poll(&pf, 1, TIMEOUT_MS), 1);
                ssize_t k = read(p->peer, buf + n, r == 1 ? f.header_len + f.len - n : 1);
                assert_true(k > 0);
                n += (size_t)k;
        }
}

static uint16_t peer_expect_close(struct pair *p)
{
        uint8_t op, body[125];
        size_t n = peer_read_frame(p, &op, body, sizeof(body));
        assert_int_equal(op, GV_WS_CLOSE);
        assert_true(n >= 2);
        return (uint16_t)(body[0] << 8 | body[1]);
}

static void test_messages(void **state)
{
        struct pair p;
        struct gv_ws_message m;
        uint8_t op, buf[256];
        (void)state;

        pair_open(&p, 4096);
        peer_send(&p, 0x81, "Hello", 5);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.opcode, GV_WS_TEXT);
        assert_int_equal(m.len, 5);
        assert_memory_equal(m.data, "Hello", 5);

        /* Fragments with a ping between them: the ping is answered at once, the message comes
         * whole. */
        peer_send(&p, 0x02, "ab", 2);
        peer_send(&p, 0x89, "p1", 2);
        peer_send(&p, 0x00, "cd", 2);
        peer_send(&p, 0x80, "ef", 2);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.opcode, GV_WS_BINARY);
        assert_int_equal(m.len, 6);
        assert_memory_equal(m.data, "abcdef", 6);
        assert_int_equal(peer_read_frame(&p, &op, buf, sizeof(buf)), 2);
        assert_int_equal(op, GV_WS_PONG);
        assert_memory_equal(buf, "p1", 2);

        /* Empty messages and a byte-at-a-time arrival. */
        peer_send(&p, 0x82, "", 0);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.len, 0);

        /* What the server sends arrives unmasked, in one frame. */
        assert_int_equal(gv_ws_send(p.ws, GV_WS_BINARY, "xyz", 3), 0);
        assert_int_equal(peer_read_frame(&p, &op, buf, sizeof(buf)), 3);
        assert_int_equal(op, GV_WS_BINARY);
        assert_memory_equal(buf, "xyz", 3);

        /* A message of exactly the limit is taken. */
        _cleanup_free_ char *big = xmalloc(4096);
        memset(big, 'q', 4096);
        peer_send(&p, 0x82, big, 4096);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.len, 4096);

        /* The peer closes: answered with its code, then -ESHUTDOWN. */
        peer_send(&p, 0x88, "\x03\xe8" "bye", 5);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
        assert_int_equal(gv_ws_peer_close_code(p.ws), 1000);
        assert_int_equal(peer_expect_close(&p), 1000);
        assert_int_equal(gv_ws_send(p.ws, GV_WS_TEXT, "late", 4), -EPIPE);
        pair_close(&p);

        /* A stop fd ends a wait; a timeout too. */
        pair_open(&p, 0);
        int sv[2];
        assert_int_equal(pipe2(sv, O_CLOEXEC), 0);
        assert_int_equal(gv_ws_recv(p.ws, sv[0], 50, &m), -ETIMEDOUT);
        assert_int_equal(write(sv[1], "x", 1), 1);
        assert_int_equal(gv_ws_recv(p.ws, sv[0], TIMEOUT_MS, &m), -ECANCELED);
        close(sv[0]);
        close(sv[1]);
        /* The peer going away without a close. */
        p.peer = safe_close(p.peer);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), -ECONNRESET);
        pair_close(&p);
}

/* Each malformed input gets a close frame with the right code and an error. */
static void test_malformed(void **state)
{
        static const uint8_t unmasked[] = { 0x81, 0x02, 'h', 'i' };
        static const uint8_t oversized[] = { 0x82, 0xfe, 0x10, 0x00, 1, 2, 3, 4 };
        static const uint8_t huge64[] = { 0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                          0xff, 1, 2, 3, 4 };
        struct {
                const char *what;
                int first;        /* peer_send's first byte, or -1 for raw */
                const void *data;
                size_t len;
                int expect;
                uint16_t code;
        } cases[] = {
                { "unmasked client frame", -1, unmasked, sizeof(unmasked), -EPROTO, 1002 },
                { "payload over the limit", -1, oversized, sizeof(oversized), -EMSGSIZE, 1009 },
                { "63-bit length", -1, huge64, sizeof(huge64), -EMSGSIZE, 1009 },
                { "opcode 3", 0x83, "x", 1, -EPROTO, 1002 },
                { "reserved bit", 0xc2, "x", 1, -EPROTO, 1002 },
                { "continuation first", 0x80, "x", 1, -EPROTO, 1002 },
                { "text not UTF-8", 0x81, "\xc3\x28", 2, -EILSEQ, 1007 },
                { "close code 1005", 0x88, "\x03\xed", 2, -EPROTO, 1002 },
                { "close code 999", 0x88, "\x03\xe7", 2, -EPROTO, 1002 },
                { "close body of 1 byte", 0x88, "\x03", 1, -EPROTO, 1002 },
        };
        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct pair p;
                struct gv_ws_message m;
                pair_open(&p, 1024);
                if (cases[i].first < 0)
                        peer_raw(&p, cases[i].data, cases[i].len);
                else
                        peer_send(&p, (uint8_t)cases[i].first, cases[i].data, cases[i].len);
                int r = gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m);
                if (r != cases[i].expect)
                        fail_msg("%s: %d, want %d", cases[i].what, r, cases[i].expect);
                assert_non_null(gv_ws_error(p.ws));
                uint16_t code = peer_expect_close(&p);
                if (code != cases[i].code)
                        fail_msg("%s: close %u, want %u", cases[i].what, code, cases[i].code);
                assert_int_equal(gv_ws_sent_close_code(p.ws), cases[i].code);
                pair_close(&p);
        }

        /* A new message inside a fragmented one. */
        struct pair p;
        struct gv_ws_message m;
        pair_open(&p, 1024);
        peer_send(&p, 0x01, "a", 1);
        peer_send(&p, 0x81, "b", 1);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), -EPROTO);
        assert_int_equal(peer_expect_close(&p), 1002);
        pair_close(&p);

        /* Fragments that together pass the limit. */
        pair_open(&p, 1024);
        _cleanup_free_ char *half = xmalloc(600);
        memset(half, 'z', 600);
        peer_send(&p, 0x02, half, 600);
        peer_send(&p, 0x80, half, 600);
        assert_int_equal(gv_ws_recv(p.ws, -1, TIMEOUT_MS, &m), -EMSGSIZE);
        assert_int_equal(peer_expect_close(&p), 1009);
        pair_close(&p);
}

/* ---- through the HTTP server ---- */

struct srv {
        char dir[64];
        char *unix_ep, *tcp_ep, *relay_target;
        struct gv_http_server *s;
        struct gv_http_server *s2; /* the relay's target */
        int backend[2];            /* the bridge route's byte stream: [0] bridged, [1] test */
};

static void echo_handler(struct gv_ws *ws, void *cls, int stop_fd)
{
        struct gv_ws_message m;
        (void)cls;
        for (;;) {
                int r = gv_ws_recv(ws, stop_fd, -1, &m);
                if (r == -ECANCELED) {
                        (void)gv_ws_close(ws, GV_WS_CLOSE_GOING_AWAY, "stopping");
                        return;
                }
                if (r < 0)
                        return;
                if (m.len == 4 && memcmp(m.data, "quit", 4) == 0) {
                        (void)gv_ws_close(ws, 4000, "asked to quit");
                        continue; /* the peer's answering close ends it */
                }
                if (gv_ws_send(ws, m.opcode, m.data, m.len) < 0)
                        return;
        }
}

static int h_echo(struct gv_http_request *req, void *u)
{
        (void)u;
        _cleanup_strv_free_ char **offered = gv_ws_request_protocols(req);
        const char *chosen = strv_contains(offered, "echo") ? "echo" : NULL;
        return gv_ws_reply_accept(req, chosen, 256 * 1024, echo_handler, NULL, NULL);
}

static void bridge_handler(struct gv_ws *ws, void *cls, int stop_fd)
{
        struct srv *s = cls;
        (void)gv_ws_bridge(ws, s->backend[0], false, "backend closed", stop_fd, NULL);
}

static int h_bridge(struct gv_http_request *req, void *u)
{
        return gv_ws_reply_accept(req, NULL, 0, bridge_handler, u, NULL);
}

/* The controller's pattern: check the request, dial the target (its refusal is passed on),
 * then upgrade this request and relay raw bytes. */
static int h_relay(struct gv_http_request *req, void *u)
{
        struct srv *s = u;
        struct gv_ws_dial d = { .endpoint = s->relay_target, .path = "/echo",
                                .timeout_ms = TIMEOUT_MS };
        struct gv_http_client_reply refusal = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        char *extra = NULL;
        size_t n_extra = 0;
        int fd = -1;

        if (gv_ws_reply_if_invalid(req))
                return 0;
        int k = gv_ws_dial(&d, &fd, &extra, &n_extra, NULL, &refusal, &e);
        if (k != 0) {
                gv_http_client_reply_done(&refusal);
                return gv_http_reply_problem(req, 502, "bad-gateway", NULL, "%s",
                                             k < 0 ? gv_error_msg(e, k) : "refused");
        }
        return gv_ws_reply_relay(req, NULL, fd, extra, n_extra);
}

static const struct gv_http_route routes[] = {
        { "GET", "/echo", h_echo },
        { "GET", "/bridge", h_bridge },
        { "GET", "/relay", h_relay },
};

static int srv_setup(void **state)
{
        struct srv *s = xnew0(struct srv, 1);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        strcpy(s->dir, "/tmp/gv-ws-XXXXXX");
        assert_non_null(mkdtemp(s->dir));
        _cleanup_free_ char *path = xasprintf("%s/api.sock", s->dir);
        _cleanup_free_ char *path2 = xasprintf("%s/target.sock", s->dir);
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->backend), 0);

        struct gv_http_config cfg2 = { .unix_path = path2 };
        assert_int_equal(gv_http_server_new(&cfg2, routes, ELEMENTSOF(routes), s, &s->s2, &e), 0);
        s->relay_target = xasprintf("unix:%s", path2);
        struct gv_http_config cfg = { .unix_path = path, .tcp_address = "127.0.0.1:0",
                                      .timeout_s = 2 };
        int r = gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), s, &s->s, &e);
        if (r < 0)
                fail_msg("server: %s", gv_error_msg(e, r));
        s->unix_ep = xasprintf("unix:%s", path);
        s->tcp_ep = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(s->s));
        *state = s;
        return 0;
}

static int srv_teardown(void **state)
{
        struct srv *s = *state;
        gv_http_server_free(s->s);
        gv_http_server_free(s->s2);
        safe_close(s->backend[0]);
        safe_close(s->backend[1]);
        _cleanup_free_ char *rm = xasprintf("rm -rf %s", s->dir);
        (void)!system(rm);
        free(s->unix_ep);
        free(s->tcp_ep);
        free(s->relay_target);
        free(s);
        return 0;
}

static struct gv_ws *dial(const char *ep, const char *path, const char *protocols,
                          char **ret_protocol)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_http_client_reply refusal = { 0 };
        struct gv_ws_dial d = { .endpoint = ep, .path = path, .protocols = protocols,
                                .timeout_ms = TIMEOUT_MS };
        int fd = -1;
        _cleanup_free_ char *extra = NULL;
        size_t n_extra = 0;
        int r = gv_ws_dial(&d, &fd, &extra, &n_extra, ret_protocol, &refusal, &e);
        if (r != 0)
                fail_msg("dial %s%s: %d %s (status %d)", ep, path, r, gv_error_msg(e, r),
                         refusal.status);
        return gv_ws_new(fd, false, true, extra, n_extra, 1 << 20);
}

static void expect_echo(struct gv_ws *ws, uint8_t op, const void *data, size_t len)
{
        struct gv_ws_message m;
        assert_int_equal(gv_ws_send(ws, op, data, len), 0);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.opcode, op);
        assert_int_equal(m.len, len);
        assert_memory_equal(m.data, data, len);
}

static void test_server_echo(void **state)
{
        struct srv *s = *state;
        const char *eps[] = { s->unix_ep, s->tcp_ep };
        for (size_t i = 0; i < ELEMENTSOF(eps); i++) {
                _cleanup_free_ char *proto = NULL;
                _cleanup_(gv_ws_freep) struct gv_ws *ws =
                        dial(eps[i], "/echo", "other, echo", &proto);
                assert_string_equal(proto, "echo");
                expect_echo(ws, GV_WS_TEXT, "héllo", strlen("héllo"));
                /* 200 KiB: a 64-bit length, several reads on both sides. */
                size_t n = 200 * 1024;
                _cleanup_free_ uint8_t *big = xmalloc(n);
                for (size_t k = 0; k < n; k++)
                        big[k] = (uint8_t)(k * 7);
                expect_echo(ws, GV_WS_BINARY, big, n);
                /* Over the route's 256 KiB limit: closed with 1009. */
                _cleanup_free_ uint8_t *huge = xcalloc(300 * 1024, 1);
                struct gv_ws_message m;
                int sr = gv_ws_send(ws, GV_WS_BINARY, huge, 300 * 1024);
                assert_true(sr == 0 || sr == -EPIPE || sr == -ECONNRESET);
                assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
                assert_int_equal(gv_ws_peer_close_code(ws), 1009);
        }
        /* The server starts the closing handshake; no subprotocol when none fits. */
        char *proto = (char *)"x"; /* overwritten with NULL */
        _cleanup_(gv_ws_freep) struct gv_ws *ws = dial(s->tcp_ep, "/echo", NULL, &proto);
        assert_null(proto);
        struct gv_ws_message m;
        assert_int_equal(gv_ws_send(ws, GV_WS_TEXT, "quit", 4), 0);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
        assert_int_equal(gv_ws_peer_close_code(ws), 4000);
}

/* An upgraded connection outlives the server's idle timeout (2 s here). */
static void test_server_idle(void **state)
{
        struct srv *s = *state;
        _cleanup_(gv_ws_freep) struct gv_ws *ws = dial(s->tcp_ep, "/echo", NULL, NULL);
        sleep(3);
        expect_echo(ws, GV_WS_TEXT, "still here", 10);
}

/* A raw request (the client adds "Connection: close", which an upgrade cannot have): the
 * whole answer, read to the server's close. */
static char *raw_exchange(const char *ep, const char *request)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int fd = -1;
        int r = gv_http_client_connect(ep, TIMEOUT_MS, &fd, NULL, &e);
        if (r < 0)
                fail_msg("connect: %s", gv_error_msg(e, r));
        int fl = fcntl(fd, F_GETFL);
        assert_int_equal(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK), 0);
        assert_int_equal(write(fd, request, strlen(request)), (ssize_t)strlen(request));
        size_t cap = 65536, n = 0;
        char *out = xmalloc(cap);
        for (;;) {
                struct pollfd pf = { .fd = fd, .events = POLLIN };
                assert_int_equal(poll(&pf, 1, TIMEOUT_MS), 1);
                ssize_t k = read(fd, out + n, cap - n - 1);
                if (k <= 0)
                        break;
                n += (size_t)k;
                out[n] = 0;
                /* Problems come with a Content-Length: stop at the end of the body. */
                char *h = strstr(out, "\r\n\r\n");
                char *cl = strcasestr(out, "content-length: ");
                if (h && cl && n >= (size_t)(h + 4 - out) + (size_t)atoi(cl + 16))
                        break;
        }
        out[n] = 0;
        close(fd);
        return out;
}

static void test_server_refusals(void **state)
{
        struct srv *s = *state;
        struct {
                const char *headers;
                const char *status;
                const char *problem_type;
        } cases[] = {
                { "", "HTTP/1.1 426 ", "upgrade-required" },
                { "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                  "Sec-WebSocket-Key: aGVsbG8=\r\n", "HTTP/1.1 400 ", "websocket-key" },
                { "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "HTTP/1.1 400 ",
                  "websocket-version" },
                { "Upgrade: websocket\r\nConnection: keep-alive\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                  "HTTP/1.1 426 ", "upgrade-required" },
                /* The RFC's own example request: answered with its accept value. */
                { "Upgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                  "Sec-WebSocket-Protocol: chat, echo\r\n",
                  "HTTP/1.1 101 ", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *rq = xasprintf("GET /echo HTTP/1.1\r\nHost: x\r\n%s\r\n",
                                                    cases[i].headers);
                if (i == ELEMENTSOF(cases) - 1) {
                        /* An upgraded connection stays open: read the head only. */
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                        int fd = -1;
                        assert_int_equal(gv_http_client_connect(s->tcp_ep, TIMEOUT_MS, &fd, NULL,
                                                                &e), 0);
                        assert_int_equal(write(fd, rq, strlen(rq)), (ssize_t)strlen(rq));
                        char head[2048];
                        size_t n = 0;
                        while (!memmem(head, n, "\r\n\r\n", 4) && n < sizeof(head) - 1) {
                                struct pollfd pf = { .fd = fd, .events = POLLIN };
                                assert_int_equal(poll(&pf, 1, TIMEOUT_MS), 1);
                                ssize_t k = read(fd, head + n, sizeof(head) - 1 - n);
                                assert_true(k > 0);
                                n += (size_t)k;
                        }
                        head[n] = 0;
                        close(fd);
                        assert_true(strncmp(head, cases[i].status, 13) == 0);
                        assert_non_null(strstr(head, cases[i].problem_type));
                        assert_non_null(strcasestr(head, "Sec-WebSocket-Protocol: echo\r\n"));
                        assert_non_null(strcasestr(head, "Upgrade: websocket\r\n"));
                        continue;
                }
                _cleanup_free_ char *out = raw_exchange(s->tcp_ep, rq);
                if (strncmp(out, cases[i].status, 13) != 0 || !strstr(out, cases[i].problem_type))
                        fail_msg("case %zu: got\n%s", i, out);
                if (strstr(cases[i].problem_type, "version"))
                        assert_non_null(strcasestr(out, "Sec-WebSocket-Version: 13\r\n"));
        }
        /* gv_ws_dial hands a refusal back as it came. */
        struct gv_ws_dial d = { .endpoint = s->tcp_ep, .path = "/nowhere",
                                .timeout_ms = TIMEOUT_MS };
        struct gv_http_client_reply rp = { 0 };
        int fd = -1;
        char *extra = NULL;
        size_t n = 0;
        assert_int_equal(gv_ws_dial(&d, &fd, &extra, &n, NULL, &rp, NULL), 1);
        assert_int_equal(fd, -1);
        assert_int_equal(rp.status, 404);
        assert_non_null(strstr(rp.body, "\"status\":404"));
        gv_http_client_reply_done(&rp);
}

static void test_bridge(void **state)
{
        struct srv *s = *state;
        _cleanup_(gv_ws_freep) struct gv_ws *ws = dial(s->unix_ep, "/bridge", NULL, NULL);
        struct gv_ws_message m;
        char buf[64];

        /* Stream -> binary messages. */
        assert_int_equal(write(s->backend[1], "RFB 003.008\n", 12), 12);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.opcode, GV_WS_BINARY);
        assert_int_equal(m.len, 12);
        assert_memory_equal(m.data, "RFB 003.008\n", 12);
        /* Messages -> stream, text and binary alike. */
        assert_int_equal(gv_ws_send(ws, GV_WS_BINARY, "abc", 3), 0);
        assert_int_equal(gv_ws_send(ws, GV_WS_TEXT, "def", 3), 0);
        size_t got = 0;
        while (got < 6) {
                struct pollfd pf = { .fd = s->backend[1], .events = POLLIN };
                assert_int_equal(poll(&pf, 1, TIMEOUT_MS), 1);
                ssize_t k = read(s->backend[1], buf + got, sizeof(buf) - got);
                assert_true(k > 0);
                got += (size_t)k;
        }
        assert_memory_equal(buf, "abcdef", 6);
        /* The stream ends: a close 1000 with the reason. */
        shutdown(s->backend[1], SHUT_WR);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
        assert_int_equal(gv_ws_peer_close_code(ws), 1000);
}

static void test_relay(void **state)
{
        struct srv *s = *state;
        _cleanup_(gv_ws_freep) struct gv_ws *ws = dial(s->tcp_ep, "/relay", NULL, NULL);
        struct gv_ws_message m;
        expect_echo(ws, GV_WS_TEXT, "through the relay", 17);
        size_t n = 100 * 1024;
        _cleanup_free_ uint8_t *big = xmalloc(n);
        for (size_t k = 0; k < n; k++)
                big[k] = (uint8_t)(k * 13);
        expect_echo(ws, GV_WS_BINARY, big, n);
        /* The closing handshake crosses the relay both ways. */
        assert_int_equal(gv_ws_send(ws, GV_WS_TEXT, "quit", 4), 0);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
        assert_int_equal(gv_ws_peer_close_code(ws), 4000);
}

/* Freeing the server ends open WebSockets with 1001 (the handlers watch stop_fd). */
static void test_server_stop(void **state)
{
        (void)state;
        struct srv *s = NULL;
        srv_setup((void **)&s);
        _cleanup_(gv_ws_freep) struct gv_ws *ws = dial(s->tcp_ep, "/echo", NULL, NULL);
        expect_echo(ws, GV_WS_TEXT, "hi", 2);
        gv_http_server_free(s->s);
        s->s = NULL;
        struct gv_ws_message m;
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), -ESHUTDOWN);
        assert_int_equal(gv_ws_peer_close_code(ws), 1001);
        srv_teardown((void **)&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_accept_example),
                cmocka_unit_test(test_frame_examples),
                cmocka_unit_test(test_frame_header_errors),
                cmocka_unit_test(test_messages),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test_setup_teardown(test_server_echo, srv_setup, srv_teardown),
                cmocka_unit_test_setup_teardown(test_server_idle, srv_setup, srv_teardown),
                cmocka_unit_test_setup_teardown(test_server_refusals, srv_setup, srv_teardown),
                cmocka_unit_test_setup_teardown(test_bridge, srv_setup, srv_teardown),
                cmocka_unit_test_setup_teardown(test_relay, srv_setup, srv_teardown),
                cmocka_unit_test(test_server_stop),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
