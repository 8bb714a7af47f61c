#!/bin/bash
# test-boot-qemu.sh BUILDDIR: boots the guest of make-guest.sh (built into BUILDDIR/guest) in
# plain QEMU with the edu device as the GPU stand-in and checks, on the serial console:
#   1. the guest boots to GPUVIRT-GUEST-READY and lists edu (1234:11e8) among its PCI devices,
#      a line written to the console comes back as GPUVIRT-ECHO, and system_powerdown (the
#      ACPI power button, handled by busybox acpid) shuts it down cleanly;
#   2. the console line "poweroff" shuts it down;
#   3. with gpuvirt.acpid=0 the init's own evdev watcher handles the power button.
# Exit status: 0 pass, 1 fail, 77 skip (the reason is printed: no busybox-static, cpio, kernel
# or QEMU).
#
# Console and monitor use "-chardev pipe": QEMU reads PATH.in and writes PATH.out, two FIFOs,
# so the test needs no socat or nc.
#
# Acceleration: KVM when /dev/kvm opens and a guest actually boots under it (some sandboxes
# hand out a /dev/kvm whose guests hang), else TCG. GV_GUEST_ACCEL=kvm|tcg forces one.

set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
me=test-boot-qemu.sh

if [ $# -ne 1 ]; then
        echo "usage: $me BUILDDIR" >&2
        exit 1
fi
guest=$1/guest

"$here/make-guest.sh" "$guest"
rc=$?
if [ $rc -eq 77 ]; then
        echo "SKIP: make-guest.sh cannot build the guest here (reason above)"
        exit 77
elif [ $rc -ne 0 ]; then
        echo "FAIL: make-guest.sh '$guest' exited with $rc"
        exit 1
fi

qemu=${GV_QEMU:-qemu-system-x86_64}
if ! command -v "$qemu" >/dev/null; then
        echo "SKIP: '$qemu' is not installed (package qemu-system-x86)"
        exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gv-guest.XXXXXX")
qpid=
readers=()

stop_vm() {
        if [ -n "$qpid" ]; then
                kill "$qpid" 2>/dev/null
                wait "$qpid" 2>/dev/null
                qpid=
        fi
        local p
        for p in "${readers[@]}"; do
                kill "$p" 2>/dev/null
                wait "$p" 2>/dev/null
        done
        readers=()
        exec 3>&- 4>&-
}

cleanup() {
        stop_vm
        rm -rf "$work"
}
trap cleanup EXIT

name=
fail() {
        echo "FAIL: [$name] $*"
        if [ -n "$name" ]; then
                echo "--- console of '$name' ---"
                tr -d '\r' <"$work/$name.console" 2>/dev/null | tail -n 60
                echo "--- qemu stderr ---"
                tail -n 20 "$work/$name.qemu" 2>/dev/null
        fi
        exit 1
}

# boot NAME ACCEL [EXTRA KERNEL ARGS]: starts QEMU in the background; fd 3 writes to the guest
# console, fd 4 to the HMP monitor; the console output collects in $work/NAME.console.
boot() {
        name=$1
        local accel=$2 extra=${3:-} f
        for f in con.in con.out mon.in mon.out; do
                mkfifo "$work/$name.$f" || fail "mkfifo failed"
        done
        : >"$work/$name.console"
        cat "$work/$name.con.out" >"$work/$name.console" &
        readers+=($!)
        cat "$work/$name.mon.out" >"$work/$name.monitor" &
        readers+=($!)
        "$qemu" -machine q35 -accel "$accel" -nodefaults -display none -m 256 -no-reboot \
                -kernel "$guest/vmlinuz" -initrd "$guest/initramfs.cpio.gz" \
                -append "console=ttyS0 quiet panic=-1 $extra" \
                -chardev "pipe,id=s0,path=$work/$name.con" -serial chardev:s0 \
                -chardev "pipe,id=m0,path=$work/$name.mon" -mon chardev=m0,mode=readline \
                -device edu >"$work/$name.qemu" 2>&1 &
        qpid=$!
        # Read-write opens of a FIFO never block, even when QEMU failed to start.
        exec 3<>"$work/$name.con.in" 4<>"$work/$name.mon.in"
}

# wait_for PATTERN SECONDS: 0 when an extended regex matches a console line, 1 on timeout,
# 2 when QEMU exited first.
wait_for() {
        local pattern=$1 deadline=$((SECONDS + $2))
        while [ $SECONDS -lt $deadline ]; do
                tr -d '\r' <"$work/$name.console" | grep -qE -- "$pattern" && return 0
                if ! kill -0 "$qpid" 2>/dev/null; then
                        tr -d '\r' <"$work/$name.console" | grep -qE -- "$pattern" && return 0
                        return 2
                fi
                sleep 0.1
        done
        return 1
}

expect() {
        local what=$1 pattern=$2 secs=$3 rc
        wait_for "$pattern" "$secs"
        rc=$?
        case $rc in
        0) echo "ok: [$name] $what" ;;
        1) fail "no line matching '$pattern' ($what) within $secs s" ;;
        *) fail "QEMU exited before a line matching '$pattern' ($what)" ;;
        esac
}

# expect_exit SECONDS: QEMU exits by itself with status 0 and the kernel did not panic.
expect_exit() {
        local deadline=$((SECONDS + $1)) rc
        while kill -0 "$qpid" 2>/dev/null; do
                [ $SECONDS -lt $deadline ] || fail "QEMU still runs $1 s after the shutdown request"
                sleep 0.1
        done
        wait "$qpid"
        rc=$?
        qpid=
        [ $rc -eq 0 ] || fail "QEMU exited with status $rc"
        if tr -d '\r' <"$work/$name.console" | grep -q 'Kernel panic'; then
                fail "the kernel panicked instead of powering off"
        fi
        echo "ok: [$name] the guest powered off and QEMU exited"
        stop_vm
}

# --- acceleration --------------------------------------------------------------------------
accel=${GV_GUEST_ACCEL:-}
probe_kvm=0
if [ -z "$accel" ]; then
        if { exec 9<>/dev/kvm; } 2>/dev/null; then
                exec 9<&-
                accel=kvm
                probe_kvm=1
        else
                accel=tcg
        fi
fi
case $accel in
kvm) ready_s=30 ;;
tcg) ready_s=60 ;;
*)
        echo "FAIL: GV_GUEST_ACCEL='$accel' is not one of: kvm, tcg"
        exit 1
        ;;
esac

# --- 1. boot, PCI list, echo, power button via acpid ---------------------------------------
boot main "$accel"
if [ $probe_kvm = 1 ]; then
        # A guest boots to its init in a second or two under a working KVM; a slow one only
        # costs the TCG fallback.
        if ! wait_for '^GPUVIRT-GUEST-BOOTED$' 10; then
                echo "note: /dev/kvm opens but the guest did not boot under KVM in 10 s" \
                        "($(tail -n 1 "$work/main.qemu" 2>/dev/null)); using TCG"
                stop_vm
                rm -f "$work"/main.*
                accel=tcg
                ready_s=60
                boot main "$accel"
        fi
fi
echo "accelerator: $accel"
expect "booted" '^GPUVIRT-GUEST-BOOTED$' "$ready_s"
expect "ready" '^GPUVIRT-GUEST-READY$' "$ready_s"
expect "edu (1234:11e8) is on the guest's PCI bus" \
        '^GPUVIRT-PCI [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] 1234:11e8 00ff[0-9a-f]{2}$' 1
expect "the power button is watched by acpid" '^GPUVIRT-POWERBUTTON acpid$' 1

token="hello gpuvirt $$ $RANDOM"
printf '%s\n' "$token" >&3
expect "a console line comes back" "^GPUVIRT-ECHO $token\$" 10
printf '%s\n' "second line" >&3
expect "a second console line comes back" '^GPUVIRT-ECHO second line$' 10

printf 'system_powerdown\n' >&4
expect "system_powerdown reaches the guest's acpid" '^GPUVIRT-GUEST-POWERBUTTON$' 30
expect_exit 30

# --- 2. the console line "poweroff" -----------------------------------------------------
boot poweroff "$accel" gpuvirt.acpid=0
expect "ready" '^GPUVIRT-GUEST-READY$' "$ready_s"
printf 'poweroff\n' >&3
expect "poweroff is acknowledged" '^GPUVIRT-GUEST-POWEROFF$' 10
expect_exit 30

# --- 3. the power button without acpid ------------------------------------------------------
boot evdev "$accel" gpuvirt.acpid=0
expect "ready" '^GPUVIRT-GUEST-READY$' "$ready_s"
expect "the power button is watched by the init's evdev watcher" '^GPUVIRT-POWERBUTTON evdev$' 1
printf 'system_powerdown\n' >&4
expect "system_powerdown reaches the evdev watcher" '^GPUVIRT-GUEST-POWERBUTTON$' 30
expect_exit 30

echo "PASS"
exit 0
