/* SPDX-License-Identifier: MIT */
/*
 * console.h — a VM's serial console through the agent: QEMU serves it on run/console.sock;
 * the agent keeps one connection (the relay), appends what the guest writes to
 * run/console.log (rotated to console.log.1 at the configured size, so at most twice that is
 * kept), and writes what API clients send. Called with the VM's lock held.
 */
#pragma once

#include "agent/agent.h"

/* Connect the relay (QEMU must be running). 0, or -errno when the socket is not there. */
int gv_agent_console_attach(struct gv_agent_vm *vm);
void gv_agent_console_detach(struct gv_agent_vm *vm);
/* Read what the guest wrote and append it to the log; detaches on EOF. */
void gv_agent_console_pump(struct gv_agent *a, struct gv_agent_vm *vm);
