#!/usr/bin/env bash
# Makes the webhook's serving certificate with the openssl CLI: a private CA (ECDSA P-256, 10 years) and a
# certificate for aegis-inject.aegis-system.svc signed by it (825 days), then stores the pair as the Secret
# aegis-system/aegis-inject-tls and puts the CA into the MutatingWebhookConfiguration's caBundle.
#
#   deploy/webhook-cert.sh                 # needs kubectl pointed at the cluster, after kubectl apply -f deploy/
#   deploy/webhook-cert.sh --out DIR       # also keep ca.crt, tls.crt, tls.key in DIR
#   deploy/webhook-cert.sh --dry-run --out DIR   # only make the files; print the kubectl commands
#
# Re-running replaces the pair; aegis-inject picks the new files up within seconds (no restart). With
# cert-manager, use a Certificate instead (docs/deploy.md).
set -euo pipefail

NS=aegis-system
SVC=aegis-inject
WEBHOOK=aegis-inject
OUT=
DRY=0
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	--namespace) NS=$2; shift 2 ;;
	--dry-run) DRY=1; shift ;;
	-h | --help) sed -n '2,12p' "$0"; exit 0 ;;
	*) echo "webhook-cert.sh: unknown option $1" >&2; exit 2 ;;
	esac
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
	-subj "/CN=aegis-inject-ca" -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$SVC.$NS.svc" \
	-keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
cat >"$work/ext" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:$SVC,DNS:$SVC.$NS,DNS:$SVC.$NS.svc,DNS:$SVC.$NS.svc.cluster.local
EXT
openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
	-days 825 -extfile "$work/ext" -out "$work/tls.crt" 2>/dev/null
openssl verify -CAfile "$work/ca.crt" "$work/tls.crt" >/dev/null

if [ -n "$OUT" ]; then
	mkdir -p "$OUT"
	cp "$work/ca.crt" "$work/tls.crt" "$work/tls.key" "$OUT/"
fi
ca_b64=$(base64 -w0 <"$work/ca.crt")
patch="[{\"op\":\"replace\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_b64\"}]"
if [ "$DRY" = 1 ]; then
	echo "kubectl -n $NS create secret tls $SVC-tls --cert=tls.crt --key=tls.key --dry-run=client -o yaml | kubectl apply -f -"
	echo "kubectl patch mutatingwebhookconfiguration $WEBHOOK --type=json -p '$patch'"
	exit 0
fi
kubectl -n "$NS" create secret tls "$SVC-tls" --cert="$work/tls.crt" --key="$work/tls.key" \
	--dry-run=client -o yaml | kubectl apply -f -
kubectl patch mutatingwebhookconfiguration "$WEBHOOK" --type=json -p "$patch"
echo "webhook-cert.sh: Secret $NS/$SVC-tls and the caBundle of $WEBHOOK are set"
