# Milagro Node: one image; each container makes its own identity and SoftHSM token at first start.
#
#   scripts/build-image.sh [--roles dta,mfa]      builds it here (docker, else podman; see docs/deploy.md)
#   docker run -d -v milagro-data:/data -p 7400:7400 -p 4001:4001 milagro-node
#
# Python packages come from build/wheelhouse (made on the build host by scripts/build-image.sh, from
# constraints.txt), so the build needs no access to PyPI and is reproducible. Nothing secret is in
# the image: the data dir (/data, a volume) gets its token, PIN, KEK and identity at first start.

ARG ROLES=dta,mfa,custody

FROM debian:bookworm-slim AS build
ARG ROLES
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-dev gcc libc6-dev libffi-dev libsodium-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/milagro-node
COPY pyproject.toml constraints.txt README.md ./
COPY build/wheelhouse /wheelhouse
COPY native native
COPY milagro_node milagro_node
COPY actors actors
# The native extensions (secret memory, PKCS#11 batches, the envelope reader and key wrap) are compiled first, so that the package
# installed from these sources carries them (pyproject.toml's package-data); the sources are then dropped.
RUN python3 -m venv .venv \
 && .venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse -c constraints.txt cffi setuptools \
 && .venv/bin/python native/build.py \
 && .venv/bin/pip install --no-cache-dir --no-index --find-links /wheelhouse -c constraints.txt ".[${ROLES}]" \
 && .venv/bin/pip uninstall -q -y setuptools pip \
 && rm -rf build native milagro_node actors \
 && echo "image ${ROLES}" > .venv/.milagro-installed

FROM debian:bookworm-slim
ARG ROLES
LABEL org.opencontainers.image.title="milagro-node" \
      org.opencontainers.image.description="Milagro Node: D-TA, M-Pin MFA and key custody peer node" \
      io.milagro.roles="${ROLES}"
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 softhsm2 libgmp10 libsodium23 \
 && rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
 && groupadd --system --gid 10001 milagro \
 && useradd --system --uid 10001 --gid milagro --home-dir /data --shell /usr/sbin/nologin milagro \
 && install -d -o milagro -g milagro -m 0700 /data
COPY --from=build /opt/milagro-node /opt/milagro-node
COPY scripts/docker-entrypoint.sh /usr/local/bin/milagro-entrypoint
ENV PATH=/opt/milagro-node/.venv/bin:$PATH \
    MILAGRO_DATA_DIR=/data \
    MILAGRO_API_LISTEN=0.0.0.0:7400 \
    PYTHONDONTWRITEBYTECODE=1
USER milagro
VOLUME /data
EXPOSE 7400 4001
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 CMD ["milagro-node", "status"]
ENTRYPOINT ["milagro-entrypoint"]
CMD ["run"]
