FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vouch

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 vouch
COPY --from=build /src/target/release/vouch /usr/local/bin/vouch
USER vouch
EXPOSE 8080
ENTRYPOINT []
CMD ["vouch", "serve"]
