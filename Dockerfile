# The Atlas Log server image, built from this repository (the Alembic migrations ship inside the package).
#   docker build -t atlas-log:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY client ./client
COPY server ./server
COPY migrations ./migrations
RUN pip install ".[server]" && rm -rf /src

# An unprivileged user; the folders that volumes mount over belong to it (new volumes inherit that).
RUN useradd --system --uid 10001 --home-dir /data atlas \
    && mkdir -p /data /keys /witness /monitor \
    && chown atlas /data /keys /witness /monitor
USER atlas
WORKDIR /data
ENV ATLAS_DATA_DIR=/data ATLAS_HOST=0.0.0.0 ATLAS_PORT=8080
EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
ENTRYPOINT ["atlas-log-server"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
