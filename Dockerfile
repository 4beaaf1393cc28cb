# syntax=docker/dockerfile:1
# One image with CineData's three long-running binaries: `serving`, `consumer` and `producer`.
# docker-compose.yml picks the binary per service with `entrypoint:`.
#
#   docker build -t cinedata:local .
#   docker run --rm cinedata:local serving --help

# --- build -------------------------------------------------------------------------------
FROM rust:1-bookworm AS builder
# rdkafka (default features) builds its bundled librdkafka with configure + make and links the
# system zlib (libz-sys, found with pkg-config); no OpenSSL, SASL or curl. python3 runs
# librdkafka's linker-script generator; cmake is only needed if rdkafka's `cmake-build` feature
# is ever turned on.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Cache mounts keep the registry and target dir across builds; the binaries are copied out of
# the cached target dir because it is not part of the image layer.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p serving -p consumer -p producer --bins \
 && mkdir -p /out \
 && cp target/release/serving target/release/consumer target/release/producer /out/

# --- run ---------------------------------------------------------------------------------
FROM debian:bookworm-slim
# zlib1g is already in the base image; ca-certificates for any TLS endpoint a user configures.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/cinedata --create-home cinedata \
 && install -d -o cinedata -g cinedata /var/lib/cinedata/snapshots
# (serving's model snapshots: a named volume mounted there starts with the cinedata owner)
COPY --from=builder /out/serving /out/consumer /out/producer /usr/local/bin/
USER cinedata
WORKDIR /var/lib/cinedata
ENV RUST_LOG=info
EXPOSE 8000 9100
# No ENTRYPOINT: each compose service names its binary.
CMD ["serving", "serve", "--listen", "0.0.0.0:8000"]
