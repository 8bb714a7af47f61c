/* SPDX-License-Identifier: MIT */
/*
 * tls.h — what the HTTP server and client share about TLS (GnuTLS): one priority string, the
 * server's certificate and key checked before libmicrohttpd gets them, the client's trust
 * anchors and the session set-up with host-name verification. Internal to src/http.
 *
 * Policy (../shared/reference/reliability.md section 3 "Authentication" [S50]): TLS 1.3 only,
 * which means forward secrecy (every TLS 1.3 key exchange is ephemeral) and SHA-2 based
 * suites; certificates should be ECDSA P-384 or RSA >= 4096 (contrib/gpuvirt-certs.sh makes
 * P-384 ones; docs/tls.md). `gnutls-cli --priority "$(GV_TLS_PRIORITIES)" --list` shows what the
 * string allows: TLS1.3 with AES-256-GCM, CHACHA20-POLY1305, AES-128-GCM and AES-128-CCM.
 */
#pragma once

#include <gnutls/gnutls.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/error.h"

#define GV_TLS_PRIORITIES "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3"
/* Largest PEM file (certificate chain, key, CA bundle) read. */
#define GV_TLS_PEM_MAX (1024u * 1024u)

/* Read a server's PEM certificate (chain) and private key and check that GnuTLS takes them
 * as a pair, that the first certificate is valid now: -ENOENT/-EACCES/-EINVAL naming the
 * file and what to fix. *ret_cert and *ret_key are the files' texts (NUL-terminated). */
int gv_tls_load_server_files(const char *cert_file, const char *key_file, char **ret_cert,
                             char **ret_key, struct gv_error **err);

/* Client credentials trusting the CAs in ca_file (PEM), or the system's trust store when
 * ca_file is NULL. Credentials are cached per file for the life of the process (they are
 * read-only once made and may be shared by sessions on any thread); do not free them. */
int gv_tls_client_credentials(const char *ca_file, gnutls_certificate_credentials_t *ret,
                              struct gv_error **err);

/* A client session on the connected socket fd for host (a DNS name or an IP literal without
 * brackets): TLS 1.3 only, the server's certificate verified against cred and host during the
 * handshake (gv_tls_handshake). */
int gv_tls_client_session(int fd, const char *host, gnutls_certificate_credentials_t cred,
                          gnutls_session_t *ret, struct gv_error **err);

/* Run the handshake on a non-blocking socket, waiting at most until deadline_ms
 * (CLOCK_MONOTONIC milliseconds; 0: no limit). A certificate that does not verify is -EPERM
 * with GnuTLS's reason, the endpoint and the CA file named (ca_file NULL: "the system's trust
 * store"), and what to fix; another failure is -ECONNREFUSED / -EPROTO with GnuTLS's words;
 * -ETIMEDOUT when the deadline passes. */
int gv_tls_handshake(gnutls_session_t s, int fd, const char *endpoint, const char *ca_file,
                     long long deadline_ms, struct gv_error **err);

/* Hand a connected TLS session over as a plain byte stream: a socketpair whose one end
 * (non-blocking, O_CLOEXEC) is returned, the other owned by a relay thread that moves bytes
 * between it and the session until both directions are done or the returned end is closed.
 * The thread owns s and tcp_fd from here on (also on failure). */
int gv_tls_relay(gnutls_session_t s, int tcp_fd, int *ret_fd, struct gv_error **err);

/* Milliseconds of CLOCK_MONOTONIC. */
long long gv_tls_now_ms(void);
