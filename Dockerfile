# syntax=docker/dockerfile:1
#
# The smartfactory image: one image for every project service (simulate, gateway run,
# collector, api). Compose chooses the service through `command:`, e.g.
#   ["smartfactory", "collector", "--config", "/etc/smartfactory/smartfactory.yaml"]
# so this image has no ENTRYPOINT; its default command prints the CLI's help.
#
# The only network access during the build is pip (project dependencies and the
# setuptools build backend).

# ---- build: install the project into a self-contained virtualenv -----------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, from pyproject.toml alone, so editing the source does not
# re-download them on every build: the core and the extras of every service in the image
# (the 'all' extra: gateway, simulator, server).
COPY pyproject.toml ./
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies'] + [r for e in ('gateway', 'simulator', 'server') for r in p['optional-dependencies'][e]]))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself (.dockerignore keeps tests, docs, venvs and data out).
COPY . ./
RUN pip install ".[all]" \
    && smartfactory --help > /dev/null

# ---- runtime ----------------------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN groupadd --system --gid 10001 smartfactory \
    && useradd --system --uid 10001 --gid smartfactory --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin smartfactory \
    && mkdir -p /app/gateway-data /app/collector-data /app/api-data /etc/smartfactory \
    && chown -R smartfactory:smartfactory /app

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
USER 10001:10001

# Modbus simulator ports (see deploy/smartfactory.compose.yaml) and the HTTP API.
EXPOSE 5020-5022 8000

CMD ["smartfactory", "--help"]
