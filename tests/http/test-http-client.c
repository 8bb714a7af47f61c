/* SPDX-License-Identifier: MIT */
/*
 * The HTTP client against scripted raw servers: a thread accepts one connection on a UNIX socket
 * (or TCP), records the request, writes canned bytes (valid, chunked, or garbage) and closes.
 */
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/client.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"
#include "util/strv.h"

struct fake {
        char dir[64];
        char *path;
        char *ep;
        int lfd;
        pthread_t thread;
        bool running;
        /* script */
        const char *reply;
        size_t reply_len;
        bool hang; /* read the request, then wait for the client to go away */
        bool tcp;
        uint16_t port;
        /* record */
        char request[65536];
        size_t request_len;
};

static void *fake_main(void *arg)
{
        struct fake *f = arg;
        int fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return NULL;
        struct timeval tv = { .tv_sec = 5 };
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        /* Read the head, then as many body bytes as Content-Length says. */
        size_t want = SIZE_MAX;
        while (f->request_len < sizeof(f->request) - 1 && f->request_len < want) {
                ssize_t n = recv(fd, f->request + f->request_len,
                                 sizeof(f->request) - 1 - f->request_len, 0);
                if (n <= 0)
                        break;
                f->request_len += (size_t)n;
                f->request[f->request_len] = '\0';
                char *end = strstr(f->request, "\r\n\r\n");
                if (end && want == SIZE_MAX) {
                        uint64_t cl = 0;
                        char *h = strstr(f->request, "Content-Length: ");
                        if (h && h < end) {
                                char *eol = strstr(h, "\r\n");
                                char *v = xstrndup(h + 16, (size_t)(eol - h - 16));
                                (void)gv_parse_u64(v, 10, &cl);
                                free(v);
                        }
                        want = (size_t)(end - f->request) + 4 + (size_t)cl;
                }
        }
        if (f->hang) {
                char b;
                while (recv(fd, &b, 1, 0) > 0)
                        ;
        } else if (f->reply) {
                (void)send(fd, f->reply, f->reply_len, MSG_NOSIGNAL);
        }
        close(fd);
        return NULL;
}

static void fake_start(struct fake *f, const char *reply, size_t len)
{
        f->reply = reply;
        f->reply_len = len;
        f->request_len = 0;
        f->request[0] = '\0';
        assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
        f->running = true;
}

static void fake_join(struct fake *f)
{
        if (f->running)
                pthread_join(f->thread, NULL);
        f->running = false;
}

static int setup(void **state)
{
        struct fake *f = xnew0(struct fake, 1);
        strcpy(f->dir, "/tmp/gv-httpc-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->path = xasprintf("%s/s", f->dir);
        f->ep = xasprintf("unix:%s", f->path);
        f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, f->path);
        assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(f->lfd, 4), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fake *f = *state;
        fake_join(f);
        close(f->lfd);
        assert_int_equal(gv_rm_rf(f->dir), 0);
        free(f->path);
        free(f->ep);
        free(f);
        return 0;
}

/* Run one exchange against the script; returns the client's result. */
static int exchange(struct fake *f, const char *reply, int *ret_status, json_t **ret_body,
                    char **ret_msg)
{
        fake_start(f, reply, reply ? strlen(reply) : 0);
        struct gv_error *e = NULL;
        int r = gv_http_client_request(f->ep, "GET", "/v1/x", NULL, 5000, ret_status, ret_body,
                                       &e);
        fake_join(f);
        if (r < 0) {
                assert_non_null(e);
                if (ret_msg)
                        *ret_msg = xstrdup(e->msg);
        } else {
                assert_null(e);
        }
        gv_error_free(e);
        return r;
}

static void test_valid_replies(void **state)
{
        struct fake *f = *state;
        int status = 0;
        json_t *j = NULL;

        /* Content-Length. */
        assert_int_equal(exchange(f, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: 9\r\n\r\n{\"a\": 1}\n", &status, &j, NULL),
                         0);
        assert_int_equal(status, 200);
        assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
        json_decref(j);
        /* The request as sent. */
        assert_true(gv_startswith(f->request, "GET /v1/x HTTP/1.1\r\n"));
        assert_non_null(strstr(f->request, "\r\nHost: localhost\r\n"));
        assert_non_null(strstr(f->request, "\r\nConnection: close\r\n"));
        assert_null(strstr(f->request, "Content-Length"));

        /* Chunked, with an extension, a trailer and bytes after the end (ignored). */
        j = NULL;
        assert_int_equal(exchange(f, "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n"
                                     "4;ext=1\r\n{\"b\"\r\n"
                                     "A\r\n: [1, 2]}\n\r\n"
                                     "0\r\nX-Trailer: t\r\n\r\n", &status, &j, NULL), 0);
        assert_int_equal(status, 201);
        assert_int_equal(json_array_size(json_object_get(j, "b")), 2);
        json_decref(j);

        /* No length: up to the close; HTTP/1.0 is fine. */
        j = NULL;
        assert_int_equal(exchange(f, "HTTP/1.0 200 OK\r\n\r\n[true]", &status, &j, NULL), 0);
        assert_true(json_is_array(j));
        json_decref(j);

        /* A problem reply is not an error: status and body come back. */
        j = NULL;
        assert_int_equal(exchange(f, "HTTP/1.1 404 Not Found\r\nContent-Length: 44\r\n"
                                     "Content-Type: application/problem+json\r\n\r\n"
                                     "{\"status\": 404, \"title\": \"Not Found\", \"x\":1}",
                                  &status, &j, NULL), 0);
        assert_int_equal(status, 404);
        assert_int_equal(json_integer_value(json_object_get(j, "status")), 404);
        json_decref(j);

        /* 204 and an empty body: no JSON, no error. */
        j = (json_t *)0x1;
        assert_int_equal(exchange(f, "HTTP/1.1 204 No Content\r\n\r\n", &status, &j, NULL), 0);
        assert_int_equal(status, 204);
        assert_null(j);

        /* A 100 Continue head first is skipped. */
        j = NULL;
        assert_int_equal(exchange(f, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"
                                     "Content-Length: 2\r\n\r\n{}", &status, &j, NULL), 0);
        assert_int_equal(status, 200);
        assert_true(json_is_object(j));
        json_decref(j);

        /* Not JSON: an error, unless the caller does not want the body. */
        char *msg = NULL;
        j = NULL;
        assert_int_equal(exchange(f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                  &status, &j, &msg), -EBADMSG);
        assert_non_null(strstr(msg, "is not JSON"));
        assert_null(j);
        free(msg);
        status = 0;
        assert_int_equal(exchange(f, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                                  &status, NULL, NULL), 0);
        assert_int_equal(status, 200);
}

static void test_request_with_body(void **state)
{
        struct fake *f = *state;
        const char *reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        fake_start(f, reply, strlen(reply));
        json_t *body = json_pack("{s:s}", "name", "web1");
        int status = 0;
        assert_int_equal(gv_http_client_request(f->ep, "POST", "/v1/vms?x=1", body, 5000, &status,
                                                NULL, NULL), 0);
        fake_join(f);
        json_decref(body);
        assert_true(gv_startswith(f->request, "POST /v1/vms?x=1 HTTP/1.1\r\n"));
        assert_non_null(strstr(f->request, "\r\nContent-Type: application/json\r\n"));
        assert_non_null(strstr(f->request, "\r\nContent-Length: 15\r\n"));
        assert_non_null(strstr(f->request, "\r\n\r\n{\"name\":\"web1\"}"));

        /* Refused before anything is sent. */
        struct gv_error *e = NULL;
        assert_int_equal(gv_http_client_request(f->ep, "GET", "/a b", NULL, 100, NULL, NULL, &e),
                         -EINVAL);
        assert_non_null(strstr(e->msg, "request path '/a b'"));
        gv_error_free(e);
        e = NULL;
        assert_int_equal(gv_http_client_request(f->ep, "GET", "v1", NULL, 100, NULL, NULL, &e),
                         -EINVAL);
        gv_error_free(e);
        e = NULL;
        assert_int_equal(gv_http_client_request(f->ep, "GE T", "/v1", NULL, 100, NULL, NULL, &e),
                         -EINVAL);
        gv_error_free(e);
        const char *const hdrs[] = { "X-Evil: a\r\nX-Injected: b", NULL };
        struct gv_http_client_req rq = { .endpoint = f->ep, .method = "GET", .path = "/",
                                         .headers = hdrs };
        struct gv_http_client_reply rep = {};
        e = NULL;
        assert_int_equal(gv_http_client_send(&rq, &rep, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "extra header"));
        gv_error_free(e);
}

static void test_garbage(void **state)
{
        struct fake *f = *state;
        static const struct {
                const char *reply;
                const char *msg_part;
        } cases[] = {
                { "garbage\r\n\r\n", "status line" },
                { "HTTP/2 200 OK\r\n\r\n", "status line" },
                { "HTTP/1.1 20 OK\r\n\r\n", "status line" },
                { "HTTP/1.1 2000 OK\r\n\r\n", "status line" },
                { "HTTP/1.1 099 OK\r\n\r\n", "status line" },
                { "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "malformed reply" },
                { "HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "no 'name:'" },
                { "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", "folded" },
                { "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n", "control character" },
                { "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n{}", "before the end" },
                { "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n{}", "not a number" },
                { "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\n{}", "not a number" },
                { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
                  "two different" },
                { "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}",
                  "both" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n{}", "not 'chunked'" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "hexadecimal" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
                  "not followed by CRLF" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n",
                  "closed inside the chunked body" },
                { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "fffffffffffffffff\r\n", "too large" },
                { "HTTP/1.1 200 OK\r\nContent-", "inside the headers" },
                { "", "without a reply" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *msg = NULL;
                int status = -1;
                int r = exchange(f, cases[i].reply, &status, NULL, &msg);
                if (r >= 0)
                        fail_msg("case %zu accepted: '%s'", i, cases[i].reply);
                if (!strstr(msg, cases[i].msg_part))
                        fail_msg("case %zu: '%s' lacks '%s'", i, msg, cases[i].msg_part);
                assert_int_equal(status, -1); /* not written on failure */
                free(msg);
        }
}

static void test_limits(void **state)
{
        struct fake *f = *state;

        /* Headers over 16 KiB. */
        size_t n = GV_HTTP_CLIENT_MAX_HEADER + 100;
        char *big = xmalloc(n + 64);
        int k = snprintf(big, 64, "HTTP/1.1 200 OK\r\nX-Big: ");
        memset(big + k, 'a', n);
        strcpy(big + k + n, "\r\n\r\n");
        char *msg = NULL;
        assert_int_equal(exchange(f, big, NULL, NULL, &msg), -EMSGSIZE);
        assert_non_null(strstr(msg, "exceed 16384 bytes"));
        free(msg);
        free(big);

        /* A body over the caller's limit: by Content-Length, by chunks, and until close. */
        static const char *const replies[] = {
                "HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n\"123456789\"",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n\"12345\r\n"
                "5\r\n6789\"\r\n0\r\n\r\n",
                "HTTP/1.1 200 OK\r\n\r\n\"123456789\"",
        };
        for (size_t i = 0; i < ELEMENTSOF(replies); i++) {
                fake_start(f, replies[i], strlen(replies[i]));
                struct gv_http_client_req rq = { .endpoint = f->ep, .method = "GET",
                                                 .path = "/", .max_body = 10,
                                                 .timeout_ms = 5000 };
                struct gv_http_client_reply rep = {};
                struct gv_error *e = NULL;
                int r = gv_http_client_send(&rq, &rep, &e);
                fake_join(f);
                if (r != -EMSGSIZE)
                        fail_msg("reply %zu: %d", i, r);
                assert_non_null(strstr(e->msg, "10"));
                gv_error_free(e);
                assert_null(rep.body);
        }
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_timeout_and_connect(void **state)
{
        struct fake *f = *state;

        /* The server reads the request and never answers. */
        f->hang = true;
        fake_start(f, NULL, 0);
        struct gv_error *e = NULL;
        int64_t t0 = mono_ms();
        assert_int_equal(gv_http_client_request(f->ep, "GET", "/v1/x", NULL, 300, NULL, NULL, &e),
                         -ETIMEDOUT);
        int64_t took = mono_ms() - t0;
        fake_join(f); /* our close ends the fake's wait */
        f->hang = false;
        assert_true(took >= 290 && took < 3000);
        assert_non_null(strstr(e->msg, "did not answer within 300 ms"));
        gv_error_free(e);

        /* Nobody listening. */
        _cleanup_free_ char *gone = xasprintf("unix:%s/nothing", f->dir);
        e = NULL;
        assert_int_equal(gv_http_client_request(gone, "GET", "/", NULL, 1000, NULL, NULL, &e),
                         -ENOENT);
        assert_non_null(strstr(e->msg, "is the server running?"));
        gv_error_free(e);

        /* Bad endpoints. */
        static const char *const bad[] = {
                "ftp://x:1", "http://host", "http://h:0", "http://:80", "unix:", "http://h:80x",
                "http://[::1]80", "/run/x.sock",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = NULL;
                if (gv_http_client_request(bad[i], "GET", "/", NULL, 100, NULL, NULL, &e) !=
                    -EINVAL)
                        fail_msg("endpoint '%s' accepted", bad[i]);
                assert_non_null(strstr(e->msg, bad[i]));
                gv_error_free(e);
        }
}

static void test_tcp(void **state)
{
        (void)state;
        struct fake f = { .tcp = true };
        f.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
        assert_int_equal(bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(f.lfd, 4), 0);
        socklen_t len = sizeof(sa);
        assert_int_equal(getsockname(f.lfd, (struct sockaddr *)&sa, &len), 0);
        _cleanup_free_ char *ep = xasprintf("http://127.0.0.1:%u", ntohs(sa.sin_port));

        const char *reply = "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"t\":1}";
        fake_start(&f, reply, strlen(reply));
        int status = 0;
        json_t *j = NULL;
        assert_int_equal(gv_http_client_request(ep, "GET", "/v1/t", NULL, 5000, &status, &j,
                                                NULL), 0);
        fake_join(&f);
        assert_int_equal(status, 200);
        assert_int_equal(json_integer_value(json_object_get(j, "t")), 1);
        json_decref(j);
        _cleanup_free_ char *host = xasprintf("\r\nHost: 127.0.0.1:%u\r\n", ntohs(sa.sin_port));
        assert_non_null(strstr(f.request, host));
        close(f.lfd);

        /* A closed TCP port: refused, and said so. */
        struct gv_error *e = NULL;
        assert_int_equal(gv_http_client_request(ep, "GET", "/", NULL, 1000, NULL, NULL, &e),
                         -ECONNREFUSED);
        assert_non_null(strstr(e->msg, "cannot connect to"));
        gv_error_free(e);
}

static void test_parse_head(void **state)
{
        (void)state;
        char **h = NULL;
        int status = 0;
        const char *head = "HTTP/1.1 409 Conflict\r\nContent-Type:  application/json \r\n"
                           "X-Request-Id: 7\r\nEmpty:\r\n\r\n";
        assert_int_equal(gv_http_client_parse_head(head, strlen(head), &status, &h, NULL), 0);
        assert_int_equal(status, 409);
        assert_int_equal(strv_length(h), 3);
        assert_string_equal(h[0], "content-type: application/json");
        assert_string_equal(h[1], "x-request-id: 7");
        assert_string_equal(h[2], "empty: ");
        struct gv_http_client_reply rep = { .headers = h };
        assert_string_equal(gv_http_client_reply_header(&rep, "X-REQUEST-ID"), "7");
        assert_null(gv_http_client_reply_header(&rep, "x-request"));
        gv_http_client_reply_done(&rep);

        /* A status line without a reason is fine. */
        assert_int_equal(gv_http_client_parse_head("HTTP/1.1 200\r\n\r\n", 16, &status, NULL,
                                                   NULL), 0);
        assert_int_equal(status, 200);
        /* No end of head within len. */
        assert_int_equal(gv_http_client_parse_head("HTTP/1.1 200 OK\r\nA: b", 21, &status, NULL,
                                                   NULL), -EBADMSG);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_valid_replies, setup, teardown),
                cmocka_unit_test_setup_teardown(test_request_with_body, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
                cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_timeout_and_connect, setup, teardown),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_parse_head),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
