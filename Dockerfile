# syntax=docker/dockerfile:1
#
# mpu-janitor container image.
#
#   docker build -t mpu-janitor:dev .
#   docker run --rm mpu-janitor:dev demo
#   docker run --rm --read-only -p 9464:9464 \
#     -v "$PWD/config/sidecar.toml:/etc/mpu-janitor/config.toml:ro" mpu-janitor:dev
#
# Needs BuildKit (Docker >= 23 default, or buildah/podman) for the cache mounts.
# The runtime image is distroless (glibc, libgcc, CA certificates, no shell,
# no package manager) and runs as uid/gid 65532. The process writes nothing to
# disk except `[metrics] textfile` when configured, so a read-only root file
# system works as is (mount a writable volume for the textfile if you use it).

ARG RUST_VERSION=1

############################ build ############################
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src

# Cache-friendly without a manifest-only layer (a stub-source layer breaks as
# soon as Cargo.toml names benches or tests): the cargo registry and target/
# live in BuildKit cache mounts, so a rebuild after a source change downloads
# nothing and recompiles only this crate. The binary is copied out of the
# target/ cache mount in the same step. `--locked` needs Cargo.lock committed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --no-default-features \
 && install -D -m 0755 target/release/mpu-janitor /out/mpu-janitor \
 && strip --strip-debug /out/mpu-janitor \
 && /out/mpu-janitor --help > /dev/null

########################### runtime ###########################
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown

LABEL org.opencontainers.image.title="mpu-janitor" \
      org.opencontainers.image.description="Aborts stale S3 multipart uploads, verifies every abort with ListParts and exports Prometheus metrics" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=build /out/mpu-janitor /usr/local/bin/mpu-janitor
# A default configuration (the Kubernetes one); mount your own over it, e.g.
# a ConfigMap at /etc/mpu-janitor, or point MPU_JANITOR_CONFIG elsewhere.
COPY --chmod=0444 config/kubernetes.toml /etc/mpu-janitor/config.toml

# Inside a container the metrics endpoint must listen beyond loopback.
ENV MPU_JANITOR_METRICS__LISTEN=0.0.0.0:9464
EXPOSE 9464

# distroless "nonroot": uid/gid 65532, numeric so Kubernetes can check runAsNonRoot.
USER 65532:65532

ENTRYPOINT ["/usr/local/bin/mpu-janitor"]
CMD ["run"]
