FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin vouch

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 vouch \
 && mkdir -p /var/lib/vouch \
 && chown vouch /var/lib/vouch
COPY --from=build /src/target/release/vouch /usr/local/bin/vouch
# The audit key (signs checkpoints and exports, seals idempotent answers) lives
# in a writable directory of its own: mount a volume there to keep it.
WORKDIR /var/lib/vouch
ENV VOUCH_AUDIT_KEY_FILE=/var/lib/vouch/vouch-audit.key \
    VOUCH_BIND=0.0.0.0:8080
VOLUME ["/var/lib/vouch"]
USER vouch
EXPOSE 8080
# Slim images have no curl: vouch asks itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["vouch", "healthcheck"]
ENTRYPOINT []
CMD ["vouch", "serve"]
