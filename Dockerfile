# syntax=docker/dockerfile:1
# codex-api container image: dependencies -> build (TypeScript to JavaScript) -> runtime.
#
#   docker build -t codex-api:dev --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker run --rm -p 3000:3000 -e DATABASE_URL=postgres://... codex-api:dev
#
# The node:X.Y.Z-alpine tags must equal the `node` devDependency in package.json (the Node every npm script runs on):
# .ci/infra-checks fails when they drift. Written out in each FROM (not an ARG) so Dependabot can propose bumps.

# ---- deps: every dependency, for the build --------------------------------------------------------------------
FROM node:24.21.0-alpine AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the only install scripts in the tree are dev-only (the `node` binary package, which the image's own
# Node replaces, and esbuild's, which package.json's allowScripts denies anyway).
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund --ignore-scripts

# ---- build: TypeScript -> dist/ ------------------------------------------------------------------------------------
FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY services ./services
COPY layers ./layers
# The `codex` CLI (src/cli) calls the server through the client package's sources.
COPY packages/client/src ./packages/client/src
COPY infra/build ./infra/build
# tsc directly (not `npm run build`): node_modules/.bin/node would point at the uninstalled `node` package. Then each
# entry point bundled into itself (infra/build/bundle.ts: a start without loading ~675 modules one by one).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json && node infra/build/bundle.ts

# ---- prod-deps: production dependencies only ------------------------------------------------------------------------
FROM node:24.21.0-alpine AS prod-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --no-audit --no-fund --ignore-scripts

# ---- runtime ------------------------------------------------------------------------------------------------------
FROM node:24.21.0-alpine AS runtime
ARG APP_ENV=production
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG SOURCE=https://github.com/codex-api/codex-api
LABEL org.opencontainers.image.title="codex-api" \
      org.opencontainers.image.description="Multi-tenant event and webhook delivery API" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# dumb-init is PID 1: it forwards SIGTERM to Node (which then drains, see README "Graceful shutdown") and reaps
# zombies. npm, npx and corepack are removed: the runtime never installs anything, and they carry their own CVEs.
RUN apk add --no-cache dumb-init \
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/corepack \
           /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/corepack /root/.npm

# V8 sizes its young generation from the host's memory (64 MB semi-spaces on a 24 GiB host), so a container's
# footprint would depend on the node it lands on: under load that alone added ~80 MB. Fixed at 8 MB, the footprint is
# the same everywhere and well inside the pod's memory request; throughput stays within measurement noise
# (`npm run bench` runs every server with these flags, read from here).
ENV NODE_ENV=production \
    NODE_OPTIONS="--max-semi-space-size=8" \
    APP_ENV=${APP_ENV} \
    HOST=0.0.0.0 \
    PORT=3000

WORKDIR /app
# Everything is owned by root and only readable by the app user: the process cannot rewrite its own code, and the
# container runs with a read-only root filesystem in Kubernetes. package.json and migrations/ sit next to dist/: the
# app finds both by walking up from its module directory (layers/PackageInfo.ts).
COPY --from=prod-deps /app/node_modules ./node_modules
COPY package.json package-lock.json ./
COPY migrations ./migrations
# The tenant portal's browser modules and stylesheet: served as they are (src/portal/PortalAssets.ts finds them beside
# package.json; the npm packages it serves with them are in node_modules).
COPY src/portal/assets ./src/portal/assets
COPY --from=build /app/dist ./dist
# `codex`, the CLI (README "From the terminal"), on PATH: `docker exec <container> codex tenants list`.
RUN ln -s /app/dist/src/cli/bin.js /usr/local/bin/codex && chmod 755 /app/dist/src/cli/bin.js

# The `node` user (uid 1000) ships with the official image; numeric so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 3000

# No curl in the image: Node's fetch probes /livez (never touches the database) on the configured port.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/livez',{signal:AbortSignal.timeout(4000)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["dumb-init", "--"]
CMD ["node", "dist/src/main.js"]
