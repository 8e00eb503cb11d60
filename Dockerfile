# rrguard's image: the admission server (/webhook, the entrypoint) and the CLI (/rrguard),
# static binaries on distroless, running as nonroot (65532).
#   make image IMG=ghcr.io/rrguard/rrguard:v0.1.0
# The build step is hack/build.sh, which test/deploy runs as well.
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
ENV GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN GOOS=${TARGETOS} GOARCH=${TARGETARCH} hack/build.sh /out "${VERSION}"

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/webhook /out/rrguard /
USER 65532:65532
ENTRYPOINT ["/webhook"]
