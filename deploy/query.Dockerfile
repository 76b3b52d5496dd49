# syntax=docker/dockerfile:1
# The reader (companias-query). Build from the repository root, which holds
# go.work and libs/:
#
#   docker build -f deploy/query.Dockerfile -t propalpes/companias-query:dev .
#
# GO_VERSION must satisfy the go line of go.work (deploy/check verifies it).
# VERSION and REVISION are stamped into the binary (`companias-query version`,
# the *_build_info metric); .git is not in the build context, so pass them:
#   --build-arg VERSION=$(git describe --tags --always --dirty) --build-arg REVISION=$(git rev-parse HEAD)
ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-buildvcs=false
ARG VERSION=
ARG REVISION=
# The whole workspace (see .dockerignore): go.work needs every module it uses.
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w \
      -X github.com/propalpes/companias/libs/telemetry/buildinfo.version=${VERSION} \
      -X github.com/propalpes/companias/libs/telemetry/buildinfo.revision=${REVISION}" \
      -o /out/companias-query ./services/query/cmd/queryd

# Static binary on distroless: no shell, no package manager, uid 65532.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/companias-query /usr/local/bin/companias-query
USER nonroot:nonroot
EXPOSE 8081
ENV HTTP_ADDR=:8081
# "serve" is the default; "rebuild" replays the topic into new views:
#   docker compose run --rm query rebuild
ENTRYPOINT ["/usr/local/bin/companias-query"]
