# syntax=docker/dockerfile:1
#
# Azure Health Data Services DICOM service emulator.
#
#   docker build -t dicom-emulator .
#   docker run --rm -p 8080:8080 -p 11112:11112 -v dicom-data:/data dicom-emulator
#
# Data (SQLite index + DICOM files) lives in /data unless DATABASE_URL /
# DICOM_EMULATOR_DATABASE_URL points at PostgreSQL (see docker-compose.yml).

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# Build stage: install the project and its dependencies into /opt/venv.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /build

# Dependencies first, built against a stub package (and a stub README, which
# pyproject.toml names), so that editing src/ or README.md does not invalidate
# this (slow) layer: only pyproject.toml does. The version is static there.
COPY pyproject.toml ./
RUN mkdir -p src/dicom_emulator \
    && touch src/dicom_emulator/__init__.py README.md \
    && pip install --no-cache-dir . \
    && pip uninstall --yes dicom-emulator

# The real package (dependencies are already there).
COPY README.md ./
COPY src ./src
RUN pip install --no-cache-dir --no-deps . \
    && dicom-emulator --version

# ---------------------------------------------------------------------------
# Runtime stage: the virtualenv only, no build context, non-root user.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="dicom-emulator" \
      org.opencontainers.image.description="Local emulator of the Azure Health Data Services DICOM service" \
      org.opencontainers.image.licenses="MIT"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DICOM_EMULATOR_HOST=0.0.0.0 \
    DICOM_EMULATOR_DATA_DIR=/data \
    DICOM_EMULATOR_DIMSE_PORT=11112 \
    DICOM_EMULATOR_URL_FILE=/tmp/dicom-emulator.url

# /data is created and chowned before VOLUME: a fresh named volume is seeded
# from the image, so it comes up owned by the emulator user. (A bind mount
# keeps the host's ownership: make it writable for uid 1000.)
RUN groupadd --gid 1000 emulator \
    && useradd --uid 1000 --gid emulator --create-home --home-dir /home/emulator \
       --shell /usr/sbin/nologin emulator \
    && mkdir -p /data \
    && chown emulator:emulator /data

COPY --from=builder /opt/venv /opt/venv

USER emulator
WORKDIR /home/emulator
VOLUME ["/data"]

# 8080: DICOMweb / Azure HTTP API. 11112: DIMSE gateway (AE title DICOM_EMULATOR; DICOM_EMULATOR_DIMSE_PORT=0 turns it off).
EXPOSE 8080 11112

# Probes the port serve really bound (it writes its URL to DICOM_EMULATOR_URL_FILE), so
# `serve --port 9000` or DICOM_EMULATOR_PORT=9000 stay healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["dicom-emulator", "healthcheck"]

CMD ["dicom-emulator", "serve"]
