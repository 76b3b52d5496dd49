# syntax=docker/dockerfile:1
# The reader (companias-query). Build from the repository root, which holds
# go.work and libs/:
#
#   docker build -f deploy/query.Dockerfile -t propalpes/companias-query:dev .
#
# GO_VERSION must satisfy the go line of go.work (deploy/check verifies it).
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
# The whole workspace (see .dockerignore): go.work needs every module it uses.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/companias-query ./services/query/cmd/queryd

# Static binary on distroless: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/companias-query /usr/local/bin/companias-query
USER nonroot:nonroot
EXPOSE 8081
ENV HTTP_ADDR=:8081
# "serve" is the default; "rebuild" replays the topic into new views:
#   docker compose run --rm query rebuild
ENTRYPOINT ["/usr/local/bin/companias-query"]
