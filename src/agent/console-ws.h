/* SPDX-License-Identifier: MIT */
/*
 * console-ws.h — a VM's consoles over WebSocket (docs/agent.md "Consoles over WebSocket"):
 *
 *   GET /v1/vms/NAME/console/ws   the serial console: first the console log's last `bytes`
 *                                 (query; default 16384, 0 for none), then what the guest
 *                                 writes, as binary messages; text or binary messages from the
 *                                 client are typed into the console. Ends (close 1000) when the
 *                                 VM's QEMU exits.
 *   GET /v1/vms/NAME/vnc/ws       the graphical console: QEMU's VNC server (run/vnc.sock)
 *                                 bridged to binary messages both ways, as noVNC speaks RFB.
 *                                 The subprotocol "binary" is chosen when offered.
 */
#pragma once

#include "agent/agent.h"

struct gv_http_request;

/* Route handlers' bodies: answer the upgrade or a problem (404 no such VM, 409 no QEMU, 503
 * no VNC socket). */
int gv_agent_console_ws(struct gv_http_request *req, struct gv_agent *a);
int gv_agent_vnc_ws(struct gv_http_request *req, struct gv_agent *a);
