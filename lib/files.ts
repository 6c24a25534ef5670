/** File helpers shared by checkpoints and weight files. */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FileError } from './errors';

/** Writes `chunks` to `file` atomically: temporary file in the same directory, fsync, rename. */
export async function writeFileAtomic(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  const temporary = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(temporary, 'wx', 0o644);
    for (const chunk of chunks) await handle.write(chunk);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(temporary, file);
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await fs.rm(temporary, { force: true });
    throw new FileError(`cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
  // The rename must reach the disk too for the new file to survive a crash.
  const directory = await fs.open(path.dirname(file), 'r').catch(() => undefined);
  await directory?.sync().catch(() => undefined);
  await directory?.close();
}
