#!/usr/bin/env bash
# Runs the whole test suite against LibTorch 2.x: a Debian trixie system (LibTorch 2.6, its
# python3-torch for the reference tests, its Node 20, g++ 14) in a chroot made with debootstrap,
# over a copy of this checkout and its node_modules. scripts/setup.sh installs the packages inside
# it, so the list is the one a bookworm machine gets. Packages come from this machine's own Debian
# mirror (scripts/debian-mirror.sh; ADATT_DEBIAN_MIRROR overrides it). Needs root; the chroot is kept in
# ADATT_TRIXIE_ROOT (default /tmp/adatt-trixie) for the next run. Extra arguments go to vitest,
# e.g. `bash scripts/test-torch2.sh test/distributed.test.ts`.
#   bash scripts/test-torch2.sh --make-fixtures DIR
# instead writes the parity and TorchScript tests' fixtures, made by trixie's PyTorch 2.6, into
# DIR/parity and DIR/torchscript, for this machine's build to test with (ADATT_PARITY_FIXTURES,
# ADATT_TORCHSCRIPT_FIXTURES; see .ci/run). It needs a chroot that a test run has set up.
set -euo pipefail
cd "$(dirname "$0")/.."
CHROOT=${ADATT_TRIXIE_ROOT:-/tmp/adatt-trixie}
FIXTURES=
if [ "${1:-}" = --make-fixtures ]; then
  [ -n "${2:-}" ] || { echo "usage: $0 --make-fixtures DIR" >&2; exit 2; }
  FIXTURES=$(mkdir -p "$2" && cd "$2" && pwd)
  [ -x "$CHROOT/usr/bin/python3" ] || { echo "test-torch2: no chroot with python3-torch at $CHROOT: run a test first" >&2; exit 1; }
  shift 2
fi
[ "$(id -u)" = 0 ] || { echo "test-torch2: needs root (debootstrap, chroot, mount)" >&2; exit 1; }
[ -d node_modules ] || { echo "test-torch2: run npm ci (or scripts/setup.sh) first" >&2; exit 1; }

if [ ! -f "$CHROOT/.bootstrapped" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
  echo "test-torch2: debootstrap trixie into $CHROOT"
  rm -rf "$CHROOT"
  debootstrap --variant=minbase --include=ca-certificates trixie "$CHROOT" "$(bash scripts/debian-mirror.sh)" >/dev/null
  touch "$CHROOT/.bootstrapped"
fi
cp /etc/resolv.conf "$CHROOT/etc/resolv.conf"
# This machine's CA bundle, for package registries reached through a TLS-inspecting proxy.
cp /etc/ssl/certs/ca-certificates.crt "$CHROOT/etc/ssl/host-ca-certificates.crt"

# A fresh copy of the checkout (tracked and untracked files, not ignored ones) beside shared/.
rm -rf "$CHROOT/work/main"
mkdir -p "$CHROOT/work/main" "$CHROOT/work/shared"
git ls-files -z --cached --others --exclude-standard | xargs -0 tar -cf - | tar -xf - -C "$CHROOT/work/main"
tar -cf - node_modules | tar -xf - -C "$CHROOT/work/main"
touch "$CHROOT/work/main/node_modules/.package-lock.json"  # installed: setup.sh skips npm ci
SHARED=$(cd .. && pwd)/shared

# Run in a private mount namespace: its mounts go away with it, however the run ends.
INSIDE=$(cat <<'SCRIPT'
set -euo pipefail
CHROOT=$1 SHARED=$2 FIXTURES=$3
shift 3
mount -t proc proc "$CHROOT/proc"
mount --rbind /dev "$CHROOT/dev"
mount -t tmpfs tmpfs "$CHROOT/tmp"
[ -d "$SHARED" ] && mount --bind -o ro "$SHARED" "$CHROOT/work/shared"
if [ -n "$FIXTURES" ]; then
  mkdir -p "$CHROOT/tmp/fixtures"
  mount --bind "$FIXTURES" "$CHROOT/tmp/fixtures"
  exec chroot "$CHROOT" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root bash -c 'set -e
    mkdir -p /tmp/fixtures/parity /tmp/fixtures/torchscript
    python3 /work/main/scripts/reference/make_parity_fixtures.py /tmp/fixtures/parity
    python3 /work/main/scripts/reference/make_torchscript_fixtures.py /tmp/fixtures/torchscript'
fi
# The addon is built there with node-gyp (binding.gyp, what a source install runs), so the native
# suite passes with both build definitions: CMake's here, gyp's against LibTorch 2.6.
exec chroot "$CHROOT" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin HOME=/root CI="${CI:-}" \
  ADATT_NATIVE_BUILD=gyp ADATT_LINT=0 \
  NODE_EXTRA_CA_CERTS=/etc/ssl/host-ca-certificates.crt \
  bash -c 'set -e
    if ! command -v npm >/dev/null; then  # Node itself: setup.sh expects it, as on any machine
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
    fi
    cd /work/main && npm test -- "$@"' _ "$@"
SCRIPT
)
exec unshare --mount --propagation private bash -c "$INSIDE" _ "$CHROOT" "$SHARED" "$FIXTURES" "$@"
