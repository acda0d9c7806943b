# syntax=docker/dockerfile:1
# Images for both programs, from one build:
#
#   docker build --target operator -t athens-operator:0.1.0 .
#   docker build --target proxy    -t athens-proxy:0.1.0 .
#
# The tags are what the chart (charts/athens-operator/values.yaml: image.repository, appVersion)
# and the operator's default proxy image (operator/src/render: DEFAULT_IMAGE,
# athens-proxy:<version>) expect; push them to your registry under those names, or set
# image.repository / AthensProxy spec.image to where you pushed them.

# ---- build: the toolchain lives only in this stage ----
# Rust 1.95 is what the workspace is built and tested with (rust-version in Cargo.toml is the floor).
# Bookworm here and below: the binaries link the same glibc they run with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore keeps target/ and .git out); Cargo.lock pins every crate.
COPY . .
# One cargo invocation builds both binaries, so shared crates compile once. The cache mounts
# keep the registry and target/ between builds; the binaries are copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p athens-proxy -p athens-operator \
 && mkdir -p /out \
 && cp target/release/athens-proxy target/release/athens-operator /out/

# ---- runtime base: shared by both final images ----
# Debian slim: glibc and little else; no compiler, no package lists. Both programs use rustls, so
# the only file they need beyond libc is the CA bundle for TLS to object stores, upstream proxies
# and the API server, copied from the build stage rather than installed with apt.
FROM debian:bookworm-slim AS runtime
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# Numeric non-root user and group (the operator's pod security context uses the same 65532),
# so Kubernetes can verify runAsNonRoot without a passwd entry.
USER 65532:65532
# HOME and TMPDIR default to /tmp; in Kubernetes /tmp is an emptyDir and the root filesystem is
# read-only.
ENV HOME=/tmp TMPDIR=/tmp

# ---- operator: `docker build --target operator` ----
FROM runtime AS operator
COPY --from=build /out/athens-operator /usr/local/bin/athens-operator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/athens-operator"]
CMD ["run"]

# ---- proxy: `docker build --target proxy` ----
# No git and no Go toolchain: private-module fetching (`direct`, VCS) is not implemented yet and
# answers 404, and every other path is native HTTP to an upstream proxy and the checksum
# database. Once `direct` lands (it runs `go mod download`), this stage needs both, and SSH
# for git+ssh remotes; until then they would only be attack surface.
FROM runtime AS proxy
COPY --from=build /out/athens-proxy /usr/local/bin/athens-proxy
EXPOSE 3000
# The operator passes `--config /etc/athens/config.toml`; with no arguments the proxy listens on
# loopback only, so outside Kubernetes pass at least `--listen 0.0.0.0:3000`.
ENTRYPOINT ["/usr/local/bin/athens-proxy"]
