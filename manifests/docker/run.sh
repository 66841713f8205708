#!/bin/sh
# weftd on a Docker host without Kubernetes: the DaemonSet's pod
# (manifests/kubernetes/daemonset.yaml) as one `docker run`, with the same
# image, privileges, mounts and arguments (test/unit/image.test.ts holds the
# two together; the DaemonSet's comments say why each privilege is there).
#
#   scripts/image.sh                 # or: docker pull, where a registry holds the image
#   WEFT_ETCD_ENDPOINTS=http://10.0.0.1:2379 sh manifests/docker/run.sh
#
# Differences from the pod, each because no kubelet is here:
# - /dev/net/tun comes by --device, which also allows it in the container's
#   device cgroup whatever the runtime's defaults (runc 1.2.0-1.2.3 left it out);
# - the host name is $WEFT_HOST_NAME or the machine's, the public IP weftd's
#   default (the first address of the default route's interface), and /livez,
#   /readyz and /metrics stay on 127.0.0.1:9811, weftd's default: no prober
#   from elsewhere needs them.
# dockerd must start with the options weftd writes (manifests/systemd/
# docker.service.d/weft.conf); the agent comes back after each dockerd
# restart by its restart policy. net.ipv4.ip_forward must be on, which dockerd
# does when it starts; the container cannot (its /proc/sys is read-only).
set -eu
: "${WEFT_ETCD_ENDPOINTS:?set WEFT_ETCD_ENDPOINTS to your etcd, e.g. http://10.0.0.1:2379}"
# what kubelet does for the DaemonSet's DirectoryOrCreate and FileOrCreate hostPaths
mkdir -p /run/weft /var/lib/weft
[ -e /run/xtables.lock ] || : > /run/xtables.lock
exec docker run --detach --name weftd --restart always --stop-timeout 20 \
  --network host \
  --cap-drop ALL --cap-add NET_ADMIN --cap-add NET_RAW \
  --memory 128m \
  --mount type=bind,source=/run/weft,target=/run/weft \
  --mount type=bind,source=/run/xtables.lock,target=/run/xtables.lock \
  --mount type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock \
  --mount type=bind,source=/var/lib/weft,target=/var/lib/weft \
  --device /dev/net/tun:/dev/net/tun \
  --env WEFT_ETCD_ENDPOINTS \
  --env WEFT_PREFIX="${WEFT_PREFIX:-/weft}" \
  --env WEFT_OVERLAY="${WEFT_OVERLAY:-default}" \
  --env WEFT_LOG_LEVEL="${WEFT_LOG_LEVEL:-info}" \
  --env WEFT_HOST_NAME \
  ghcr.io/weft-dev/weftd:0.1.0 --subnet-file=/run/weft/subnet.env --docker-opts-file=/run/weft/docker
