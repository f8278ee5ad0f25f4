#!/usr/bin/env bash
# The one test command (README, .ci/run): installs the system tools the tests use when missing, installs the
# pinned npm dependencies, runs the whole uvu suite and ends with the line "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# Whatever stops this script before the suite runs (npm ci failing, a missing node), CI still gets its closing line.
trap 'status=$?; [ $status -eq 0 ] || echo "0 passed, 1 failed"; exit $status' EXIT

# Debian packages the tests check our output with. Command -> package.
declare -A need=(
  [fsck.fat]=dosfstools [mkfs.vfat]=dosfstools [mtype]=mtools [sfdisk]=fdisk [mkfs.ext4]=e2fsprogs
  [debugfs]=e2fsprogs [xz]=xz-utils [cpio]=cpio [bmaptool]=bmap-tools [cloud-init]=cloud-init
  [openssl]=openssl [dnsmasq]=dnsmasq-base [tar]=tar [gzip]=gzip [zip]=zip [lsblk]=util-linux
  [losetup]=mount [debootstrap]=debootstrap [qemu-system-x86_64]=qemu-system-x86 [ssh-keygen]=openssh-client
  [apt-ftparchive]=apt-utils [dpkg-deb]=dpkg [gpg]=gnupg [unshare]=util-linux
  [script]=bsdutils [stty]=coreutils [npm]=npm [findmnt]=util-linux [mount]=mount
  [docker-registry]=docker-registry [skopeo]=skopeo
  [perl]=perl-base [fallocate]=util-linux [filefrag]=e2fsprogs [mkfs.xfs]=xfsprogs [mkfs.btrfs]=btrfs-progs
  [stress-ng]=stress-ng [busybox]=busybox-static [sgdisk]=gdisk
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
# The bundle boot runs a static busybox inside a container image; Debian's plain busybox package is dynamic.
if command -v busybox >/dev/null 2>&1 && ldd "$(command -v busybox)" >/dev/null 2>&1; then missing+=(busybox-static); fi
if [ ${#missing[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  echo "installing Debian packages: $pkgs"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # A package that cannot be installed is not fatal here: the tests that need its tool fail (or skip, for QEMU and
  # debootstrap) with its name, and the run still ends with its totals.
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null; }; then
    echo "warning: apt-get could not install all of: $pkgs (trying them one by one)"
    for p in $pkgs; do
      DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$p" >/dev/null || echo "warning: could not install $p"
    done
  fi
fi
export PATH="$PATH:/usr/sbin:/sbin"

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
# The CLI runs from dist/ when it is fresh (bin/pi-image.js checks); compile it so the tests run what users run.
npm run --silent build >/dev/null 2>&1 || echo "note: the compiled build failed; the CLI tests run the TypeScript sources"
trap - EXIT
exec node test/run.mjs "$@"
