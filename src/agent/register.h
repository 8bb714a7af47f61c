/* SPDX-License-Identifier: MIT */
/*
 * register.h — an agent in a cluster: it registers with its controller (POST /api/v1/hosts
 * {"name", "endpoint"}) and then sends a heartbeat every interval (POST
 * /api/v1/hosts/NAME/heartbeat), registering again when the controller forgot it. Failures are
 * retried forever (the controller may start later or restart); the last one is kept for status.
 */
#pragma once

#include "util/error.h"

struct gv_registrar;

struct gv_registrar_config {
        const char *controller;   /* "http://HOST:PORT" or "unix:PATH" */
        const char *token;        /* bearer token (admin role), or NULL on a local socket */
        const char *name;         /* this host's name */
        const char *endpoint;     /* how the controller reaches this agent */
        int interval_ms;          /* heartbeat; 0: 5 s */
};

int gv_registrar_start(const struct gv_registrar_config *cfg, struct gv_registrar **ret,
                       struct gv_error **err);
struct gv_registrar *gv_registrar_stop(struct gv_registrar *r);
