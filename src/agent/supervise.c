/* SPDX-License-Identifier: MIT */
/*
 * supervise.c — the agent's supervisor thread: notices a QEMU exit the moment it happens (the
 * pidfd becomes readable; no polling of /proc), reports it and releases the VM's GPUs, pumps
 * every running VM's serial console into its bounded log (console.h), and follows live
 * migrations in progress (migrate.c: a source that completed becomes `migrated`, a destination
 * whose state is in `running`).
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "agent/console.h"
#include "util/alloc.h"

enum { SLOT_PID, SLOT_CONSOLE };

struct slot {
        struct gv_agent_vm *vm;
        int kind;
};

void *gv_agent_supervise(void *agent)
{
        struct gv_agent *a = agent;
        int64_t next_reconcile = 0;

        while (!__atomic_load_n(&a->stopping, __ATOMIC_SEQ_CST)) {
                struct pollfd *pf;
                struct slot *slots;
                struct gv_agent_vm **migrating;
                size_t n = 1, n_migrating = 0;
                bool busy = false;
                /* The reconcile loop (reconcile.c) runs here when due; the poll waits no longer
                 * than until its next pass. */
                int reconcile_ms = gv_agent_reconcile_tick(a, &next_reconcile);

                pthread_mutex_lock(&a->lock);
                pf = xnew0(struct pollfd, 2 * a->n_vms + 1);
                slots = xnew0(struct slot, 2 * a->n_vms + 1);
                migrating = xnew0(struct gv_agent_vm *, a->n_vms + 1);
                pf[0] = (struct pollfd){ .fd = a->wake_fd, .events = POLLIN };
                for (size_t i = 0; i < a->n_vms; i++) {
                        struct gv_agent_vm *vm = a->vms[i];
                        /* A VM in the middle of an operation is looked at once it is done. */
                        if (pthread_mutex_trylock(&vm->lock) != 0) {
                                busy = true;
                                continue;
                        }
                        if (vm->proc.pidfd >= 0) {
                                pf[n] = (struct pollfd){ .fd = vm->proc.pidfd, .events = POLLIN };
                                slots[n++] = (struct slot){ vm, SLOT_PID };
                        }
                        if (vm->phase == GV_VM_INCOMING || vm->phase == GV_VM_MIGRATING)
                                migrating[n_migrating++] = vm;
                        if (vm->console_fd >= 0) {
                                pf[n] = (struct pollfd){ .fd = vm->console_fd, .events = POLLIN };
                                slots[n++] = (struct slot){ vm, SLOT_CONSOLE };
                        } else if (vm->phase == GV_VM_RUNNING || vm->phase == GV_VM_INCOMING ||
                                   vm->phase == GV_VM_MIGRATING) {
                                (void)gv_agent_console_attach(vm);
                                busy = true; /* look again soon */
                        }
                        pthread_mutex_unlock(&vm->lock);
                }
                pthread_mutex_unlock(&a->lock);

                int timeout = busy ? 50 : 1000;
                if (n_migrating && timeout > GV_AGENT_MIGRATION_CHECK_MS)
                        timeout = GV_AGENT_MIGRATION_CHECK_MS;
                if (reconcile_ms >= 0 && reconcile_ms < timeout)
                        timeout = reconcile_ms;
                int r = poll(pf, n, timeout);
                if (r > 0 && (pf[0].revents & POLLIN)) {
                        uint64_t v;
                        (void)!read(a->wake_fd, &v, sizeof(v));
                }
                for (size_t i = 1; r > 0 && i < n; i++) {
                        if (!pf[i].revents)
                                continue;
                        struct gv_agent_vm *vm = slots[i].vm;
                        /* The VM may have been deleted since: look it up again under the table
                         * lock, and take its lock only if nobody holds it. */
                        pthread_mutex_lock(&a->lock);
                        bool present = false;
                        for (size_t k = 0; k < a->n_vms; k++)
                                present |= a->vms[k] == vm;
                        bool locked = present && pthread_mutex_trylock(&vm->lock) == 0;
                        pthread_mutex_unlock(&a->lock);
                        if (!locked)
                                continue;
                        if (slots[i].kind == SLOT_CONSOLE) {
                                gv_agent_console_pump(a, vm);
                        } else if (vm->proc.pidfd == pf[i].fd) {
                                int status = -1;
                                if (gv_proc_wait(&vm->proc, 0, &status, NULL) > 0) {
                                        gv_agent_console_pump(a, vm);
                                        /* Nobody asked it to stop: a crash, or the guest shut
                                         * itself down (exit status 0 and no signal). */
                                        bool clean = status >= 0 && WIFEXITED(status) &&
                                                     WEXITSTATUS(status) == 0;
                                        gv_agent_vm_exited(a, vm, clean, status);
                                }
                        }
                        pthread_mutex_unlock(&vm->lock);
                }
                for (size_t i = 0; i < n_migrating; i++) {
                        struct gv_agent_vm *vm = migrating[i];
                        pthread_mutex_lock(&a->lock);
                        bool present = false;
                        for (size_t k = 0; k < a->n_vms; k++)
                                present |= a->vms[k] == vm;
                        bool locked = present && pthread_mutex_trylock(&vm->lock) == 0;
                        pthread_mutex_unlock(&a->lock);
                        if (!locked)
                                continue;
                        if (vm->phase == GV_VM_INCOMING || vm->phase == GV_VM_MIGRATING)
                                gv_agent_migration_tick(a, vm);
                        pthread_mutex_unlock(&vm->lock);
                }
                free(pf);
                free(slots);
                free(migrating);
        }
        gv_agent_reconcile_done(a); /* nothing runs a pass once the supervisor has stopped */
        return NULL;
}
