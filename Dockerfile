# Quorum's gateway: the compiled bundle (npm run build) on Node 20, as `npm start` runs it.
# Build: docker build -t quorum .   Run: see docker-compose.yml and the README's "Deploy".
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Dependencies only from the npm registry, as locked; libsql's prebuilt binary comes as a package.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
COPY evaluators ./evaluators
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8787 \
    QUORUM_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/evaluators ./evaluators
# The dashboard's pages are served as they are, from beside the code.
COPY --from=build /app/src/http/dashboard ./src/http/dashboard
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 8787
# Not on a loopback address, so virtual keys are required unless the config says otherwise.
HEALTHCHECK --interval=10s --timeout=2s --start-period=10s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]
