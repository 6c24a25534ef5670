/**
 * A small, bounded reader of ELF64 shared objects: the header, the program and section headers and
 * the dynamic section's DT_NEEDED, DT_RPATH, DT_RUNPATH and DT_SONAME entries. It reads only those
 * byte ranges (a few KiB even of a 500 MB libtorch_cuda.so), so it works where binutils is missing.
 * `resolveDependencies` then finds each DT_NEEDED library the way the dynamic loader (glibc's
 * ld.so) searches for it, and reports the ones it cannot find.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FileError } from './errors';

export interface ElfDynamic {
  littleEndian: boolean;
  /** e_machine: 62 x86-64, 183 AArch64, … */
  machine: number;
  soname?: string;
  needed: string[];
  /** DT_RPATH split at ':', unexpanded ($ORIGIN kept). */
  rpath: string[];
  /** DT_RUNPATH split at ':', unexpanded. */
  runpath: string[];
}

const ELF_MAGIC = 0x7f454c46;
const ELFCLASS64 = 2;
const HEADER_SIZE = 64;
const PROGRAM_HEADER_SIZE = 56;
const SECTION_HEADER_SIZE = 64;
const DYNAMIC_ENTRY_SIZE = 16;
const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const SHT_DYNAMIC = 6;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_SONAME = 14;
const DT_RPATH = 15;
const DT_RUNPATH = 29;
/** Bounds against corrupt files: real objects have a few dozen headers and dynamic entries. */
const MAX_HEADERS = 4096;
const MAX_DYNAMIC_ENTRIES = 8192;
const MAX_STRING = 4096;

const MACHINES: Readonly<Record<number, string>> = { 3: 'i386', 40: 'ARM', 62: 'x86-64', 183: 'AArch64', 243: 'RISC-V' };

export function machineName(machine: number): string {
  return MACHINES[machine] ?? `machine ${machine}`;
}

/** Reads byte ranges of one file, refusing any range outside it. */
class RangeReader {
  readonly #fd: number;
  readonly size: number;

  constructor(readonly file: string) {
    this.#fd = fs.openSync(file, 'r');
    this.size = fs.fstatSync(this.#fd).size;
  }

  read(offset: number, length: number, what: string): Buffer {
    if (!Number.isSafeInteger(offset) || offset < 0 || length < 0 || offset + length > this.size) {
      throw new FileError(`${this.file}: ${what} lies outside the file (offset ${offset}, ${length} bytes, file ${this.size} bytes)`);
    }
    const buffer = Buffer.alloc(length);
    fs.readSync(this.#fd, buffer, 0, length, offset);
    return buffer;
  }

  /** A NUL-terminated string at `offset`, at most MAX_STRING bytes. */
  string(offset: number, what: string): string {
    const length = Math.min(MAX_STRING, this.size - offset);
    const bytes = this.read(offset, Math.max(0, length), what);
    const end = bytes.indexOf(0);
    if (end < 0) throw new FileError(`${this.file}: ${what} is not NUL-terminated within ${MAX_STRING} bytes`);
    return bytes.toString('utf8', 0, end);
  }

  close(): void {
    fs.closeSync(this.#fd);
  }
}

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** Reads the dynamic section of an ELF64 file; throws FileError when it is not one or is corrupt. */
export function readElfDynamic(file: string): ElfDynamic {
  let reader: RangeReader;
  try {
    reader = new RangeReader(file);
  } catch (err) {
    throw new FileError(`${file}: cannot be read (${(err as Error).message})`, { cause: err });
  }
  try {
    return parse(reader);
  } finally {
    reader.close();
  }
}

function parse(reader: RangeReader): ElfDynamic {
  const file = reader.file;
  if (reader.size < 4 || reader.read(0, 4, 'the ELF magic').readUInt32BE(0) !== ELF_MAGIC) throw new FileError(`${file}: not an ELF file`);
  const header = reader.read(0, HEADER_SIZE, 'the ELF header');
  if (header[4] !== ELFCLASS64) throw new FileError(`${file}: not a 64-bit ELF file (class ${header[4]})`);
  const littleEndian = header[5] === 1;
  if (!littleEndian && header[5] !== 2) throw new FileError(`${file}: unknown ELF byte order ${header[5]}`);
  const u16 = (buffer: Buffer, at: number): number => (littleEndian ? buffer.readUInt16LE(at) : buffer.readUInt16BE(at));
  const u32 = (buffer: Buffer, at: number): number => (littleEndian ? buffer.readUInt32LE(at) : buffer.readUInt32BE(at));
  // Offsets beyond 2^53 cannot be in a real file; Number() keeps the bounds checks simple.
  const u64 = (buffer: Buffer, at: number): number => Number(littleEndian ? buffer.readBigUInt64LE(at) : buffer.readBigUInt64BE(at));
  const i64 = (buffer: Buffer, at: number): bigint => (littleEndian ? buffer.readBigInt64LE(at) : buffer.readBigInt64BE(at));

  const machine = u16(header, 18);
  const programOffset = u64(header, 32);
  const sectionOffset = u64(header, 40);
  const programCount = u16(header, 56);
  const sectionCount = u16(header, 60);
  if (programCount > MAX_HEADERS || sectionCount > MAX_HEADERS) throw new FileError(`${file}: implausible header counts`);
  if (programCount > 0 && u16(header, 54) !== PROGRAM_HEADER_SIZE)
    throw new FileError(`${file}: unexpected program header size ${u16(header, 54)}`);

  const segments: Segment[] = [];
  const programHeaders = reader.read(programOffset, programCount * PROGRAM_HEADER_SIZE, 'the program headers');
  for (let i = 0; i < programCount; i += 1) {
    const at = i * PROGRAM_HEADER_SIZE;
    segments.push({
      type: u32(programHeaders, at),
      offset: u64(programHeaders, at + 8),
      vaddr: u64(programHeaders, at + 16),
      filesz: u64(programHeaders, at + 32),
    });
  }

  // The loader reads PT_DYNAMIC; objects without program headers still name it in the section headers.
  let dynamic: { offset: number; size: number } | undefined;
  let sectionStrtab: number | undefined;
  const dynamicSegment = segments.find((segment) => segment.type === PT_DYNAMIC);
  if (dynamicSegment) dynamic = { offset: dynamicSegment.offset, size: dynamicSegment.filesz };
  if (sectionCount > 0) {
    if (u16(header, 58) !== SECTION_HEADER_SIZE) throw new FileError(`${file}: unexpected section header size ${u16(header, 58)}`);
    const sections = reader.read(sectionOffset, sectionCount * SECTION_HEADER_SIZE, 'the section headers');
    for (let i = 0; i < sectionCount; i += 1) {
      const at = i * SECTION_HEADER_SIZE;
      if (u32(sections, at + 4) !== SHT_DYNAMIC) continue;
      dynamic ??= { offset: u64(sections, at + 24), size: u64(sections, at + 32) };
      const link = u32(sections, at + 40);
      if (link < sectionCount) sectionStrtab = u64(sections, link * SECTION_HEADER_SIZE + 24);
      break;
    }
  }
  if (!dynamic) return { littleEndian, machine, needed: [], rpath: [], runpath: [] };

  const entryCount = Math.min(Math.floor(dynamic.size / DYNAMIC_ENTRY_SIZE), MAX_DYNAMIC_ENTRIES);
  const entries = reader.read(dynamic.offset, entryCount * DYNAMIC_ENTRY_SIZE, 'the dynamic section');
  const strings: { tag: number; offset: number }[] = [];
  let strtabAddress: number | undefined;
  for (let i = 0; i < entryCount; i += 1) {
    const tag = i64(entries, i * DYNAMIC_ENTRY_SIZE);
    if (tag === BigInt(DT_NULL)) break;
    const value = u64(entries, i * DYNAMIC_ENTRY_SIZE + 8);
    if (tag === BigInt(DT_STRTAB)) strtabAddress = value;
    else if ([DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH].some((wanted) => tag === BigInt(wanted)))
      strings.push({ tag: Number(tag), offset: value });
  }
  // DT_STRTAB is a virtual address: the PT_LOAD segment holding it gives its file offset.
  const load =
    strtabAddress === undefined
      ? undefined
      : segments.find((s) => s.type === PT_LOAD && strtabAddress! >= s.vaddr && strtabAddress! < s.vaddr + s.filesz);
  const strtab = load ? load.offset + strtabAddress! - load.vaddr : sectionStrtab;
  const result: ElfDynamic = { littleEndian, machine, needed: [], rpath: [], runpath: [] };
  if (strings.length === 0) return result;
  if (strtab === undefined) throw new FileError(`${file}: the dynamic section's string table cannot be located`);
  for (const { tag, offset } of strings) {
    const text = reader.string(strtab + offset, 'a dynamic string');
    if (tag === DT_NEEDED) result.needed.push(text);
    else if (tag === DT_SONAME) result.soname = text;
    else (tag === DT_RPATH ? result.rpath : result.runpath).push(...text.split(':').filter(Boolean));
  }
  return result;
}

export interface SearchPaths {
  /** Every path is looked up below this folder ('/' on a live system; a stand-in tree in tests). */
  root: string;
  /** LD_LIBRARY_PATH's folders. */
  libraryPath: string[];
  /** /etc/ld.so.cache: library name -> paths (`ldconfig -p`); empty when it cannot be read. */
  ldCache: ReadonlyMap<string, readonly string[]>;
  /** The loader's built-in folders, searched last. */
  defaultDirs: string[];
}

export const DEFAULT_LIBRARY_DIRS = ['/lib', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/usr/lib64'];

export interface LinkedLibrary extends ElfDynamic {
  /** The name a DT_NEEDED entry asked for ('' for the object the walk started at). */
  name: string;
  path: string;
  /** The object whose DT_NEEDED named it first. */
  neededBy?: string;
}

export interface MissingLibrary {
  name: string;
  /** The object that needs it. */
  neededBy: string;
  /** Folders searched, in the loader's order. */
  searched: string[];
  /** Files with that name that the loader would skip (another architecture, not an ELF64 object). */
  skipped: string[];
}

export interface Dependencies {
  object: LinkedLibrary;
  /** Every library found, in breadth-first order (the object itself first). */
  libraries: LinkedLibrary[];
  missing: MissingLibrary[];
  /** The walk stopped at `limit` libraries. */
  truncated: boolean;
}

/** `$ORIGIN` / `${ORIGIN}` is the folder of the object that carries the path. */
export function expandOrigin(entries: readonly string[], objectPath: string): string[] {
  const origin = path.posix.dirname(objectPath);
  return entries.map((entry) => entry.replace(/\$(?:\{ORIGIN\}|ORIGIN)(?![A-Za-z0-9_])/g, origin));
}

interface Pending {
  name: string;
  neededBy: LinkedLibrary;
  /** Expanded DT_RPATH folders of the objects that loaded `neededBy` (those without DT_RUNPATH). */
  inheritedRpath: string[];
}

/**
 * Walks the DT_NEEDED graph from `objectPath` (a path in the system's view; it is read below
 * `search.root`) as glibc's loader would: per needed name, DT_RPATH of the object and its loaders
 * (only when the object has no DT_RUNPATH), LD_LIBRARY_PATH, DT_RUNPATH, the ld.so cache, the
 * default folders; a name found once is reused, and a file of another class or machine is skipped.
 */
export function resolveDependencies(objectPath: string, search: SearchPaths, limit = 512): Dependencies {
  const onDisk = (file: string): string => path.join(search.root, file);
  const object: LinkedLibrary = { name: '', path: objectPath, ...readElfDynamic(onDisk(objectPath)) };
  const compatible = (candidate: string): ElfDynamic | string => {
    let elf: ElfDynamic;
    try {
      if (!fs.statSync(onDisk(candidate)).isFile()) return 'not a file';
      elf = readElfDynamic(onDisk(candidate));
    } catch (err) {
      return (err as Error).message.replace(`${onDisk(candidate)}: `, '');
    }
    if (elf.machine !== object.machine || elf.littleEndian !== object.littleEndian) return `built for ${machineName(elf.machine)}`;
    return elf;
  };

  const libraries = [object];
  const found = new Map<string, LinkedLibrary>();
  const missing: MissingLibrary[] = [];
  const queue: Pending[] = object.needed.map((name) => ({ name, neededBy: object, inheritedRpath: [] }));
  let truncated = false;
  while (queue.length > 0) {
    const { name, neededBy, inheritedRpath } = queue.shift()!;
    if (found.has(name) || missing.some((m) => m.name === name)) continue;
    if (libraries.length >= limit) {
      truncated = true;
      break;
    }
    // An object with DT_RUNPATH uses no DT_RPATH at all, neither its own nor its loaders'.
    const hasRunpath = neededBy.runpath.length > 0;
    const ownRpath = hasRunpath ? [] : expandOrigin(neededBy.rpath, neededBy.path);
    const rpath = hasRunpath ? [] : [...ownRpath, ...inheritedRpath];
    const dirs = [...rpath, ...search.libraryPath, ...expandOrigin(neededBy.runpath, neededBy.path)];
    const candidates = name.includes('/')
      ? [name]
      : [
          ...dirs.map((dir) => path.posix.join(dir, name)),
          ...(search.ldCache.get(name) ?? []),
          ...search.defaultDirs.map((dir) => path.posix.join(dir, name)),
        ];
    const skipped: string[] = [];
    let library: LinkedLibrary | undefined;
    for (const candidate of candidates) {
      if (!fs.existsSync(onDisk(candidate))) continue;
      const elf = compatible(candidate);
      if (typeof elf === 'string') {
        skipped.push(`${candidate} (${elf})`);
        continue;
      }
      library = { name, path: candidate, neededBy: neededBy.path, ...elf };
      break;
    }
    if (!library) {
      missing.push({ name, neededBy: neededBy.path, searched: [...new Set([...dirs, ...search.defaultDirs])], skipped });
      continue;
    }
    found.set(name, library);
    if (library.soname) found.set(library.soname, library);
    libraries.push(library);
    // The loader chain's DT_RPATH (of loaders without DT_RUNPATH) also serves what this library needs.
    const loaderRpath = [...ownRpath, ...inheritedRpath];
    for (const next of library.needed) queue.push({ name: next, neededBy: library, inheritedRpath: loaderRpath });
  }
  return { object, libraries, missing, truncated };
}

/** `ldconfig -p` output -> library name -> paths, in the cache's order. */
export function parseLdconfigCache(text: string): Map<string, string[]> {
  const cache = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const match = /^\s+(\S+)\s+\(([^)]*)\)(?:\s+OS ABI:[^=]*)?\s+=>\s+(\S+)\s*$/.exec(line);
    if (!match) continue;
    const [, name, , file] = match;
    cache.set(name!, [...(cache.get(name!) ?? []), file!]);
  }
  return cache;
}
