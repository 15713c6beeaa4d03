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
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/basalt --create-home basalt
COPY --from=build /usr/local/bin/basalt /usr/local/bin/basalt
COPY deploy/config /etc/basalt
USER basalt
WORKDIR /var/lib/basalt
ENTRYPOINT ["basalt"]
