/* SPDX-License-Identifier: MIT */
/*
 * tls.c — GnuTLS for the server's files and the client's sessions (tls.h).
 */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <gnutls/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/fileio.h"

long long gv_tls_now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------------------------------------------------------------------------------------- */
/* The server's certificate and key                                                            */

static int read_pem(const char *what, const char *path, const char *marker, char **ret,
                    struct gv_error **err)
{
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r = gv_read_file(path, GV_TLS_PEM_MAX, &text, &len);

        if (r == -ENOENT)
                return gv_error_set(err, ENOENT, "the TLS %s file '%s' does not exist; give the "
                                    "path of a PEM file (docs/tls.md shows how to make one).",
                                    what, path);
        if (r == -EACCES || r == -EPERM)
                return gv_error_set(err, EACCES, "cannot read the TLS %s file '%s': %s; let the "
                                    "daemon's user read it (keys: mode 0600, owned by that "
                                    "user).", what, path, strerror(-r));
        if (r == -EFBIG)
                return gv_error_set(err, EFBIG, "the TLS %s file '%s' is larger than %u bytes; "
                                    "is it the right file?", what, path, GV_TLS_PEM_MAX);
        if (r < 0)
                return gv_error_set(err, -r, "cannot read the TLS %s file '%s': %s.", what, path,
                                    strerror(-r));
        if (strlen(text) != len || !strstr(text, marker))
                return gv_error_set(err, EINVAL, "the TLS %s file '%s' holds no PEM %s "
                                    "('-----BEGIN ...%s-----'); give a PEM file (docs/tls.md).",
                                    what, path, what, marker);
        *ret = TAKE_PTR(text);
        return 0;
}

static void format_time(time_t t, char buf[static 32])
{
        struct tm tm;
        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, 32, "%lld", (long long)t);
}

/* The first certificate of the chain is valid now. */
static int check_validity(const char *path, const char *pem, struct gv_error **err)
{
        gnutls_x509_crt_t crt = NULL;
        gnutls_datum_t d = { .data = (unsigned char *)pem, .size = (unsigned)strlen(pem) };
        int r;

        if (gnutls_x509_crt_init(&crt) < 0)
                abort();
        r = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
        if (r < 0) {
                gnutls_x509_crt_deinit(crt);
                return gv_error_set(err, EINVAL, "the TLS certificate file '%s' does not hold a "
                                    "valid X.509 certificate: %s; make one as docs/tls.md shows.",
                                    path, gnutls_strerror(r));
        }
        time_t now = time(NULL), from = gnutls_x509_crt_get_activation_time(crt),
               until = gnutls_x509_crt_get_expiration_time(crt);
        gnutls_x509_crt_deinit(crt);
        char when[32];
        if (until != (time_t)-1 && until < now) {
                format_time(until, when);
                return gv_error_set(err, EINVAL, "the TLS certificate in '%s' expired on %s; "
                                    "renew it (contrib/gpuvirt-certs.sh, docs/tls.md).", path,
                                    when);
        }
        if (from != (time_t)-1 && from > now) {
                format_time(from, when);
                return gv_error_set(err, EINVAL, "the TLS certificate in '%s' is not valid before "
                                    "%s; check this machine's clock or the certificate.", path,
                                    when);
        }
        return 0;
}

int gv_tls_load_server_files(const char *cert_file, const char *key_file, char **ret_cert,
                             char **ret_key, struct gv_error **err)
{
        _cleanup_free_ char *cert = NULL, *key = NULL;
        gnutls_certificate_credentials_t cred = NULL;
        int r;

        if (!cert_file || !key_file)
                return gv_error_set(err, EINVAL, "TLS needs both a certificate file and a key "
                                    "file; give %s too.",
                                    cert_file ? "the key" : "the certificate");
        r = read_pem("certificate", cert_file, "CERTIFICATE-----", &cert, err);
        if (r >= 0)
                r = read_pem("key", key_file, "PRIVATE KEY-----", &key, err);
        if (r >= 0)
                r = check_validity(cert_file, cert, err);
        if (r < 0)
                return r;

        if (gnutls_certificate_allocate_credentials(&cred) < 0)
                abort();
        gnutls_datum_t c = { .data = (unsigned char *)cert, .size = (unsigned)strlen(cert) };
        gnutls_datum_t k = { .data = (unsigned char *)key, .size = (unsigned)strlen(key) };
        r = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
        gnutls_certificate_free_credentials(cred);
        if (r == GNUTLS_E_CERTIFICATE_KEY_MISMATCH)
                return gv_error_set(err, EINVAL, "the TLS key in '%s' does not belong to the "
                                    "certificate in '%s'; give the key the certificate was made "
                                    "for.", key_file, cert_file);
        if (r < 0)
                return gv_error_set(err, EINVAL, "cannot use the TLS key '%s' with the "
                                    "certificate '%s': %s (an encrypted key is not supported: "
                                    "store it unencrypted, mode 0600).", key_file, cert_file,
                                    gnutls_strerror(r));
        *ret_cert = TAKE_PTR(cert);
        *ret_key = TAKE_PTR(key);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Client credentials, cached per CA file                                                      */

struct cred_cache {
        struct cred_cache *next;
        char *ca_file; /* "" for the system store */
        gnutls_certificate_credentials_t cred;
};

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cred_cache *cache;

int gv_tls_client_credentials(const char *ca_file, gnutls_certificate_credentials_t *ret,
                              struct gv_error **err)
{
        const char *key = ca_file ? ca_file : "";
        int r = 0;

        pthread_mutex_lock(&cache_mu);
        for (struct cred_cache *c = cache; c; c = c->next)
                if (strcmp(c->ca_file, key) == 0) {
                        *ret = c->cred;
                        pthread_mutex_unlock(&cache_mu);
                        return 0;
                }
        gnutls_certificate_credentials_t cred = NULL;
        if (gnutls_certificate_allocate_credentials(&cred) < 0)
                abort();
        if (ca_file) {
                _cleanup_free_ char *pem = NULL;
                r = read_pem("CA", ca_file, "CERTIFICATE-----", &pem, err);
                if (r >= 0) {
                        gnutls_datum_t d = { .data = (unsigned char *)pem,
                                             .size = (unsigned)strlen(pem) };
                        int n = gnutls_certificate_set_x509_trust_mem(cred, &d,
                                                                      GNUTLS_X509_FMT_PEM);
                        if (n <= 0)
                                r = gv_error_set(err, EINVAL, "the CA file '%s' holds no usable "
                                                 "certificate%s%s; give the PEM certificate of "
                                                 "the CA that signed the server's.", ca_file,
                                                 n < 0 ? ": " : "",
                                                 n < 0 ? gnutls_strerror(n) : "");
                }
        } else {
                int n = gnutls_certificate_set_x509_system_trust(cred);
                if (n <= 0)
                        r = gv_error_set(err, ENOENT, "this system has no trust store GnuTLS can "
                                         "read%s%s; give the CA file of the server (--ca, "
                                         "GPUVIRT_CA or 'tls-ca').", n < 0 ? ": " : "",
                                         n < 0 ? gnutls_strerror(n) : "");
        }
        if (r < 0) {
                gnutls_certificate_free_credentials(cred);
                pthread_mutex_unlock(&cache_mu);
                return r;
        }
        struct cred_cache *c = xnew0(struct cred_cache, 1);
        c->ca_file = xstrdup(key);
        c->cred = cred;
        c->next = cache;
        cache = c;
        *ret = cred;
        pthread_mutex_unlock(&cache_mu);
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Client sessions                                                                             */

static bool is_ip_literal(const char *host)
{
        unsigned char buf[16];
        return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

int gv_tls_client_session(int fd, const char *host, gnutls_certificate_credentials_t cred,
                          gnutls_session_t *ret, struct gv_error **err)
{
        gnutls_session_t s = NULL;
        int r = gnutls_init(&s, GNUTLS_CLIENT | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL);

        if (r < 0)
                return gv_error_set(err, ENOMEM, "cannot start a TLS session: %s.",
                                    gnutls_strerror(r));
        r = gnutls_priority_set_direct(s, GV_TLS_PRIORITIES, NULL);
        if (r >= 0)
                r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred);
        /* SNI carries DNS names only (RFC 6066 section 3). */
        if (r >= 0 && !is_ip_literal(host))
                r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, host, strlen(host));
        if (r < 0) {
                gnutls_deinit(s);
                return gv_error_set(err, EINVAL, "cannot set up a TLS session for '%s': %s.",
                                    host, gnutls_strerror(r));
        }
        /* The chain against cred's CAs and the name (an IP literal against IP SANs) are
         * checked inside the handshake, which fails when they do not hold. */
        gnutls_session_set_verify_cert(s, host, 0);
        gnutls_transport_set_int(s, fd);
        *ret = s;
        return 0;
}

/* Wait for what the session needs (read or write) on fd; -ETIMEDOUT past the deadline. */
static int wait_session(gnutls_session_t s, int fd, long long deadline_ms)
{
        for (;;) {
                int wait = -1;
                if (deadline_ms) {
                        long long left = deadline_ms - gv_tls_now_ms();
                        if (left <= 0)
                                return -ETIMEDOUT;
                        wait = (int)MIN(left, (long long)INT32_MAX);
                }
                struct pollfd p = { .fd = fd,
                                    .events = gnutls_record_get_direction(s) ? POLLOUT
                                                                             : POLLIN };
                int r = poll(&p, 1, wait);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                if (r > 0)
                        return 0;
        }
}

int gv_tls_handshake(gnutls_session_t s, int fd, const char *endpoint, const char *ca_file,
                     long long deadline_ms, struct gv_error **err)
{
        for (;;) {
                int r = gnutls_handshake(s);
                if (r == 0)
                        return 0;
                if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
                        int w = wait_session(s, fd, deadline_ms);
                        if (w == -ETIMEDOUT)
                                return gv_error_set(err, ETIMEDOUT, "the TLS handshake with "
                                                    "'%s' did not finish in time.", endpoint);
                        if (w < 0)
                                return gv_error_set(err, -w, "poll: %s.", strerror(-w));
                        continue;
                }
                if (!gnutls_error_is_fatal(r))
                        continue;
                _cleanup_free_ char *ca = ca_file ? xasprintf("the CA file '%s'", ca_file)
                                                  : xstrdup("the system's trust store (no CA "
                                                            "file was given)");
                if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR ||
                    r == GNUTLS_E_CERTIFICATE_ERROR) {
                        unsigned status = gnutls_session_get_verify_cert_status(s);
                        gnutls_datum_t out = { 0 };
                        _cleanup_free_ char *why = NULL;
                        if (gnutls_certificate_verification_status_print(
                                    status, GNUTLS_CRT_X509, &out, 0) >= 0 && out.data) {
                                why = xstrdup((const char *)out.data);
                                gnutls_free(out.data);
                                /* GnuTLS ends it in ". " */
                                for (size_t n = strlen(why); n > 0 && why[n - 1] == ' '; n--)
                                        why[n - 1] = '\0';
                        }
                        return gv_error_set(err, EPERM, "the TLS certificate of '%s' does not "
                                            "verify against %s: %s Give the CA that signed the "
                                            "server's certificate (--ca FILE, GPUVIRT_CA, 'ca =' "
                                            "in the CLI's config, 'tls-ca' for gpuvirtd), and "
                                            "make sure the certificate names the host the "
                                            "endpoint names (docs/tls.md).", endpoint, ca,
                                            why ? why : gnutls_strerror(r));
                }
                return gv_error_set(err, EPROTO, "the TLS handshake with '%s' failed: %s (does "
                                    "it speak TLS 1.3? a plain http:// server, or one limited "
                                    "to older TLS versions, fails so).", endpoint,
                                    gnutls_strerror(r));
        }
}

/* ---------------------------------------------------------------------------------------- */
/* The relay: a TLS session as a plain socket                                                  */

#define RELAY_BUF 16384

struct relay {
        gnutls_session_t s;
        int tcp_fd; /* under the session */
        int app_fd; /* our end of the socketpair */
};

struct pipe_buf {
        char data[RELAY_BUF];
        size_t off, len;
};

static void *relay_run(void *arg)
{
        struct relay *rl = arg;
        struct pipe_buf *t2a = xnew0(struct pipe_buf, 1), *a2t = xnew0(struct pipe_buf, 1);
        bool tls_eof = false, app_eof = false, app_shut = false, tls_shut = false;

        for (;;) {
                bool progress = false, fail = false;

                /* TLS → app */
                if (t2a->len == 0 && !tls_eof) {
                        ssize_t n = gnutls_record_recv(rl->s, t2a->data, sizeof(t2a->data));
                        if (n > 0) {
                                t2a->off = 0;
                                t2a->len = (size_t)n;
                                progress = true;
                        } else if (n == 0 || (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED &&
                                              gnutls_error_is_fatal((int)n))) {
                                tls_eof = true;
                                progress = true;
                        }
                }
                if (t2a->len > 0) {
                        ssize_t n = send(rl->app_fd, t2a->data + t2a->off, t2a->len - t2a->off,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n > 0) {
                                t2a->off += (size_t)n;
                                if (t2a->off == t2a->len)
                                        t2a->off = t2a->len = 0;
                                progress = true;
                        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                                fail = true; /* the app closed its end */
                        }
                }
                if (t2a->len == 0 && tls_eof && !app_shut) {
                        (void)shutdown(rl->app_fd, SHUT_WR);
                        app_shut = true;
                }

                /* app → TLS */
                if (a2t->len == 0 && !app_eof) {
                        ssize_t n = recv(rl->app_fd, a2t->data, sizeof(a2t->data), MSG_DONTWAIT);
                        if (n > 0) {
                                a2t->off = 0;
                                a2t->len = (size_t)n;
                                progress = true;
                        } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                                app_eof = true;
                                progress = true;
                        }
                }
                if (a2t->len > 0) {
                        /* After GNUTLS_E_AGAIN the same data is offered again, as GnuTLS
                         * requires. */
                        ssize_t n = gnutls_record_send(rl->s, a2t->data + a2t->off,
                                                       a2t->len - a2t->off);
                        if (n > 0) {
                                a2t->off += (size_t)n;
                                if (a2t->off == a2t->len)
                                        a2t->off = a2t->len = 0;
                                progress = true;
                        } else if (n != GNUTLS_E_AGAIN && n != GNUTLS_E_INTERRUPTED) {
                                fail = true;
                        }
                }
                if (a2t->len == 0 && app_eof && !tls_shut) {
                        int b = gnutls_bye(rl->s, GNUTLS_SHUT_WR);
                        if (b != GNUTLS_E_AGAIN && b != GNUTLS_E_INTERRUPTED)
                                tls_shut = true;
                }

                if (fail || (tls_eof && app_eof && t2a->len == 0 && a2t->len == 0 && tls_shut))
                        break;
                if (progress || (gnutls_record_check_pending(rl->s) > 0 && t2a->len == 0))
                        continue;

                struct pollfd p[2] = {
                        { .fd = rl->app_fd }, { .fd = rl->tcp_fd },
                };
                if (a2t->len == 0 && !app_eof)
                        p[0].events |= POLLIN;
                if (t2a->len > 0)
                        p[0].events |= POLLOUT;
                if (t2a->len == 0 && !tls_eof)
                        p[1].events |= POLLIN;
                if (a2t->len > 0 || (app_eof && !tls_shut))
                        p[1].events |= gnutls_record_get_direction(rl->s) ? POLLOUT : POLLIN;
                if (poll(p, 2, -1) < 0 && errno != EINTR)
                        break;
                /* The app closed its end entirely: nobody is left to read what comes. */
                if ((p[0].revents & (POLLHUP | POLLERR)) && app_eof)
                        break;
                if (p[1].revents & (POLLHUP | POLLERR) && !(p[1].revents & POLLIN) &&
                    a2t->len > 0)
                        break;
        }
        free(t2a);
        free(a2t);
        gnutls_deinit(rl->s);
        close(rl->tcp_fd);
        close(rl->app_fd);
        free(rl);
        return NULL;
}

int gv_tls_relay(gnutls_session_t s, int tcp_fd, int *ret_fd, struct gv_error **err)
{
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0) {
                int e = errno;
                gnutls_deinit(s);
                close(tcp_fd);
                return gv_error_set(err, e, "cannot create a socketpair for the TLS relay: %s.",
                                    strerror(e));
        }
        struct relay *rl = xnew0(struct relay, 1);
        *rl = (struct relay){ .s = s, .tcp_fd = tcp_fd, .app_fd = sp[1] };
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, relay_run, rl);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                gnutls_deinit(s);
                close(tcp_fd);
                close(sp[0]);
                close(sp[1]);
                free(rl);
                return gv_error_set(err, r, "cannot start the TLS relay thread: %s.",
                                    strerror(r));
        }
        *ret_fd = sp[0];
        return 0;
}
