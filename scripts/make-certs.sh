#!/usr/bin/env bash
# Test CA and workload certificates for Aegis's mutual TLS, with the openssl CLI (tests and examples only:
# the keys are written unencrypted).
#
#   scripts/make-certs.sh ca DIR [--td TRUST_DOMAIN] [--name CN]
#       DIR/root-cert.pem, DIR/ca-key.pem: a self-signed EC P-256 CA for the trust domain.
#   scripts/make-certs.sh workload CA_DIR OUT_DIR NAMESPACE SERVICE_ACCOUNT [--td TD] [--days N] [--expired]
#       OUT_DIR/cert-chain.pem, key.pem, root-cert.pem (the file names Istio mounts, what
#       `aegis-proxy --cert-dir OUT_DIR` reads) for spiffe://TD/ns/NAMESPACE/sa/SERVICE_ACCOUNT.
#       --expired: valid in 2020 only. The files are replaced by rename, as a rotation would.
#
# Default trust domain: cluster.local. Exit status 0 on success, 2 on bad usage.
set -euo pipefail

usage() {
	sed -n '2,12p' "$0" >&2
	exit 2
}

td=cluster.local
days=365
expired=0
name="Aegis test CA"
pos=()
while [ $# -gt 0 ]; do
	case $1 in
	--td) td=$2; shift 2 ;;
	--days) days=$2; shift 2 ;;
	--expired) expired=1; shift ;;
	--name) name=$2; shift 2 ;;
	-h | --help) usage ;;
	*) pos+=("$1"); shift ;;
	esac
done
[ ${#pos[@]} -ge 1 ] || usage

make_ca() {
	local dir=$1
	mkdir -p "$dir"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
		-subj "/O=$td/CN=$name" -keyout "$dir/ca-key.pem" -out "$dir/root-cert.pem" \
		-addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
		2>/dev/null
	chmod 0644 "$dir/root-cert.pem"
	chmod 0600 "$dir/ca-key.pem"
}

make_workload() {
	local ca=$1 out=$2 ns=$3 sa=$4
	local id="spiffe://$td/ns/$ns/sa/$sa"
	mkdir -p "$out"
	local tmp
	tmp=$(mktemp -d "$out/.mk.XXXXXX")
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/O=$td" \
		-keyout "$tmp/key.pem" -out "$tmp/req.pem" 2>/dev/null
	cat >"$tmp/ext.cnf" <<-EOF
		basicConstraints=critical,CA:false
		keyUsage=critical,digitalSignature,keyEncipherment
		extendedKeyUsage=serverAuth,clientAuth
		subjectAltName=critical,URI:$id
	EOF
	if [ "$expired" = 1 ]; then
		# openssl ca is the CLI that takes explicit dates (x509 -req only counts days from now).
		mkdir -p "$tmp/db"
		: >"$tmp/db/index.txt"
		echo 01 >"$tmp/db/serial"
		cat >"$tmp/ca.cnf" <<-EOF
			[ca]
			default_ca = c
			[c]
			dir = $tmp/db
			database = $tmp/db/index.txt
			serial = $tmp/db/serial
			new_certs_dir = $tmp/db
			default_md = sha256
			policy = p
			copy_extensions = none
			[p]
			organizationName = optional
		EOF
		openssl ca -batch -config "$tmp/ca.cnf" -cert "$ca/root-cert.pem" -keyfile "$ca/ca-key.pem" \
			-in "$tmp/req.pem" -out "$tmp/cert.pem" -startdate 20200101000000Z -enddate 20200102000000Z \
			-extfile "$tmp/ext.cnf" -notext 2>/dev/null
	else
		openssl x509 -req -in "$tmp/req.pem" -CA "$ca/root-cert.pem" -CAkey "$ca/ca-key.pem" \
			-CAcreateserial -days "$days" -sha256 -extfile "$tmp/ext.cnf" -out "$tmp/cert.pem" 2>/dev/null
	fi
	cp "$ca/root-cert.pem" "$tmp/root.pem"
	chmod 0644 "$tmp/cert.pem" "$tmp/root.pem" "$tmp/key.pem"
	# Key first, then the certificate: a reader between the two renames sees a mismatch and retries,
	# never a certificate with a key that is not its own accepted as one.
	mv -f "$tmp/key.pem" "$out/key.pem"
	mv -f "$tmp/cert.pem" "$out/cert-chain.pem"
	mv -f "$tmp/root.pem" "$out/root-cert.pem"
	rm -rf "$tmp"
	rm -f "$ca/root-cert.srl"
}

case ${pos[0]} in
ca)
	[ ${#pos[@]} -eq 2 ] || usage
	make_ca "${pos[1]}"
	;;
workload)
	[ ${#pos[@]} -eq 5 ] || usage
	make_workload "${pos[1]}" "${pos[2]}" "${pos[3]}" "${pos[4]}"
	;;
*) usage ;;
esac
