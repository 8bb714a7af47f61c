/* SPDX-License-Identifier: MIT */
/*
 * websocket.h — WebSocket (RFC 6455): the opening handshake on both sides, framing, and the
 * bridges the consoles need (docs/agent.md "Consoles over WebSocket").
 *
 * Server side: a route's handler calls gv_ws_reply_accept(); it checks the upgrade request
 * (section 4.2.1), answers 101 with Sec-WebSocket-Accept (section 4.2.2) through the server's
 * upgrade support (gv_http_reply_upgrade(), server.h), and runs the given handler on the
 * connection's own thread with a struct gv_ws. A request that is not a valid upgrade gets a
 * problem: 426 without "Upgrade: websocket", 400 for a bad key or version (with
 * Sec-WebSocket-Version: 13 as section 4.4 asks).
 *
 * Client side: gv_ws_dial() connects to an endpoint ("unix:/PATH" or "http://HOST:PORT",
 * client.h), sends the upgrade request and checks the 101 and its accept value. The controller
 * uses it to reach an agent and then relays raw bytes (gv_ws_relay_raw): the browser's frames
 * are masked client frames, valid as they are for the agent; the agent's are unmasked server
 * frames, valid as they are for the browser. So the controller forwards frames without
 * decoding them, like any reverse proxy, and pings, closes and fragments pass end to end.
 *
 * Framing (section 5): a peer's frames are checked as they arrive; a violation sends a close
 * frame with its code and ends the connection: 1002 for a protocol error (an unmasked frame
 * from a client or a masked one from a server, reserved bits, an unknown opcode, a fragmented
 * or oversized control frame, a continuation with no message or a new message inside one, a
 * non-minimal length, a 64-bit length with its top bit set, a bad close code), 1009 for a
 * message over the limit (checked from the frame header, before its payload is read), 1007 for
 * a text message that is not UTF-8. Pings are answered with pongs, a close with a close.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/client.h"
#include "util/error.h"

struct gv_http_request;

#define GV_WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define GV_WS_MAX_MESSAGE_DEFAULT (1u << 20)
#define GV_WS_MAX_HEADER 14 /* 2 + 8 (length) + 4 (mask) */

enum gv_ws_opcode {
        GV_WS_CONTINUATION = 0x0,
        GV_WS_TEXT = 0x1,
        GV_WS_BINARY = 0x2,
        GV_WS_CLOSE = 0x8,
        GV_WS_PING = 0x9,
        GV_WS_PONG = 0xa,
};

/* Close codes (section 7.4.1). */
enum {
        GV_WS_CLOSE_NORMAL = 1000,
        GV_WS_CLOSE_GOING_AWAY = 1001,
        GV_WS_CLOSE_PROTOCOL_ERROR = 1002,
        GV_WS_CLOSE_UNSUPPORTED = 1003,
        GV_WS_CLOSE_NO_STATUS = 1005,   /* never sent: a close frame without a code */
        GV_WS_CLOSE_ABNORMAL = 1006,    /* never sent: the connection dropped without a close */
        GV_WS_CLOSE_INVALID_DATA = 1007,
        GV_WS_CLOSE_POLICY = 1008,
        GV_WS_CLOSE_TOO_BIG = 1009,
        GV_WS_CLOSE_INTERNAL_ERROR = 1011,
};

/* ---- Pieces (pure; exposed for tests) ---- */

/* base64(SHA-1(key + GUID)): the Sec-WebSocket-Accept for a Sec-WebSocket-Key. */
char *gv_ws_accept_for_key(const char *key);
/* Whether key is the base64 of 16 bytes (section 4.2.1, item 5). */
bool gv_ws_key_is_valid(const char *key);

struct gv_ws_frame {
        bool fin;
        uint8_t opcode;
        bool masked;
        uint8_t mask[4];
        uint64_t len;      /* payload bytes */
        size_t header_len; /* bytes before the payload */
};

/* Parse a frame header from buf[0..n). expect_masked: frames from a client (a server reads)
 * must be masked, frames from a server must not. max_payload: the largest payload accepted for
 * a data frame. 1: *ret filled; 0: more bytes needed; -EPROTO or -EMSGSIZE with *ret_code set
 * to the close code to send (1002, 1009). */
int gv_ws_frame_parse(const uint8_t *buf, size_t n, bool expect_masked, uint64_t max_payload,
                      struct gv_ws_frame *ret, uint16_t *ret_code);
/* Write a frame header (the minimal length form) into out; returns its length. mask NULL: an
 * unmasked frame. */
size_t gv_ws_frame_header(uint8_t out[static GV_WS_MAX_HEADER], bool fin, uint8_t opcode,
                          uint64_t len, const uint8_t *mask);
/* XOR data with the mask, starting at payload offset `offset`. */
void gv_ws_mask(uint8_t *data, size_t len, const uint8_t mask[static 4], uint64_t offset);

/* ---- Connections ---- */

struct gv_ws;

struct gv_ws_message {
        uint8_t opcode; /* GV_WS_TEXT or GV_WS_BINARY */
        uint8_t *data;  /* valid until the next gv_ws_next() or gv_ws_recv() */
        size_t len;
};

/* A WebSocket over fd. is_server: this end is the server (it reads masked frames and sends
 * unmasked ones). own_fd: close fd when freed (not for a server connection libmicrohttpd
 * closes). extra: bytes already read from fd after the handshake. max_message: the largest
 * message taken (0: GV_WS_MAX_MESSAGE_DEFAULT). fd is made non-blocking. */
struct gv_ws *gv_ws_new(int fd, bool is_server, bool own_fd, const void *extra, size_t n_extra,
                        size_t max_message);
struct gv_ws *gv_ws_free(struct gv_ws *ws);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_ws *, gv_ws_free);

/* The fd to poll for input (POLLIN). */
int gv_ws_fd(const struct gv_ws *ws);

/* One read of what fd has (non-blocking): > 0 bytes buffered, -EAGAIN nothing now,
 * -ECONNRESET when the peer went away without a close frame, -ENOBUFS when the buffer is full
 * (call gv_ws_next() first). */
int gv_ws_read(struct gv_ws *ws);
/* The next complete message from what is buffered. 1: *ret set; 0: more bytes needed;
 * -ESHUTDOWN: the peer closed (gv_ws_peer_close_code()) and was answered; -EPROTO, -EMSGSIZE,
 * -EILSEQ: the peer broke the protocol, a close frame with the code was sent
 * (gv_ws_error() says what). Pings are answered and pongs dropped on the way. */
int gv_ws_next(struct gv_ws *ws, struct gv_ws_message *ret);
/* Wait for the next message: gv_ws_read() and gv_ws_next() until one is there, the connection
 * ends (as gv_ws_next()), stop_fd (may be -1) turns readable (-ECANCELED) or timeout_ms passes
 * (-ETIMEDOUT; < 0: no limit). */
int gv_ws_recv(struct gv_ws *ws, int stop_fd, int timeout_ms, struct gv_ws_message *ret);

/* Send a whole message (one frame; masked on a client). Thread-safe: frames from two threads
 * never interleave. Waits up to 30 s for a peer that does not read (-ETIMEDOUT). -EPIPE after
 * a close was sent. */
int gv_ws_send(struct gv_ws *ws, uint8_t opcode, const void *data, size_t len);
/* Send a close frame (once; later calls do nothing) with code and a reason (UTF-8, cut to fit
 * 123 bytes). */
int gv_ws_close(struct gv_ws *ws, uint16_t code, const char *reason);
/* After -ESHUTDOWN: the peer's close code (1005 when it sent none). 0 before. */
uint16_t gv_ws_peer_close_code(const struct gv_ws *ws);
/* What went wrong (after a negative gv_ws_next()), or NULL. */
const char *gv_ws_error(const struct gv_ws *ws);
/* The close code this end sent, 0 if none. */
uint16_t gv_ws_sent_close_code(const struct gv_ws *ws);

/* ---- Server side ---- */

/* Runs on the connection's thread once the 101 is out; the connection ends when it returns.
 * stop_fd turns readable when the server is being freed: send a close (1001) and return. */
typedef void (*gv_ws_handler)(struct gv_ws *ws, void *cls, int stop_fd);

/* Whether the request asks for a WebSocket (Upgrade: websocket). */
bool gv_ws_is_upgrade_request(const struct gv_http_request *req);
/* The subprotocols the client offers (Sec-WebSocket-Protocol, comma-separated), NULL-terminated
 * strv (empty when none). */
char **gv_ws_request_protocols(const struct gv_http_request *req);

/* Check the upgrade request and answer 101 (or a problem: 426, 400), then run handler(ws, cls,
 * stop_fd). protocol: the subprotocol chosen (must be one the client offered), or NULL for
 * none. max_message as gv_ws_new(). free_cb(cls) runs once, whether the handler ran or not.
 * Returns what the reply call returned (0 once a reply is made). */
int gv_ws_reply_accept(struct gv_http_request *req, const char *protocol, size_t max_message,
                       gv_ws_handler handler, void *cls, void (*free_cb)(void *cls));

/* Whether the request is not a valid WebSocket upgrade: 1 with the problem answered (426, 400,
 * as gv_ws_reply_accept() answers them), 0 when it is valid and nothing was answered. For
 * handlers that have work to do before accepting (the controller dials the agent first). */
int gv_ws_reply_if_invalid(struct gv_http_request *req);

/* Accept the WebSocket and relay its bytes raw to and from fd (gv_ws_relay_raw()): fd is
 * another WebSocket's connection to a server, opened with gv_ws_dial(), and extra what was
 * read past its 101. Takes fd and extra (also on failure). */
int gv_ws_reply_relay(struct gv_http_request *req, const char *protocol, int fd, char *extra,
                      size_t n_extra);

/* ---- Client side ---- */

struct gv_ws_dial {
        const char *endpoint;       /* "unix:/PATH" or "http://HOST:PORT" */
        const char *path;           /* "/v1/vms/web/console/ws" */
        const char *protocols;      /* Sec-WebSocket-Protocol to offer, or NULL */
        const char *const *headers; /* extra "Name: value" lines, NULL-terminated, or NULL */
        int timeout_ms;             /* for the handshake; <= 0: none */
};

/* Open a WebSocket. 0: upgraded: *ret_fd (non-blocking) and the bytes read past the 101's head
 * (*ret_extra, *ret_n_extra; may be 0) are the caller's; ret_protocol (may be NULL) gets the
 * chosen subprotocol or NULL. 1: the server answered without upgrading: *ret_refusal holds its
 * status, headers and body (up to 64 KiB), e.g. a problem to pass on. -errno: no answer, or a
 * 101 that breaks the handshake (-EPROTO). */
int gv_ws_dial(const struct gv_ws_dial *d, int *ret_fd, char **ret_extra, size_t *ret_n_extra,
               char **ret_protocol, struct gv_http_client_reply *ret_refusal,
               struct gv_error **err);

/* ---- Bridges ---- */

/* Messages from ws (binary, and text) are written to fd as bytes; what fd yields is sent as
 * binary messages (text ones with send_text). Until the peer closes (0), fd reaches EOF (a
 * close 1000 with reason eof_reason is sent; 0), stop_fd (close 1001; 0), or an error on either
 * side (-errno; a close 1011 or the protocol's code was sent). */
int gv_ws_bridge(struct gv_ws *ws, int fd, bool send_text, const char *eof_reason, int stop_fd,
                 struct gv_error **err);

/* Copy bytes both ways between a and b (a_extra: bytes read from a already, to go to b first;
 * b_extra likewise) until either side ends or stop_fd turns readable. The sockets may be
 * blocking or not. 0 at an end, -errno on an error. */
int gv_ws_relay_raw(int a, const void *a_extra, size_t n_a_extra, int b, const void *b_extra,
                    size_t n_b_extra, int stop_fd);
