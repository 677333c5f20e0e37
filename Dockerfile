# The sigstack binary in a small runtime image. The single binary (`sigstack up`) is the default
# way to run the stack; this image serves compose.yaml's one-container-per-service layout.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY services ./services
COPY e2e ./e2e
RUN cargo build --release --locked -p sigstack \
 && install -D target/release/sigstack /out/sigstack

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /state sigstack \
 && install -d -o sigstack -g sigstack -m 0700 /state
COPY --from=build /out/sigstack /usr/local/bin/sigstack
USER sigstack
VOLUME ["/state"]
ENV SIGSTACK_STATE_DIR=/state
ENTRYPOINT ["sigstack"]
CMD ["--help"]
