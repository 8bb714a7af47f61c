/* SPDX-License-Identifier: MIT */
/*
 * client.h — a minimal blocking HTTP/1.1 client over a UNIX socket or TCP, for the CLI, the
 * controller talking to agents, and tests. One request per connection ("Connection: close").
 *
 * Endpoints: "unix:/run/gpuvirt/agent.sock", "http://HOST:PORT" ("http://[::1]:8470") or
 * "https://HOST:PORT": TLS 1.3 only (GnuTLS, tls.h), the server's certificate verified against
 * a CA file (the request's ca_file, else the process default from
 * gv_http_client_set_ca_file(), else the system's trust store) and against HOST (a DNS name,
 * or an IP literal matched against the certificate's IP addresses). A certificate that does
 * not verify is -EPERM naming the CA file used and what to fix; a server that does not speak
 * TLS 1.3 is -EPROTO.
 * Replies are read strictly: a status line "HTTP/1.x NNN ...", header lines "Name: value"
 * (no folding), the body by Content-Length, chunked transfer encoding, or up to the close.
 * Limits: GV_HTTP_CLIENT_MAX_HEADER bytes of status line and headers; max_body bytes of body.
 * A reply that breaks the protocol or a limit is an error (-EBADMSG, -EMSGSIZE); a problem
 * reply (4xx, 5xx) is not: it comes back as its status and body.
 */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "util/error.h"

#define GV_HTTP_CLIENT_MAX_HEADER (16u * 1024u)
#define GV_HTTP_CLIENT_MAX_BODY_DEFAULT (16u * 1024u * 1024u)

/* Send method path (with any query string) and body (NULL: none; else sent as
 * application/json) to endpoint, waiting at most timeout_ms for the whole exchange (<= 0: no
 * limit). *ret_status gets the status; *ret_body the body parsed as JSON (NULL when the body is
 * empty). A body that is not JSON is an error (-EBADMSG) unless ret_body is NULL (then it is
 * read and dropped). ret_status and ret_body may be NULL. */
int gv_http_client_request(const char *endpoint, const char *method, const char *path,
                           const json_t *body, int timeout_ms, int *ret_status, json_t **ret_body,
                           struct gv_error **err);

/* The whole request, for callers that need raw bodies, headers or their own limits. */
struct gv_http_client_req {
        const char *endpoint;
        const char *method;
        const char *path;
        const char *content_type; /* NULL: application/json when a body is given */
        const void *body;         /* NULL: no body */
        size_t body_len;
        const char *const *headers; /* extra "Name: value" lines, NULL-terminated; may be NULL */
        int timeout_ms;             /* <= 0: no limit */
        size_t max_body;            /* 0: GV_HTTP_CLIENT_MAX_BODY_DEFAULT */
        /* When set, the body is handed over as it arrives (decoded from chunks) instead of being
         * collected: return 0 to go on, -errno to stop (the request then fails with it). */
        int (*on_data)(void *userdata, const char *data, size_t len);
        void *userdata;
        /* When set, the body is sent in 1 MiB pieces and this is called after each (and once
         * at 0): for progress bars on uploads. */
        void (*on_sent)(void *progress_userdata, uint64_t sent, uint64_t total);
        void *progress_userdata;
        /* https: the PEM file of the CA(s) to trust; NULL: the process default. */
        const char *ca_file;
};

struct gv_http_client_reply {
        int status;
        char **headers; /* "name: value" with lower-case names, NULL-terminated */
        char *body;     /* NUL-terminated; NULL with on_data */
        size_t body_len;
};

int gv_http_client_send(const struct gv_http_client_req *rq, struct gv_http_client_reply *ret,
                        struct gv_error **err);
/* The value of header name (case-insensitive), or NULL. */
const char *gv_http_client_reply_header(const struct gv_http_client_reply *r, const char *name);
void gv_http_client_reply_done(struct gv_http_client_reply *r);

/* Parse a reply head (status line and headers up to and including the empty line) in
 * buf[0..len). Exposed for tests. */
int gv_http_client_parse_head(const char *buf, size_t len, int *ret_status, char ***ret_headers,
                              struct gv_error **err);

/* The CA file https endpoints are verified against when a request names none (NULL: the
 * system's trust store again). Process-wide; set it once at start (it is copied). */
void gv_http_client_set_ca_file(const char *path);

/* Connect to endpoint (as above) and hand the socket over (non-blocking, O_CLOEXEC) with the
 * Host header's value for it, for protocols that leave HTTP after one exchange (WebSocket,
 * websocket.h). For https the handshake (verified against the default CA file) is done here,
 * and the fd returned is one end of a socketpair: a detached relay thread owns the TLS session
 * and moves bytes between it and the other end until both directions have ended or the
 * returned fd is closed, so the caller reads and writes plain bytes either way. */
int gv_http_client_connect(const char *endpoint, int timeout_ms, int *ret_fd, char **ret_host,
                           struct gv_error **err);
