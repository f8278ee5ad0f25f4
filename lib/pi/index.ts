// The Raspberry Pi domain layer: boot config resolution and editing, kernel command line, kernel decompression,
// USB quirks, which partitions are boot and root. Pure logic over text and bytes; callers do the I/O.
export * from './config-txt.ts';
export * from './direct-boot.ts';
export * from './cmdline.ts';
export * from './kernel.ts';
export * from './usb-quirks.ts';
export * from './partitions.ts';
