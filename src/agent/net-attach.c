/* SPDX-License-Identifier: MIT */
/*
 * net-attach.c — the host side of a VM's NICs (agent.h): a user-mode NIC needs nothing; a
 * bridge NIC gets a persistent tap on its host bridge (src/vmm/tap.h), made before QEMU starts,
 * recorded in state.json the moment it exists (so a restarted agent or the reconcile loop
 * deletes it), and deleted with the VM's other hardware after QEMU exits
 * (gv_agent_gpus_release).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "util/alloc.h"
#include "util/strv.h"
#include "vmm/tap.h"

int gv_agent_nics_attach(struct gv_agent *a, struct gv_agent_vm *vm, char ***ret_taps,
                         struct gv_error **err)
{
        const struct gv_vm_config *c = vm->config;
        _cleanup_strv_free_ char **taps = xnew0(char *, c->n_nics + 1);
        int r = 0;

        pthread_mutex_lock(&a->host_lock); /* a VM's hw list changes under host_lock only */
        for (size_t i = 0; i < c->n_nics && r >= 0; i++) {
                const struct gv_vm_nic *n = &c->nics[i];
                struct gv_hw hw = { .kind = GV_HW_TAP };

                if (n->mode != GV_VM_NIC_BRIDGE) {
                        taps[i] = xstrdup("");
                        continue;
                }
                taps[i] = gv_tap_name(c->uuid, i);
                if (!taps[i]) {
                        r = gv_error_set(err, EINVAL, "nics[%zu]: no tap name for VM uuid '%s' "
                                         "and NIC %zu (at most %u NICs).", i, c->uuid, i,
                                         GV_TAP_NIC_INDEX_MAX + 1);
                        break;
                }
                r = gv_tap_create(taps[i], n->bridge, err);
                if (r < 0) {
                        r = gv_error_wrap(err, r, "nics[%zu] (bridge '%s')", i, n->bridge);
                        break;
                }
                snprintf(hw.id, sizeof(hw.id), "%s", taps[i]);
                gv_agent_hw_record(a, vm, &hw);
        }
        pthread_mutex_unlock(&a->host_lock);
        if (r < 0)
                return r; /* what was made is recorded: the caller's rollback releases it */
        *ret_taps = TAKE_PTR(taps);
        return 0;
}
