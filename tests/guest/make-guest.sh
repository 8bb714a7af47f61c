#!/bin/bash
# make-guest.sh OUTDIR: a tiny real Linux guest for the tests.
#
# Produces OUTDIR/vmlinuz (Debian's kernel) and OUTDIR/initramfs.cpio.gz (busybox from
# busybox-static, its applet links, ./init from this folder, and the two modules that make the
# ACPI power button visible: button.ko and evdev.ko). Boot it with
#   qemu-system-x86_64 -machine q35 -nodefaults -display none -m 256 -kernel OUTDIR/vmlinuz \
#       -initrd OUTDIR/initramfs.cpio.gz -append 'console=ttyS0 quiet panic=-1' -no-reboot \
#       -serial ...
# and read the console protocol described at the top of ./init (GPUVIRT-GUEST-READY etc.).
#
# Idempotent: the outputs are reused while they are newer than this script and ./init. The
# kernel package is kept in OUTDIR/cache.
#
# Kernel: the package linux-image-amd64 depends on (linux-image-6.1.0-NN-amd64 on Debian 12),
# or else the newest linux-image-*-amd64 apt-cache knows, fetched with `apt-get download` (run
# `apt-get update` only when the first download fails) and unpacked without installing it
# (installing runs initramfs hooks on the host). If no package can be had, a readable
# /boot/vmlinuz-* is used, with its modules from /lib/modules when they are there.
#
# Exit status: 0 done, 77 cannot be done here (the one-line reason is on stderr: no
# busybox-static, no cpio, no kernel), 1 usage or unexpected failure.
#
# Environment: GV_BUSYBOX overrides the busybox binary (default /bin/busybox, must be static).

set -euo pipefail

me=make-guest.sh
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

skip() {
        echo "$me: skipped: $*" >&2
        exit 77
}

die() {
        echo "$me: $*" >&2
        exit 1
}

[ $# -eq 1 ] || die "usage: $me OUTDIR"
out=$1
mkdir -p "$out" || die "cannot create the output folder '$out'"
out=$(cd "$out" && pwd)

up_to_date() {
        local f dep
        for f in "$out/vmlinuz" "$out/initramfs.cpio.gz"; do
                [ -s "$f" ] || return 1
                for dep in "$here/make-guest.sh" "$here/init"; do
                        [ "$f" -nt "$dep" ] || return 1
                done
        done
        return 0
}

if up_to_date; then
        exit 0
fi
# Several tests may build into the same OUTDIR at once: one builds, the others wait and reuse.
if command -v flock >/dev/null; then
        exec 8>"$out/.lock"
        flock 8
        if up_to_date; then
                exit 0
        fi
fi

# --- tools ---------------------------------------------------------------------------------
bb=${GV_BUSYBOX:-/bin/busybox}
[ -x "$bb" ] || skip "no busybox at '$bb': install the package busybox-static"
ldd_out=$(ldd "$bb" 2>&1 || true)
if command -v ldd >/dev/null && [[ $ldd_out != *"not a dynamic executable"* ]]; then
        skip "'$bb' is dynamically linked and cannot run in the initramfs: install busybox-static"
fi
command -v cpio >/dev/null || skip "no cpio: install the package cpio"
command -v gzip >/dev/null || skip "no gzip: install the package gzip"

work=$(mktemp -d "$out/work.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log

# --- kernel ----------------------------------------------------------------------------------
cache=$out/cache
mkdir -p "$cache"

kernel_package() {
        local pkg
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
                sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n 1)
        if [ -z "$pkg" ]; then
                pkg=$(apt-cache pkgnames linux-image- 2>/dev/null |
                        grep -E '^linux-image-[0-9][^ ]*-amd64$' |
                        grep -vE -- '-(cloud|rt)-amd64$' | sort -V | tail -n 1 || true)
        fi
        [ -n "$pkg" ] && echo "$pkg"
}

# The newest .deb of $1 in the cache, if any.
cached_deb() {
        local f
        f=$(ls -1 "$cache/$1"_*_amd64.deb 2>/dev/null | sort -V | tail -n 1 || true)
        [ -n "$f" ] && echo "$f"
}

download_deb() {
        local pkg=$1
        (cd "$cache" && apt-get -q download "$pkg") >"$log" 2>&1 && return 0
        # The package lists may be stale (the ABI number in the name moved on) or missing.
        timeout 300 apt-get -q update >>"$log" 2>&1 || return 1
        pkg=$(kernel_package) || return 1
        (cd "$cache" && apt-get -q download "$pkg") >>"$log" 2>&1
}

kroot=$work/kernel
mkdir -p "$kroot"
kernel_source=
pkg=$(kernel_package || true)
if command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
        deb=
        if [ -n "$pkg" ]; then
                deb=$(cached_deb "$pkg" || true)
        fi
        if [ -z "$deb" ] && download_deb "${pkg:-linux-image-amd64}"; then
                pkg=$(kernel_package || true)
                deb=$(cached_deb "${pkg:-none}" || true)
        fi
        if [ -n "$deb" ]; then
                # Only the kernel and two modules: unpacking all 400 MB of modules is slow.
                # tar fails for a pattern that matches nothing; the checks below judge.
                dpkg-deb --fsys-tarfile "$deb" |
                        tar -x -C "$kroot" --wildcards './boot/vmlinuz-*' \
                                '*/modules/*/kernel/drivers/acpi/button.ko*' \
                                '*/modules/*/kernel/drivers/input/evdev.ko*' 2>>"$log" || true
                vmlinuz=$(ls -1 "$kroot"/boot/vmlinuz-* 2>/dev/null | head -n 1 || true)
                if [ -n "$vmlinuz" ]; then
                        kernel_source="package ${deb##*/}"
                else
                        rm -f "$deb"
                fi
        fi
fi
if [ -z "$kernel_source" ]; then
        vmlinuz=$(ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -n "$vmlinuz" ] && [ -r "$vmlinuz" ]; then
                kernel_source="$vmlinuz"
                ver=${vmlinuz##*/vmlinuz-}
                for m in acpi/button input/evdev; do
                        for f in "/lib/modules/$ver/kernel/drivers/$m".ko*; do
                                [ -e "$f" ] || continue
                                mkdir -p "$kroot/lib/modules/$ver/kernel/drivers/${m%/*}"
                                cp "$f" "$kroot/lib/modules/$ver/kernel/drivers/${m%/*}/"
                        done
                done
        else
                if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
                        reason="apt-get or dpkg-deb is not installed"
                elif [ -z "$pkg" ]; then
                        reason="apt-cache knows no linux-image-*-amd64 package"
                else
                        reason="'apt-get download $pkg' failed"
                        reason+=$(grep -E '^E:' "$log" 2>/dev/null | head -n 1 |
                                sed 's/^/: /' || true)
                fi
                skip "no kernel: $reason, and /boot has no readable vmlinuz-*"
        fi
fi

# --- initramfs -------------------------------------------------------------------------------
stage=$work/root
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,run,etc,lib/modules}
cp "$bb" "$stage/bin/busybox"
chmod 755 "$stage/bin/busybox"
# The applet links, as `busybox --install -s` would make them, without running it as root.
"$bb" --list-full | while IFS= read -r applet; do
        if [ -n "$applet" ] && [ ! -e "$stage/$applet" ]; then
                ln -s /bin/busybox "$stage/$applet"
        fi
done
[ -L "$stage/bin/sh" ] || die "'$bb --list-full' does not list bin/sh: not a usable busybox"
cp "$here/init" "$stage/init"
chmod 755 "$stage/init"

# busybox insmod takes plain .ko files: unpack compressed modules (newer kernels) here.
find "$kroot" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' | while IFS= read -r f; do
        base=${f##*/}
        case $f in
        *.ko) cp "$f" "$stage/lib/modules/" ;;
        *.ko.xz) xz -dc "$f" >"$stage/lib/modules/${base%.xz}" 2>/dev/null || true ;;
        *.ko.zst) zstd -qdc "$f" >"$stage/lib/modules/${base%.zst}" 2>/dev/null || true ;;
        esac
done

# A newc archive entry, written by hand because cpio only archives what the file system holds
# and /dev/console (char 5:1) needs root to mknod. The kernel opens /dev/console for init
# before init can mount devtmpfs. Fields: magic, then 13 hex words: ino, mode, uid, gid,
# nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check; the name
# with its NUL; padding to 4 bytes.
newc_entry() {
        local name=$1 ino=$2 mode=$3 rmaj=$4 rmin=$5
        local namesize=$((${#name} + 1))
        printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
                "$ino" "$mode" 0 0 1 0 0 0 0 "$rmaj" "$rmin" "$namesize" 0
        printf '%s\0' "$name"
        head -c $(((4 - (110 + namesize) % 4) % 4)) /dev/zero
}

# The kernel unpacks concatenated archives: the one cpio makes, then the console node.
{
        (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0)
        newc_entry dev/console 1 $((0020600)) 5 1
        newc_entry 'TRAILER!!!' 0 0 0 0
} | gzip -9 >"$work/initramfs.cpio.gz"

cp "$vmlinuz" "$work/vmlinuz"
mv -f "$work/vmlinuz" "$out/vmlinuz"
mv -f "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
echo "$me: $out/vmlinuz ($kernel_source), $out/initramfs.cpio.gz" \
        "($(ls "$stage/lib/modules" | tr '\n' ' ')modules)" >&2
