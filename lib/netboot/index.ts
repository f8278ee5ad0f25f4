// Pi 4 network boot: TFTP trees, NFS roots, initramfs overlay and server config (the public surface).
export { netboot, nfsFstab, nfsCmdline, NOCLOUD_NETBOOT_CFG, NETBOOT_BUNDLE_PATH, OVERLAY_CONF, type NetbootNode, type NetbootOptions, type NetbootResult, type NetbootNodeResult } from './netboot.ts';
export { exportTar, exportDir, type FileOverride, type ExportOptions, type ExportResult } from './export-root.ts';
export { makeOverlay, alignPadding, checkOverlayName, type OverlayFile } from './initramfs.ts';
export { dnsmasqConfig, exportsLines, eepromSettings, boardDirName, networkOf } from './server.ts';
