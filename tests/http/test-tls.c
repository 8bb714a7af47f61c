/* SPDX-License-Identifier: MIT */
/*
 * TLS on the HTTP layer (src/http/tls.c, server.c, client.c): certificates made here with
 * GnuTLS (a CA, a server certificate for 127.0.0.1 and localhost, one for another name, an
 * expired one, a second CA); a request over TLS 1.3; plain HTTP on the TLS port failing
 * cleanly; TLS 1.2 refused; a wrong CA and a name mismatch failing with the CA file named; a
 * WebSocket through TLS (libmicrohttpd's socketpair on the server, the client's relay thread);
 * bad certificate and key files named at start; the UNIX socket staying plain; the TCP
 * authorisation hook answering 401.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/client.h"
#include "http/server.h"
#include "http/websocket.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"

#define TIMEOUT_MS 10000

struct fx {
        char dir[64];
        char *ca, *ca2;                 /* CA certificates (PEM files) */
        char *cert, *key;               /* server: 127.0.0.1 and localhost */
        char *other_cert, *other_key;   /* server: other.example only */
        char *expired_cert, *expired_key;
        char *garbage;                  /* not PEM */
        struct gv_http_server *s;
        char *ep;                       /* https://127.0.0.1:PORT */
        char *plain_ep;                 /* http://127.0.0.1:PORT (the same port) */
        char *unix_ep;
};

/* ---- certificates ---- */

static char *path_in(struct fx *f, const char *name)
{
        return xasprintf("%s/%s", f->dir, name);
}

static void write_datum(const char *path, const gnutls_datum_t *d)
{
        _cleanup_free_ char *s = xstrndup((const char *)d->data, d->size);
        assert_int_equal(gv_write_file(path, s, GV_WRITE_CREATE), 0);
}

static gnutls_x509_privkey_t new_key(void)
{
        gnutls_x509_privkey_t k;
        assert_int_equal(gnutls_x509_privkey_init(&k), 0);
        assert_int_equal(gnutls_x509_privkey_generate(
                                 k, GNUTLS_PK_ECDSA,
                                 GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP384R1), 0), 0);
        return k;
}

/* A certificate for key, signed by issuer (NULL: self-signed); dns and ip may be NULL. */
static gnutls_x509_crt_t new_cert(gnutls_x509_privkey_t key, const char *cn, bool ca,
                                  const char *dns, const char *ip, gnutls_x509_crt_t issuer,
                                  gnutls_x509_privkey_t issuer_key, time_t from, time_t until)
{
        static unsigned serial = 1;
        gnutls_x509_crt_t c;
        unsigned char sn[4] = { 0, 0, 0, (unsigned char)serial++ };

        assert_int_equal(gnutls_x509_crt_init(&c), 0);
        assert_int_equal(gnutls_x509_crt_set_version(c, 3), 0);
        assert_int_equal(gnutls_x509_crt_set_serial(c, sn, sizeof(sn)), 0);
        assert_int_equal(gnutls_x509_crt_set_activation_time(c, from), 0);
        assert_int_equal(gnutls_x509_crt_set_expiration_time(c, until), 0);
        assert_int_equal(gnutls_x509_crt_set_dn_by_oid(c, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                       strlen(cn)), 0);
        assert_int_equal(gnutls_x509_crt_set_key(c, key), 0);
        assert_int_equal(gnutls_x509_crt_set_basic_constraints(c, ca, -1), 0);
        if (ca) {
                assert_int_equal(gnutls_x509_crt_set_key_usage(
                                         c, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN), 0);
        } else {
                assert_int_equal(gnutls_x509_crt_set_key_usage(c, GNUTLS_KEY_DIGITAL_SIGNATURE),
                                 0);
                assert_int_equal(gnutls_x509_crt_set_key_purpose_oid(c, GNUTLS_KP_TLS_WWW_SERVER,
                                                                     0), 0);
        }
        if (dns)
                assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                                         c, GNUTLS_SAN_DNSNAME, dns, strlen(dns),
                                         GNUTLS_FSAN_APPEND), 0);
        if (ip) {
                struct in_addr a;
                assert_int_equal(inet_pton(AF_INET, ip, &a), 1);
                assert_int_equal(gnutls_x509_crt_set_subject_alt_name(
                                         c, GNUTLS_SAN_IPADDRESS, &a, 4, GNUTLS_FSAN_APPEND), 0);
        }
        unsigned char kid[64];
        size_t kid_len = sizeof(kid);
        assert_int_equal(gnutls_x509_crt_get_key_id(c, 0, kid, &kid_len), 0);
        assert_int_equal(gnutls_x509_crt_set_subject_key_id(c, kid, kid_len), 0);
        if (issuer) {
                kid_len = sizeof(kid);
                assert_int_equal(gnutls_x509_crt_get_subject_key_id(issuer, kid, &kid_len, NULL),
                                 0);
                assert_int_equal(gnutls_x509_crt_set_authority_key_id(c, kid, kid_len), 0);
        }
        assert_int_equal(gnutls_x509_crt_sign2(c, issuer ? issuer : c,
                                               issuer_key ? issuer_key : key, GNUTLS_DIG_SHA384,
                                               0), 0);
        return c;
}

static void save(const char *crt_path, gnutls_x509_crt_t c, const char *key_path,
                 gnutls_x509_privkey_t k)
{
        gnutls_datum_t d;
        assert_int_equal(gnutls_x509_crt_export2(c, GNUTLS_X509_FMT_PEM, &d), 0);
        write_datum(crt_path, &d);
        gnutls_free(d.data);
        if (key_path) {
                assert_int_equal(gnutls_x509_privkey_export2(k, GNUTLS_X509_FMT_PEM, &d), 0);
                write_datum(key_path, &d);
                gnutls_free(d.data);
                assert_int_equal(chmod(key_path, 0600), 0);
        }
}

static void make_certs(struct fx *f)
{
        time_t now = time(NULL), day = 24 * 3600;
        gnutls_x509_privkey_t cak = new_key(), ca2k = new_key(), sk = new_key(),
                              ok = new_key(), ek = new_key();
        gnutls_x509_crt_t ca = new_cert(cak, "gpuvirt test CA", true, NULL, NULL, NULL, NULL,
                                        now - day, now + 30 * day);
        gnutls_x509_crt_t ca2 = new_cert(ca2k, "another CA", true, NULL, NULL, NULL, NULL,
                                         now - day, now + 30 * day);
        gnutls_x509_crt_t sc = new_cert(sk, "server", false, "localhost", "127.0.0.1", ca, cak,
                                        now - day, now + 30 * day);
        gnutls_x509_crt_t oc = new_cert(ok, "other", false, "other.example", NULL, ca, cak,
                                        now - day, now + 30 * day);
        gnutls_x509_crt_t ec = new_cert(ek, "expired", false, "localhost", "127.0.0.1", ca, cak,
                                        now - 10 * day, now - day);

        f->ca = path_in(f, "ca.pem");
        f->ca2 = path_in(f, "ca2.pem");
        f->cert = path_in(f, "server.pem");
        f->key = path_in(f, "server-key.pem");
        f->other_cert = path_in(f, "other.pem");
        f->other_key = path_in(f, "other-key.pem");
        f->expired_cert = path_in(f, "expired.pem");
        f->expired_key = path_in(f, "expired-key.pem");
        f->garbage = path_in(f, "garbage.pem");
        save(f->ca, ca, NULL, NULL);
        save(f->ca2, ca2, NULL, NULL);
        save(f->cert, sc, f->key, sk);
        save(f->other_cert, oc, f->other_key, ok);
        save(f->expired_cert, ec, f->expired_key, ek);
        assert_int_equal(gv_write_file(f->garbage, "not a certificate\n", GV_WRITE_CREATE), 0);

        gnutls_x509_crt_deinit(ca);
        gnutls_x509_crt_deinit(ca2);
        gnutls_x509_crt_deinit(sc);
        gnutls_x509_crt_deinit(oc);
        gnutls_x509_crt_deinit(ec);
        gnutls_x509_privkey_deinit(cak);
        gnutls_x509_privkey_deinit(ca2k);
        gnutls_x509_privkey_deinit(sk);
        gnutls_x509_privkey_deinit(ok);
        gnutls_x509_privkey_deinit(ek);
}

/* ---- the server ---- */

static int h_hello(struct gv_http_request *req, void *u)
{
        (void)u;
        return gv_http_reply_json(req, 200, json_pack("{s:b, s:b}", "tls",
                                                      gv_http_request_is_tls(req), "local",
                                                      gv_http_request_is_local(req)));
}

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
                if (r < 0 || gv_ws_send(ws, m.opcode, m.data, m.len) < 0)
                        return;
        }
}

static int h_echo(struct gv_http_request *req, void *u)
{
        (void)u;
        return gv_ws_reply_accept(req, NULL, 256 * 1024, echo_handler, NULL, NULL);
}

static const struct gv_http_route routes[] = {
        { "GET", "/hello", h_hello },
        { "GET", "/echo", h_echo },
};

/* The TCP hook: "X-Secret: s3cret" or 401. */
static int authorize(void *u, struct gv_http_request *req)
{
        (void)u;
        const char *v = gv_http_header(req, "X-Secret");
        if (v && strcmp(v, "s3cret") == 0)
                return 0;
        (void)gv_http_reply_problem(req, 401, "unauthorized", NULL, "no secret");
        (void)gv_http_reply_header(req, "WWW-Authenticate", "Bearer");
        return 1;
}

static int start_server(struct fx *f, const char *cert, const char *key, bool with_auth,
                        struct gv_http_server **ret, struct gv_error **err)
{
        _cleanup_free_ char *sock = path_in(f, with_auth ? "auth.sock" : "api.sock");
        struct gv_http_config cfg = { .unix_path = sock, .tcp_address = "127.0.0.1:0",
                                      .timeout_s = 5, .tls_cert_file = cert,
                                      .tls_key_file = key,
                                      .tcp_authorize = with_auth ? authorize : NULL };
        return gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), f, ret, err);
}

static int setup(void **state)
{
        struct fx *f = xnew0(struct fx, 1);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        strcpy(f->dir, "/tmp/gv-tls-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        make_certs(f);
        int r = start_server(f, f->cert, f->key, false, &f->s, &e);
        if (r < 0)
                fail_msg("server: %s", gv_error_msg(e, r));
        assert_true(gv_http_server_tcp_tls(f->s));
        f->ep = xasprintf("https://127.0.0.1:%u", gv_http_server_tcp_port(f->s));
        f->plain_ep = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(f->s));
        f->unix_ep = xasprintf("unix:%s/api.sock", f->dir);
        gv_http_client_set_ca_file(NULL);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        gv_http_server_free(f->s);
        gv_http_client_set_ca_file(NULL);
        _cleanup_free_ char *rm = xasprintf("rm -rf %s", f->dir);
        (void)!system(rm);
        free(f->ca), free(f->ca2), free(f->cert), free(f->key), free(f->other_cert);
        free(f->other_key), free(f->expired_cert), free(f->expired_key), free(f->garbage);
        free(f->ep), free(f->plain_ep), free(f->unix_ep);
        free(f);
        return 0;
}

/* GET path on ep trusting ca: the status (or -errno), the error's message in *ret_msg. */
static int get(const char *ep, const char *ca, const char *path, const char *const *headers,
               json_t **ret_body, char **ret_msg)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_http_client_req rq = { .endpoint = ep, .method = "GET", .path = path,
                                         .timeout_ms = TIMEOUT_MS, .ca_file = ca,
                                         .headers = headers };
        struct gv_http_client_reply rp = { 0 };
        int r = gv_http_client_send(&rq, &rp, &e);
        if (r < 0) {
                if (ret_msg)
                        *ret_msg = xstrdup(gv_error_msg(e, r));
                return r;
        }
        if (ret_body)
                *ret_body = json_loads(rp.body, 0, NULL);
        r = rp.status;
        gv_http_client_reply_done(&rp);
        return r;
}

/* ---- tests ---- */

static void test_request_over_tls13(void **state)
{
        struct fx *f = *state;
        _cleanup_json_ json_t *j = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = get(f->ep, f->ca, "/hello", NULL, &j, &msg);
        if (r < 0)
                fail_msg("%s", msg);
        assert_int_equal(r, 200);
        assert_true(json_is_true(json_object_get(j, "tls")));
        assert_true(json_is_false(json_object_get(j, "local")));

        /* The same by name (localhost: a DNS SAN, with SNI), through the process default. */
        gv_http_client_set_ca_file(f->ca);
        _cleanup_free_ char *by_name = xasprintf("https://localhost:%u",
                                                 gv_http_server_tcp_port(f->s));
        int status = 0;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = gv_http_client_request(by_name, "GET", "/hello", NULL, TIMEOUT_MS, &status, NULL, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        assert_int_equal(status, 200);
}

/* A session of our own: which version the server agreed to, or that it refused. */
static int handshake_with(const struct fx *f, const char *priorities, int *ret_version)
{
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET,
                                  .sin_port = htons(gv_http_server_tcp_port(f->s)) };
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        struct timeval tv = { .tv_sec = 10 };
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        gnutls_certificate_credentials_t cred;
        gnutls_session_t s;
        assert_int_equal(gnutls_certificate_allocate_credentials(&cred), 0);
        assert_true(gnutls_certificate_set_x509_trust_file(cred, f->ca, GNUTLS_X509_FMT_PEM) > 0);
        assert_int_equal(gnutls_init(&s, GNUTLS_CLIENT), 0);
        assert_int_equal(gnutls_priority_set_direct(s, priorities, NULL), 0);
        assert_int_equal(gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred), 0);
        gnutls_transport_set_int(s, fd);
        int r;
        do
                r = gnutls_handshake(s);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r >= 0)
                *ret_version = gnutls_protocol_get_version(s);
        gnutls_deinit(s);
        gnutls_certificate_free_credentials(cred);
        close(fd);
        return r;
}

static void test_versions(void **state)
{
        struct fx *f = *state;
        int v = 0;
        /* A client that offers everything gets TLS 1.3. */
        assert_int_equal(handshake_with(f, "NORMAL", &v), 0);
        assert_int_equal(v, GNUTLS_TLS1_3);
        /* One that offers TLS 1.2 at most is refused in the handshake. */
        v = 0;
        int r = handshake_with(f, "NORMAL:-VERS-ALL:+VERS-TLS1.2", &v);
        assert_true(r < 0);
        assert_int_equal(v, 0);
        r = handshake_with(f, "NORMAL:-VERS-ALL:+VERS-TLS1.2:+VERS-TLS1.1:+VERS-TLS1.0", &v);
        assert_true(r < 0);
}

static void test_plain_http_to_tls_port(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *msg = NULL;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int r = get(f->plain_ep, NULL, "/hello", NULL, NULL, &msg);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        /* An error (the server drops what is not a TLS handshake), not a reply, not a hang. */
        assert_true(r < 0);
        assert_true(t1.tv_sec - t0.tv_sec < 5);
        /* ... and the server still serves TLS after it. */
        assert_int_equal(get(f->ep, f->ca, "/hello", NULL, NULL, NULL), 200);
}

static void test_wrong_ca(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *msg = NULL, *msg2 = NULL;
        int r = get(f->ep, f->ca2, "/hello", NULL, NULL, &msg);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(msg, f->ca2));
        assert_non_null(strstr(msg, "does not verify"));
        assert_non_null(strstr(msg, "--ca"));
        /* No CA at all: the system's store does not know our CA, and the message says which
         * store was used. */
        r = get(f->ep, NULL, "/hello", NULL, NULL, &msg2);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(msg2, "system's trust store"));
        /* A CA file that is not one. */
        _cleanup_free_ char *msg3 = NULL, *msg4 = NULL;
        r = get(f->ep, f->garbage, "/hello", NULL, NULL, &msg3);
        assert_true(r < 0);
        assert_non_null(strstr(msg3, f->garbage));
        _cleanup_free_ char *missing = path_in(f, "missing-ca.pem");
        r = get(f->ep, missing, "/hello", NULL, NULL, &msg4);
        assert_int_equal(r, -ENOENT);
        assert_non_null(strstr(msg4, missing));
}

static void test_name_mismatch(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_http_server_freep) struct gv_http_server *other = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *sock = path_in(f, "other.sock");
        struct gv_http_config cfg = { .unix_path = sock, .tcp_address = "127.0.0.1:0",
                                      .tls_cert_file = f->other_cert,
                                      .tls_key_file = f->other_key };
        int r = gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), f, &other, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        _cleanup_free_ char *ep = xasprintf("https://127.0.0.1:%u",
                                            gv_http_server_tcp_port(other));
        _cleanup_free_ char *msg = NULL;
        /* Signed by the right CA, but for other.example, not 127.0.0.1. */
        r = get(ep, f->ca, "/hello", NULL, NULL, &msg);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(msg, f->ca));
        assert_non_null(strstr(msg, "host"));
}

static void test_websocket_through_tls(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_http_client_reply refusal = { 0 };
        _cleanup_free_ char *extra = NULL;
        size_t n_extra = 0;
        int fd = -1;

        gv_http_client_set_ca_file(f->ca);
        struct gv_ws_dial d = { .endpoint = f->ep, .path = "/echo", .timeout_ms = TIMEOUT_MS };
        int r = gv_ws_dial(&d, &fd, &extra, &n_extra, NULL, &refusal, &e);
        if (r != 0)
                fail_msg("dial: %d %s (status %d)", r, gv_error_msg(e, r), refusal.status);
        _cleanup_(gv_ws_freep) struct gv_ws *ws = gv_ws_new(fd, false, true, extra, n_extra,
                                                             1 << 20);
        struct gv_ws_message m;
        assert_int_equal(gv_ws_send(ws, GV_WS_TEXT, "over TLS", 8), 0);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.len, 8);
        assert_memory_equal(m.data, "over TLS", 8);
        /* 200 KiB each way: many TLS records, both relays' buffers filled several times. */
        size_t n = 200 * 1024;
        _cleanup_free_ uint8_t *big = xmalloc(n);
        for (size_t k = 0; k < n; k++)
                big[k] = (uint8_t)(k * 7);
        assert_int_equal(gv_ws_send(ws, GV_WS_BINARY, big, n), 0);
        assert_int_equal(gv_ws_recv(ws, -1, TIMEOUT_MS, &m), 1);
        assert_int_equal(m.len, n);
        assert_memory_equal(m.data, big, n);
        assert_int_equal(gv_ws_close(ws, GV_WS_CLOSE_NORMAL, "bye"), 0);

        /* A dial that does not verify fails before any HTTP. */
        gv_http_client_set_ca_file(f->ca2);
        gv_error_free(e);
        e = NULL;
        r = gv_ws_dial(&d, &fd, &extra, &n_extra, NULL, &refusal, &e);
        assert_int_equal(r, -EPERM);
        assert_non_null(strstr(gv_error_msg(e, r), f->ca2));
}

static void expect_start_error(struct fx *f, const char *cert, const char *key, int want,
                               const char *named, const char *says)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_http_server *s = NULL;
        int r = start_server(f, cert, key, true, &s, &e);
        if (r >= 0) {
                gv_http_server_free(s);
                fail_msg("a server started with cert '%s' and key '%s'", cert, key);
        }
        const char *msg = gv_error_msg(e, r);
        if (r != want || (named && !strstr(msg, named)) || !strstr(msg, says))
                fail_msg("want %d naming '%s' saying '%s'; got %d: %s", want, named, says, r,
                         msg);
}

static void test_bad_files(void **state)
{
        struct fx *f = *state;
        _cleanup_free_ char *missing = path_in(f, "missing.pem");
        _cleanup_free_ char *dir = path_in(f, "");

        expect_start_error(f, missing, f->key, -ENOENT, missing, "does not exist");
        expect_start_error(f, f->cert, missing, -ENOENT, missing, "does not exist");
        expect_start_error(f, f->garbage, f->key, -EINVAL, f->garbage, "no PEM certificate");
        expect_start_error(f, f->cert, f->garbage, -EINVAL, f->garbage, "no PEM key");
        expect_start_error(f, f->cert, f->other_key, -EINVAL, f->other_key,
                           "does not belong to the certificate");
        expect_start_error(f, f->expired_cert, f->expired_key, -EINVAL, f->expired_cert,
                           "expired");
        expect_start_error(f, f->cert, NULL, -EINVAL, NULL, "both a certificate");
        if (geteuid() != 0) {
                /* Unreadable (root reads anything). */
                _cleanup_free_ char *locked = path_in(f, "locked-key.pem");
                _cleanup_free_ char *cp = xasprintf("cp %s %s && chmod 000 %s", f->key, locked,
                                                    locked);
                assert_int_equal(system(cp), 0);
                expect_start_error(f, f->cert, locked, -EACCES, locked, "cannot read");
        }
        (void)dir;
}

static void test_unix_socket_stays_plain(void **state)
{
        struct fx *f = *state;
        _cleanup_json_ json_t *j = NULL;
        assert_int_equal(get(f->unix_ep, NULL, "/hello", NULL, &j, NULL), 200);
        assert_true(json_is_false(json_object_get(j, "tls")));
        assert_true(json_is_true(json_object_get(j, "local")));
}

static void test_tcp_authorize(void **state)
{
        struct fx *f = *state;
        _cleanup_(gv_http_server_freep) struct gv_http_server *s = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = start_server(f, f->cert, f->key, true, &s, &e);
        if (r < 0)
                fail_msg("%s", gv_error_msg(e, r));
        _cleanup_free_ char *ep = xasprintf("https://127.0.0.1:%u", gv_http_server_tcp_port(s));
        _cleanup_free_ char *unix_ep = xasprintf("unix:%s/auth.sock", f->dir);
        static const char *const good[] = { "X-Secret: s3cret", NULL };
        static const char *const bad[] = { "X-Secret: guess", NULL };
        _cleanup_json_ json_t *j = NULL;

        assert_int_equal(get(ep, f->ca, "/hello", NULL, &j, NULL), 401);
        assert_string_equal(json_string_value(json_object_get(j, "detail")), "no secret");
        assert_int_equal(get(ep, f->ca, "/hello", bad, NULL, NULL), 401);
        /* Before routing: an unknown path is 401 too, not 404. */
        assert_int_equal(get(ep, f->ca, "/nowhere", NULL, NULL, NULL), 401);
        assert_int_equal(get(ep, f->ca, "/hello", good, NULL, NULL), 200);
        assert_int_equal(get(ep, f->ca, "/nowhere", good, NULL, NULL), 404);
        /* The UNIX socket is never asked. */
        assert_int_equal(get(unix_ep, NULL, "/hello", NULL, NULL, NULL), 200);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_request_over_tls13, setup, teardown),
                cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_plain_http_to_tls_port, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wrong_ca, setup, teardown),
                cmocka_unit_test_setup_teardown(test_name_mismatch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_websocket_through_tls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unix_socket_stays_plain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tcp_authorize, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
