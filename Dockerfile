# The sigstack binary in a small runtime image, for compose.yaml's one-container-per-service
# layout and the testcontainers module (the single binary, `sigstack up`, is the default way to
# run the stack).
#
#   docker build -t sigstack .                       compiles sigstack in rust:1.95-bookworm
#   docker build -f Dockerfile --target prebuilt \   wraps a binary built on a Debian 12 host
#     --build-arg BASE_IMAGE=... -t sigstack DIR     (DIR holds only `sigstack`), as the scripts
#                                                    do where no image can be pulled
#
# `prebuilt` comes before the compiling stage so that building it never needs the Rust image,
# with BuildKit or with the legacy builder (which runs stages in order up to the target).

# Pinned by digest (a tag can move). To update: `docker buildx imagetools inspect IMAGE:TAG`
# prints the tag's current index digest; keep the tag in front of it for readers.
ARG BASE_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
ARG RUST_IMAGE=rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1

FROM ${BASE_IMAGE} AS runtime
# A fixed non-root user; the state volume belongs to it. Tests that bind-mount a host directory
# run the container as their own uid instead (`--user`).
RUN useradd --system --uid 10001 --user-group --home-dir /state --no-create-home sigstack \
 && install -d -o sigstack -g sigstack -m 0700 /state
USER sigstack
VOLUME ["/state"]
ENV SIGSTACK_STATE_DIR=/state
ENTRYPOINT ["sigstack"]
CMD ["--help"]

FROM runtime AS prebuilt
COPY sigstack /usr/local/bin/sigstack

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY services ./services
COPY e2e ./e2e
COPY bench ./bench
RUN cargo build --release --locked -p sigstack \
 && install -D -s target/release/sigstack /out/sigstack

FROM runtime
COPY --from=build /out/sigstack /usr/local/bin/sigstack
