#!/bin/sh
# Throwaway development PKI for docker/docker-compose.yml, made with the openssl CLI (the `pki`
# one-shot service runs it in alpine/openssl). NOT for production: the CA exists only to sign
# these two certificates, and its key is deleted afterwards.
#
# Writes into $PKI_DIR (default /pki):
#   ca.pem                 the root CA: the sidecar's clientAuth.caBundle, and curl's --cacert
#   ca.crl                 that CA's CRL (empty), so the demo runs with revocation checking on
#   server.pem server.key  the sidecar's certificate, for $SERVER_SANS
#   device.pem device.key  one device (client) certificate, SAN URI urn:device:$DEVICE_ID
# All ECDSA P-256 (what a phone's Secure Enclave / Android Keystore key is), keys unencrypted
# PKCS#8 with mode 0600, files owned by $PKI_OWNER (the image's non-root user) so the sidecar
# can read its key from a read-only volume.
#
# Idempotent: a complete set with more than a day left on both leaves is kept, so the curl line
# keeps working across `docker compose up` runs. Delete the volume to start over:
#   docker compose -f docker/docker-compose.yml down -v
set -eu

dir="${PKI_DIR:-/pki}"
owner="${PKI_OWNER:-65532:65532}"
device_id="${DEVICE_ID:-compose-device-1}"
server_sans="${SERVER_SANS:-DNS:localhost,DNS:sidecar,IP:127.0.0.1,IP:::1}"
days="${LEAF_DAYS:-90}"

mkdir -p "$dir"
cd "$dir"

if [ -s ca.pem ] && [ -s ca.crl ] && [ -s server.pem ] && [ -s server.key ] && [ -s device.pem ] && [ -s device.key ] \
  && openssl x509 -in server.pem -noout -checkend 86400 >/dev/null 2>&1 \
  && openssl x509 -in device.pem -noout -checkend 86400 >/dev/null 2>&1; then
  echo "gen-dev-pki: keeping the existing PKI in $dir"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
umask 077

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# One small config per certificate: no dependency on the distribution's openssl.cnf defaults.
cat >"$work/ca.cnf" <<EOF
[req]
distinguished_name = dn
prompt = no
x509_extensions = ext
[dn]
O = mtls-sidecar compose demo
CN = mtls-sidecar compose dev CA
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
# For `openssl ca -gencrl`: the CRL outlives the leaves by a day, and the whole set is
# re-created before a leaf has less than a day left, so the CRL never goes stale.
[ca]
default_ca = dev_ca
[dev_ca]
database = $work/index.txt
crlnumber = $work/crlnumber
default_md = sha256
default_crl_days = $((days + 1))
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF

cat >"$work/server.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $server_sans
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

cat >"$work/device.ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectAltName = URI:urn:device:$device_id
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF

newkey "$work/ca.key"
openssl req -new -x509 -config "$work/ca.cnf" -key "$work/ca.key" -sha256 -days 3650 \
  -set_serial "$(serial)" -out "$work/ca.pem"

issue() { # name subject extfile
  newkey "$work/$1.key"
  openssl req -new -key "$work/$1.key" -subj "$2" -out "$work/$1.csr"
  openssl x509 -req -in "$work/$1.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -sha256 \
    -days "$days" -set_serial "$(serial)" -extfile "$3" -out "$work/$1.pem"
}
issue server "/O=mtls-sidecar compose demo/CN=localhost" "$work/server.ext"
issue device "/O=mtls-sidecar compose demo/CN=$device_id" "$work/device.ext"

# An empty CRL signed by the CA (nothing revoked; the CA key is gone after this run, so revoking
# the demo device means re-creating the volume).
: >"$work/index.txt"
echo 1000 >"$work/crlnumber"
openssl ca -config "$work/ca.cnf" -gencrl -keyfile "$work/ca.key" -cert "$work/ca.pem" -out "$work/ca.crl" 2>/dev/null

# Move into place; the CA key stays behind in $work and is deleted with it.
for f in ca.pem ca.crl server.pem device.pem; do cp "$work/$f" "$f"; chmod 0644 "$f"; done
for f in server.key device.key; do cp "$work/$f" "$f"; chmod 0600 "$f"; done
if [ "$(id -u)" = 0 ]; then chown "$owner" ca.pem ca.crl server.pem server.key device.pem device.key; fi

echo "gen-dev-pki: wrote ca.pem ca.crl server.pem server.key device.pem device.key to $dir (device id $device_id)"
