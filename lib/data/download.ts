/**
 * Downloads of dataset files: fetched into a temporary file next to the destination, verified
 * against the SHA-256 of the uncompressed content (so a re-compressed mirror of the same data is
 * accepted), then renamed into place. A failed or corrupt download leaves nothing behind.
 */
import { randomBytes, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { AdattError, FileError } from '../errors';
import { openDataFile } from './csv';

/** SHA-256 (hex) of a file's content, gunzipped first when it is gzip'd. */
export async function uncompressedSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of await openDataFile(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function describeFailure(err: unknown): string {
  const message = (err as Error).message;
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return cause ? `${message} (${cause})` : message;
}

/**
 * Downloads `url` to `destination` (creating its folder) if the uncompressed content has the
 * SHA-256 `sha256`; throws a FileError otherwise, without leaving a partial file.
 */
export async function downloadVerified(url: string, destination: string, sha256: string): Promise<void> {
  await mkdir(dirname(destination), { recursive: true });
  const partial = `${destination}.${process.pid}-${randomBytes(4).toString('hex')}.partial`;
  try {
    const response = await fetch(url);
    if (!response.ok || !response.body) {
      throw new FileError(`Cannot download ${url}: the server answered HTTP ${response.status} ${response.statusText}`);
    }
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), createWriteStream(partial));
    const actual = await uncompressedSha256(partial);
    if (actual !== sha256) {
      throw new FileError(
        `Checksum mismatch for ${url}: its content has SHA-256 ${actual}, expected ${sha256}; the download was discarded`,
      );
    }
    await rename(partial, destination);
  } catch (err) {
    await rm(partial, { force: true });
    if (err instanceof AdattError) throw err;
    throw new FileError(`Cannot download ${url}: ${describeFailure(err)}`, { cause: err });
  }
}
