#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the system tools the tests use when missing, installs the
# pinned npm dependencies, runs the whole uvu suite and ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests check our output with. Command -> package.
declare -A need=(
  [fsck.fat]=dosfstools [mkfs.vfat]=dosfstools [mtype]=mtools [sfdisk]=fdisk [mkfs.ext4]=e2fsprogs
  [debugfs]=e2fsprogs [xz]=xz-utils [cpio]=cpio [bmaptool]=bmap-tools [cloud-init]=cloud-init
  [openssl]=openssl [dnsmasq]=dnsmasq-base [tar]=tar [gzip]=gzip [zip]=zip [lsblk]=util-linux
  [losetup]=mount [debootstrap]=debootstrap [qemu-system-x86_64]=qemu-system-x86 [ssh-keygen]=openssh-client
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "installing Debian packages: $pkgs"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
fi
export PATH="$PATH:/usr/sbin:/sbin"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# The CLI runs from dist/ when it is fresh (bin/pi-image.js checks); compile it so the tests run what users run.
npm run --silent build >/dev/null 2>&1 || echo "note: the compiled build failed; the CLI tests run the TypeScript sources"
exec node test/run.mjs "$@"
