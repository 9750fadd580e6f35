# syntax=docker/dockerfile:1
# ecswatch: a small, non-root image whose PID 1 is the daemon itself.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

# --- build: a virtualenv with ecswatch and its four runtime dependencies, nothing else ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/ecswatch
COPY pyproject.toml README.md ./
COPY ecswatch ./ecswatch
RUN /opt/ecswatch/bin/pip install --no-cache-dir . \
 && find /opt/ecswatch -name '__pycache__' -type d -prune -exec rm -rf {} +

# --- runtime: the same slim base, the virtualenv, an unprivileged user ---
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ecswatch" \
      org.opencontainers.image.description="Exact ECS task and container-instance state from EventBridge via SQS into DynamoDB, with Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/ecswatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ECSWATCH_LOG_FORMAT=json
RUN groupadd --system --gid 10001 ecswatch \
 && useradd --system --uid 10001 --gid ecswatch --no-create-home --shell /usr/sbin/nologin ecswatch
COPY --from=build /opt/ecswatch /opt/ecswatch
USER 10001:10001
EXPOSE 9108
# Exec form, no shell: SIGTERM from `docker stop` / ECS reaches Python directly. As PID 1 the
# kernel delivers only signals with a handler installed, and ecswatch installs SIGTERM/SIGINT
# handlers before anything else; it forks no children, so there is nothing to reap.
STOPSIGNAL SIGTERM
# No curl in a slim image: the health check is the interpreter we already ship.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request as u; port = os.environ.get('ECSWATCH_METRICS_PORT', '9108'); sys.exit(u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["ecswatch"]
CMD ["run"]
