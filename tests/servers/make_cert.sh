#!/usr/bin/env bash
# Makes a throwaway certificate for 127.0.0.1 / localhost, for test servers.
#
# Usage: tests/servers/make_cert.sh DIR
#   DIR/cert.pem  server certificate (SAN DNS:localhost, IP:127.0.0.1)
#   DIR/key.pem   its private key (unencrypted)
#   DIR/ca.pem    the throwaway CA that signed it: what a client trusts
#
# The CA's key is deleted at once, so nothing else can ever be signed with it.
# A leaf signed by a CA (rather than a lone self-signed leaf) is accepted by
# every TLS stack the tests use: OpenSSL (Python, swaks) and rustls/webpki,
# which refuses CA certificates used as end-entity certificates.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
    -subj "/CN=allerta test CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$work/ca.key" -out "$dir/ca.pem" 2>/dev/null

openssl req -new -newkey rsa:2048 -nodes \
    -subj "/CN=localhost" \
    -keyout "$dir/key.pem" -out "$work/leaf.csr" 2>/dev/null

cat >"$work/leaf.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
openssl x509 -req -in "$work/leaf.csr" -days 2 \
    -CA "$dir/ca.pem" -CAkey "$work/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
    -extfile "$work/leaf.ext" -out "$dir/cert.pem" 2>/dev/null

chmod 600 "$dir/key.pem"
echo "$dir/cert.pem $dir/key.pem $dir/ca.pem"
