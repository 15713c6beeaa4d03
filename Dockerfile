# One image for every Basalt service: `basalt <service> --config FILE`.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY crates crates
COPY tests tests
RUN cargo build --release --locked -p basalt \
    && cp target/release/basalt /usr/local/bin/basalt

FROM debian:bookworm-slim
# /run/basalt-db exists, the basalt user's, so that a fresh volume mounted there
# (docker-compose.yml's db-password) starts with that owner and setup can write it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/basalt --create-home basalt \
    && install -d -o basalt -m 0700 /run/basalt-db
COPY --from=build /usr/local/bin/basalt /usr/local/bin/basalt
COPY deploy/config /etc/basalt
USER basalt
WORKDIR /var/lib/basalt
ENTRYPOINT ["basalt"]
