/* SPDX-License-Identifier: MIT */
/*
 * server.h — the HTTP/JSON server both gpuvirt daemons serve their APIs with (libmicrohttpd).
 *
 * Listeners: a UNIX socket (the local API; the CLI's default) and optionally TCP. Each is its own
 * libmicrohttpd daemon over a socket we create, bind and listen ourselves (MHD_OPTION_LISTEN_
 * SOCKET), sharing one route table, one request counter and one stop signal.
 *
 * Thread model: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), bounded by
 * max_connections per listener. Handlers block: starting a VM waits seconds on QEMU and QMP, and
 * a console stream in follow mode lasts as long as the client reads. In a fixed thread pool a
 * few such requests would hold every worker and stall quick ones (status, metrics); with a
 * thread per connection a slow handler holds only its own connection. The cost (a thread per
 * open connection) is bounded by the connection limit and small for a host agent's traffic.
 *
 * TLS: with tls_cert_file and tls_key_file the TCP listener speaks HTTPS only (libmicrohttpd's
 * GnuTLS support), TLS 1.3 only (tls.h says why and which suites); a plain HTTP request there
 * fails in the handshake. The UNIX socket never uses TLS: it is the local admin's, guarded by
 * its file mode. Upgraded connections (WebSockets) keep working: libmicrohttpd then forwards
 * the TLS stream through a socketpair of its own, so the upgrade callback gets a plain socket.
 *
 * Every response carries Content-Type and X-Request-Id (a decimal counter, per server, from 1).
 * Errors are RFC 9457 problems (problem.h). Unknown paths answer 404, known paths with another
 * method 405 with an Allow header, bad path parameters 400, bodies over max_body 413 (from the
 * Content-Length before the body is read, or as soon as a chunked body passes the cap).
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "http/problem.h"
#include "http/route.h"
#include "util/error.h"

#define GV_HTTP_MAX_BODY_DEFAULT (1024u * 1024u)
#define GV_HTTP_MAX_CONNECTIONS_DEFAULT 64u
#define GV_HTTP_TIMEOUT_DEFAULT_S 60u

struct gv_http_server;
struct gv_http_request;

struct gv_http_config {
        /* UNIX socket path (at most 100 bytes): created with unix_mode (0: 0600). A socket file
         * nobody listens on (a server that died) is replaced; one with a live server behind it
         * is refused with -EADDRINUSE; a path that is not a socket is refused with -EEXIST.
         * "<unix_path>.lock" is created beside it and held (flock) while the server runs. */
        const char *unix_path;
        mode_t unix_mode;
        /* "HOST:PORT" ("127.0.0.1:8470", "[::1]:0", "0.0.0.0:8470"); port 0 picks a free one
         * (gv_http_server_tcp_port()). NULL: no TCP listener. */
        const char *tcp_address;
        size_t max_body;           /* request body cap in bytes; 0: GV_HTTP_MAX_BODY_DEFAULT */
        /* Routes with body_to_file: their bodies go to a file "upload_dir/.upload-ID" (0600),
         * up to max_upload bytes (0: 1 TiB). NULL: such routes answer 501. */
        const char *upload_dir;
        uint64_t max_upload;
        unsigned max_connections;  /* per listener; 0: GV_HTTP_MAX_CONNECTIONS_DEFAULT */
        unsigned timeout_s;        /* idle connection timeout; 0: GV_HTTP_TIMEOUT_DEFAULT_S */
        /* Called once per finished request (from the connection's thread), e.g. for an access
         * log; may be NULL. The server itself never logs. */
        void (*on_complete)(void *userdata, const struct gv_http_request *req);
        /* PEM files of the TCP listener's certificate (chain) and private key: both or
         * neither. Checked at start (missing, unreadable, not PEM, expired, not a pair: an
         * error naming the file and what to fix). NULL: plain HTTP on TCP. */
        const char *tls_cert_file;
        const char *tls_key_file;
        /* Called for every request on the TCP listener once its head is in (method, path and
         * headers readable; no body read yet), before routing: return 0 to go on, or make a
         * reply (e.g. gv_http_reply_problem(req, 401, ...) plus WWW-Authenticate) and return
         * 1 to answer with it and skip the handler. NULL: no check. The UNIX socket is never
         * checked (local admin). */
        int (*tcp_authorize)(void *userdata, struct gv_http_request *req);
};

/* Check the route table, bind the listeners and start serving. At least one of unix_path and
 * tcp_address must be set. */
int gv_http_server_new(const struct gv_http_config *cfg, const struct gv_http_route *routes,
                       size_t n_routes, void *userdata, struct gv_http_server **ret,
                       struct gv_error **err);
/* Stop accepting, tell streams to end (the stop fd), wait for running handlers, remove the
 * socket file (if it is still ours). Accepts NULL; returns NULL. */
struct gv_http_server *gv_http_server_free(struct gv_http_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(struct gv_http_server *, gv_http_server_free);

/* The bound TCP port (useful with port 0); 0 without a TCP listener. */
uint16_t gv_http_server_tcp_port(const struct gv_http_server *s);
/* Whether the TCP listener speaks TLS. */
bool gv_http_server_tcp_tls(const struct gv_http_server *s);

/* ---- Requests (valid inside a handler, and in on_complete) ---- */

const char *gv_http_method(const struct gv_http_request *req);
/* The raw request path, without the query string. */
const char *gv_http_path(const struct gv_http_request *req);
/* "17": the X-Request-Id of this request's response. */
const char *gv_http_request_id(const struct gv_http_request *req);
/* A decoded path parameter ("{name}" in the route's pattern), or NULL. */
const char *gv_http_param(const struct gv_http_request *req, const char *name);
/* A header's value (name case-insensitive), or NULL. */
const char *gv_http_header(const struct gv_http_request *req, const char *name);
/* A query parameter, percent-decoded ("+" is a space). 1: *ret set (valid until the request
 * ends); 0: absent; -EINVAL: given twice, badly encoded or not UTF-8. */
int gv_http_query(struct gv_http_request *req, const char *name, const char **ret,
                  struct gv_error **err);
/* -EINVAL naming the first query parameter that is not in the NULL-terminated list allowed,
 * and listing the valid ones. */
int gv_http_query_check(const struct gv_http_request *req, const char *const *allowed,
                        struct gv_error **err);
/* The request body (NUL-terminated; "" when there was none) and its length. */
const char *gv_http_body(const struct gv_http_request *req, size_t *ret_len);
/* Parse the body as a JSON object (duplicate keys refused). -EINVAL when it is empty, not JSON
 * ("... at line L, column C: ...") or not an object; answer it with gv_http_reply_error(). */
int gv_http_body_json(const struct gv_http_request *req, json_t **ret, struct gv_error **err);

/* Whether the request came over the UNIX socket (local admin) rather than TCP. */
bool gv_http_request_is_local(const struct gv_http_request *req);
/* Whether it came over TLS (the TCP listener with a certificate). */
bool gv_http_request_is_tls(const struct gv_http_request *req);

/* Credentials of the peer on the UNIX socket (SO_PEERCRED). -ENODATA on TCP. */
int gv_http_peer_cred(const struct gv_http_request *req, uid_t *ret_uid, gid_t *ret_gid,
                      pid_t *ret_pid);
/* The TCP peer as "tcp:192.0.2.1:41234" or "tcp:[2001:db8::1]:41234" into buf. -ENODATA on
 * the UNIX socket. */
int gv_http_peer_address(const struct gv_http_request *req, char *buf, size_t size);
/* The HTTP status answered, once a reply was made (by the handler) or queued; 0 before. */
unsigned gv_http_status(const struct gv_http_request *req);

/* A body_to_file route's body: the file it was written to (complete when the handler runs),
 * or NULL. The handler may rename it away; what is left is removed with the request. */
const char *gv_http_body_path(const struct gv_http_request *req);
/* Its size in bytes. */
uint64_t gv_http_body_file_size(const struct gv_http_request *req);

/* ---- Replies: one per request; a second returns -EALREADY and changes nothing ---- */

/* body is stolen (also on failure); NULL sends no body (e.g. 204). application/json. */
int gv_http_reply_json(struct gv_http_request *req, unsigned status, json_t *body);
/* An RFC 9457 problem: title NULL is the status's title; "instance" is the request path. */
int gv_http_reply_problem(struct gv_http_request *req, unsigned status, const char *type_slug,
                          const char *title, const char *detail_fmt, ...) _printf_(5, 6);
/* A body made already (stolen, NUL-terminated), e.g. a cached JSON text. */
int gv_http_reply_text(struct gv_http_request *req, unsigned status, const char *content_type,
                       char *text);
/* A ready problem object (stolen), for extension members; "instance" added when missing. */
int gv_http_reply_problem_json(struct gv_http_request *req, unsigned status, json_t *problem);
/* The problem for -errno r (table in problem.h) with "errno": "EBUSY"; detail e's message, or
 * strerror when e is NULL. */
int gv_http_reply_error(struct gv_http_request *req, int r, const struct gv_error *e);

/* Add a header to the reply just made (after a gv_http_reply_*() call, before the handler
 * returns): Location, WWW-Authenticate, Cache-Control. -EINVAL without a reply, or for a name
 * or value with a control character. */
int gv_http_reply_header(struct gv_http_request *req, const char *name, const char *value);

/* Streaming reply (chunked transfer encoding), for the serial console in follow mode. The
 * callback fills buf with up to max bytes and returns how many (> 0), 0 at the end of the
 * stream, or -errno to abort (the connection is closed without the final chunk, so the client
 * sees an incomplete reply). It runs in the connection's thread and may block, but must also
 * watch stop_fd: it turns readable when the server is being freed, and the callback should then
 * return 0 promptly. free_cb(cls) runs once when the response is done (also when never sent). */
typedef ssize_t (*gv_http_stream_cb)(void *cls, char *buf, size_t max, int stop_fd);
int gv_http_reply_stream(struct gv_http_request *req, unsigned status, const char *content_type,
                         gv_http_stream_cb callback, void *cls, void (*free_cb)(void *cls));

/* Protocol upgrade (101 Switching Protocols; websocket.h builds WebSockets on it). The reply
 * carries "Upgrade: <protocol>" (and libmicrohttpd's "Connection: Upgrade"); add more headers
 * with gv_http_reply_header(). Once the 101 is sent, callback(cls, fd, extra, n_extra, stop_fd)
 * runs on the connection's thread with the connection's socket (it must not close fd: the
 * server does when callback returns) and the bytes the server had read past the request's head.
 * It may block for as long as the connection lasts, but must watch stop_fd as streams do.
 * free_cb(cls) runs once after it, or when the 101 was never sent. */
typedef void (*gv_http_upgrade_cb)(void *cls, int fd, const char *extra, size_t n_extra,
                                   int stop_fd);
int gv_http_reply_upgrade(struct gv_http_request *req, const char *protocol,
                          gv_http_upgrade_cb callback, void *cls, void (*free_cb)(void *cls));
