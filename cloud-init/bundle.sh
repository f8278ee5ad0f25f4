#!/bin/bash
# pi-image: the node's bundle (what pi-image.lock pinned for its role), called by firstboot.sh.
#   bundle.sh unpack        the bundle is a raw tar on SSD partition 2 (type da), right after the root. Move it
#                           past the root's final size (or to the disk's end), grow the root to ROOT_SECTORS,
#                           extract it to $BUNDLE, check every sha256 against its index, then delete partition 2
#                           so the brick step makes the brick partition where it always does.
#                           A netbooted node (no SSD partition 2) has the same tar as a file in its NFS root,
#                           $BUNDLE_TAR: extracted from there, checked, then removed.
#   bundle.sh verify        re-check every item's sha256 (a missing or damaged item stops with its name).
#   bundle.sh verify-debs   the same for the local apt repository only (.debs, Packages, SHA256SUMS).
#   bundle.sh fetch URL OUT copy the item first boot would have downloaded from URL (sha256 re-checked) to OUT.
#                           Exit 4: this node has no bundle (downloads come from the network); 3: not in it.
#   bundle.sh images        load every image archive into the runtime (docker load / ctr -n k8s.io images
#                           import), each sha256 re-checked first, and remove the loaded archive.
# Environment (tests): PI_IMAGE_DISK (a disk image file instead of the root's disk), PI_IMAGE_ENV, PI_IMAGE_BUNDLE,
# PI_IMAGE_BUNDLE_TAR.
set -euo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD=${1:?usage: bundle.sh unpack|verify|verify-debs|fetch URL OUT|images}
# shellcheck source=/dev/null
[ -f "${PI_IMAGE_ENV:-/etc/pi-image/cluster.env}" ] && . "${PI_IMAGE_ENV:-/etc/pi-image/cluster.env}"
BUNDLE=${PI_IMAGE_BUNDLE:-/var/lib/pi-image/bundle}
INDEX=$BUNDLE/pi-image-bundle/index.tsv
BUNDLE_TAR=${PI_IMAGE_BUNDLE_TAR:-/var/lib/pi-image/bundle.tar}

log() { echo "pi-image[bundle]: $*"; logger -t pi-image "[bundle] $*" 2>/dev/null || true; }
die() { log "FAILED: $*"; exit 1; }
# Tell the kernel of partition N's new place on DISK. udev probes the partitions after sfdisk closes the disk (its
# inotify watch), and a partition it holds open cannot be moved (EBUSY): settle first, and try a few times.
tell_kernel() {
  local n=$1 d=$2 i
  for i in 1 2 3 4 5; do
    udevadm settle 2>/dev/null || true
    partx -u --nr "$n" "$d" 2>/dev/null && return 0
    sleep "$i"
  done
  partx -u --nr "$n" "$d"
}

root_disk() {
  if [ -n "${PI_IMAGE_DISK:-}" ]; then echo "$PI_IMAGE_DISK"; return; fi
  local src; src=$(findmnt -no SOURCE /)
  echo "/dev/$(lsblk -no PKNAME "$src" | head -n1)"
}
# start and size (sectors) of partition N of $1
part_geometry() {
  sfdisk -d "$1" | awk -F'[=,]' -v n="$2" '/start=/ { i++; if (i == n) { gsub(/ /, "", $2); gsub(/ /, "", $4); print $2, $4 } }'
}
disk_sectors() {
  blockdev --getsz "$1" 2>/dev/null || echo $(( $(stat -c %s "$1") / 512 ))
}
# Check one item; prints nothing, dies naming it.
check_item() {
  local sum=$1 name=$2 source=$3
  [ -f "$BUNDLE/$name" ] || die "bundle item missing: $name ($source)"
  echo "$sum  $BUNDLE/$name" | sha256sum -c --quiet - >/dev/null 2>&1 || die "bundle item damaged: $name ($source): sha256 mismatch"
}
verify_all() {
  [ -f "$INDEX" ] || die "bundle index missing: $INDEX"
  local n=0 kind sum size name source
  while IFS=$'\t' read -r kind sum size name source; do
    case $kind in '#'*|'') continue ;; esac
    [ -e "$BUNDLE/$name.loaded" ] && continue # an image archive already loaded into the runtime (and removed)
    check_item "$sum" "$name" "$source"; n=$((n + 1))
  done < "$INDEX"
  log "$n items checked (sha256)"
}

# The profile's bundle.files: each copied from the bundle (sha256 checked) to its path with its mode.
place_all() {
  local place=${PI_IMAGE_PLACE:-/etc/pi-image/bundle-place.tsv} url path mode
  [ -f "$place" ] || return 0
  while IFS=$'\t' read -r url path mode; do
    case $url in '#'*|'') continue ;; esac
    mkdir -p "$(dirname "$path")"
    bash "$0" fetch "$url" "$path" || die "placing $path from the bundle ($url)"
    chmod "$mode" "$path"
    log "placed $path"
  done < "$place"
}

case $CMD in
unpack)
  if [ -f "$BUNDLE_TAR" ]; then # the file form (netboot): the source is the tar in the root, not partition 2
    log "extracting the bundle from $BUNDLE_TAR to $BUNDLE"
    rm -rf "$BUNDLE.partial"; mkdir -p "$BUNDLE.partial"
    tar -x -C "$BUNDLE.partial" -f "$BUNDLE_TAR" || die "reading the bundle tar $BUNDLE_TAR"
    rm -rf "$BUNDLE"; mv "$BUNDLE.partial" "$BUNDLE"
    verify_all; place_all; rm -f "$BUNDLE_TAR"; exit 0
  fi
  disk=$(root_disk)
  if [ "$(sfdisk --part-type "$disk" 2 2>/dev/null || true)" != da ]; then
    [ -f "$INDEX" ] && { verify_all; exit 0; }
    log "no bundle partition on $disk: first-boot downloads come from the network"; exit 0
  fi
  read -r p1start p1size < <(part_geometry "$disk" 1)
  read -r start size < <(part_geometry "$disk" 2)
  magic=$(dd if="$disk" bs=512 skip="$start" count=1 status=none | head -c 25)
  [ "$magic" = pi-image-bundle/index.tsv ] || die "partition 2 of $disk is type da but holds no pi-image bundle"
  total=$(disk_sectors "$disk")
  want=${ROOT_SECTORS:-$p1size}
  dest=$((p1start + want))
  [ $((dest + size)) -le "$total" ] || dest=$(( (total - size) / 2048 * 2048 ))
  if [ "$dest" -ge $((start + size)) ]; then
    log "moving the bundle ($((size / 2048)) MiB) from sector $start to $dest, past the root's final size"
    dd if="$disk" of="$disk" bs=1M skip=$((start / 2048)) seek=$((dest / 2048)) count=$((size / 2048)) conv=notrunc,fsync status=none || die "copying the bundle on $disk"
    echo "$dest,$size,da" | sfdisk --quiet --no-reread --no-tell-kernel -N 2 "$disk" || die "sfdisk -N 2 $disk"
    # The kernel learns of the moved p2 first, or it would refuse the grown p1 as overlapping the old one.
    [ -n "${PI_IMAGE_DISK:-}" ] || tell_kernel 2 "$disk" || log "warning: partx -u --nr 2 $disk failed"
    start=$dest
  elif [ "$dest" -lt "$start" ]; then
    log "the disk has no room to move the bundle; the root stays at its size until the bundle is freed"
  fi
  grow=$((start - p1start)); [ "$grow" -le "$want" ] || grow=$want
  if [ "$grow" -gt "$p1size" ]; then
    log "growing the root partition to $grow sectors"
    echo ",$grow" | sfdisk --quiet --no-reread --no-tell-kernel -N 1 "$disk" || die "sfdisk -N 1 $disk"
    if [ -z "${PI_IMAGE_DISK:-}" ]; then
      tell_kernel 1 "$disk" || log "warning: partx -u --nr 1 $disk failed"
      resize2fs "$(findmnt -no SOURCE /)" >/dev/null 2>&1 || log "warning: resize2fs of the root failed"
    fi
  fi
  log "extracting the bundle to $BUNDLE"
  rm -rf "$BUNDLE.partial"; mkdir -p "$BUNDLE.partial"
  { dd if="$disk" bs=1M skip=$((start / 2048)) count=$((size / 2048)) status=none || true; } | tar -x -C "$BUNDLE.partial" || die "reading the bundle tar from $disk"
  rm -rf "$BUNDLE"; mv "$BUNDLE.partial" "$BUNDLE"
  verify_all
  place_all
  log "freeing partition 2 of $disk for the brick"
  sfdisk --quiet --no-reread --no-tell-kernel --delete "$disk" 2 || die "sfdisk --delete $disk 2"
  [ -n "${PI_IMAGE_DISK:-}" ] || { udevadm settle 2>/dev/null; partx -d --nr 2 "$disk" 2>/dev/null; } || true
  ;;
verify)
  verify_all
  ;;
verify-debs)
  [ -f "$INDEX" ] || die "bundle index missing: $INDEX"
  n=0; bytes=0
  while IFS=$'\t' read -r kind sum size name source; do
    case $kind in deb|apt) ;; *) continue ;; esac
    check_item "$sum" "$name" "$source"; n=$((n + 1)); [ "$kind" = apt ] || bytes=$((bytes + size))
  done < "$INDEX"
  log "$n apt items checked (sha256), $bytes bytes of .debs"
  ;;
fetch)
  url=${2:?url}; out=${3:?out}
  [ -f "$INDEX" ] || exit 4
  row=$(awk -F'\t' -v u="$url" '$1 == "file" && $5 == u { print; exit }' "$INDEX")
  [ -n "$row" ] || { log "not in this node's bundle: $url"; exit 3; }
  IFS=$'\t' read -r _ sum _ name source <<< "$row"
  check_item "$sum" "$name" "$source"
  cp "$BUNDLE/$name" "$out.part" && mv "$out.part" "$out"
  log "from the bundle: $url (sha256 $sum)"
  ;;
images)
  [ -f "$INDEX" ] || { log "no bundle: images are pulled from the network"; exit 0; }
  while IFS=$'\t' read -r kind sum size name source; do
    [ "$kind" = image ] || continue
    [ -e "$BUNDLE/$name.loaded" ] && continue
    check_item "$sum" "$name" "$source"
    log "loading $source ($size bytes)"
    if ! command -v ctr >/dev/null && ! command -v docker >/dev/null; then
      die "no container runtime (ctr or docker) to load $name ($source) into; sha256 checked"
    fi
    if [ "${RUNTIME:-docker.io}" = containerd ] || ! command -v docker >/dev/null; then
      ctr -n k8s.io images import "$BUNDLE/$name" >/dev/null || die "ctr import $name ($source)"
    else
      docker load -i "$BUNDLE/$name" >/dev/null || die "docker load $name ($source)"
    fi
    : > "$BUNDLE/$name.loaded"; rm -f "$BUNDLE/$name"
  done < "$INDEX"
  ;;
*)
  die "unknown command $CMD"
  ;;
esac
