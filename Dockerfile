# ecswatch: a small, non-root image whose PID 1 is the daemon itself.
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

# --- build: ecswatch's wheel and a pip-less virtualenv with it and its locked dependencies ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# The builder's tools (pip, the locked build backend, hatchling) stay in /opt/build, which is not shipped.
# Dependencies come only from the committed locks, hash-checked: two builds of one commit
# install the same files (`make lock` refreshes them, deliberately).
COPY requirements-build.lock requirements.lock ./
RUN python -m venv /opt/build \
 && /opt/build/bin/pip install --no-compile --no-deps --require-hashes -r requirements-build.lock \
 && python -m venv --without-pip /opt/ecswatch \
 && /opt/build/bin/pip --python /opt/ecswatch/bin/python install \
      --no-compile --no-deps --require-hashes -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY ecswatch ./ecswatch
RUN /opt/build/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /dist . \
 && /opt/build/bin/pip --python /opt/ecswatch/bin/python install \
      --no-compile --no-deps --no-index /dist/ecswatch-*.whl \
 && /opt/build/bin/pip --python /opt/ecswatch/bin/python check

# --- runtime: the same slim base, the virtualenv, an unprivileged user ---
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ecswatch" \
      org.opencontainers.image.description="Exact ECS task and container-instance state from EventBridge via SQS into DynamoDB, with Prometheus metrics" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/ecswatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ECSWATCH_LOG_FORMAT=json
# A regular (not --system) account: uid 10001 is above SYS_UID_MAX. --no-log-init keeps the
# lastlog/faillog files from growing to the size of the uid; no subordinate ids, it never
# starts a user namespace.
RUN groupadd --gid 10001 ecswatch \
 && useradd --uid 10001 --gid ecswatch --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin --no-log-init -K SUB_UID_COUNT=0 -K SUB_GID_COUNT=0 ecswatch
COPY --from=build /opt/ecswatch /opt/ecswatch
USER 10001:10001
EXPOSE 9108
# Exec form, no shell: SIGTERM from `docker stop` / ECS reaches Python directly. As PID 1 the
# kernel delivers only signals with a handler installed, and ecswatch installs SIGTERM/SIGINT
# handlers before anything else; it forks no children, so there is nothing to reap.
STOPSIGNAL SIGTERM
# No curl in a slim image: the health check is the interpreter we already ship. It reads the
# metrics port as the daemon does: $ECSWATCH_CONFIG's [metrics] port, then ECSWATCH_METRICS_PORT.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request as u; from ecswatch.config import load_config; port = load_config(require_queue=False).metrics.port; sys.exit(u.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["ecswatch"]
CMD ["run"]
