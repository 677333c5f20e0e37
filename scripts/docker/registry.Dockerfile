# Debian's docker-registry (the distribution registry 2.8.2, what `sigstack up` runs beside the
# stack) as an image laid out like `registry:2`: port 5000, storage in /var/lib/registry, the
# REGISTRY_* environment overrides. compose.yaml uses it where `registry:2` cannot be pulled.
# Built with `--network host` (apt reaches the Debian archive as the host does).
# Pinned by digest, as in the Dockerfile (update the same way); the scripts pass their own image.
ARG BASE_IMAGE=debian:bookworm-slim@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends docker-registry wget \
 && rm -rf /var/lib/apt/lists/* \
 && install -d -o docker-registry -g docker-registry /var/lib/registry
COPY registry-config.yml /etc/docker/registry/config.yml
USER docker-registry
VOLUME ["/var/lib/registry"]
EXPOSE 5000
ENTRYPOINT ["docker-registry"]
CMD ["serve", "/etc/docker/registry/config.yml"]
