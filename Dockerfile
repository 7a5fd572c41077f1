# The user-code image of a Maestro deployment: the code location (maestro_defs) served by
# `dagster api grpc`, also the image of every run and step pod (helm-values.yaml).
#   docker build -t ghcr.io/maestro/maestro-dagster:0.1.0 .
# Dependencies are installed hash-checked from deploy/requirements.lock: the versions the test
# suite ran with, each with the sha256 of its files (`python deploy/lock.py` rewrites it).
# No secret is baked in: LLM keys, the S3 credentials and the OPA token come from Kubernetes
# secrets at run time (envSecrets).
FROM python:3.11.7-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    MAESTRO_WORKFLOWS_DIR=/opt/maestro/workflows \
    MAESTRO_POLICY_DIR=/opt/maestro/policies \
    DAGSTER_HOME=/opt/dagster/dagster_home

RUN groupadd --system --gid 10001 maestro \
    && useradd --system --uid 10001 --gid maestro --home-dir /opt/maestro --shell /usr/sbin/nologin maestro \
    && mkdir -p /opt/maestro "$DAGSTER_HOME" \
    && chown maestro:maestro "$DAGSTER_HOME"

WORKDIR /opt/maestro

# Dependencies first (a layer that changes only with the locks), then the project itself:
# pip and the build backend (setuptools, wheel) from their hashed lock, then the runtime lock.
COPY deploy/requirements-pip.lock deploy/requirements-pip.lock
RUN pip install --require-hashes --requirement deploy/requirements-pip.lock
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip install --require-hashes --requirement deploy/requirements.lock

COPY pyproject.toml README.md workspace.yaml ./
COPY maestro_common maestro_common
COPY yaml_compiler yaml_compiler
COPY resources resources
COPY maestro_defs maestro_defs
COPY maestro_cli maestro_cli
COPY policies policies
COPY workflows workflows
# Editable, so the code location finds workflows/ and policies/ beside it as in the repository;
# --no-deps: everything it needs came from the lock above (a hashed lock as constraints would
# demand a hash of the editable project, which has none); --no-build-isolation: built with the
# hashed setuptools and wheel installed above, nothing fetched for the build.
RUN pip install --no-deps --no-build-isolation --editable . \
    && python -c "import maestro_defs.definitions"

USER 10001:10001
EXPOSE 3030

# The chart's user deployment passes its own dagsterApiGrpcArgs; this is the same code location.
CMD ["dagster", "api", "grpc", "--host", "0.0.0.0", "--port", "3030", "--module-name", "maestro_defs.definitions", "--attribute", "defs"]
