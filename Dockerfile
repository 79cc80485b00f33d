# syntax=docker/dockerfile:1
#
# soak-exporter container image: a static Go binary on distroless, running
# as the unprivileged UID 65532.
#
#   docker build -t soak-exporter \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg BRANCH="$(git rev-parse --abbrev-ref HEAD)" .
#
# The build flags live in ONE place, the Makefile's `build` target, which
# this image runs; it amounts to
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w \
#     -X github.com/prometheus/common/version.Version=${VERSION} \
#     -X github.com/prometheus/common/version.Revision=${REVISION} \
#     -X github.com/prometheus/common/version.Branch=${BRANCH} \
#     -X github.com/prometheus/common/version.BuildUser=... \
#     -X github.com/prometheus/common/version.BuildDate=..." ./cmd/soak-exporter
#
# (soak_build_info is exported from prometheus/common/version through
# client_golang's collectors/version). No Docker engine runs in this
# project's CI: the tests build with the same Makefile target and check that
# the binary is static and runs as an unprivileged user.

ARG GO_VERSION=1.27

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first, so that source changes do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=unknown
ARG BRANCH=unknown
RUN make build VERSION="${VERSION}" REVISION="${REVISION}" BRANCH="${BRANCH}" \
 && ./bin/soak-exporter --version

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="soak-exporter" \
      org.opencontainers.image.description="Keeps real Socket.IO clients connected to a target and exports SLO and memory-leak metrics for Prometheus" \
      org.opencontainers.image.source="https://github.com/generic-corp/soak-exporter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
COPY --from=build /src/bin/soak-exporter /soak-exporter
# Numeric, so that Kubernetes can verify runAsNonRoot from the image alone.
USER 65532:65532
# SOAK_LISTEN_ADDRESS default: /metrics, /-/healthy, /-/ready.
EXPOSE 9477
ENTRYPOINT ["/soak-exporter"]
