# The weftd image, for registry builds (what a release pipeline runs):
#   docker build -t ghcr.io/weft-dev/weftd:$(node -p 'require("./package.json").version') .
# scripts/image.sh builds the same image where no image registry can be
# reached, from the same definition: image/packages (the Debian packages),
# image/files (what the image holds), image/rootfs.mjs (which assembles it and
# adds the libraries), and this file's last stage (the entrypoint and
# environment, which it hands to `docker import --change`).
ARG NODE_IMAGE=node:20-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# npm run build: dist/weftd.mjs and the udp backend's addon (node-gyp: the
# node image has python3, make and g++)
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json binding.gyp ./
COPY vendor vendor
COPY native native
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src src
COPY scripts/bundle-weftd.mjs scripts/
COPY bin bin
RUN npm run build

# the Debian packages installed, then only image/files and their libraries
# copied out to /rootfs
FROM ${DEBIAN_IMAGE} AS rootfs
COPY image/packages /image/packages
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils $(sed 's/#.*//' /image/packages) \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=build /src/package.json /weft/package.json
COPY --from=build /src/bin /weft/bin
COPY --from=build /src/dist /weft/dist
COPY --from=build /src/build/Release/weft_udp.node /weft/build/Release/weft_udp.node
COPY image /image
RUN node /image/rootfs.mjs --root / --weft /weft --node /usr/local/bin/node --out /rootfs

# What the image runs. scripts/image.sh reads the ENV and ENTRYPOINT lines
# below: keep each instruction on one line.
FROM scratch
COPY --from=rootfs /rootfs /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ENTRYPOINT ["/opt/weft/entrypoint.sh"]
