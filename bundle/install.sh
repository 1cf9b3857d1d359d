#!/usr/bin/env bash
# Install or upgrade syncd from this bundle. Never uses the network: every package comes from wheels/.
#
#   sudo ./install.sh              /opt/syncd/venv, /etc/systemd/system/syncd*.service, /etc/syncd/
#   ./install.sh --prefix DIR      the same under DIR instead of / (a trial, a test; no root needed)
#
# Re-running it, with this bundle or another release's, installs that bundle's syncd in place (also
# an older one: that is a rollback). The configuration in /etc/syncd/syncd.toml is created from the
# example only when there is none, and the state in /var/lib/syncd is never touched.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
PREFIX=/
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#--prefix=}; shift ;;
    -h | --help) sed -n '2,/^[^#]/p' "$0" | sed '$d' | cut -c3-; exit 0 ;;
    *) echo "install.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ "$PREFIX" = / ] && [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: installing into / needs root: run  sudo $0  (or --prefix DIR for a trial)" >&2
  exit 2
fi

say() { echo "install.sh: $*" >&2; }
fail() { say "$*"; exit 2; }

(cd "$HERE" && sha256sum --quiet --strict -c SHA256SUMS) ||
  fail "the bundle is damaged (its checksums do not match): copy the .tar.gz again and re-extract it"
version=$(sed -n 's/^version=//p' "$HERE/BUNDLE")
bundle_python=$(sed -n 's/^python=//p' "$HERE/BUNDLE")
PYTHON=${PYTHON:-python3}
have_python=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') ||
  fail "$PYTHON is needed (Debian: apt install python3)"
if [ "$have_python" != "$bundle_python" ]; then
  fail "this bundle is for Python $bundle_python, but $PYTHON is $have_python: build one for $have_python (README)"
fi

mkdir -p "$PREFIX"
P=$(cd "$PREFIX" && pwd)
P=${P%/}  # "" when installing into /
VENV=$P/opt/syncd/venv
CONF=$P/etc/syncd
UNITS=$P/etc/systemd/system
WHEELS=$HERE/wheels

previous=""
if [ -x "$VENV/bin/python" ]; then
  previous=$("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("syncd"))' 2>/dev/null) ||
    previous=""
else
  mkdir -p "$(dirname "$VENV")"
  # Without pip: Debian's python3 has venv, but ensurepip only with python3-venv, which a server
  # without a mirror may lack. pip comes from the bundle instead.
  "$PYTHON" -m venv --without-pip "$VENV"
fi
if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  pip_wheel=$(echo "$WHEELS"/pip-*.whl)
  # A pip wheel runs as it is: it installs pip into the venv from the bundle.
  "$VENV/bin/python" "$pip_wheel/pip" --isolated install --quiet --no-index --find-links "$WHEELS" pip
fi

# --isolated: no pip.conf or PIP_* variable may add an index; --no-index: the bundle's wheels only.
pip_install() {
  "$VENV/bin/python" -m pip --isolated --disable-pip-version-check install --quiet --no-index \
    --find-links "$WHEELS" "$@"
}
dependencies=()
for wheel in "$WHEELS"/*.whl; do
  case ${wheel##*/} in syncd-*) ;; *) dependencies+=("$wheel") ;; esac
done
# Each dependency at exactly the bundle's version (older ones too, on a rollback), then syncd itself,
# reinstalled even at the same version so that a rebuilt bundle is what runs.
say "installing syncd $version${previous:+ (was $previous)} into $VENV"
pip_install --upgrade "${dependencies[@]}"
pip_install --upgrade --no-deps --force-reinstall "$WHEELS"/syncd-"$version"-*.whl
"$VENV/bin/python" -m pip --isolated --disable-pip-version-check check >/dev/null ||
  fail "the installed packages do not fit together: $VENV/bin/python -m pip check"

mkdir -p "$P/usr/local/bin"
ln -sfn "$VENV/bin/syncd" "$P/usr/local/bin/syncd"

mkdir -p "$UNITS"
for unit in "$HERE"/systemd/*; do
  if [ -f "$unit" ]; then install -m 0644 "$unit" "$UNITS/"; fi
done

# 0755/0644: the service runs under a dynamic user that must read the configuration. Secrets live
# apart, each a file root:syncd 0640 in /etc/syncd (README "Secrets"): the units give the dynamic
# user the group syncd, created here. A trial under --prefix creates no group.
install -d -m 0755 "$CONF"
if [ -z "$P" ] && ! getent group syncd >/dev/null; then
  groupadd --system syncd
fi
install -m 0644 "$HERE/config/example.toml" "$CONF/syncd.toml.example"  # this release's reference
# The city bureau's console (syncd-city.service) is optional: its example only, never a city.toml.
install -m 0644 "$HERE/config/city.example.toml" "$CONF/city.toml.example"
if [ -e "$CONF/syncd.toml" ]; then
  config_note="kept $CONF/syncd.toml as it was (this release's example: syncd.toml.example)"
else
  install -m 0644 "$HERE/config/example.toml" "$CONF/syncd.toml"
  config_note="created $CONF/syncd.toml from the example"
fi

running=0
if [ -z "$P" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl daemon-reload
  if systemctl is-active --quiet syncd.service; then running=1; fi
fi

if [ -z "$P" ]; then syncd=syncd; else syncd="$VENV/bin/syncd --config $CONF/syncd.toml"; fi
echo "syncd $version is installed in $VENV${previous:+ (it was $previous)}; $config_note."
echo
echo "Next steps:"
if [ -n "$previous" ]; then
  echo "  1. Read what changed in $HERE/CHANGELOG.md; new configuration keys are in $CONF/syncd.toml.example."
  echo "  2. Check the configuration with this release: $syncd check-config"
  if [ "$running" = 1 ]; then
    echo "  3. The daemon still runs $previous: restart it (the state is migrated at start): systemctl restart syncd"
  else
    echo "  3. Start it (the state is migrated at start): systemctl enable --now syncd"
  fi
else
  echo "  1. Edit $CONF/syncd.toml ([unit], [source], [target]), and put the app secret in"
  echo "     $CONF/app-secret, readable by the service's group only:"
  echo "       chgrp syncd $CONF/app-secret && chmod 640 $CONF/app-secret"
  echo "  2. Check the configuration: $syncd check-config"
  echo "  3. Start the daemon now and at every boot: systemctl enable --now syncd"
fi
