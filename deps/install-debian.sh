#!/bin/sh
# Install the Debian packages listed in deps/debian-packages.txt that are not installed yet.
# Idempotent and quiet when everything is present; needs root (or sudo) only to install.
set -eu
here=$(dirname "$0")
missing=""
for p in $(grep -v '^#' "$here/debian-packages.txt" | tr -s ' \n' ' '); do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
                # an installed package that provides it counts (NodeSource's nodejs provides
                # npm and conflicts with Debian's)
                dpkg-query -W -f='${Status} ${Provides}\n' 2>/dev/null |
                        grep '^install ok installed' | tr -d ',' | grep -qw -- "$p" ||
                        missing="$missing $p"
        fi
done
[ -z "$missing" ] && exit 0
echo "installing Debian packages:$missing"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing
