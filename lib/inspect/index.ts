// Inspect, list and read disk images without mounting: the library behind `pi-image inspect`, `ls` and `cat`.
export * from './inspect.ts';
export * from './volume.ts';
export * from './detect.ts';
export * from './spec.ts';
