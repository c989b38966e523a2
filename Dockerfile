# syntax=docker/dockerfile:1
# One multi-target Dockerfile for the three services:
#   docker build --target api .      docker build --target runner .      docker build --target stream-gateway .
# Each final stage: Node 20 slim, production dependencies only, non-root, a HEALTHCHECK, and the
# service's node process receiving signals directly (exec-form CMD; tini as PID 1 in the runner,
# which also reaps the Pulumi processes it starts).

ARG NODE_IMAGE=node:20.20-bookworm-slim
ARG PULUMI_VERSION=3.248.0

# ---- build: all dependencies, TypeScript compiled -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.base.json tsconfig.json ./
COPY shared/ shared/
COPY devkit/ devkit/
COPY console/ console/
COPY services/ services/
COPY modules/ modules/
COPY scripts/package.json scripts/tsconfig.json scripts/
COPY scripts/src/ scripts/src/
COPY e2e/package.json e2e/tsconfig.json e2e/
COPY e2e/test/ e2e/test/
# tsc -b, then the console's bundle (console/dist/public).
RUN npm ci --no-audit --no-fund && npm run build

# ---- prod-deps: only what the services and the example modules need at run time ---------------
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/shared/package.json shared/
COPY --from=build /app/console/package.json console/
COPY --from=build /app/services/api/package.json services/api/
COPY --from=build /app/services/runner/package.json services/runner/
COPY --from=build /app/services/stream-gateway/package.json services/stream-gateway/
COPY --from=build /app/modules/LocalFileSet/package.json modules/LocalFileSet/
COPY --from=build /app/modules/GcpServiceAccountCheck/package.json modules/GcpServiceAccountCheck/
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace=@pds/shared --workspace=@pds/console --workspace=@pds/api --workspace=@pds/runner --workspace=@pds/stream-gateway \
      --workspace=@pds/module-local-file-set --workspace=@pds/module-gcp-service-account-check

# ---- base: what every service image holds -------------------------------------------------------
FROM ${NODE_IMAGE} AS base
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080
WORKDIR /app
COPY --from=prod-deps --chown=root:root /app/node_modules node_modules
COPY --from=build /app/package.json ./
COPY --from=build /app/shared/package.json shared/
COPY --from=build /app/shared/dist/src shared/dist/src
EXPOSE 8080
USER node

# ---- api --------------------------------------------------------------------------------------
FROM base AS api
COPY --from=build /app/services/api/package.json services/api/
COPY --from=build /app/services/api/dist/src services/api/dist/src
# The web console the API serves under /console: the built bundle and where it is.
COPY --from=build /app/console/package.json console/
COPY --from=build /app/console/dist/build console/dist/build
COPY --from=build /app/console/dist/public console/dist/public
# The API validates kinds against the module descriptors; it does not run them.
COPY --from=build /app/modules/LocalFileSet/Pulumi.yaml /app/modules/LocalFileSet/module.yaml modules/LocalFileSet/
COPY --from=build /app/modules/GcpServiceAccountCheck/Pulumi.yaml /app/modules/GcpServiceAccountCheck/module.yaml modules/GcpServiceAccountCheck/
ENV MODULES_DIR=/app/modules
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "services/api/dist/src/server.js"]

# ---- stream-gateway -----------------------------------------------------------------------------
FROM base AS stream-gateway
COPY --from=build /app/services/stream-gateway/package.json services/stream-gateway/
COPY --from=build /app/services/stream-gateway/dist/src services/stream-gateway/dist/src
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
CMD ["node", "--enable-source-maps", "services/stream-gateway/dist/src/server.js"]

# ---- pulumi: the official CLI release at the version the tests build ---------------------------
FROM ${NODE_IMAGE} AS pulumi
ARG PULUMI_VERSION
ADD https://get.pulumi.com/releases/sdk/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz /tmp/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz
# The release's published checksums: the build stops unless the tarball matches its line.
ADD https://github.com/pulumi/pulumi/releases/download/v${PULUMI_VERSION}/pulumi-${PULUMI_VERSION}-checksums.txt /tmp/checksums.txt
RUN cd /tmp \
 && grep -E "^[0-9a-f]{64} +\*?pulumi-v${PULUMI_VERSION}-linux-x64\.tar\.gz$" checksums.txt > pulumi.sha256 \
 && sha256sum -c pulumi.sha256 \
 && mkdir -p /opt && tar -xzf /tmp/pulumi-v${PULUMI_VERSION}-linux-x64.tar.gz -C /opt && /opt/pulumi/pulumi version

# ---- runner -------------------------------------------------------------------------------------
FROM base AS runner
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends git tini ca-certificates bubblewrap slirp4netns nftables iproute2 util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/pulumi-deploy && chown node:node /var/lib/pulumi-deploy
COPY --from=pulumi /opt/pulumi /opt/pulumi
COPY --from=build /app/services/runner/package.json services/runner/
COPY --from=build /app/services/runner/dist/src services/runner/dist/src
COPY --from=build /app/modules/LocalFileSet/package.json /app/modules/LocalFileSet/Pulumi.yaml /app/modules/LocalFileSet/module.yaml modules/LocalFileSet/
COPY --from=build /app/modules/LocalFileSet/dist modules/LocalFileSet/dist
COPY --from=build /app/modules/GcpServiceAccountCheck/package.json /app/modules/GcpServiceAccountCheck/Pulumi.yaml /app/modules/GcpServiceAccountCheck/module.yaml modules/GcpServiceAccountCheck/
COPY --from=build /app/modules/GcpServiceAccountCheck/dist modules/GcpServiceAccountCheck/dist
# Pulumi home and plugin cache (WORK_DIR/pulumi-home), per-job folders and the (dev) file state
# backend live on one volume.
ENV PATH=/opt/pulumi:$PATH \
    PULUMI_BIN=/opt/pulumi/pulumi \
    PULUMI_SKIP_UPDATE_CHECK=true \
    MODULES_DIR=/app/modules \
    WORK_DIR=/var/lib/pulumi-deploy/work \
    PULUMI_BACKEND_URL=file:///var/lib/pulumi-deploy/state
VOLUME ["/var/lib/pulumi-deploy"]
# The runner stays uid 0 so that it can run each job in its slot's sandbox as the slot's own uid
# (RUNNER_ISOLATION=sandbox); compose and Kubernetes drop every capability but those that takes
# (docs/operations.md, "Job sandbox"). Jobs never run as root.
USER root
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["node", "--enable-source-maps", "services/runner/dist/src/main.js"]
