// macOS drive listing: parsePlist on Apple's XML property list format and drivesFromDiskutil on `diskutil list
// -plist` + `diskutil info -plist` documents written here in that format (a MacBook: internal APFS SSD with the
// sealed system snapshot at / and the data volume, an SD card in the built-in reader with a FAT partition
// mounted, a USB SSD, a mounted disk image), then the safety rules over them as `pi-image drives` applies them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePlist, drivesFromDiskutil } from '../../lib/flash/diskutil.ts';
import { systemDrives } from '../../lib/flash/drives.ts';
import { assessTarget } from '../../lib/flash/safety.ts';

const head = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n<plist version="1.0">\n';
const plist = (body: string) => `${head}${body}\n</plist>\n`;
const part = (id: string, size: number, content: string, extra = '') =>
  `<dict><key>Content</key><string>${content}</string><key>DeviceIdentifier</key><string>${id}</string><key>Size</key><integer>${size}</integer>${extra}</dict>`;

const LIST = plist(`<dict>
  <key>AllDisks</key><array><string>disk0</string><string>disk0s1</string><string>disk0s2</string><string>disk3</string><string>disk3s1</string><string>disk3s5</string><string>disk4</string><string>disk4s1</string><string>disk4s2</string><string>disk5</string><string>disk6</string></array>
  <key>AllDisksAndPartitions</key>
  <array>
    <dict>
      <key>Content</key><string>GUID_partition_scheme</string>
      <key>DeviceIdentifier</key><string>disk0</string>
      <key>OSInternal</key><false/>
      <key>Partitions</key><array>
        ${part('disk0s1', 524288000, 'EFI', '<key>DiskUUID</key><string>6A8F2C2E-1B5E-4C7B-9E3A-0D1F2A3B4C5D</string><key>VolumeName</key><string>EFI</string>')}
        ${part('disk0s2', 499898105856, 'Apple_APFS')}
      </array>
      <key>Size</key><integer>500277790720</integer>
    </dict>
    <dict>
      <key>APFSPhysicalStores</key><array><dict><key>DeviceIdentifier</key><string>disk0s2</string></dict></array>
      <key>APFSVolumes</key><array>
        <dict><key>CapacityInUse</key><integer>11234567890</integer><key>DeviceIdentifier</key><string>disk3s1</string>
          <key>MountedSnapshots</key><array><dict><key>Sealed</key><string>Yes</string><key>SnapshotBSD</key><string>disk3s1s1</string><key>SnapshotMountPoint</key><string>/</string><key>SnapshotName</key><string>com.apple.os.update-1A2B</string></dict></array>
          <key>OSInternal</key><false/><key>Size</key><integer>499898105856</integer><key>VolumeName</key><string>Macintosh HD</string></dict>
        <dict><key>CapacityInUse</key><integer>201234567890</integer><key>DeviceIdentifier</key><string>disk3s5</string><key>MountPoint</key><string>/System/Volumes/Data</string>
          <key>OSInternal</key><false/><key>Size</key><integer>499898105856</integer><key>VolumeName</key><string>Macintosh HD - Data</string></dict>
      </array>
      <key>Content</key><string>EF57347C-0000-11AA-AA11-00306543ECAC</string>
      <key>DeviceIdentifier</key><string>disk3</string>
      <key>OSInternal</key><false/>
      <key>Size</key><integer>499898105856</integer>
    </dict>
    <dict>
      <key>Content</key><string>FDisk_partition_scheme</string>
      <key>DeviceIdentifier</key><string>disk4</string>
      <key>OSInternal</key><false/>
      <key>Partitions</key><array>
        ${part('disk4s1', 268435456, 'Windows_FAT_32', '<key>MountPoint</key><string>/Volumes/system-boot</string><key>VolumeName</key><string>system-boot</string>')}
        ${part('disk4s2', 31633440768, 'Linux')}
      </array>
      <key>Size</key><integer>31914983424</integer>
    </dict>
    <dict>
      <key>Content</key><string></string>
      <key>DeviceIdentifier</key><string>disk5</string>
      <key>OSInternal</key><false/>
      <key>Size</key><integer>240057409536</integer>
    </dict>
    <dict>
      <key>Content</key><string>GUID_partition_scheme</string>
      <key>DeviceIdentifier</key><string>disk6</string>
      <key>OSInternal</key><false/>
      <key>Partitions</key><array>${part('disk6s1', 104857600, 'Apple_HFS', '<key>MountPoint</key><string>/Volumes/Installer &amp; Tools</string><key>VolumeName</key><string>Installer &amp; Tools</string>')}</array>
      <key>Size</key><integer>104878080</integer>
    </dict>
  </array>
  <key>VolumesFromDisks</key><array><string>Macintosh HD</string><string>system-boot</string></array>
  <key>WholeDisks</key><array><string>disk0</string><string>disk3</string><string>disk4</string><string>disk5</string><string>disk6</string></array>
</dict>`);

const info = (id: string, o: { media: string; bus: string; internal: boolean; removable: boolean; writable?: boolean; size: number; virtual?: boolean }) =>
  plist(`<dict>
  <key>BusProtocol</key><string>${o.bus}</string>
  <key>DeviceIdentifier</key><string>${id}</string>
  <key>DeviceNode</key><string>/dev/${id}</string>
  <key>Ejectable</key>${o.removable ? '<true/>' : '<false/>'}
  <key>Internal</key>${o.internal ? '<true/>' : '<false/>'}
  <key>MediaName</key><string>${o.media}</string>
  <key>RemovableMedia</key>${o.removable ? '<true/>' : '<false/>'}
  <key>Size</key><integer>${o.size}</integer>
  <key>TotalSize</key><integer>${o.size}</integer>
  <key>VirtualOrPhysical</key><string>${o.virtual ? 'Virtual' : 'Physical'}</string>
  <key>WholeDisk</key><true/>
  <key>WritableMedia</key>${o.writable === false ? '<false/>' : '<true/>'}
</dict>`);

const INFOS = {
  disk0: parsePlist(info('disk0', { media: 'APPLE SSD AP0512Q', bus: 'Apple Fabric', internal: true, removable: false, size: 500277790720 })),
  disk3: parsePlist(info('disk3', { media: '', bus: 'Apple Fabric', internal: true, removable: false, size: 499898105856, virtual: true })),
  disk4: parsePlist(info('disk4', { media: 'SD Card Reader', bus: 'Secure Digital', internal: true, removable: true, size: 31914983424 })),
  disk5: parsePlist(info('disk5', { media: 'ASMT 2115', bus: 'USB', internal: false, removable: false, size: 240057409536 })),
  disk6: parsePlist(info('disk6', { media: 'Disk Image', bus: 'Disk Image', internal: false, removable: true, writable: false, size: 104878080 })),
};

test('parsePlist: dict, array, string, integer, real, true/false, date, data, entities, empty elements', () => {
  const v = parsePlist(plist(`<dict><key>s</key><string>a &lt;b&gt; &amp; &#x263A;</string><key>i</key><integer>-42</integer><key>r</key><real>1.5</real>
    <key>t</key><true/><key>f</key><false/><key>d</key><date>2020-01-01T00:00:00Z</date><key>b</key><data>aGVs
    bG8=</data><key>e</key><string/><key>a</key><array><integer>1</integer><dict/><array/></array></dict>`));
  assert.equal(v, { s: 'a <b> & \u263a', i: -42, r: 1.5, t: true, f: false, d: new Date('2020-01-01T00:00:00Z'), b: Buffer.from('hello'), e: '', a: [1, {}, []] });
});

test('parsePlist: a broken document names the byte offset', () => {
  assert.throws(() => parsePlist(plist('<dict><string>no key</string></dict>')), /expected <key> in <dict> at byte offset \d+/);
  assert.throws(() => parsePlist(plist('<dict><key>n</key><integer>x1</integer></dict>')), /<integer> "x1" is not a number at byte offset \d+/);
  assert.throws(() => parsePlist(plist('<dict><key>n</key><widget/></dict>')), /unknown tag <widget>/);
});

test('drivesFromDiskutil: whole disks with size, model, bus, flags and every mount point on them', () => {
  const drives = drivesFromDiskutil(parsePlist(LIST), INFOS);
  const by = Object.fromEntries(drives.map((d) => [d.name, d]));
  assert.equal(drives.map((d) => d.name), ['disk0', 'disk3', 'disk4', 'disk5', 'disk6']);
  assert.equal(
    { path: by.disk0!.path, type: by.disk0!.type, size: by.disk0!.size, model: by.disk0!.model, transport: by.disk0!.transport, removable: by.disk0!.removable, hotplug: by.disk0!.hotplug },
    { path: '/dev/disk0', type: 'disk', size: 500277790720, model: 'APPLE SSD AP0512Q', transport: 'internal', removable: false, hotplug: false },
  );
  // The APFS container's volumes (system snapshot at /, data volume) count as mounted on the physical disk.
  assert.equal(by.disk0!.mountpoints.sort(), ['/', '/System/Volumes/Data']);
  assert.is(by.disk3!.type, 'virtual');
  assert.equal({ type: by.disk4!.type, transport: by.disk4!.transport, removable: by.disk4!.removable, mounts: by.disk4!.mountpoints }, { type: 'disk', transport: 'mmc', removable: true, mounts: ['/Volumes/system-boot'] });
  assert.equal(by.disk4!.children.map((c) => [c.path, c.fstype]), [['/dev/disk4s1', 'Windows_FAT_32'], ['/dev/disk4s2', 'Linux']]);
  assert.equal({ transport: by.disk5!.transport, hotplug: by.disk5!.hotplug, mounts: by.disk5!.mountpoints, size: by.disk5!.size }, { transport: 'usb', hotplug: true, mounts: [], size: 240057409536 });
  assert.equal({ type: by.disk6!.type, readOnly: by.disk6!.readOnly, mounts: by.disk6!.mountpoints }, { type: 'image', readOnly: true, mounts: ['/Volumes/Installer & Tools'] });
});

test('the safety rules over a Mac: the system disk refused, the SD card needs --unmount, the USB SSD ok', () => {
  const drives = drivesFromDiskutil(parsePlist(LIST), INFOS);
  const system = systemDrives(drives);
  assert.ok(system.some((d) => d.name === 'disk0'), 'disk0 holds /');
  const codes = (name: string) => {
    const d = drives.find((x) => x.name === name)!;
    return assessTarget({ kind: 'device', path: d.path, size: d.size, drive: d, partition: false, stats: undefined as never }, { imageSize: 0, systemDrives: system, sourceDrives: [] })
      .findings.filter((f) => f.level !== 'warn').map((f) => f.code);
  };
  assert.ok(codes('disk0').includes('system'));
  assert.equal(codes('disk4'), ['mounted']);
  assert.equal(codes('disk5'), []);
});

test('without diskutil info the listing still stands (sizes from the list, flags unknown)', () => {
  const drives = drivesFromDiskutil(parsePlist(LIST));
  assert.is(drives.find((d) => d.name === 'disk5')!.size, 240057409536);
  assert.is(drives.find((d) => d.name === 'disk5')!.transport, undefined);
});

test.run();
