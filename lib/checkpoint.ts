/**
 * Checkpoints: one file with everything needed to resume training or to serve — model config,
 * weights, optimizer state and schedule position, epoch and history, the dataset schema with its
 * fitted vocabularies and normalisation, the model's calibration, and the library and format versions.
 *
 * Layout (little-endian): MAGIC, u32 format version, u64 header length, header JSON, tensor bytes,
 * then the SHA-256 of everything before it. Writes are atomic (temporary file, fsync, rename, fsync
 * of the directory), so a crash during a save leaves the previous file intact.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Calibration } from './calibration';
import type { FittedSchema } from './data/types';
import { fileError, writeFileAtomic } from './files';
import { FileError, ValidationError } from './errors';
import { createModel, type Device, type Model, type StateDict } from './model';
import type { TrainingState } from './training/types';
import { isRecord } from './validation';

const MAGIC = Buffer.from('ADATT-CHECKPOINT\n', 'latin1');
export const CHECKPOINT_FORMAT_VERSION = 1;
const DIGEST_BYTES = 32;
const PREFIX_BYTES = MAGIC.length + 4 + 8;
const LIBRARY_VERSION = (require('../package.json') as { version: string }).version;

export interface Checkpoint {
  model: Model;
  schema?: FittedSchema;
  training?: TrainingState;
  libraryVersion: string;
  formatVersion: number;
}

interface TensorEntry {
  section: 'weights' | 'best' | 'optimizer';
  name: string;
  dtype: 'float32' | 'uint8';
  shape: number[];
  offset: number;
  bytes: number;
}

interface Header {
  library: string;
  libraryVersion: string;
  model: unknown;
  schema?: FittedSchema;
  /** The model's calibration (absent in checkpoints of uncalibrated models and older ones). */
  calibration?: Calibration;
  training?: Omit<TrainingState, 'optimizerState' | 'bestWeights'>;
  tensors: TensorEntry[];
}

function bytesOf(array: Float32Array | Uint8Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

/** Saves `model` (and optionally its training state and data schema) to `file`. */
export async function saveCheckpoint(
  file: string,
  model: Model,
  extra: { schema?: FittedSchema; training?: TrainingState } = {},
): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new ValidationError('path', 'checkpoint path must be a non-empty string');
  const blobs: Buffer[] = [];
  const tensors: TensorEntry[] = [];
  let offset = 0;
  const add = (
    section: TensorEntry['section'],
    name: string,
    dtype: TensorEntry['dtype'],
    shape: number[],
    data: Float32Array | Uint8Array,
  ): void => {
    const bytes = bytesOf(data);
    tensors.push({ section, name, dtype, shape, offset, bytes: bytes.length });
    blobs.push(bytes);
    offset += bytes.length;
  };
  for (const [name, tensor] of Object.entries(await model.stateDict({ layout: 'native' }))) {
    add('weights', name, 'float32', tensor.shape, tensor.data);
  }
  let training: Header['training'];
  if (extra.training) {
    const { optimizerState, bestWeights, ...rest } = extra.training;
    training = rest;
    add('optimizer', 'state', 'uint8', [optimizerState.length], optimizerState);
    for (const [name, tensor] of Object.entries(bestWeights ?? {})) add('best', name, 'float32', tensor.shape, tensor.data);
  }
  const header: Header = {
    library: 'adatt',
    libraryVersion: LIBRARY_VERSION,
    model: model.config,
    schema: extra.schema,
    calibration: model.calibration,
    training,
    tensors,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(PREFIX_BYTES);
  MAGIC.copy(prefix);
  prefix.writeUInt32LE(CHECKPOINT_FORMAT_VERSION, MAGIC.length);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length), MAGIC.length + 4);
  const hash = createHash('sha256');
  for (const chunk of [prefix, headerBytes, ...blobs]) hash.update(chunk);
  await writeFileAtomic(file, [prefix, headerBytes, ...blobs, hash.digest()]);
}

function corrupt(file: string, reason: string): FileError {
  return new FileError(`${file} is not a valid adatt checkpoint: ${reason}`);
}

/** Reads and verifies a checkpoint: magic, format version, checksum, then every tensor's extent. */
async function readVerified(file: string): Promise<{ header: Header; data: Buffer }> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    throw fileError('read', file, err);
  }
  if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) {
    const hint =
      bytes.subarray(0, 2).toString('latin1') === 'PK'
        ? ' (it is a zip archive: for torch.save weights use model.loadWeights, for TorchScript loadTorchScript)'
        : '';
    throw corrupt(file, `it does not start with the adatt checkpoint signature${hint}`);
  }
  if (bytes.length < PREFIX_BYTES + DIGEST_BYTES) throw corrupt(file, 'the file is truncated');
  const version = bytes.readUInt32LE(MAGIC.length);
  if (version > CHECKPOINT_FORMAT_VERSION) {
    throw new FileError(
      `${file} was written in checkpoint format ${version} by a newer adatt; this adatt ` +
        `(${LIBRARY_VERSION}) reads formats up to ${CHECKPOINT_FORMAT_VERSION}. Upgrade adatt to load it.`,
    );
  }
  const body = bytes.subarray(0, bytes.length - DIGEST_BYTES);
  const digest = createHash('sha256').update(body).digest();
  if (!digest.equals(bytes.subarray(bytes.length - DIGEST_BYTES))) {
    throw corrupt(file, 'the checksum does not match (the file is truncated or corrupted)');
  }
  const headerLength = Number(bytes.readBigUInt64LE(MAGIC.length + 4));
  if (PREFIX_BYTES + headerLength > body.length) throw corrupt(file, 'the header runs past the end of the file');
  let header: Header;
  try {
    header = JSON.parse(body.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength).toString('utf8')) as Header;
  } catch {
    throw corrupt(file, 'the header is not valid JSON');
  }
  if (!isRecord(header) || header.library !== 'adatt' || !Array.isArray(header.tensors)) {
    throw corrupt(file, 'the header is not an adatt checkpoint header');
  }
  const data = body.subarray(PREFIX_BYTES + headerLength);
  for (const entry of header.tensors) {
    const elementBytes = entry.dtype === 'float32' ? 4 : 1;
    const count = Array.isArray(entry.shape) ? entry.shape.reduce((a, b) => a * b, 1) : NaN;
    if (
      !Number.isSafeInteger(entry.offset) ||
      entry.offset < 0 ||
      entry.bytes !== count * elementBytes ||
      entry.offset + entry.bytes > data.length
    ) {
      throw corrupt(file, `tensor ${String(entry.name)} lies outside the file or has a wrong size`);
    }
  }
  return { header, data };
}

function tensorData(data: Buffer, entry: TensorEntry): Float32Array | Uint8Array {
  // Copy: the file buffer's offsets need not be 4-byte aligned.
  const copy = new Uint8Array(data.subarray(entry.offset, entry.offset + entry.bytes));
  return entry.dtype === 'float32' ? new Float32Array(copy.buffer, 0, entry.bytes / 4) : copy;
}

function section(data: Buffer, header: Header, name: TensorEntry['section']): StateDict {
  return Object.fromEntries(
    header.tensors.filter((e) => e.section === name).map((e) => [e.name, { shape: e.shape, data: tensorData(data, e) as Float32Array }]),
  );
}

/** Loads a checkpoint: rebuilds the model from its config, loads the weights, optionally moves it. */
export async function loadCheckpoint(file: string, options: { device?: Device } = {}): Promise<Checkpoint> {
  const { header, data } = await readVerified(path.resolve(file));
  let model: Model;
  try {
    model = createModel(header.model as Parameters<typeof createModel>[0]);
  } catch (err) {
    throw corrupt(file, `its model config is invalid (${(err as Error).message})`);
  }
  try {
    await model.loadStateDict(section(data, header, 'weights'));
    if (header.calibration !== undefined) {
      try {
        model.calibration = header.calibration;
      } catch (err) {
        throw corrupt(file, `its calibration is invalid (${(err as Error).message})`);
      }
    }
    if (options.device !== undefined) await model.to(options.device);
  } catch (err) {
    model.dispose();
    throw err;
  }
  const checkpoint: Checkpoint = {
    model,
    schema: header.schema,
    libraryVersion: header.libraryVersion,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
  };
  if (header.training) {
    const optimizer = header.tensors.find((e) => e.section === 'optimizer');
    if (!optimizer) throw corrupt(file, 'its training state has no optimizer state');
    const best = section(data, header, 'best');
    checkpoint.training = {
      ...header.training,
      optimizerState: tensorData(data, optimizer) as Uint8Array,
      ...(Object.keys(best).length ? { bestWeights: best } : {}),
    };
  }
  return checkpoint;
}
