/* SPDX-License-Identifier: MIT */
/*
 * client.c — a small, strict, blocking HTTP/1.1 client (see client.h).
 *
 * The plan: connect (non-blocking, bounded by the deadline), write the request, then read into
 * one fixed buffer: the head must fit in it (GV_HTTP_CLIENT_MAX_HEADER), the body is taken from
 * it by Content-Length, by chunks, or until the server closes. Every wait is a poll() bounded by
 * what is left of the deadline; nothing sleeps.
 *
 * https: the same over a GnuTLS session (tls.h) made right after the TCP connect; reads and
 * writes go through it, and a GNUTLS_E_AGAIN waits in the direction the session asks for.
 */
#include "client.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "http/tls.h"
#include "util/alloc.h"
#include "util/parse.h"
#include "util/strv.h"

#define CHUNK_LINE_MAX 1024u

struct conn {
        int fd;
        gnutls_session_t tls; /* https: the session on fd */
        const char *ca_file;  /* https: the CA file, NULL: the process default */
        const char *endpoint;
        int64_t deadline_ms; /* CLOCK_MONOTONIC; 0: none */
        int timeout_ms;
        char buf[GV_HTTP_CLIENT_MAX_HEADER];
        size_t start, end; /* unread bytes are buf[start..end) */
        bool eof;
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The process-wide CA file (gv_http_client_set_ca_file). */
static pthread_mutex_t ca_mu = PTHREAD_MUTEX_INITIALIZER;
static char *default_ca_file;

void gv_http_client_set_ca_file(const char *path)
{
        pthread_mutex_lock(&ca_mu);
        free(default_ca_file);
        default_ca_file = path ? xstrdup(path) : NULL;
        pthread_mutex_unlock(&ca_mu);
}

/* A copy of the CA file a request uses: its own, else the default, else NULL. */
static char *ca_file_for(const char *own)
{
        if (own)
                return xstrdup(own);
        pthread_mutex_lock(&ca_mu);
        char *r = default_ca_file ? xstrdup(default_ca_file) : NULL;
        pthread_mutex_unlock(&ca_mu);
        return r;
}

/* Wait for events on the connection; -ETIMEDOUT when the deadline passes. With TLS the
 * session says which direction it waits for. */
static int conn_wait(struct conn *c, short events, struct gv_error **err)
{
        if (c->tls)
                events = gnutls_record_get_direction(c->tls) ? POLLOUT : POLLIN;
        for (;;) {
                int wait = -1;
                if (c->deadline_ms) {
                        int64_t left = c->deadline_ms - now_ms();
                        if (left <= 0)
                                return gv_error_set(err, ETIMEDOUT,
                                                    "'%s' did not answer within %d ms.",
                                                    c->endpoint, c->timeout_ms);
                        wait = (int)MIN(left, (int64_t)INT32_MAX);
                }
                struct pollfd p = { .fd = c->fd, .events = events };
                int r = poll(&p, 1, wait);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return gv_error_set(err, errno, "poll: %s.", strerror(errno));
                if (r > 0)
                        return 0;
        }
}

/* ---------------------------------------------------------------------------------------- */
/* Connecting                                                                                  */

static int connect_addr(struct conn *c, const struct sockaddr *sa, socklen_t len,
                        struct gv_error **err)
{
        c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c->fd < 0)
                return gv_error_set(err, errno, "cannot create a socket: %s.", strerror(errno));
        if (connect(c->fd, sa, len) < 0) {
                if (errno != EINPROGRESS)
                        return -errno;
                int r = conn_wait(c, POLLOUT, err);
                if (r < 0)
                        return r;
                int so = 0;
                socklen_t sl = sizeof(so);
                if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &so, &sl) < 0)
                        return -errno;
                if (so != 0)
                        return -so;
        }
        return 0;
}

static int split_http_endpoint(const char *ep, char **ret_host, char **ret_port)
{
        const char *hp = ep + (gv_startswith(ep, "https://") ? strlen("https://")
                                                             : strlen("http://"));
        const char *colon;
        _cleanup_free_ char *host = NULL;

        if (hp[0] == '[') {
                const char *close = strchr(hp, ']');
                if (!close || close[1] != ':')
                        return -EINVAL;
                host = xstrndup(hp + 1, (size_t)(close - hp - 1));
                colon = close + 1;
        } else {
                colon = strchr(hp, ':');
                if (!colon)
                        return -EINVAL;
                host = xstrndup(hp, (size_t)(colon - hp));
        }
        const char *port = colon + 1;
        size_t plen = strlen(port);
        if (plen > 0 && port[plen - 1] == '/')
                plen--;
        _cleanup_free_ char *p = xstrndup(port, plen);
        uint16_t v;
        if (!*host || gv_parse_u16(p, 10, &v) < 0 || v == 0 || !isdigit((unsigned char)p[0]))
                return -EINVAL;
        *ret_host = TAKE_PTR(host);
        *ret_port = TAKE_PTR(p);
        return 0;
}

static int conn_open(struct conn *c, const char *ep, char **ret_host, struct gv_error **err)
{
        int r;

        if (gv_startswith(ep, "unix:")) {
                const char *path = ep + strlen("unix:");
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                if (!*path || strlen(path) >= sizeof(sa.sun_path))
                        return gv_error_set(err, EINVAL, "endpoint '%s' needs a UNIX socket "
                                            "path of 1 to %zu bytes after 'unix:'.", ep,
                                            sizeof(sa.sun_path) - 1);
                strcpy(sa.sun_path, path);
                r = connect_addr(c, (struct sockaddr *)&sa, sizeof(sa), err);
                if (r == -EAGAIN)
                        return gv_error_set(err, EAGAIN, "cannot connect to '%s': the server's "
                                            "backlog is full; try again.", ep);
                if (r < 0)
                        return gv_error_wrap(err, r, "cannot connect to '%s' (is the server "
                                             "running?)", ep);
                *ret_host = xstrdup("localhost");
                return 0;
        }
        if (gv_startswith(ep, "http://") || gv_startswith(ep, "https://")) {
                _cleanup_free_ char *host = NULL, *port = NULL;
                bool tls = gv_startswith(ep, "https://");
                const char *scheme = tls ? "https" : "http";
                if (split_http_endpoint(ep, &host, &port) < 0)
                        return gv_error_set(err, EINVAL, "endpoint '%s' is not "
                                            "'%s://HOST:PORT'; write e.g. "
                                            "'%s://127.0.0.1:8470' or '%s://[::1]:8470'.",
                                            ep, scheme, scheme, scheme);
                struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                                          .ai_flags = AI_NUMERICSERV };
                struct addrinfo *ai = NULL;
                int g = getaddrinfo(host, port, &hints, &ai);
                if (g != 0)
                        return gv_error_set(err, EHOSTUNREACH, "cannot resolve '%s' of endpoint "
                                            "'%s': %s.", host, ep, gai_strerror(g));
                r = -EHOSTUNREACH;
                for (struct addrinfo *a = ai; a; a = a->ai_next) {
                        c->fd = safe_close(c->fd);
                        r = connect_addr(c, a->ai_addr, a->ai_addrlen, err);
                        if (r >= 0 || r == -ETIMEDOUT)
                                break;
                }
                freeaddrinfo(ai);
                if (r == -ETIMEDOUT)
                        return r;
                if (r < 0)
                        return gv_error_wrap(err, r, "cannot connect to '%s' (is the server "
                                             "running?)", ep);
                if (tls) {
                        gnutls_certificate_credentials_t cred = NULL;
                        r = gv_tls_client_credentials(c->ca_file, &cred, err);
                        if (r >= 0)
                                r = gv_tls_client_session(c->fd, host, cred, &c->tls, err);
                        if (r >= 0)
                                r = gv_tls_handshake(c->tls, c->fd, ep, c->ca_file,
                                                     c->deadline_ms, err);
                        if (r < 0)
                                return r;
                }
                /* Host header: brackets back around IPv6 literals. */
                *ret_host = strchr(host, ':') ? xasprintf("[%s]:%s", host, port)
                                              : xasprintf("%s:%s", host, port);
                return 0;
        }
        return gv_error_set(err, EINVAL, "endpoint '%s' is neither 'unix:/PATH', "
                            "'http://HOST:PORT' nor 'https://HOST:PORT'.", ep);
}

static void conn_close(struct conn *c)
{
        if (c->tls) {
                /* A close_notify when it goes out at once; a server that answered with
                 * Connection: close needs no more. */
                (void)gnutls_bye(c->tls, GNUTLS_SHUT_WR);
                gnutls_deinit(c->tls);
                c->tls = NULL;
        }
        c->fd = safe_close(c->fd);
}

int gv_http_client_connect(const char *endpoint, int timeout_ms, int *ret_fd, char **ret_host,
                           struct gv_error **err)
{
        _cleanup_free_ char *ca = ca_file_for(NULL);
        struct conn c = { .fd = -1, .endpoint = endpoint, .timeout_ms = timeout_ms,
                          .ca_file = ca,
                          .deadline_ms = timeout_ms > 0 ? now_ms() + timeout_ms : 0 };
        char *host = NULL;
        int r = conn_open(&c, endpoint, &host, err);
        if (r == -ETIMEDOUT)
                r = gv_error_set(err, ETIMEDOUT, "cannot connect to '%s' within %d ms.", endpoint,
                                 timeout_ms);
        if (r < 0) {
                free(host);
                conn_close(&c);
                return r;
        }
        if (c.tls) {
                /* The caller gets a plain socket; a relay thread keeps the session. */
                int fd = -1;
                gnutls_session_t s = c.tls;
                c.tls = NULL;
                r = gv_tls_relay(s, c.fd, &fd, err);
                c.fd = -1;
                if (r < 0) {
                        free(host);
                        return r;
                }
                c.fd = fd;
        }
        *ret_fd = c.fd;
        if (ret_host)
                *ret_host = host;
        else
                free(host);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Writing                                                                                     */

/* Write all of data. A server may answer and close before reading everything (413): -EPIPE and
 * -ECONNRESET come back as such so the caller can still read the answer. */
static int conn_write(struct conn *c, const char *data, size_t len, struct gv_error **err)
{
        while (len > 0) {
                if (c->tls) {
                        ssize_t n = gnutls_record_send(c->tls, data, len);
                        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                                int r = conn_wait(c, POLLOUT, err);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (n < 0)
                                return errno == EPIPE || errno == ECONNRESET ? -errno
                                                                              : -ECONNRESET;
                        data += n;
                        len -= (size_t)n;
                        continue;
                }
                ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN) {
                                int r = conn_wait(c, POLLOUT, err);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        return -errno;
                }
                data += n;
                len -= (size_t)n;
        }
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Reading                                                                                     */

/* Read more into the buffer (compacting it first). 0 at EOF, > 0 bytes read. -ENOBUFS when the
 * buffer is full of unread bytes. */
static int conn_fill(struct conn *c, struct gv_error **err)
{
        if (c->start > 0) {
                memmove(c->buf, c->buf + c->start, c->end - c->start);
                c->end -= c->start;
                c->start = 0;
        }
        if (c->end == sizeof(c->buf))
                return -ENOBUFS;
        if (c->eof)
                return 0;
        for (;;) {
                if (c->tls) {
                        ssize_t n = gnutls_record_recv(c->tls, c->buf + c->end,
                                                       sizeof(c->buf) - c->end);
                        if (n > 0) {
                                c->end += (size_t)n;
                                return (int)n;
                        }
                        /* A close without close_notify ends the stream too: every reply is
                         * framed (Content-Length or chunks), so a cut one is still caught. */
                        if (n == 0 || n == GNUTLS_E_PREMATURE_TERMINATION) {
                                c->eof = true;
                                return 0;
                        }
                        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
                                int r = conn_wait(c, POLLIN, err);
                                if (r < 0)
                                        return r;
                                continue;
                        }
                        if (!gnutls_error_is_fatal((int)n))
                                continue;
                        return gv_error_set(err, EPROTO, "cannot read the reply from '%s': %s.",
                                            c->endpoint, gnutls_strerror((int)n));
                }
                ssize_t n = recv(c->fd, c->buf + c->end, sizeof(c->buf) - c->end, 0);
                if (n > 0) {
                        c->end += (size_t)n;
                        return (int)n;
                }
                if (n == 0) {
                        c->eof = true;
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN)
                        return gv_error_set(err, errno, "cannot read the reply from '%s': %s.",
                                            c->endpoint, strerror(errno));
                int r = conn_wait(c, POLLIN, err);
                if (r < 0)
                        return r;
        }
}

static int bad_reply(struct conn *c, const char *what, struct gv_error **err)
{
        return gv_error_set(err, EBADMSG, "malformed reply from '%s': %s.", c->endpoint, what);
}

static bool is_tchar(char ch)
{
        return isalnum((unsigned char)ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int gv_http_client_parse_head(const char *buf, size_t len, int *ret_status, char ***ret_headers,
                              struct gv_error **err)
{
        _cleanup_strv_free_ char **headers = NULL;
        const char *p = buf, *end = buf + len;

        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol)
                return gv_error_set(err, EBADMSG, "the status line does not end in CRLF");
        size_t n = (size_t)(eol - p);
        if (n < 12 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
            p[8] != ' ' || !isdigit((unsigned char)p[9]) || !isdigit((unsigned char)p[10]) ||
            !isdigit((unsigned char)p[11]) || p[9] == '0' || (n > 12 && p[12] != ' '))
                return gv_error_set(err, EBADMSG,
                                    "the status line is not 'HTTP/1.x NNN reason' (%.*s)",
                                    (int)MIN(n, 40u), p);
        for (size_t i = 12; i < n; i++)
                if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
                        return gv_error_set(err, EBADMSG, "the status line holds a control "
                                            "character");
        int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
        p = eol + 2;

        for (;;) {
                eol = memmem(p, (size_t)(end - p), "\r\n", 2);
                if (!eol)
                        return gv_error_set(err, EBADMSG, "a header line does not end in CRLF");
                if (eol == p)
                        break; /* the empty line: end of the head */
                if (*p == ' ' || *p == '\t')
                        return gv_error_set(err, EBADMSG, "a header line is folded (starts with "
                                            "white space), which HTTP/1.1 no longer allows");
                const char *colon = memchr(p, ':', (size_t)(eol - p));
                if (!colon || colon == p)
                        return gv_error_set(err, EBADMSG, "a header line has no 'name:'");
                for (const char *q = p; q < colon; q++)
                        if (!is_tchar(*q))
                                return gv_error_set(err, EBADMSG, "a header name holds a "
                                                    "character that is not allowed");
                const char *v = colon + 1, *ve = eol;
                while (v < ve && (*v == ' ' || *v == '\t'))
                        v++;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
                        ve--;
                for (const char *q = v; q < ve; q++)
                        if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
                                return gv_error_set(err, EBADMSG, "a header value holds a "
                                                    "control character");
                char *line = xasprintf("%.*s: %.*s", (int)(colon - p), p, (int)(ve - v), v);
                for (char *q = line; *q != ':'; q++)
                        *q = (char)tolower((unsigned char)*q);
                strv_consume(&headers, line);
                p = eol + 2;
        }
        if (ret_status)
                *ret_status = status;
        if (ret_headers)
                *ret_headers = TAKE_PTR(headers);
        return 0;
}

static const char *header_in(char *const *headers, const char *name)
{
        size_t n = strlen(name);
        STRV_FOREACH(h, headers)
                if (strncasecmp(*h, name, n) == 0 && (*h)[n] == ':')
                        return *h + n + 2;
        return NULL;
}

const char *gv_http_client_reply_header(const struct gv_http_client_reply *r, const char *name)
{
        return r ? header_in(r->headers, name) : NULL;
}

void gv_http_client_reply_done(struct gv_http_client_reply *r)
{
        if (!r)
                return;
        strv_free(r->headers);
        free(r->body);
        *r = (struct gv_http_client_reply){};
}

/* Read the head into the buffer and parse it; 1xx heads are skipped. */
static int read_head(struct conn *c, int *ret_status, char ***ret_headers, struct gv_error **err)
{
        size_t scanned = 0;
        for (;;) {
                const char *hs = c->buf + c->start;
                size_t have = c->end - c->start;
                const char *term = have >= 4 ? memmem(hs + (scanned > 3 ? scanned - 3 : 0),
                                                      have - (scanned > 3 ? scanned - 3 : 0),
                                                      "\r\n\r\n", 4)
                                             : NULL;
                if (term) {
                        size_t hlen = (size_t)(term - hs) + 4;
                        int status;
                        char **headers = NULL;
                        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                        int r = gv_http_client_parse_head(hs, hlen, &status, &headers, &e);
                        if (r < 0)
                                return bad_reply(c, e->msg, err);
                        c->start += hlen;
                        scanned = 0;
                        if (status >= 100 && status < 200) {
                                strv_free(headers);
                                continue;
                        }
                        *ret_status = status;
                        *ret_headers = headers;
                        return 0;
                }
                scanned = have;
                int r = conn_fill(c, err);
                if (r == -ENOBUFS)
                        return gv_error_set(err, EMSGSIZE, "the reply headers from '%s' exceed "
                                            "%u bytes.", c->endpoint, GV_HTTP_CLIENT_MAX_HEADER);
                if (r < 0)
                        return r;
                if (r == 0) {
                        if (c->end == c->start)
                                return gv_error_set(err, ECONNRESET,
                                                    "'%s' closed the connection without a "
                                                    "reply.", c->endpoint);
                        return bad_reply(c, "the connection closed inside the headers", err);
                }
        }
}

struct sink {
        const struct gv_http_client_req *rq;
        size_t max;
        char *buf;
        size_t len, cap;
};

static int sink_put(struct conn *c, struct sink *s, const char *data, size_t n,
                    struct gv_error **err)
{
        if (n == 0)
                return 0;
        if (s->rq->on_data) {
                int r = s->rq->on_data(s->rq->userdata, data, n);
                if (r < 0)
                        return gv_error_set(err, -r, "reading the reply from '%s' stopped: %s.",
                                            c->endpoint, strerror(-r));
                return 0;
        }
        if (n > s->max - s->len)
                return gv_error_set(err, EMSGSIZE, "the reply body from '%s' exceeds %zu bytes.",
                                    c->endpoint, s->max);
        if (s->len + n + 1 > s->cap) {
                s->cap = MAX(s->cap * 2, s->len + n + 1);
                s->buf = xreallocarray(s->buf, s->cap, 1);
        }
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        s->buf[s->len] = '\0';
        return 0;
}

/* Pass exactly n body bytes (or, with n == UINT64_MAX, everything up to EOF) to the sink. */
static int read_counted(struct conn *c, struct sink *s, uint64_t n, struct gv_error **err)
{
        bool to_eof = n == UINT64_MAX;
        while (n > 0) {
                size_t have = c->end - c->start;
                if (have == 0) {
                        int r = conn_fill(c, err);
                        if (r < 0)
                                return r;
                        if (r == 0) {
                                if (to_eof)
                                        return 0;
                                return bad_reply(c, "the connection closed before the end of "
                                                 "the body", err);
                        }
                        continue;
                }
                size_t take = to_eof ? have : (size_t)MIN((uint64_t)have, n);
                int r = sink_put(c, s, c->buf + c->start, take, err);
                if (r < 0)
                        return r;
                c->start += take;
                if (!to_eof)
                        n -= take;
        }
        return 0;
}

/* One CRLF-terminated line of at most CHUNK_LINE_MAX bytes; *ret points into the buffer and
 * is valid until the next read. */
static int read_line(struct conn *c, const char **ret, size_t *ret_len, struct gv_error **err)
{
        for (;;) {
                const char *ls = c->buf + c->start;
                size_t have = c->end - c->start;
                const char *eol = memmem(ls, have, "\r\n", 2);
                if (eol) {
                        if ((size_t)(eol - ls) > CHUNK_LINE_MAX)
                                break;
                        *ret = ls;
                        *ret_len = (size_t)(eol - ls);
                        c->start += *ret_len + 2;
                        return 0;
                }
                if (have > CHUNK_LINE_MAX)
                        break;
                int r = conn_fill(c, err);
                if (r < 0)
                        return r;
                if (r == 0)
                        return bad_reply(c, "the connection closed inside the chunked body",
                                         err);
        }
        return bad_reply(c, "a chunk-size or trailer line is too long", err);
}

static int read_chunked(struct conn *c, struct sink *s, struct gv_error **err)
{
        for (;;) {
                const char *line;
                size_t len;
                int r = read_line(c, &line, &len, err);
                if (r < 0)
                        return r;
                size_t digits = 0;
                uint64_t size = 0;
                while (digits < len && isxdigit((unsigned char)line[digits])) {
                        if (digits == 15)
                                return bad_reply(c, "a chunk size is too large", err);
                        char ch = (char)tolower((unsigned char)line[digits]);
                        size = size * 16 + (uint64_t)(isdigit((unsigned char)ch) ? ch - '0'
                                                                                  : ch - 'a' + 10);
                        digits++;
                }
                if (digits == 0 || (digits < len && line[digits] != ';' && line[digits] != ' ' &&
                                    line[digits] != '\t'))
                        return bad_reply(c, "a chunk-size line is not hexadecimal", err);
                if (size == 0)
                        break;
                r = read_counted(c, s, size, err);
                if (r < 0)
                        return r;
                r = read_line(c, &line, &len, err);
                if (r < 0)
                        return r;
                if (len != 0)
                        return bad_reply(c, "chunk data is not followed by CRLF", err);
        }
        /* Trailer fields, up to the empty line; ignored. */
        for (unsigned i = 0;; i++) {
                const char *line;
                size_t len;
                if (i > 64)
                        return bad_reply(c, "too many trailer lines", err);
                int r = read_line(c, &line, &len, err);
                if (r < 0)
                        return r;
                if (len == 0)
                        return 0;
        }
}

static int read_body(struct conn *c, const struct gv_http_client_req *rq, int status,
                     char **headers, struct sink *s, struct gv_error **err)
{
        if (strcmp(rq->method, "HEAD") == 0 || status == 204 || status == 304)
                return 0;

        const char *te = header_in(headers, "transfer-encoding");
        const char *cl = NULL;
        size_t n_cl = 0;
        STRV_FOREACH(h, headers)
                if (gv_startswith(*h, "content-length: ")) {
                        const char *v = *h + strlen("content-length: ");
                        if (cl && strcmp(cl, v) != 0)
                                return bad_reply(c, "it has two different Content-Length "
                                                 "headers", err);
                        cl = v;
                        n_cl++;
                }
        if (te && cl)
                return bad_reply(c, "it has both Transfer-Encoding and Content-Length", err);
        if (te) {
                if (strcasecmp(te, "chunked") != 0)
                        return bad_reply(c, "its Transfer-Encoding is not 'chunked'", err);
                return read_chunked(c, s, err);
        }
        if (cl) {
                uint64_t n;
                if (gv_parse_u64(cl, 10, &n) < 0 || !isdigit((unsigned char)cl[0]))
                        return bad_reply(c, "its Content-Length is not a number", err);
                if (!rq->on_data && n > s->max)
                        return gv_error_set(err, EMSGSIZE, "the reply body from '%s' is %" PRIu64
                                            " bytes, more than the limit of %zu.", c->endpoint, n,
                                            s->max);
                return read_counted(c, s, n, err);
        }
        return read_counted(c, s, UINT64_MAX, err);
}

static bool header_line_is_valid(const char *h)
{
        const char *colon = strchr(h, ':');
        if (!colon || colon == h)
                return false;
        for (const char *p = h; p < colon; p++)
                if (!is_tchar(*p))
                        return false;
        for (const char *p = colon + 1; *p; p++)
                if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f)
                        return false;
        return true;
}

static bool token_is_valid(const char *s)
{
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (!is_tchar(*s))
                        return false;
        return true;
}

static bool target_is_valid(const char *s)
{
        if (!s || s[0] != '/')
                return false;
        for (; *s; s++)
                if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

/* Connect, send, read: the whole exchange on c; *ret written only on success. */
static int exchange(struct conn *c, const struct gv_http_client_req *rq,
                    struct gv_http_client_reply *ret, struct gv_error **err)
{
        _cleanup_free_ char *host = NULL, *head = NULL, *extra = NULL, *body_hdr = NULL;
        _cleanup_free_ char *body = NULL;
        _cleanup_strv_free_ char **headers = NULL;
        int status = 0;

        int r = conn_open(c, rq->endpoint, &host, err);
        if (r == -ETIMEDOUT)
                return gv_error_set(err, ETIMEDOUT, "cannot connect to '%s' within %d ms.",
                                    rq->endpoint, rq->timeout_ms);
        if (r < 0)
                return r;

        extra = strv_join((char *const *)rq->headers, "\r\n");
        body_hdr = rq->body ? xasprintf("Content-Type: %s\r\nContent-Length: %zu\r\n",
                                        rq->content_type ? rq->content_type : "application/json",
                                        rq->body_len)
                            : xstrdup("");
        head = xasprintf("%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gpuvirt/%s\r\n"
                         "Accept: application/json, application/problem+json, */*\r\n"
                         "Connection: close\r\n%s%s%s\r\n",
                         rq->method, rq->path, host, GPUVIRT_VERSION, body_hdr, extra,
                         *extra ? "\r\n" : "");
        r = conn_write(c, head, strlen(head), err);
        if (r >= 0 && rq->body && !rq->on_sent)
                r = conn_write(c, rq->body, rq->body_len, err);
        if (r >= 0 && rq->body && rq->on_sent) {
                const char *p = rq->body;
                size_t left = rq->body_len;
                rq->on_sent(rq->progress_userdata, 0, rq->body_len);
                while (r >= 0 && left) {
                        size_t n = MIN(left, (size_t)1 << 20);
                        r = conn_write(c, p, n, err);
                        p += n;
                        left -= n;
                        if (r >= 0)
                                rq->on_sent(rq->progress_userdata, rq->body_len - left,
                                            rq->body_len);
                }
        }
        if (r < 0 && r != -EPIPE && r != -ECONNRESET)
                return gv_error_wrap(err, r, "cannot send the request to '%s'", rq->endpoint);
        /* On EPIPE/ECONNRESET the server may have answered early (413): read what it said. */

        r = read_head(c, &status, &headers, err);
        if (r < 0)
                return r;
        struct sink s = { .rq = rq, .max = rq->max_body ? rq->max_body
                                                        : GV_HTTP_CLIENT_MAX_BODY_DEFAULT };
        r = read_body(c, rq, status, headers, &s, err);
        body = s.buf;
        if (r < 0)
                return r;

        ret->status = status;
        ret->headers = TAKE_PTR(headers);
        ret->body = rq->on_data ? NULL : (body ? TAKE_PTR(body) : xstrdup(""));
        ret->body_len = s.len;
        return 0;
}

int gv_http_client_send(const struct gv_http_client_req *rq, struct gv_http_client_reply *ret,
                        struct gv_error **err)
{
        if (!rq || !rq->endpoint || !token_is_valid(rq->method))
                return gv_error_set(err, EINVAL, "an HTTP request needs an endpoint and a method "
                                    "such as 'GET'.");
        if (!target_is_valid(rq->path))
                return gv_error_set(err, EINVAL, "request path '%s' must start with '/' and hold "
                                    "only printable ASCII without spaces (percent-encode the "
                                    "rest).", rq->path ? rq->path : "");
        STRV_FOREACH(h, (char *const *)rq->headers)
                if (!header_line_is_valid(*h))
                        return gv_error_set(err, EINVAL, "extra header '%s' is not 'Name: "
                                            "value' without control characters.", *h);
        if (rq->content_type && (strchr(rq->content_type, '\r') || strchr(rq->content_type, '\n')))
                return gv_error_set(err, EINVAL, "content type '%s' holds a line break.",
                                    rq->content_type);

        _cleanup_free_ char *ca = ca_file_for(rq->ca_file);
        struct conn *c = xnew0(struct conn, 1);
        c->fd = -1;
        c->endpoint = rq->endpoint;
        c->ca_file = ca;
        c->timeout_ms = rq->timeout_ms;
        c->deadline_ms = rq->timeout_ms > 0 ? now_ms() + rq->timeout_ms : 0;
        int r = exchange(c, rq, ret, err);
        conn_close(c);
        free(c);
        return r;
}

int gv_http_client_request(const char *endpoint, const char *method, const char *path,
                           const json_t *body, int timeout_ms, int *ret_status, json_t **ret_body,
                           struct gv_error **err)
{
        _cleanup_free_ char *payload = NULL;
        if (body) {
                payload = json_dumps(body, JSON_COMPACT);
                if (!payload)
                        return gv_error_set(err, EINVAL, "the request body cannot be "
                                            "serialised as JSON.");
        }
        struct gv_http_client_req rq = {
                .endpoint = endpoint, .method = method, .path = path, .body = payload,
                .body_len = payload ? strlen(payload) : 0, .timeout_ms = timeout_ms,
        };
        struct gv_http_client_reply rep = {};
        int r = gv_http_client_send(&rq, &rep, err);
        if (r < 0)
                return r;

        json_t *j = NULL;
        if (ret_body && rep.body_len > 0) {
                json_error_t je;
                j = json_loadb(rep.body, rep.body_len, JSON_REJECT_DUPLICATES, &je);
                if (!j) {
                        r = gv_error_set(err, EBADMSG, "the reply from '%s' (status %d) is not "
                                         "JSON: line %d, column %d: %s.", endpoint, rep.status,
                                         je.line, je.column, je.text);
                        gv_http_client_reply_done(&rep);
                        return r;
                }
        }
        if (ret_status)
                *ret_status = rep.status;
        if (ret_body)
                *ret_body = j;
        gv_http_client_reply_done(&rep);
        return 0;
}
