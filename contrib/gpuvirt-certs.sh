#!/bin/bash
# SPDX-License-Identifier: MIT
#
# gpuvirt-certs.sh — certificates for gpuvirt's TLS listeners (docs/tls.md): a CA of your own,
# then one certificate per controller and per agent host, each naming the DNS names and IP
# addresses it is reached at. Keys are ECDSA P-384, signatures SHA-384
# (../shared/reference/reliability.md section 3: ECDSA P-384 or RSA >= 4096, SHA-2).
#
#   gpuvirt-certs.sh ca DIR [--days N]
#       DIR/ca.pem (give it to every daemon as tls-ca, to the CLI as --ca) and DIR/ca-key.pem
#       (mode 0600; keep it off the hosts). N defaults to 3650.
#   gpuvirt-certs.sh cert DIR NAME HOST... [--days N]
#       DIR/NAME.pem and DIR/NAME-key.pem (0600), signed by DIR's CA, for each HOST given (a DNS
#       name or an IPv4/IPv6 address: what the endpoints say). N defaults to 825.
#
# Uses certtool (GnuTLS, Debian gnutls-bin), or openssl when certtool is absent;
# GPUVIRT_CERT_TOOL=certtool|openssl chooses. Existing files are never overwritten.
set -euo pipefail

die() {
        echo "gpuvirt-certs: $*" >&2
        exit 1
}

usage() {
        sed -n '/^#   gpuvirt-certs.sh/,/^#$/p' "$0" | sed 's/^#   //; s/^#//; /^$/d'
}

tool() {
        local t=${GPUVIRT_CERT_TOOL:-}
        if [ -z "$t" ]; then
                if command -v certtool >/dev/null 2>&1; then t=certtool
                elif command -v openssl >/dev/null 2>&1; then t=openssl
                else die "neither certtool (gnutls-bin) nor openssl is installed."
                fi
        fi
        case $t in
        certtool | openssl) command -v "$t" >/dev/null 2>&1 || die "'$t' is not installed." ;;
        *) die "GPUVIRT_CERT_TOOL: '$t' is not certtool or openssl." ;;
        esac
        echo "$t"
}

is_ip() {
        [[ "$1" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || "$1" == *:* ]]
}

no_clobber() {
        local f
        for f in "$@"; do
                [ ! -e "$f" ] || die "'$f' exists already; remove it first to make a new one."
        done
}

# new_key FILE: an ECDSA P-384 key, mode 0600 from the start.
new_key() {
        (
                umask 077
                if [ "$TOOL" = certtool ]; then
                        certtool --generate-privkey --key-type=ecdsa --curve=secp384r1 \
                                --outfile "$1" 2>/dev/null
                else
                        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp384r1 \
                                -out "$1" 2>/dev/null
                fi
        ) || die "cannot make the key '$1'."
}

cmd_ca() {
        local dir=$1 days=$2
        mkdir -p "$dir"
        no_clobber "$dir/ca.pem" "$dir/ca-key.pem"
        new_key "$dir/ca-key.pem"
        if [ "$TOOL" = certtool ]; then
                local t
                t=$(mktemp)
                cat >"$t" <<EOF
cn = "gpuvirt CA"
organization = "gpuvirt"
serial = $(date +%s)
expiration_days = $days
ca
cert_signing_key
crl_signing_key
EOF
                certtool --generate-self-signed --load-privkey "$dir/ca-key.pem" --template "$t" \
                        --hash=SHA384 --outfile "$dir/ca.pem" >/dev/null 2>&1 ||
                        { rm -f "$t"; die "certtool could not make the CA certificate."; }
                rm -f "$t"
        else
                openssl req -x509 -new -key "$dir/ca-key.pem" -sha384 -days "$days" \
                        -subj "/O=gpuvirt/CN=gpuvirt CA" \
                        -addext "basicConstraints=critical,CA:TRUE" \
                        -addext "keyUsage=critical,keyCertSign,cRLSign" \
                        -out "$dir/ca.pem" 2>/dev/null ||
                        die "openssl could not make the CA certificate."
        fi
        echo "gpuvirt-certs: CA in $dir/ca.pem (key $dir/ca-key.pem, keep it safe)"
}

cmd_cert() {
        local dir=$1 name=$2 days=$3 h
        shift 3
        [ -f "$dir/ca.pem" ] && [ -f "$dir/ca-key.pem" ] ||
                die "no CA in '$dir' ('gpuvirt-certs.sh ca $dir' makes one)."
        [[ "$name" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$ ]] ||
                die "'$name' is not a file name of letters, digits, '.', '_' and '-'."
        [ $# -gt 0 ] || die "cert: name at least one DNS name or IP address the $name is reached at."
        no_clobber "$dir/$name.pem" "$dir/$name-key.pem"
        new_key "$dir/$name-key.pem"
        if [ "$TOOL" = certtool ]; then
                local t
                t=$(mktemp)
                {
                        echo "cn = \"$1\""
                        echo "organization = \"gpuvirt\""
                        echo "serial = $(date +%s%N | cut -c1-15)"
                        echo "expiration_days = $days"
                        for h in "$@"; do
                                if is_ip "$h"; then echo "ip_address = \"$h\""
                                else echo "dns_name = \"$h\""
                                fi
                        done
                        echo "tls_www_server"
                        echo "tls_www_client"
                        echo "signing_key"
                } >"$t"
                certtool --generate-certificate --load-privkey "$dir/$name-key.pem" \
                        --load-ca-certificate "$dir/ca.pem" --load-ca-privkey "$dir/ca-key.pem" \
                        --template "$t" --hash=SHA384 --outfile "$dir/$name.pem" >/dev/null 2>&1 ||
                        { rm -f "$t"; die "certtool could not make the certificate for $name."; }
                rm -f "$t"
        else
                local san="" ext csr
                for h in "$@"; do
                        if is_ip "$h"; then san="$san,IP:$h"; else san="$san,DNS:$h"; fi
                done
                ext=$(mktemp)
                csr=$(mktemp)
                printf '%s\n' "subjectAltName=${san#,}" "basicConstraints=critical,CA:FALSE" \
                        "keyUsage=critical,digitalSignature" \
                        "extendedKeyUsage=serverAuth,clientAuth" >"$ext"
                openssl req -new -key "$dir/$name-key.pem" -subj "/O=gpuvirt/CN=$1" \
                        -out "$csr" 2>/dev/null &&
                        openssl x509 -req -in "$csr" -CA "$dir/ca.pem" -CAkey "$dir/ca-key.pem" \
                                -set_serial "$(date +%s%N | cut -c1-15)" -sha384 -days "$days" \
                                -extfile "$ext" -out "$dir/$name.pem" 2>/dev/null ||
                        { rm -f "$ext" "$csr"; die "openssl could not make the certificate for $name."; }
                rm -f "$ext" "$csr"
        fi
        echo "gpuvirt-certs: $dir/$name.pem (key $dir/$name-key.pem) for $*"
}

[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help | help) usage; exit 0 ;; esac
CMD=$1
shift
DAYS=
ARGS=()
while [ $# -gt 0 ]; do
        case $1 in
        --days)
                [ $# -ge 2 ] || die "--days needs a number."
                [[ "$2" =~ ^[1-9][0-9]{0,4}$ ]] || die "--days: '$2' is not 1..99999."
                DAYS=$2
                shift 2
                ;;
        --*) die "unknown option '$1' (valid: --days)." ;;
        *) ARGS+=("$1"); shift ;;
        esac
done
TOOL=$(tool)
case $CMD in
ca)
        [ ${#ARGS[@]} -eq 1 ] || die "usage: gpuvirt-certs.sh ca DIR [--days N]"
        cmd_ca "${ARGS[0]}" "${DAYS:-3650}"
        ;;
cert)
        [ ${#ARGS[@]} -ge 3 ] || die "usage: gpuvirt-certs.sh cert DIR NAME HOST... [--days N]"
        cmd_cert "${ARGS[0]}" "${ARGS[1]}" "${DAYS:-825}" "${ARGS[@]:2}"
        ;;
*) usage >&2; die "unknown command '$CMD'; valid: ca, cert." ;;
esac
