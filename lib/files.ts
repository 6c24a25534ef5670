/** File helpers shared by checkpoints, weight files, TorchScript files and the command line. */
import { randomBytes } from 'node:crypto';
import type { Stats } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { FileError } from './errors';

/**
 * Temporaries of atomic writes: `<file>.tmp-<pid>-<random>`, with 12 hex digits from
 * writeFileAtomic or a 32-bit decimal from the native writer (native/src/weights_io.cpp; the few
 * shorter than 6 digits are not matched, so that names like `notes.tmp-2024-05` stay safe). The pid
 * tells whether the writer still runs.
 */
const TEMPORARY_NAME = /\.tmp-(\d{1,10})-(?:[0-9a-f]{12}|\d{6,10})$/;

function temporaryPath(file: string): string {
  return `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
}

function isProcessRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes the temporaries that writers killed mid-save (SIGKILL, OOM killer) left in `directory`:
 * those whose pid no longer runs. Best effort: a folder that cannot be listed is left alone.
 */
export async function removeStaleTemporaries(directory: string): Promise<void> {
  const entries = await fs.readdir(directory, { withFileTypes: true }).catch(() => []);
  await Promise.all(
    entries.map(async (entry) => {
      const pid = Number(TEMPORARY_NAME.exec(entry.name)?.[1]);
      if (!entry.isFile() || !(pid > 0) || isProcessRunning(pid)) return;
      await fs.rm(path.join(directory, entry.name), { force: true }).catch(() => undefined);
    }),
  );
}

function kindOf(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isFIFO()) return 'a named pipe';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * A FileError for a failed file operation that says what was wrong with the path (a directory where
 * a file was expected, a file where a folder was expected, …) instead of a bare errno.
 */
export function fileError(action: 'read' | 'write' | 'create folder', file: string, err: unknown): FileError {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const reasons: Record<string, string> = {
    EISDIR: 'it is a directory, expected a file',
    ENOTDIR:
      action === 'create folder'
        ? 'it or one of its parents is a file, expected a directory'
        : 'one of its parent folders is a file, expected a directory',
    EEXIST: 'it exists and is not a directory',
    ENOENT: action === 'write' ? `its folder ${path.dirname(file)} does not exist` : 'it does not exist',
    EACCES: 'permission denied',
  };
  const reason = (code !== undefined && Object.hasOwn(reasons, code) ? reasons[code] : undefined) ?? (err as Error).message;
  return new FileError(`cannot ${action} ${file}: ${reason}`, { cause: err });
}

/**
 * Creates `directory` and its parents (a FileError when a file is in the way); returns the first
 * folder it made, as `fs.mkdir` does, or undefined when all existed.
 */
export async function ensureDirectory(directory: string): Promise<string | undefined> {
  return fs.mkdir(directory, { recursive: true }).catch((err: unknown) => {
    throw fileError('create folder', directory, err);
  });
}

/**
 * Checks before an atomic write of `file` (ours or the native one) that it is not a directory or a
 * device (renaming over a device node would replace it), and sweeps stale temporaries beside it.
 */
export async function prepareAtomicWrite(file: string): Promise<void> {
  const stats = await fs.stat(file).catch(() => undefined);
  if (stats && !stats.isFile()) throw new FileError(`cannot write ${file}: it is ${kindOf(stats)}, expected a file`);
  await removeStaleTemporaries(path.dirname(file));
}

/** Checks before a read of `file` that it is not a directory (a clear FileError instead of EISDIR). */
export async function requireReadableFile(file: string): Promise<void> {
  const stats = await fs.stat(file).catch((err: unknown) => {
    throw fileError('read', file, err);
  });
  if (stats.isDirectory()) throw new FileError(`cannot read ${file}: it is a directory, expected a file`);
}

/** Writes `chunks` to `file` atomically: temporary file in the same directory, fsync, rename. */
export async function writeFileAtomic(file: string, chunks: readonly Uint8Array[]): Promise<void> {
  await prepareAtomicWrite(file);
  const temporary = temporaryPath(file);
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
    await fs.rm(temporary, { force: true }).catch(() => undefined);
    throw fileError('write', file, err);
  }
  // The rename must reach the disk too for the new file to survive a crash.
  const directory = await fs.open(path.dirname(file), 'r').catch(() => undefined);
  await directory?.sync().catch(() => undefined);
  await directory?.close();
}
