# One image for every Basalt service: `basalt <service> --config FILE`.
#
# The health check probes the service named by BASALT_SERVICE with its config
# BASALT_CONFIG (`basalt health`: the gRPC health service over mutual TLS, or an
# HTTP request for the WFE and OCSP responder). docker-compose.yml names the
# service in each container's own healthcheck.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY crates crates
COPY tests tests
RUN cargo build --release --locked -p basalt \
    && cp target/release/basalt /usr/local/bin/basalt

FROM debian:bookworm-slim
# /run/basalt-db and /srv/basalt/* exist, the basalt user's, so that a fresh volume
# mounted there (docker-compose.yml's db-password and per-service PKI volumes)
# starts with that owner and setup can write it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/basalt --create-home basalt \
    && install -d -o basalt -m 0700 /run/basalt-db \
    && for dir in sa ra va va-remote ca nonce wfe ocsp admin ca-keys; do \
        install -d -o basalt -m 0700 "/srv/basalt/$dir"; done
COPY --from=build /usr/local/bin/basalt /usr/local/bin/basalt
COPY deploy/pki-split.sh /usr/local/share/basalt/pki-split.sh
COPY deploy/config /etc/basalt
USER basalt
WORKDIR /var/lib/basalt
HEALTHCHECK --interval=15s --timeout=10s --start-period=30s --retries=3 \
    CMD ["basalt", "health", "--timeout", "5s"]
ENTRYPOINT ["basalt"]
