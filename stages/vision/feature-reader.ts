// Random access to the rows of a feature entry (features.ts): held in memory when small, read
// from disk per batch when large. finetune's epochs, evaluate and predict read rows through it.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { FeatureIndex, FeatureSet } from './feature-types.js';

/** Above this the rows are read from disk per batch instead of held in memory. */
const IN_MEMORY_BYTES = 256 * 1024 * 1024;

/** Random access to the rows of a feature file. */
export class FeatureReader {
  private constructor(
    readonly index: FeatureIndex,
    readonly rowFloats: number,
    private readonly memory: Float32Array | null,
    private readonly fh: FileHandle | null,
  ) {}

  static async open(set: FeatureSet, inMemoryBytes = IN_MEMORY_BYTES): Promise<FeatureReader> {
    const file = path.join(set.dir, 'features.f32');
    const rowFloats = set.index.shape.reduce((a, b) => a * b, 1);
    const expected = set.index.count * rowFloats * 4;
    const size = (await stat(file)).size;
    if (size !== expected) throw new Error(`${file}: ${size} bytes, index.json says ${expected}`);
    if (size <= inMemoryBytes) {
      const buf = await readFile(file);
      const floats = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      return new FeatureReader(set.index, rowFloats, floats, null);
    }
    return new FeatureReader(set.index, rowFloats, null, await open(file, 'r'));
  }

  get count(): number {
    return this.index.count;
  }

  /** The rows at `indices`, in that order, concatenated. */
  async rows(indices: readonly number[]): Promise<Float32Array> {
    const n = this.rowFloats;
    const out = new Float32Array(indices.length * n);
    if (this.memory) {
      indices.forEach((r, i) => out.set(this.memory!.subarray(r * n, (r + 1) * n), i * n));
      return out;
    }
    // Read runs of consecutive rows with one call each.
    const order = indices.map((r, i) => [r, i] as const).sort((a, b) => a[0] - b[0]);
    const bytes = new Uint8Array(out.buffer);
    for (let k = 0; k < order.length;) {
      let end = k + 1;
      while (end < order.length && order[end]![0] === order[end - 1]![0] + 1) end++;
      const first = order[k]![0];
      const runRows = end - k;
      const tmp = new Uint8Array(runRows * n * 4);
      const { bytesRead } = await this.fh!.read(tmp, 0, tmp.byteLength, first * n * 4);
      if (bytesRead !== tmp.byteLength) throw new Error('feature file truncated');
      for (let j = 0; j < runRows; j++) bytes.set(tmp.subarray(j * n * 4, (j + 1) * n * 4), order[k + j]![1] * n * 4);
      k = end;
    }
    return out;
  }

  async close(): Promise<void> {
    await this.fh?.close();
  }
}
