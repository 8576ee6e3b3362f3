#!/bin/sh
# bin/ak, written by akpkg: authentik's lifecycle/ak for the Python backend of this prefix.
# It works from any directory and after the prefix is moved: it finds the prefix from its own
# path. `server` runs authentik's Go server (bin/authentik, when akpkg built it) from the
# prefix's root, where it finds ./web, ./lifecycle and gunicorn; `web` runs the Python web
# server (gunicorn) alone.
set -e
prefix=$(CDPATH= cd -- "$(dirname -- "$0")/.." && pwd -P)
python="$prefix/bin/python"
# Without it, every request fails with 500 (prometheus_client's multiprocess mode).
if [ -z "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    PROMETHEUS_MULTIPROC_DIR="${TMPDIR:-/tmp}/authentik_prometheus_tmp"
fi
export PROMETHEUS_MULTIPROC_DIR
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
# The release's commit, as upstream's image sets it: the web UI's file names carry it, and
# the pages the server renders name those files.
if [ -z "${GIT_BUILD_HASH+set}" ]; then
    GIT_BUILD_HASH="@GIT_BUILD_HASH@"
    export GIT_BUILD_HASH
fi
# manage.py and lifecycle/ sit at the prefix's root: `python -m manage` must find them.
export PYTHONPATH="$prefix${PYTHONPATH:+:$PYTHONPATH}"

usage() {
    cat <<'USAGE'
usage: ak COMMAND [ARGUMENTS...]

authentik, from this prefix (the Python backend; it finds the prefix from its own path).

commands:
  migrate         authentik's system migrations, Django's migrations and checks (needs the
                  database: AUTHENTIK_POSTGRESQL__HOST, __NAME, __USER, __PASSWORD)
  web [ARGS]      the Python web server (gunicorn; add --bind HOST:PORT)
  worker [ARGS]   the background worker
  server          authentik's Go server (bin/authentik): HTTP on :9000, HTTPS on :9443, the
                  web UI, the embedded outpost; it starts gunicorn itself
  healthcheck     the server's or the worker's healthcheck, as the last `ak server` or
                  `ak worker` started (the database's, without the Go server)
  dump_config     the configuration as authentik reads it
  shell, createsuperuser, apply_blueprint, ...
                  any Django management command (`ak help` lists them; needs a secret key:
                  AUTHENTIK_SECRET_KEY)
  --help, -h      this text (reads no configuration and no database)
USAGE
}

case "${1:-}" in
    ""|-h|--help)
        usage
        [ -n "${1:-}" ]
        exit
        ;;
    server)
        shift
        if [ ! -x "$prefix/bin/authentik" ]; then
            echo "ak server: this prefix has no Go server (bin/authentik): assemble it without --no-server" >&2
            exit 1
        fi
        echo server >"${TMPDIR:-/tmp}/authentik-mode"
        # The server reads ./web/dist, ./web/authentik and ./lifecycle/gunicorn.conf.py from its
        # working directory, and starts `gunicorn` from PATH: the prefix's root and bin/.
        cd "$prefix"
        PATH="$prefix/bin:$PATH"
        export PATH
        exec "$prefix/bin/authentik" "$@"
        ;;
    migrate)
        # What the server runs at start: authentik's system migrations, Django's, the checks.
        shift
        exec "$python" -c 'from authentik.root.setup import setup; setup()
from lifecycle.wait_for_db import wait_for_db; wait_for_db()
from lifecycle.migrate import run_migrations; run_migrations()' "$@"
        ;;
    web)
        # The Python web server alone, as the Go server starts it (add --bind HOST:PORT; the
        # default is a unix socket in $TMPDIR).
        shift
        exec "$python" -m gunicorn -c "$prefix/lifecycle/gunicorn.conf.py" "$@" authentik.root.asgi:application
        ;;
    worker)
        shift
        if [ -n "${AUTHENTIK_BOOTSTRAP_PASSWORD:-}" ] || [ -n "${AUTHENTIK_BOOTSTRAP_TOKEN:-}" ]; then
            "$python" -m manage apply_blueprint system/bootstrap.yaml || true
        fi
        echo worker >"${TMPDIR:-/tmp}/authentik-mode"
        exec "$python" -m manage worker --pid-file "${TMPDIR:-/tmp}/authentik-worker.pid" "$@"
        ;;
    healthcheck)
        if [ -x "$prefix/bin/authentik" ]; then
            cd "$prefix"
            exec "$prefix/bin/authentik" healthcheck "$(cat "${TMPDIR:-/tmp}/authentik-mode" 2>/dev/null || echo server)"
        fi
        exec "$python" -m lifecycle.wait_for_db
        ;;
    dump_config)
        shift
        exec "$python" -m authentik.lib.config "$@"
        ;;
    *)
        exec "$python" -m manage "$@"
        ;;
esac
