/* SPDX-License-Identifier: MIT */
/*
 * console.h — a VM's serial console through the agent: QEMU serves it on run/console.sock;
 * the agent keeps one connection (the relay), appends what the guest writes to
 * run/console.log (rotated to console.log.1 at the configured size, so at most twice that is
 * kept), and writes what API clients send. Called with the VM's lock held.
 */
#pragma once

#include <sys/types.h>

#include "agent/agent.h"

/* Connect the relay (QEMU must be running). 0, or -errno when the socket is not there. */
int gv_agent_console_attach(struct gv_agent_vm *vm);
void gv_agent_console_detach(struct gv_agent_vm *vm);
/* Read what the guest wrote and append it to the log; detaches on EOF. */
void gv_agent_console_pump(struct gv_agent *a, struct gv_agent_vm *vm);

/* Follow a VM's console (GET /v1/vms/NAME/console?follow=true): first the log's last `backlog`
 * bytes, then what the guest writes as it arrives, until its QEMU has exited and everything it
 * wrote has been read, the VM is deleted, or stop_fd turns readable. No lock is held between
 * reads; the log is watched with inotify, and a rotation to console.log.1 loses nothing. */
struct gv_console_follow;
int gv_agent_console_follow(struct gv_agent *a, const char *name, size_t backlog,
                            struct gv_console_follow **ret, struct gv_error **err);
/* Up to max bytes (> 0), 0 at the end, -errno on an error. Blocks while there is nothing. */
ssize_t gv_console_follow_read(struct gv_console_follow *f, char *buf, size_t max, int stop_fd);
void gv_console_follow_free(struct gv_console_follow *f);
