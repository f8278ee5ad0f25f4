// Progress events: library pipelines report through an `onProgress` callback; the CLI turns them into ora
// spinners, plain lines or JSON lines. Nothing in lib/ prints.

export interface ProgressEvent {
  /** What is going on: 'download', 'decompress', 'copy', 'write', 'verify', 'node1: seed', … */
  phase: string;
  /** Units done so far (bytes unless `unit` says otherwise). */
  done: number;
  /** Total units, when known. */
  total?: number;
  unit?: 'bytes' | 'items';
  /** A short human note (file name, node name). */
  detail?: string;
}

export type OnProgress = (event: ProgressEvent) => void;

/** A callback that does nothing, for callers that do not care. */
export const noProgress: OnProgress = () => {};
