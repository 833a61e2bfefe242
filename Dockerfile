# Switchyard gateway image (also runs the backend simulator: `... sim --flavor vllm`).
#
#   docker build -t switchyard:local .
#   docker run --rm -p 8080:8080 -v "$PWD/my.yaml:/etc/switchyard/switchyard.yaml:ro" switchyard:local
#
# Stages: `build` compiles TypeScript to dist/ with the dev dependencies; `deps`
# installs production dependencies only; `runtime` gets dist/, bin/, config/ and
# those node_modules, runs as an unprivileged user, and nothing else.
# deploy/README.md documents every variable, port and volume.

ARG NODE_IMAGE=node:24-alpine

# ---- build: npm ci (with dev dependencies) + npm run build -------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- deps: production dependencies only ---------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts && npm cache clean --force

# ---- runtime --------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="switchyard" \
      org.opencontainers.image.description="Self-hosted OpenAI-compatible inference gateway for vLLM and llama.cpp" \
      org.opencontainers.image.licenses="Apache-2.0"

# HOST/PORT feed ${HOST:-...}/${PORT:-...} in the config files (config/switchyard.yaml,
# deploy/compose/switchyard.yaml); the mounted config may use any other variables.
ENV NODE_ENV=production \
    SWITCHYARD_CONFIG=/etc/switchyard/switchyard.yaml \
    HOST=0.0.0.0 \
    PORT=8080

WORKDIR /app
# Everything is owned by root and read-only for the runtime user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY config ./config
COPY deploy/docker/healthcheck.mjs ./healthcheck.mjs
# A default config (vLLM at $VLLM_URL, llama.cpp at $LLAMACPP_URL); mount your own file over it.
COPY config/switchyard.yaml /etc/switchyard/switchyard.yaml

# The `node` user of the official image, numeric so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080

# Liveness without curl: node fetches http://127.0.0.1:$PORT/healthz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/healthcheck.mjs"]

# Exec form: node is PID 1 and receives SIGTERM itself; the gateway stops accepting,
# drains in-flight requests and streams for server.shutdownGraceMs (default 30 s), then
# exits 0. Give the container at least that long (`docker stop -t 35`, compose
# stop_grace_period, Kubernetes terminationGracePeriodSeconds). The gateway starts no
# child processes, so no init process is needed; `docker run --init` works too.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/bin/switchyard.js"]
CMD ["serve"]
