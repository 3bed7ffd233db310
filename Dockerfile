# One image for the Tollgate CA, its admission webhook, the sidecar and the capture init container:
# the entrypoint is the `tollgate` CLI, so a container's args are the command
# (`ca serve ...`, `sidecar run ...`, `capture ...`). See README, "Image".
#
#   docker build -t ghcr.io/tollgate/tollgate:0.1.0 .
#   buildah bud --build-arg BASE=oci-archive:/path/base.tar -t tollgate .   (scripts/image-test.sh)
#
# BASE must be a Debian bookworm image with Node.js 20 as `node` on PATH.
ARG BASE=node:20-bookworm-slim

# Build: every dependency, then the one-file bundle of the CLI (scripts/bundle.js). The bundle keeps
# the absolute location of our sources to find package.json, so both stages use /app.
FROM ${BASE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --legacy-peer-deps as the lockfile was made: the dev-only kubectl layer package names aws-cdk-lib
# as a peer that nothing here needs.
RUN npm ci --legacy-peer-deps --no-audit --no-fund --ignore-scripts
COPY . .
RUN npm run build && TOLLGATE_BUNDLE=prebuilt node bin/tollgate.js --version
# Production dependencies only, for what the bundle leaves out: node-forge, @peculiar/x509 and
# reflect-metadata are loaded from node_modules when first needed (PKCS#12, the CA's authorities).
RUN mkdir /prod && cp package.json package-lock.json /prod/ \
 && npm ci --prefix /prod --omit=dev --legacy-peer-deps --no-audit --no-fund --ignore-scripts

FROM ${BASE}
# iptables for `tollgate capture` (the tollgate-init container): Debian's package has both the nft
# and the legacy backend. Only that container runs as root, with NET_ADMIN and NET_RAW.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 2102 tollgate \
 && useradd --system --uid 2102 --gid 2102 --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin tollgate
WORKDIR /app
COPY --from=build /prod/node_modules ./node_modules
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/bin/tollgate.js ./bin/tollgate.js
COPY --from=build /app/scripts/bundle.js ./scripts/bundle.js
COPY --from=build /app/dist/tollgate.cjs ./dist/tollgate.cjs
RUN ln -s /app/bin/tollgate.js /usr/local/bin/tollgate
# The sources are not in the image: run the bundle as built, without checking it against them.
ENV TOLLGATE_BUNDLE=prebuilt NODE_ENV=production
# The sidecar's UID and GID (CONTRACT.md): the capture rules never redirect this UID.
USER 2102:2102
ENTRYPOINT ["node", "/app/bin/tollgate.js"]
CMD ["--help"]
