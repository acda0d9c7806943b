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
#
# The final stages hold only what the binaries need: a static binary, the CA bundle, passwd and
# group entries for the non-root user 65532, and nsswitch.conf. No shell, no package manager.
# tests/image/layout assembles the same images without Docker, and tests/tests/image.rs checks
# that both hold the same files and settings and runs the proxy image under runc as the operator
# renders its pods. Keep one file per COPY line (or several files into a folder ending in /):
# that test reads this file.

# ---- build: the toolchain lives only in this stage ----
# Rust 1.95 is what the workspace is built and tested with (rust-version in Cargo.toml is the floor).
FROM rust:1.95-bookworm AS build
WORKDIR /src
# The whole workspace (.dockerignore keeps target/ and .git out); Cargo.lock pins every crate.
COPY . .
# glibc static-pie (`+crt-static`): the binaries need no libc in the image. `--target` keeps the
# flag away from build scripts and proc macros, which must stay dynamic. One cargo invocation per
# program: built together, cargo would unify their features and the operator would link the
# proxy's second rustls provider. The cache mounts keep the registry and target/ between builds;
# the binaries are copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    target="$(rustc -vV | sed -n 's/^host: //p')" \
 && mkdir -p /out \
 && for name in proxy operator; do \
      RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target "$target" -p "athens-$name" \
      && cp "target/$target/release/athens-$name" /out/ || exit 1; \
    done

# ---- runtime base: shared by both final images ----
FROM scratch AS runtime
# Both programs use rustls, which reads the system CA bundle (for TLS to object stores, upstream
# proxies and the API server): copied from the build stage's ca-certificates package.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
# The non-root user and group 65532 (the operator's pod security context uses the same numbers;
# Kubernetes checks runAsNonRoot on the number), and `hosts: files dns` for static glibc.
COPY tests/image/rootfs/etc/passwd tests/image/rootfs/etc/group tests/image/rootfs/etc/nsswitch.conf /etc/
USER 65532:65532
# HOME and TMPDIR: in Kubernetes /tmp is an emptyDir and the root filesystem is read-only; with
# plain Docker, run with `--read-only --tmpfs /tmp`.
ENV PATH=/usr/local/bin HOME=/tmp TMPDIR=/tmp
# Where the source is: pass --build-arg SOURCE=<repository URL> when publishing.
ARG SOURCE=""
ARG VERSION=0.1.0
LABEL org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

# ---- operator: `docker build --target operator` ----
FROM runtime AS operator
COPY --from=build /out/athens-operator /usr/local/bin/athens-operator
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/athens-operator"]
CMD ["run"]

# ---- proxy: `docker build --target proxy` ----
# No git, no ssh program, no shell (/bin/sh) and no Go toolchain: private modules (`direct`)
# are fetched natively in Rust (gitoxide for git; an in-process SSH client, russh, for ssh://
# remotes), so nothing is spawned unless the git config names a credential helper program, which
# must then be a static executable mounted into the container; every other path is native HTTP
# to an upstream proxy and the checksum database.
FROM runtime AS proxy
COPY --from=build /out/athens-proxy /usr/local/bin/athens-proxy
EXPOSE 3000
# The operator passes `--config /etc/athens/config.toml`; with no arguments the proxy listens on
# loopback only, so outside Kubernetes pass at least `--listen 0.0.0.0:3000`.
ENTRYPOINT ["/usr/local/bin/athens-proxy"]
