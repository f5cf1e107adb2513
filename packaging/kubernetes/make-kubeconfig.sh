#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Writes the kubeconfig a node's noderebootd uses: the API server and its CA from the current
# kubectl context, and a token of the ServiceAccount "nodereboot" (rbac.yaml in this folder).
#
#   make-kubeconfig.sh --duration 8760h [-o FILE]   a bound token (TokenRequest; kubectl >= 1.24),
#                                                   valid for that long; run again to renew
#   make-kubeconfig.sh --secret [-o FILE]           a long-lived token from a Secret of type
#                                                   kubernetes.io/service-account-token, created if
#                                                   missing (any kubectl, Debian's 1.20 included);
#                                                   revoked by deleting the Secret
# Options:
#   -o, --output FILE        write FILE (mode 0600, replaced atomically) instead of standard output
#   --server URL             the address the nodes use, when it differs from the context's
#   --ca-file FILE           the CA to trust instead of the context's
#   --context NAME           the kubectl context to read (default: the current one)
#   --namespace NS           the ServiceAccount's namespace (default kube-system)
#   --service-account NAME   (default nodereboot); the Secret is NAME-token
#   --node NAME              with --duration: bind the token to the Node NAME (Kubernetes 1.31 or
#                            later); admission-policy.yaml then lets it change that Node only
# The kubectl used is $KUBECTL, else "kubectl" from PATH.
set -euo pipefail

prog="${0##*/}"
kubectl_bin="${KUBECTL:-kubectl}"
namespace=kube-system
sa=nodereboot
mode=
duration=
output=
server=
ca_file=
context=()
bound_node=

die() {
        echo "$prog: $*" >&2
        exit 1
}

usage() {
        sed -n '3,/^set /s/^# \{0,1\}//p' "$0"
}

need_arg() {
        [[ $# -ge 2 && -n "$2" ]] || die "$1 needs a value"
}

while [[ $# -gt 0 ]]; do
        case "$1" in
        --duration) need_arg "$@"; mode=bound; duration="$2"; shift 2 ;;
        --duration=*) mode=bound; duration="${1#*=}"; shift ;;
        --secret) mode=secret; shift ;;
        -o|--output) need_arg "$@"; output="$2"; shift 2 ;;
        --output=*) output="${1#*=}"; shift ;;
        --server) need_arg "$@"; server="$2"; shift 2 ;;
        --server=*) server="${1#*=}"; shift ;;
        --ca-file) need_arg "$@"; ca_file="$2"; shift 2 ;;
        --ca-file=*) ca_file="${1#*=}"; shift ;;
        --context) need_arg "$@"; context=(--context "$2"); shift 2 ;;
        --context=*) context=(--context "${1#*=}"); shift ;;
        --namespace|-n) need_arg "$@"; namespace="$2"; shift 2 ;;
        --namespace=*) namespace="${1#*=}"; shift ;;
        --service-account) need_arg "$@"; sa="$2"; shift 2 ;;
        --service-account=*) sa="${1#*=}"; shift ;;
        --node) need_arg "$@"; bound_node="$2"; shift 2 ;;
        --node=*) bound_node="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "$prog: unknown argument: $1" >&2; usage >&2; exit 2 ;;
        esac
done
[[ -n "$mode" ]] || die "choose --duration D (a bound token) or --secret (a long-lived token); see --help"
[[ -z "$bound_node" || "$mode" == bound ]] || die "--node binds a TokenRequest token: use it with --duration"
[[ -z "$duration" || "$duration" =~ ^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$ ]] ||
        die "--duration wants a Go duration such as 8760h or 720h30m, not '$duration'"

kc() {
        "$kubectl_bin" "${context[@]}" "$@"
}

# A value written into the kubeconfig between double quotes.
check_value() {
        [[ "$2" != *[\"\\]* && "$2" != *$'\n'* ]] || die "$1 contains a quote, backslash or newline: $2"
}

# -- the cluster, from the context (--flatten inlines a certificate-authority file) ---------------
view() {
        kc config view --minify --flatten -o "jsonpath=$1"
}
cluster_name="$(view '{.clusters[0].name}')" || die "cannot read the kubectl context"
[[ -n "$cluster_name" ]] || die "the kubectl context names no cluster"
[[ -n "$server" ]] || server="$(view '{.clusters[0].cluster.server}')"
[[ "$server" == https://* ]] || die "the API server address must be https://, not '$server' (use --server)"
tls_server_name="$(view '{.clusters[0].cluster.tls-server-name}')"
if [[ -n "$ca_file" ]]; then
        [[ -r "$ca_file" ]] || die "cannot read $ca_file"
        ca_data="$(base64 -w0 <"$ca_file")"
else
        ca_data="$(view '{.clusters[0].cluster.certificate-authority-data}')"
        if [[ -z "$ca_data" ]]; then
                [[ "$(view '{.clusters[0].cluster.insecure-skip-tls-verify}')" != true ]] ||
                        die "the context does not verify the API server (insecure-skip-tls-verify); pass --ca-file"
                echo "$prog: the context names no CA; the node will verify the API server against its system CAs" >&2
        fi
fi
check_value server "$server"
check_value tls-server-name "$tls_server_name"
check_value cluster "$cluster_name"

# -- the token -----------------------------------------------------------------------------------
kc get serviceaccount "$sa" -n "$namespace" -o name >/dev/null ||
        die "no ServiceAccount $namespace/$sa: apply rbac.yaml first (kubectl apply -f rbac.yaml)"

if [[ "$mode" == bound ]]; then
        # ("kubectl create token --help" succeeds on old kubectls too: it shows create's help.)
        kc create --help 2>/dev/null | grep -qE '^[[:space:]]+token[[:space:]]' ||
                die "this kubectl has no 'create token' (needs 1.24 or later): use --secret"
        bind=()
        [[ -z "$bound_node" ]] || bind=(--bound-object-kind Node --bound-object-name "$bound_node")
        token="$(kc create token "$sa" -n "$namespace" --duration "$duration" "${bind[@]}")" ||
                die "the API server refused the token request${bound_node:+ (a token bound to Node $bound_node needs Kubernetes 1.31 or later and that Node to exist)}"
        # A JWT's payload says when it expires; the server may have shortened the duration
        # (--service-account-max-token-expiration).
        payload="$(cut -d. -f2 <<<"$token" | tr '_-' '/+')"
        while (( ${#payload} % 4 )); do payload+="="; done
        exp="$(base64 -d 2>/dev/null <<<"$payload" | grep -o '"exp":[0-9]*' | cut -d: -f2 || true)"
        if [[ -n "$exp" ]]; then
                echo "$prog: the token expires $(date -u -d "@$exp" '+%Y-%m-%d %H:%M UTC'); run $prog again before" >&2
        else
                echo "$prog: the token expires after $duration (or sooner, if the API server caps it); run $prog again before" >&2
        fi
else
        secret="$sa-token"
        if ! kc get secret "$secret" -n "$namespace" -o name >/dev/null 2>&1; then
                # --validate=false: a fixed manifest; no need for the OpenAPI schema (kubectl 1.20
                # fails without one).
                kc create --validate=false -f - >/dev/null <<EOF || die "cannot create the Secret $namespace/$secret"
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: $secret
  namespace: $namespace
  annotations:
    kubernetes.io/service-account.name: $sa
  labels:
    app.kubernetes.io/name: nodereboot
EOF
                echo "$prog: created the Secret $namespace/$secret; delete it to revoke the token" >&2
        fi
        type="$(kc get secret "$secret" -n "$namespace" -o 'jsonpath={.type}')"
        owner="$(kc get secret "$secret" -n "$namespace" \
                 -o 'jsonpath={.metadata.annotations.kubernetes\.io/service-account\.name}')"
        [[ "$type" == kubernetes.io/service-account-token && "$owner" == "$sa" ]] ||
                die "the Secret $namespace/$secret exists but is not a token of the ServiceAccount $sa"
        token=
        for _ in $(seq 30); do
                token="$(kc get secret "$secret" -n "$namespace" -o 'jsonpath={.data.token}')"
                [[ -z "$token" ]] || break
                sleep 1
        done
        [[ -n "$token" ]] || die "the token controller did not fill the Secret $namespace/$secret in 30 s"
        token="$(base64 -d <<<"$token")"
fi
[[ "$token" =~ ^[A-Za-z0-9._~+/=-]+$ ]] || die "the token has unexpected characters"

# -- the kubeconfig ------------------------------------------------------------------------------
write() {
        echo "# noderebootd's kubeconfig: ServiceAccount $namespace/$sa, made by $prog on $(date -u '+%Y-%m-%d')"
        echo "apiVersion: v1"
        echo "kind: Config"
        echo "clusters:"
        echo "- name: \"$cluster_name\""
        echo "  cluster:"
        echo "    server: \"$server\""
        [[ -z "$ca_data" ]] || echo "    certificate-authority-data: $ca_data"
        [[ -z "$tls_server_name" ]] || echo "    tls-server-name: \"$tls_server_name\""
        echo "users:"
        echo "- name: $sa"
        echo "  user:"
        echo "    token: $token"
        echo "contexts:"
        echo "- name: nodereboot"
        echo "  context:"
        echo "    cluster: \"$cluster_name\""
        echo "    user: $sa"
        echo "current-context: nodereboot"
}

if [[ -z "$output" || "$output" == - ]]; then
        write
else
        dir="$(dirname -- "$output")"
        tmp="$(umask 077 && mktemp "$dir/.kubeconfig.XXXXXX")"
        trap 'rm -f "$tmp"' EXIT
        write >"$tmp"
        mv -f -- "$tmp" "$output"
        trap - EXIT
        echo "$prog: wrote $output" >&2
fi
