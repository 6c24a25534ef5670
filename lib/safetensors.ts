/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length, a JSON header {name: {dtype, shape, data_offsets}, __metadata__?}, then the tensor bytes.
 * Written as F32; F32, F64, F16 and BF16 are read (as float32).
 */
import { FileError } from './errors';
import type { StateDict } from './tensor';
import { isRecord } from './validation';

const MAX_HEADER_BYTES = 100 * 1024 * 1024;
const ELEMENT_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };

/** The file's bytes for `tensors` (names sorted, as the reference implementation writes them). */
export function encodeSafetensors(tensors: StateDict, metadata: Record<string, string> = {}): Uint8Array[] {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  const names = Object.keys(tensors).sort();
  let offset = 0;
  for (const name of names) {
    const bytes = tensors[name]!.data.byteLength;
    header[name] = { dtype: 'F32', shape: tensors[name]!.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // The data must start 8-byte aligned: pad the header JSON with spaces.
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return [
    prefix,
    Buffer.from(json, 'utf8'),
    ...names.map((name) => new Uint8Array(tensors[name]!.data.buffer, tensors[name]!.data.byteOffset, tensors[name]!.data.byteLength)),
  ];
}

function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function toFloat32(bytes: Uint8Array, dtype: string): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = bytes.byteLength / ELEMENT_BYTES[dtype]!;
  const out = new Float32Array(count);
  const bfloat = new DataView(new ArrayBuffer(4)); // a bfloat16 is the top half of a float32
  for (let i = 0; i < count; i += 1) {
    if (dtype === 'F32') out[i] = view.getFloat32(4 * i, true);
    else if (dtype === 'F64') out[i] = view.getFloat64(8 * i, true);
    else if (dtype === 'F16') out[i] = halfToFloat(view.getUint16(2 * i, true));
    else {
      bfloat.setUint32(0, view.getUint16(2 * i, true) << 16);
      out[i] = bfloat.getFloat32(0);
    }
  }
  return out;
}

/** Parses safetensors bytes; every malformed part is a FileError naming `file`. */
export function decodeSafetensors(bytes: Uint8Array, file: string): StateDict {
  const fail = (reason: string): never => {
    throw new FileError(`${file} is not a valid safetensors file: ${reason}`);
  };
  if (bytes.length < 8) fail('it is shorter than its 8-byte header length');
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(buffer.readBigUInt64LE(0));
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > bytes.length) fail('the header length runs past the end');
  let header: unknown;
  try {
    header = JSON.parse(buffer.subarray(8, 8 + headerLength).toString('utf8'));
  } catch {
    fail('the header is not valid JSON');
  }
  if (!isRecord(header)) fail('the header is not a JSON object');
  const data = bytes.subarray(8 + headerLength);
  const tensors: StateDict = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    if (!isRecord(entry) || typeof entry.dtype !== 'string' || !Array.isArray(entry.shape) || !Array.isArray(entry.data_offsets)) {
      fail(`entry ${name} lacks dtype, shape or data_offsets`);
    }
    const { dtype, shape, data_offsets: offsets } = entry as { dtype: string; shape: unknown[]; data_offsets: unknown[] };
    if (!(dtype in ELEMENT_BYTES)) fail(`tensor ${name} has dtype ${dtype}; only F32, F64, F16 and BF16 weights are supported`);
    if (!shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) fail(`tensor ${name} has an invalid shape`);
    const [begin, end] = offsets as number[];
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (
      !Number.isInteger(begin) ||
      !Number.isInteger(end) ||
      begin! < 0 ||
      end! > data.length ||
      end! - begin! !== count * ELEMENT_BYTES[dtype]!
    ) {
      fail(`tensor ${name} has data_offsets outside the file or of the wrong size`);
    }
    tensors[name] = { shape: shape as number[], data: toFloat32(data.subarray(begin, end), dtype) };
  }
  return tensors;
}
