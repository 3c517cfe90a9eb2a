// A cheap look at an HDF5 file's superblock, without the HDF5 library: is it HDF5 at all, and
// is it complete? The superblock records the end-of-file address, so a download cut short is
// caught here in one line, before h5wasm prints pages of HDF5-DIAG about it.
import { open } from 'node:fs/promises';

const SIGNATURE = Buffer.from([0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Little-endian unsigned integer of `width` bytes; undefined for HDF5's "undefined address" (all ones). */
function readAddress(buf: Buffer, at: number, width: number): number | undefined {
  if (at + width > buf.length) return undefined;
  let value = 0n;
  let allOnes = true;
  for (let i = width - 1; i >= 0; i--) {
    const b = buf[at + i]!;
    if (b !== 0xff) allOnes = false;
    value = (value << 8n) | BigInt(b);
  }
  return allOnes ? undefined : Number(value);
}

/**
 * Where the superblock says the data ends (base address + end-of-file address), for superblock
 * versions 0-3; undefined when the version is unknown or the field is undefined.
 */
function declaredEnd(sb: Buffer): number | undefined {
  const version = sb[8];
  let sizeOfOffsets: number | undefined;
  let baseAt: number;
  if (version === 0 || version === 1) {
    sizeOfOffsets = sb[13];
    baseAt = version === 0 ? 24 : 28; // version 1 adds the indexed storage K and 2 reserved bytes
  } else if (version === 2 || version === 3) {
    sizeOfOffsets = sb[9];
    baseAt = 12;
  } else {
    return undefined;
  }
  if (sizeOfOffsets !== 2 && sizeOfOffsets !== 4 && sizeOfOffsets !== 8) return undefined;
  // base address, [free-space address (v0/1) | superblock extension address (v2/3)], end of file
  const base = readAddress(sb, baseAt, sizeOfOffsets);
  const eof = readAddress(sb, baseAt + 2 * sizeOfOffsets, sizeOfOffsets);
  return base === undefined || eof === undefined ? undefined : base + eof;
}

/**
 * What is wrong with `file` as an HDF5 file, in one line, or undefined when its signature is
 * there and it is at least as long as its superblock says. The signature sits at 0, 512, 1024,
 * 2048... (after an optional user block).
 */
export async function hdf5Problem(file: string): Promise<string | undefined> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const sb = Buffer.alloc(64);
    for (let at = 0; at + SIGNATURE.length <= size; at = at === 0 ? 512 : at * 2) {
      const { bytesRead } = await fh.read(sb, 0, sb.length, at);
      if (!sb.subarray(0, SIGNATURE.length).equals(SIGNATURE)) continue;
      const end = declaredEnd(sb.subarray(0, bytesRead));
      if (end !== undefined && size < end) return `truncated HDF5 file: ${size} of ${end} bytes`;
      return undefined;
    }
    return `not an HDF5 file (no HDF5 signature in its ${size} bytes)`;
  } finally {
    await fh.close();
  }
}
