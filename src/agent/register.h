/* SPDX-License-Identifier: MIT */
/*
 * register.h — an agent in a cluster: it registers with its controller (POST /api/v1/hosts
 * {"name", "endpoint"}) and then sends a heartbeat every interval (POST
 * /api/v1/hosts/NAME/heartbeat), registering again when the controller forgot it. Failures are
 * retried forever (the controller may start later or restart); the last one is kept for status.
 *
 * The agent's secret (docs/agent.md "Authentication"): 32 random bytes as 64 hex digits, made
 * once and kept in a 0600 file in the state directory (or a file the operator names). The
 * registration carries it ("agent_secret", over the admin token's authenticated request); the
 * controller keeps it in the host's document and sends "Authorization: Bearer SECRET" on every
 * call to this agent's TCP listener, which refuses any request without it.
 */
#pragma once

#include <stdbool.h>

#include "util/error.h"

struct gv_registrar;

struct gv_registrar_config {
        const char *controller;   /* "http://HOST:PORT" or "unix:PATH" */
        const char *token;        /* bearer token (admin role), or NULL on a local socket */
        const char *name;         /* this host's name */
        const char *endpoint;     /* how the controller reaches this agent */
        const char *secret;       /* the agent's secret (gv_agent_secret_load), or NULL */
        const char *ca_file;      /* an https controller's CA (PEM); NULL: the process
                                   * default (gv_http_client_set_ca_file) */
        int interval_ms;          /* heartbeat; 0: 5 s */
};

int gv_registrar_start(const struct gv_registrar_config *cfg, struct gv_registrar **ret,
                       struct gv_error **err);
struct gv_registrar *gv_registrar_stop(struct gv_registrar *r);

#define GV_AGENT_SECRET_HEX 64 /* 32 bytes */

/* Read the secret from path: 64 hex digits (a trailing newline allowed). With create, a
 * missing file is made first (O_EXCL, mode 0600) from getrandom(). A file that group or others
 * may read, or that holds anything else, is -EPERM / -EINVAL naming it and what to fix. *ret:
 * the 64 digits. */
int gv_agent_secret_load(const char *path, bool create, char **ret, struct gv_error **err);

/* Whether an endpoint's host is a loopback address or "localhost" (a "unix:" endpoint counts
 * as local too): a secret sent there over plain http does not cross a network. */
bool gv_endpoint_is_local(const char *endpoint);
