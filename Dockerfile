# syntax=docker/dockerfile:1
# Two images from one build: `--target auth` (tessera-auth) and `--target data` (tessera-data).
# The builder has a compiler for any dependency without a wheel; the runtime images get only the
# installed virtualenv, run as an unprivileged user, and default to TESSERA_ENV=production.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/tessera
WORKDIR /src
# Dependencies change less often than code: install them in their own layer.
COPY pyproject.toml README.md ./
RUN python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; open("/tmp/requirements.txt", "w").write("\n".join(deps))' \
    && /opt/tessera/bin/pip install -r /tmp/requirements.txt
COPY gen ./gen
COPY shared ./shared
COPY auth_service ./auth_service
COPY data_service ./data_service
RUN /opt/tessera/bin/pip install --no-deps .

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid tessera --no-create-home --shell /usr/sbin/nologin tessera
COPY --from=builder /opt/tessera /opt/tessera
ENV PATH=/opt/tessera/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TESSERA_ENV=production
# Nothing is written here: production uses PostgreSQL and mounted key files, never ./var/.
WORKDIR /app
USER 10001:10001

FROM runtime AS auth
EXPOSE 50051 9101
ENTRYPOINT ["tessera-auth"]
CMD ["serve"]

FROM runtime AS data
EXPOSE 50052 9102
ENTRYPOINT ["tessera-data"]
CMD ["serve"]
