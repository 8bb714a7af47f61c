/* SPDX-License-Identifier: MIT */
/* api.h — the agent's HTTP routes (api.c; reference in docs/agent.md). */
#pragma once

#include <stddef.h>

#include "agent/agent.h"
#include "agent/oplog.h"
#include "http/route.h"

struct gv_agent_api {
        struct gv_agent *agent;
        struct gv_oplog *oplog;
        /* The agent's secret (register.h): every request on the TCP listener must carry
         * "Authorization: Bearer SECRET". NULL: the TCP listener refuses everything. */
        const char *secret;
};

struct gv_http_request;
/* The TCP listener's check (gv_http_config.tcp_authorize; userdata: struct gv_agent_api):
 * 0 for the right secret (compared in constant time), else a 401 problem with
 * WWW-Authenticate answered and 1. The UNIX socket is local admin and never asked. */
int gv_agent_api_authorize(void *userdata, struct gv_http_request *req);

/* The route table; userdata of the server is a struct gv_agent_api. */
const struct gv_http_route *gv_agent_api_routes(size_t *ret_n);
