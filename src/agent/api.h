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
};

/* The route table; userdata of the server is a struct gv_agent_api. */
const struct gv_http_route *gv_agent_api_routes(size_t *ret_n);
