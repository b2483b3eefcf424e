# Multi-stage build of both nodes and the CLI. No protoc needed: protos compile with protox.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p bank-node -p platform-node -p cli \
 && mkdir -p /out && cp target/release/bank-node target/release/platform-node target/release/ibsim /out/

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /data ibsim && mkdir -p /data && chown ibsim /data
COPY --from=build /out/ /usr/local/bin/
USER ibsim
WORKDIR /data
EXPOSE 40051 40052
# The service chooses the binary: `bank-node` or `platform-node`.
CMD ["bank-node"]
