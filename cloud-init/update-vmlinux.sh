#!/bin/sh
# Re-decompress the kernel on the boot partition after a kernel update (run by an apt DPkg::Post-Invoke hook).
# The Pi 4 firmware boots /boot/firmware/vmlinux (uncompressed) because Ubuntu's u-boot cannot read USB disks.
set -e
FW=${PI_IMAGE_FIRMWARE:-/boot/firmware}
[ -f "$FW/vmlinuz" ] || exit 0
# Only a gzip'd kernel (Ubuntu's arm64 vmlinuz) is decompressed; any other (a bzImage, a raw Image) boots as it is.
[ "$(head -c 2 "$FW/vmlinuz" | od -An -tx1 | tr -d ' \n')" = 1f8b ] || exit 0
new=$(zcat "$FW/vmlinuz" | sha256sum | cut -d' ' -f1)
old=$( [ -f "$FW/vmlinux" ] && sha256sum "$FW/vmlinux" | cut -d' ' -f1 || echo none)
if [ "$new" != "$old" ]; then
  echo "pi-image: kernel changed, decompressing $FW/vmlinuz to $FW/vmlinux"
  zcat "$FW/vmlinuz" > "$FW/vmlinux.new"
  sync
  mv "$FW/vmlinux.new" "$FW/vmlinux"
  sync
fi
