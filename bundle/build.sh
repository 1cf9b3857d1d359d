#!/usr/bin/env bash
# Build the offline bundle dist/syncd-<version>-<platform>.tar.gz: the syncd wheel, every dependency
# as a wheel, pip (to bootstrap the venv on a server without python3-venv), the systemd units, the
# example configuration, ops/ (alert rules, dashboard), the changelog, a README and install.sh.
# `make bundle` runs it.
#
#   bundle/build.sh                       for this machine's Python and platform
#   bundle/build.sh --python-version 3.11 --platform manylinux2014_x86_64
#                                         for Debian 12 (Python 3.11, x86-64), from any machine
#
#   --platform TAG      may be repeated (manylinux_2_28_x86_64 too, for a wheel only built for newer
#                       glibc); the bundle is named after the first
#   --out DIR           where the tarball goes (default: dist/)
#   --wheel-cache DIR   dependency wheels fetched once and reused (default: ~/.cache/syncd/wheels,
#                       or $SYNCD_WHEEL_CACHE); a build that finds every wheel there needs no network
#   --refresh           resolve against the package index even when the cache would do (newer releases)
#   PYTHON=…            the interpreter whose pip builds (default: .venv/bin/python, else python3)
#
# The last line printed is the tarball's path.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
OUT=$ROOT/dist
CACHE=${SYNCD_WHEEL_CACHE:-${XDG_CACHE_HOME:-${HOME:-$ROOT/build}/.cache}/syncd/wheels}
PY_VERSION=""
PLATFORMS=()
REFRESH=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=${2:?--out needs a directory}; shift 2 ;;
    --wheel-cache) CACHE=${2:?--wheel-cache needs a directory}; shift 2 ;;
    --python-version) PY_VERSION=${2:?--python-version needs X.Y}; shift 2 ;;
    --platform) PLATFORMS+=("${2:?--platform needs a platform tag}"); shift 2 ;;
    --refresh) REFRESH=1; shift ;;
    -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | cut -c3-; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "${PY_VERSION:+set}" != "$([ ${#PLATFORMS[@]} -gt 0 ] && echo set)" ]; then
  echo "build.sh: --python-version and --platform go together" >&2
  exit 2
fi

say() { echo "build.sh: $*" >&2; }
pip() { "$PYTHON" -m pip --disable-pip-version-check "$@"; }
pyproject() { "$PYTHON" -c "import sys, tomllib; print($1)" "$ROOT/pyproject.toml"; }

VERSION=$(pyproject 'tomllib.load(open(sys.argv[1], "rb"))["project"]["version"]')
BUILD_REQUIRES=$(pyproject '"\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"])')
if [ -n "$PY_VERSION" ]; then
  TARGET_PYTHON=$PY_VERSION
  TARGET_PLATFORM=${PLATFORMS[0]}
  # pip download resolves for another interpreter only from wheels: nothing can be built for it here.
  RESOLVE=(download --only-binary=:all: --python-version "$PY_VERSION")
  for platform in "${PLATFORMS[@]}"; do RESOLVE+=(--platform "$platform"); done
  RESOLVE+=(--dest)
else
  TARGET_PYTHON=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  TARGET_PLATFORM=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
  RESOLVE=(wheel --wheel-dir)
fi
NAME=syncd-$VERSION-py${TARGET_PYTHON//./}-$TARGET_PLATFORM

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE=$WORK/$NAME
mkdir -p "$STAGE/wheels" "$STAGE/systemd" "$STAGE/config" "$CACHE" "$OUT"

# The syncd wheel, from a clean copy of the tree: setuptools' build/ directory would carry modules
# deleted since into the wheel.
say "building the syncd $VERSION wheel"
mkdir "$WORK/src" "$WORK/syncd"
tar -C "$ROOT" --exclude=./.venv --exclude=./.git --exclude=./dist --exclude=./build --exclude='*.egg-info' \
  --exclude=__pycache__ --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./.hypothesis -cf - . |
  tar -C "$WORK/src" -xf -
# shellcheck disable=SC2086 # one requirement per word
if ! pip wheel --quiet --no-deps --no-index --find-links "$CACHE" --wheel-dir "$WORK/syncd" "$WORK/src" 2>/dev/null; then
  pip download --quiet --dest "$CACHE" $BUILD_REQUIRES
  pip wheel --quiet --no-deps --no-index --find-links "$CACHE" --wheel-dir "$WORK/syncd" "$WORK/src"
fi
SYNCD_WHEEL=$(echo "$WORK"/syncd/syncd-*.whl)
cp "$SYNCD_WHEEL" "$STAGE/wheels/"

# Every dependency, and pip: from the cache when it holds them all, else fetched into it first.
resolve() { pip "${RESOLVE[@]}" "$@" "$SYNCD_WHEEL" pip; }
# The cache holds dependencies only: a syncd wheel left there by an earlier build of the same version
# would carry that build's dependency list into this one.
rm -f "$CACHE"/syncd-*.whl
if [ "$REFRESH" = 1 ] || ! resolve "$STAGE/wheels" --quiet --no-index --find-links "$CACHE" 2>/dev/null; then
  say "fetching the dependencies for Python $TARGET_PYTHON ($TARGET_PLATFORM) into $CACHE"
  resolve "$CACHE" --quiet --find-links "$CACHE"
  resolve "$STAGE/wheels" --quiet --no-index --find-links "$CACHE"
fi
rm -f "$CACHE"/syncd-*.whl

shopt -s nullglob
units=("$ROOT"/systemd/*.service "$ROOT"/systemd/*.timer "$ROOT"/systemd/*.socket)
if [ ${#units[@]} -eq 0 ]; then say "warning: no unit files in systemd/"; fi
for unit in "${units[@]}"; do install -m 0644 "$unit" "$STAGE/systemd/"; done
install -m 0644 "$ROOT/config/example.toml" "$STAGE/config/example.toml"
install -m 0644 "$ROOT/config/city.example.toml" "$STAGE/config/city.example.toml"  # the city bureau's (README)
install -m 0644 "$ROOT/bundle/README.md" "$STAGE/README.md"
install -d -m 0755 "$STAGE/ops"
install -m 0644 "$ROOT"/ops/alerts.yml "$ROOT"/ops/alerts_test.yml "$ROOT"/ops/grafana-dashboard.json "$STAGE/ops/"
if [ -f "$ROOT/CHANGELOG.md" ]; then install -m 0644 "$ROOT/CHANGELOG.md" "$STAGE/CHANGELOG.md"; fi
install -m 0755 "$ROOT/bundle/install.sh" "$STAGE/install.sh"
cat >"$STAGE/BUNDLE" <<EOF
version=$VERSION
python=$TARGET_PYTHON
platform=$TARGET_PLATFORM
EOF
# install.sh checks these first: a bundle damaged on its way (a USB stick) is refused whole.
(cd "$STAGE" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >"$WORK/SHA256SUMS")
mv "$WORK/SHA256SUMS" "$STAGE/SHA256SUMS"

tar -C "$WORK" --sort=name --owner=0 --group=0 --numeric-owner -czf "$OUT/$NAME.tar.gz" "$NAME"
say "$(find "$STAGE/wheels" -name '*.whl' | wc -l) wheels, $(du -h "$OUT/$NAME.tar.gz" | cut -f1)"
echo "$OUT/$NAME.tar.gz"
