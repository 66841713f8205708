#!/bin/sh
# The weftd image's entrypoint: weftd with the container's arguments, on the
# iptables backend the host's rules are in. A container's iptables changes the
# host's tables only through the backend the host uses, and the image cannot
# know which: like kube-proxy's iptables-wrapper, look at both and take
# legacy only when it holds more rules than nf_tables (a fresh host, with no
# rules in either, gets Debian's default, nf_tables).
set -eu
count() {
  n=0
  for cmd in "$@"; do
    # a backend the kernel cannot load reads as empty
    out=$("$cmd" 2>/dev/null) || out=
    n=$((n + $(printf '%s\n' "$out" | { c=0; while IFS= read -r l; do case $l in -A*) c=$((c + 1)) ;; esac; done; echo "$c"; })))
  done
  echo "$n"
}
legacy=$(count /opt/weft/iptables-legacy/iptables-save /opt/weft/iptables-legacy/ip6tables-save)
nft=$(count /usr/sbin/iptables-save /usr/sbin/ip6tables-save)
if [ "$legacy" -gt "$nft" ]; then
  PATH=/opt/weft/iptables-legacy:$PATH
  export PATH
fi
exec /opt/weft/bin/weftd "$@"
