#!/bin/sh
# Creates the Secrets the manifests in this directory mount, from a PKI made with
#   basalt dev --prepare-only --data-dir DIR --api-name acme.example.net
# Each service gets only its own files (deploy/pki-split.sh); the issuer keys go
# to basalt-ca-keys, which only the CA mounts; the root keys and the internal CA's
# key stay in DIR, off the cluster. The database password is made once.
#
# Usage: NAMESPACE=basalt deploy/k8s/secrets.sh DIR
set -eu

src=${1:?usage: secrets.sh DIR}
ns=${NAMESPACE:-basalt}
split=$(mktemp -d)
trap 'rm -rf "$split"' EXIT

"$(dirname "$0")/../pki-split.sh" "$src" "$split"

apply_secret() {
    name=$1
    shift
    kubectl -n "$ns" create secret generic "$name" "$@" --dry-run=client -o yaml \
        | kubectl -n "$ns" apply -f -
}

for service in sa ra va va-remote ca nonce wfe ocsp admin; do
    apply_secret "basalt-pki-$service" --from-file="$split/$service"
done
apply_secret basalt-ca-keys --from-file="$split/ca-keys"

if ! kubectl -n "$ns" get secret basalt-db >/dev/null 2>&1; then
    password=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    apply_secret basalt-db --from-literal=password="$password"
fi
