#!/usr/bin/env bash
# Build the weftd image without an image registry and load it into a Docker:
# the same image the Dockerfile builds (one definition: image/packages,
# image/files, image/rootfs.mjs, and the Dockerfile's last stage for the
# entrypoint and environment), made from
#   - the checkout's build (`npm run build`: dist/weftd.mjs, the udp addon),
#   - Debian's packages, downloaded from the mirror this machine's apt uses
#     (apt-get download, checked against the signed indexes) and unpacked with
#     dpkg-deb, no chroot, no maintainer scripts,
#   - this machine's Node.js (`command -v node`, 20 or newer),
# assembled as a root filesystem and `docker import`ed. Prints the image size.
#
#   scripts/image.sh [--docker-host URL] [--tag T] [--cache DIR]
#
# --docker-host  the Engine API to load into (default $DOCKER_HOST, else unix:///var/run/docker.sock)
# --tag          default: image/name, tagged with package.json's version
# --cache        keeps the downloaded packages between runs (default: a temp dir, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

usage() { sed -n '13,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
docker_host=${DOCKER_HOST:-unix:///var/run/docker.sock}
tag=
cache=
while [ $# -gt 0 ]; do
  case $1 in
    --docker-host) docker_host=${2:?--docker-host needs a URL}; shift 2 ;;
    --docker-host=*) docker_host=${1#*=}; shift ;;
    --tag) tag=${2:?--tag needs a name}; shift 2 ;;
    --tag=*) tag=${1#*=}; shift ;;
    --cache) cache=${2:?--cache needs a directory}; shift 2 ;;
    --cache=*) cache=${1#*=}; shift ;;
    -h|--help) usage ;;
    *) echo "image.sh: unknown argument $1" >&2; usage ;;
  esac
done

fail() { echo "image.sh: $*" >&2; exit 1; }
node=$(command -v node) || fail "no node on PATH (Node.js 20 or newer)"
node=$(readlink -f "$node")
major=$("$node" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "$node is Node.js $major; weftd needs 20 or newer (Debian's own nodejs is too old)"
version=$("$node" -p 'require("./package.json").version')
[ -n "$tag" ] || tag="$(tr -d '[:space:]' < image/name):$version"
for f in dist/weftd.mjs build/Release/weft_udp.node; do
  [ -e "$f" ] || fail "$f is missing: run \`npm run build\` (scripts/setup.sh does)"
done
for cmd in apt-get apt-cache dpkg-deb strip tar docker; do
  command -v "$cmd" >/dev/null || fail "no $cmd on PATH (scripts/setup.sh installs what this needs)"
done

docker -H "$docker_host" version >/dev/null 2>&1 || fail "no Docker answers at $docker_host (--docker-host, or start dockerd)"

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-image-XXXXXX")
trap 'rm -rf "$work"' EXIT
if [ -z "$cache" ]; then cache=$work/debs; fi
mkdir -p "$cache"

# The packages and everything they depend on; alternatives ("a | b") bring
# both, which costs a download and nothing in the image: only files
# image/files names, and the libraries those load, are copied.
mapfile -t wanted < <(sed 's/#.*//; /^[[:space:]]*$/d' image/packages)
fetch() {
  mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${wanted[@]}" 2>/dev/null | grep -v '^[[:space:]<]' | sort -u)
  [ ${#closure[@]} -ge ${#wanted[@]} ] || return 1
  # each line: 'URI' pkg_version_arch.deb size hash
  mapfile -t debs < <(apt-get download --print-uris "${closure[@]}" 2>/dev/null | awk '{print $2}')
  [ ${#debs[@]} -eq ${#closure[@]} ] || return 1
  missing=()
  for file in "${debs[@]}"; do
    [ -s "$cache/$file" ] || missing+=("${file%%_*}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "image.sh: downloading ${#missing[@]} of ${#closure[@]} Debian packages"
  (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "${missing[@]}" >/dev/null)
}
# no package lists yet (a fresh machine) or stale ones (a version gone from the mirror): update once
if ! fetch; then
  echo "image.sh: apt-get update"
  apt-get update -q >/dev/null
  fetch || fail "cannot resolve or download ${wanted[*]} from this machine's apt sources"
fi

root=$work/debian
mkdir -p "$root"
for file in "${debs[@]}"; do dpkg-deb -x "$cache/$file" "$root"; done

"$node" image/rootfs.mjs --root "$root" --weft "$REPO" --node "$node" --out "$work/rootfs"
tar -C "$work/rootfs" --sort=name --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .

# The Dockerfile's last stage says what the image runs: its ENV, ENTRYPOINT,
# CMD, WORKDIR and LABEL lines become `docker import --change`s.
changes=()
while IFS= read -r line; do changes+=(--change "$line"); done < <(
  awk '/^FROM /{n++} {print n "\t" $0}' Dockerfile | awk -F'\t' -v last="$(grep -c '^FROM ' Dockerfile)" \
    '$1 == last && $2 ~ /^(ENV|ENTRYPOINT|CMD|WORKDIR|LABEL|USER|STOPSIGNAL) / {print $2}')
[ ${#changes[@]} -gt 0 ] || fail "Dockerfile: no ENTRYPOINT/ENV in its last stage"

docker -H "$docker_host" import "${changes[@]}" "$work/rootfs.tar" "$tag" >/dev/null
size=$(docker -H "$docker_host" image inspect --format '{{.Size}}' "$tag")
echo "image.sh: $tag loaded into $docker_host: $((size / 1000000)) MB ($size bytes; node $("$node" --version) $(du -sh "$work/rootfs/usr/local/bin/node" | cut -f1) of it)"
