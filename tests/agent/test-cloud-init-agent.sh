#!/bin/bash
# SPDX-License-Identifier: MIT
# cloud-init NoCloud seeds through gpuvirtd (docs/agent.md, "cloud_init"), on a simulated host
# with real QEMU:
#   - a bad cloud_init is refused with 400 naming the member, nothing defined;
#   - a VM defined with cloud_init keeps it in its definition; at start the agent writes
#     disks/seed.iso (0600, ISO 9660 labelled cidata, /meta-data with the VM's UUID, host name
#     and keys, /user-data as given) and QEMU runs with it as a read-only virtio-blk disk;
#   - the seed is made anew at each start (a damaged one is replaced) and goes with the VM;
#   - the busybox test guest (tests/guest) sees the seed's virtio block device on its PCI bus
#     (its init lists PCI functions only: reading the label would need a change there).
# Usage: test-cloud-init-agent.sh [GUESTDIR] (the guest part is skipped, saying why, without it
# or where make-guest.sh cannot build the guest).
. "$(dirname "$0")/../integration/lib.sh"
if ! command -v genisoimage >/dev/null && ! command -v xorriso >/dev/null; then
        echo "1..0 # SKIP neither genisoimage nor xorriso is installed (deps/debian-packages.txt)"
        exit 0
fi
GUEST=${1:-}
new_host l40s-4 h
. "$(dirname "$0")/agent-lib.sh"
# QEMUs of this script are killed by the pid the agent recorded, never by name.
kill_qemus() {
        local vm pid
        for vm in ci1 ci2; do
                pid=$(qemu_pid "$vm" 2>/dev/null)
                [ -n "$pid" ] && running "$pid" && kill -9 "$pid" 2>/dev/null
        done
}
trap 'kill_qemus; stop_agent; _cleanup' EXIT
# TCG boots the test guest in 5-20 s on a loaded 2-core machine.
BOOT_S=120

ED_KEY="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
UUID=3f2504e0-4f89-11d3-9a0c-0305e82c3301
USER_DATA=$'#cloud-config\nruncmd:\n  - [sh, -c, "echo hello > /tmp/hi"]\n'

start_agent

# ---- bad input
api POST /v1/vms "$(jq -nc --arg k "ssh-ed25519 AAAA" \
        '{name: "ci1", cloud_init: {ssh_authorized_keys: [$k]}}')" ci-bad1
check "a cut-short key: 400 naming the member" 400 \
        '.detail | test("cloud_init.ssh_authorized_keys\\[0\\]")'
api POST /v1/vms '{"name":"ci1","cloud_init":{"hostname":"Not_A_Host"}}' ci-bad2
check "a bad host name: 400 naming the member" 400 '.detail | test("cloud_init.hostname")'
api POST /v1/vms '{"name":"ci1","cloud_init":{"userdata":"x"}}' ci-bad3
check "an unknown member of cloud_init: 400 listing the valid ones" 400 \
        '.detail | test("userdata") and test("user_data")'
api GET /v1/vms/ci1
check "nothing was defined" 404 '.status == 404'

# ---- a VM with a seed
DEF=$(jq -nc --arg k "$ED_KEY me@host" --arg u "$UUID" --arg ud "$USER_DATA" \
        '{name: "ci1", uuid: $u, memory_mib: 128,
          cloud_init: {user_data: $ud, ssh_authorized_keys: [$k], hostname: "seeded"}}')
api POST /v1/vms "$DEF" ci-def1
check "define a VM with cloud_init" 201 \
        ".phase == \"defined\" and .config.cloud_init.hostname == \"seeded\" and
         .config.cloud_init.ssh_authorized_keys == [\"$ED_KEY me@host\"]"
SEED=$STATE/vms/ci1/disks/seed.iso
[ ! -e "$SEED" ] && _ok "no seed before the first start" || _not_ok "no seed before the first start"

api POST /v1/vms/ci1/start '' ci-start1
check "start: running" 200 '.phase == "running"'
check "QEMU has the seed as a read-only virtio-blk disk" 200 "
        (.argv | index(\"driver=file,filename=$SEED,node-name=cidata-file,read-only=on\"))
                != null and
        (.argv | index(\"driver=raw,file=cidata-file,node-name=cidata,read-only=on\")) != null and
        (.argv | index(\"virtio-blk-pci,drive=cidata,id=cidata-dev\")) != null"
assert_eq "$(stat -c %a "$SEED" 2>/dev/null)" 600 "the seed is private to the agent (0600)"

check_seed() { # NAME: the seed's label and files
        if ! command -v isoinfo >/dev/null; then
                _ok "$1 # SKIP isoinfo (package genisoimage) is not installed"
                return
        fi
        local vol md ud
        vol=$(isoinfo -d -i "$SEED" 2>/dev/null | sed -n 's/^Volume id: //p')
        md=$(isoinfo -R -i "$SEED" -x /meta-data 2>/dev/null)
        ud=$(isoinfo -R -i "$SEED" -x /user-data 2>/dev/null)
        if [ "$vol" = cidata ] && [[ $md == *"instance-id: \"$UUID\""* ]] &&
                [[ $md == *'local-hostname: "seeded"'* ]] &&
                [[ $md == *"public-keys:"*"  - \"$ED_KEY me@host\""* ]] &&
                [ "$ud"$'\n' = "$USER_DATA" ]; then
                _ok "$1"
        else
                _not_ok "$1" "volume id '$vol'" "meta-data: $md" "user-data: $ud"
        fi
}
check_seed "the seed is labelled cidata and holds the UUID, host name, key and user data"

api POST /v1/vms/ci1/stop '{"timeout_s":1}' ci-stop1
check "stop" 200 '.phase == "stopped"'
printf 'not an ISO' >"$SEED"
api POST /v1/vms/ci1/start '' ci-start2
check "start again" 200 '.phase == "running"'
check_seed "the seed is made anew at each start (a damaged one is replaced)"
api POST /v1/vms/ci1/kill '' ci-kill1
check "kill" 200 '.phase == "stopped"'
api DELETE /v1/vms/ci1 '' ci-del1
check "delete" 200 '.deleted'
[ ! -e "$SEED" ] && [ ! -d "$STATE/vms/ci1" ] && _ok "the seed goes with the VM" ||
        _not_ok "the seed goes with the VM"

# ---- the test guest sees the seed's block device
guest_part() {
        local why
        if [ -z "$GUEST" ]; then
                _ok "the guest sees the seed # SKIP no GUESTDIR given"
                return
        fi
        "$(dirname "$0")/../guest/make-guest.sh" "$GUEST" 2>"$TEST_TMP/make-guest.err"
        case $? in
        0) ;;
        77) why=$(tail -n 1 "$TEST_TMP/make-guest.err")
            _ok "the guest sees the seed # SKIP cannot build the test guest here: $why"
            return ;;
        *) _not_ok "the test guest builds" "$(tail -n 3 "$TEST_TMP/make-guest.err")"
           return ;;
        esac
        # No disks and no NICs: the seed is the guest's only virtio device.
        api POST /v1/vms "$(jq -nc --arg k "$GUEST/vmlinuz" --arg i "$GUEST/initramfs.cpio.gz" \
                '{name: "ci2", memory_mib: 256, boot: {kernel: $k, initrd: $i,
                  append: "console=ttyS0 quiet panic=-1"}, cloud_init: {}}')" ci-def2
        check "define the test guest with an empty cloud_init" 201 '.phase == "defined"'
        api POST /v1/vms/ci2/start '' ci-start3
        check "start the test guest" 200 '.phase == "running"'
        local deadline=$((SECONDS + BOOT_S)) text=
        while [ $SECONDS -lt $deadline ]; do
                api GET '/v1/vms/ci2/console?bytes=65536'
                text=$(jq -r .text <<<"$OUT" 2>/dev/null | tr -d '\r')
                grep -q '^GPUVIRT-GUEST-READY$' <<<"$text" && break
                sleep 0.5
        done
        # virtio-blk: 1af4:1001 (transitional) or 1af4:1042 (modern), class 0100xx (SCSI storage)
        if grep -qE '^GPUVIRT-PCI [0-9a-f:.]+ 1af4:(1001|1042) 0100[0-9a-f]{2}$' <<<"$text"; then
                _ok "the guest sees the seed's virtio block device on its PCI bus"
        else
                _not_ok "the guest sees the seed's virtio block device on its PCI bus" \
                        "console: $(tail -n 20 <<<"$text")"
        fi
        api POST /v1/vms/ci2/kill '' ci-kill2
        check "kill the test guest" 200 '.phase == "stopped"'
        api DELETE /v1/vms/ci2 '' ci-del2
        check "delete the test guest" 200 '.deleted'
}
guest_part

stop_agent
done_testing
