# syntax=docker/dockerfile:1
#
# The iamflow image: one static binary (every service, the emulators and the
# operator commands) on distroless, as a non-root user.
#
#   docker build -t iamflow --build-arg VERSION=$(git describe --tags --always --dirty) .
#   docker run --rm iamflow version
#
# The image also carries /usr/local/bin/httpcheck, a tiny GET-and-check-2xx
# program for container health checks (distroless has no shell, curl or wget).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Modules first, so the download layer survives source changes.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
# -X main.version is stamped for when cmd/iamflow declares `var version string`
# (today `iamflow version` reads the module build info, and .git is not in the
# build context, so it prints "devel"); the image label below carries VERSION.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X main.version=${VERSION}" \
      -o /out/iamflow ./cmd/iamflow && \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -buildvcs=false -ldflags="-s -w" \
      -o /out/httpcheck ./deploy/httpcheck

# distroless/static: CA certificates, tzdata, /etc/passwd with nonroot (65532),
# nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="iamflow" \
      org.opencontainers.image.description="Keeps OCI IAM Identity Domains, and what depends on them, in step with every identity change" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="https://github.com/iamflow/iamflow"
COPY --from=build /out/iamflow /out/httpcheck /usr/local/bin/
USER nonroot:nonroot
# Webhook (ingest.listen), admin gRPC and REST (admin.grpc_addr/http_addr).
# Bind them to 0.0.0.0 in a container: the defaults are loopback. The admin
# API off loopback needs admin.tls (or admin.allow_plaintext: true when the
# platform adds TLS in front).
EXPOSE 8080 9090 9091
ENTRYPOINT ["/usr/local/bin/iamflow"]
CMD ["help"]
