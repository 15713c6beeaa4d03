#!/bin/sh
# Splits the PKI that `basalt dev --prepare-only --data-dir SRC` made into one
# directory per service under DST, each holding only what that service's config
# in deploy/config names: its own internal certificate and key, the internal CA
# certificate, and the public certificates it serves. Issuer keys go to DST/ca-keys
# alone (the CA's); the root keys and the internal CA's key stay in SRC, which no
# running service mounts. docker-compose.yml's setup service and
# deploy/k8s/secrets.sh use it; crates/basalt/tests/deploy.rs checks the table
# against the configs.
#
# Usage: pki-split.sh SRC DST     (idempotent: files are copied again)
set -eu

src=${1:?usage: pki-split.sh SRC DST}
dst=${2:?usage: pki-split.sh SRC DST}

# service: the files of SRC/pki it needs.
pki_files() {
    case "$1" in
        sa) echo "internal-ca.pem sa.pem sa.key" ;;
        ra) echo "internal-ca.pem ra.pem ra.key" ;;
        va) echo "internal-ca.pem va.pem va.key" ;;
        va-remote) echo "internal-ca.pem va-remote.pem va-remote.key" ;;
        ca) echo "internal-ca.pem ca.pem ca.key intermediate-ecdsa.pem intermediate-rsa.pem" ;;
        nonce) echo "internal-ca.pem nonce.pem nonce.key" ;;
        wfe) echo "internal-ca.pem wfe.pem wfe.key wfe-https.pem wfe-https.key intermediate-x2.pem" ;;
        ocsp) echo "internal-ca.pem ocsp.pem ocsp.key intermediate-ecdsa.pem intermediate-rsa.pem" ;;
        admin) echo "internal-ca.pem admin.pem admin.key" ;;
        *) echo "pki-split.sh: no service $1" >&2; exit 1 ;;
    esac
}

# The CA's issuer keys (SRC/ca-keys), and no other.
ca_keys="intermediate-ecdsa.key intermediate-rsa.key"

copy() {
    from=$1 to=$2 mode=$3
    shift 3
    mkdir -p "$to"
    chmod 0700 "$to"
    for file in "$@"; do
        cp "$from/$file" "$to/$file.tmp"
        chmod "$mode" "$to/$file.tmp"
        mv "$to/$file.tmp" "$to/$file"
    done
}

umask 077
for service in sa ra va va-remote ca nonce wfe ocsp admin; do
    # shellcheck disable=SC2046 # the file lists are words on purpose
    copy "$src/pki" "$dst/$service" 0600 $(pki_files "$service")
done
# shellcheck disable=SC2086
copy "$src/ca-keys" "$dst/ca-keys" 0600 $ca_keys
echo "pki-split.sh: $dst holds one directory per service, and ca-keys for the CA"
