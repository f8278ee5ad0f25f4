// The process the apt-closure bench times: the resolver's public entry (resolveAptPackages) from the compiled
// tree, against a base image (ext4 file) and a mirror on 127.0.0.1, without fetching .debs. Prints one JSON line.
// Usage: node bench/apt-closure-entry.mjs DIST IMAGE MIRROR CODENAME CACHE ROLES_JSON
const [dist, image, mirror, codename, cacheDir, roles] = process.argv.slice(2);
const { resolveAptPackages } = await import(`${dist}/lib/lock/apt/index.js`);
const { Ext4Fs } = await import(`${dist}/lib/image/ext4/index.js`);
const { FileIO } = await import(`${dist}/lib/image/io.js`);
const entries = await resolveAptPackages({ root: Ext4Fs.open(FileIO.open(image)), imageName: image, roles: JSON.parse(roles), codename, mirror, cacheDir, fetchDebs: false });
console.log(JSON.stringify({ count: entries.length, bytes: entries.reduce((s, e) => s + e.size, 0), entries: entries.map((e) => [e.package, e.version]) }));
