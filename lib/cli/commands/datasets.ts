/** `adatt datasets`: list the built-in datasets, download the UCI files, verify their checksums. */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ADULT_SOURCE } from '../../data/builtin/adult';
import { CENSUS_INCOME_SOURCE } from '../../data/builtin/census-income';
import { defaultDataDir, type UciFile, type UciSource } from '../../data/builtin/uci';
import { downloadVerified, uncompressedSha256 } from '../../data/download';
import { positionalsOf, type ParsedArgs } from '../args';
import { JSON_OPTION, type Command } from '../command';
import { EXIT, UsageError } from '../exit';
import { formatBytes, formatTable } from '../format';
import type { Output } from '../output';

const UCI_SOURCES: readonly UciSource[] = [CENSUS_INCOME_SOURCE, ADULT_SOURCE];
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  'census-income': 'UCI Census-Income (KDD): 199,523 + 99,762 rows; tasks income, marital, education',
  adult: 'UCI Adult: 32,561 + 16,281 rows; tasks income, marital',
  synthetic: 'MMoE paper synthetic regression tasks; generated, nothing to download',
};
const ACTIONS = ['list', 'download', 'verify'] as const;

export const datasetsCommand: Command = {
  spec: {
    name: 'datasets',
    summary: 'list the built-in datasets, download the UCI files, verify their SHA-256',
    description: `Files live in <data dir>/<dataset>/ (plain or .gz); the data dir is --data-dir, else $ADATT_DATA_DIR,
else ~/.cache/adatt. Downloads are checked against pinned SHA-256 sums of the uncompressed content before
they are moved into place.`,
    positionals: [
      { name: 'action', description: 'list (default), download or verify' },
      { name: 'names', description: 'datasets (default: all)', variadic: true },
    ],
    options: [
      { name: 'data-dir', type: 'string', value: 'DIR', description: 'data folder (default $ADATT_DATA_DIR, else ~/.cache/adatt)' },
      {
        name: 'base-url',
        type: 'string',
        value: 'URL',
        description: 'download from this folder URL instead of the UCI archive (one dataset)',
      },
      JSON_OPTION,
    ],
    examples: [
      'adatt datasets',
      'adatt datasets download census-income',
      'adatt datasets download adult --base-url https://mirror.example.org/uci/adult --data-dir /data',
      'adatt datasets verify --data-dir ../shared/data',
    ],
  },
  run: datasets,
};

interface FileState {
  dataset: string;
  file: UciFile;
  /** Where it is, if present. */
  found?: string;
}

async function locate(folder: string, file: UciFile): Promise<string | undefined> {
  // The names the loaders accept: plain, gzip'd, or as downloaded.
  for (const name of new Set([file.name, `${file.name}.gz`, file.remoteName])) {
    const candidate = path.join(folder, name);
    if (
      await fs.access(candidate).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return undefined;
}

async function fileStates(dataDir: string, sources: readonly UciSource[]): Promise<FileState[]> {
  const states: FileState[] = [];
  for (const source of sources) {
    for (const file of [source.train, source.test]) {
      const found = await locate(path.join(dataDir, source.name), file);
      states.push({ dataset: source.name, file, ...(found ? { found } : {}) });
    }
  }
  return states;
}

function selectSources(names: readonly string[]): UciSource[] {
  const known = [...UCI_SOURCES.map((s) => s.name), 'synthetic'];
  for (const name of names) {
    if (!known.includes(name) && name !== 'all') throw new UsageError(`unknown dataset '${name}' (built-in: ${known.join(', ')})`);
  }
  return names.length === 0 || names.includes('all') ? [...UCI_SOURCES] : UCI_SOURCES.filter((s) => names.includes(s.name));
}

async function datasets(args: ParsedArgs, out: Output): Promise<number> {
  const { action = 'list', names = [] } = positionalsOf(datasetsCommand.spec, args) as { action?: string; names?: string[] };
  if (!(ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(`unknown action '${action}' (${ACTIONS.join(', ')})`);
  }
  const dataDir = path.resolve((args.options.dataDir as string | undefined) ?? defaultDataDir());
  const sources = selectSources(names);
  switch (action) {
    case 'download':
      return download(sources, dataDir, args.options.baseUrl as string | undefined, out);
    case 'verify':
      return verify(sources, dataDir, out);
    default:
      return list(sources, names, dataDir, out);
  }
}

async function list(sources: readonly UciSource[], names: readonly string[], dataDir: string, out: Output): Promise<number> {
  const states = await fileStates(dataDir, sources);
  const rows = sources.map((source) => {
    const files = states.filter((s) => s.dataset === source.name);
    const present = files.filter((s) => s.found).length;
    return [
      source.name,
      present === files.length ? 'present' : present === 0 ? 'missing' : `${present}/${files.length} files`,
      DESCRIPTIONS[source.name]!,
    ];
  });
  if (names.length === 0 || names.includes('synthetic') || names.includes('all'))
    rows.push(['synthetic', 'built in', DESCRIPTIONS.synthetic!]);
  out.print(`data dir: ${dataDir}\n\n${formatTable(['dataset', 'status', 'description'], rows)}`);
  out.event('datasets', {
    dataDir,
    datasets: rows.map(([name, status]) => ({
      name,
      status,
      files: states.filter((s) => s.dataset === name).map((s) => ({ name: s.file.name, sha256: s.file.sha256, path: s.found ?? null })),
    })),
  });
  return EXIT.ok;
}

async function download(sources: readonly UciSource[], dataDir: string, baseUrl: string | undefined, out: Output): Promise<number> {
  if (baseUrl !== undefined && sources.length !== 1) {
    throw new UsageError("--base-url is the folder of one dataset's files: name exactly one dataset");
  }
  for (const state of await fileStates(dataDir, sources)) {
    const source = sources.find((s) => s.name === state.dataset)!;
    if (state.found) {
      out.info(`${state.dataset}/${state.file.name}: already present (${state.found})`);
      out.event('file', { dataset: state.dataset, file: state.file.name, path: state.found, action: 'present' });
      continue;
    }
    const url = `${(baseUrl ?? source.defaultBaseUrl).replace(/\/+$/, '')}/${state.file.remoteName}`;
    const destination = path.join(dataDir, source.name, state.file.remoteName);
    out.info(`${state.dataset}/${state.file.name}: downloading ${url}`);
    await downloadVerified(url, destination, state.file.sha256);
    const { size } = await fs.stat(destination);
    out.print(`${destination} (${formatBytes(size)}, SHA-256 verified)`);
    out.event('file', { dataset: state.dataset, file: state.file.name, path: destination, action: 'downloaded', bytes: size });
  }
  return EXIT.ok;
}

async function verify(sources: readonly UciSource[], dataDir: string, out: Output): Promise<number> {
  let failures = 0;
  const rows: string[][] = [];
  for (const state of await fileStates(dataDir, sources)) {
    let status: string;
    if (!state.found) {
      status = 'missing';
      failures += 1;
    } else {
      const actual = await uncompressedSha256(state.found);
      status = actual === state.file.sha256 ? 'ok' : `MISMATCH (${actual.slice(0, 16)}…)`;
      if (status !== 'ok') failures += 1;
    }
    rows.push([`${state.dataset}/${state.file.name}`, status, state.found ?? '']);
    out.event('file', { dataset: state.dataset, file: state.file.name, path: state.found ?? null, status });
  }
  out.print(formatTable(['file', 'sha256', 'path'], rows));
  if (failures > 0) {
    out.error(`${failures} file${failures === 1 ? '' : 's'} missing or corrupt; run 'adatt datasets download'`, 'datasets');
    return EXIT.failure;
  }
  return EXIT.ok;
}
