/** `adatt datasets`: listing, checksums, and downloads from a loopback server (never the network). */
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adatt, events, requireCompiledCli, SHARED_DATA, tempDir } from './helpers';

const ADULT = path.join(SHARED_DATA, 'adult');
let server: http.Server;
let base: string;

beforeAll(async () => {
  requireCompiledCli();
  // /good/<file> serves the real adult files, /bad/<file> serves wrong content.
  server = http.createServer((request, response) => {
    const [, kind, file] = (request.url ?? '').split('/');
    const source = path.join(ADULT, path.basename(file ?? ''));
    if (!fs.existsSync(source)) {
      response.writeHead(404).end();
    } else if (kind === 'bad') {
      response.writeHead(200).end('not the adult data\n');
    } else {
      fs.createReadStream(source).pipe(response.writeHead(200));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('adatt datasets', () => {
  it('lists the datasets with their status in a data folder', async () => {
    const result = await adatt(['datasets', '--data-dir', SHARED_DATA]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/census-income\s+present/);
    expect(result.stdout).toMatch(/adult\s+present/);
    expect(result.stdout).toMatch(/synthetic\s+built in/);
    const json = events((await adatt(['datasets', 'list', 'adult', '--data-dir', tempDir('empty'), '--json'])).stdout);
    expect(json[0]).toMatchObject({ event: 'datasets', datasets: [{ name: 'adult', status: 'missing' }] });
  });

  it('verifies the SHA-256 of the files, failing with 1 when one is missing', async () => {
    const ok = await adatt(['datasets', 'verify', 'adult', '--data-dir', SHARED_DATA]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/adult\/adult\.data\s+ok/);
    const missing = await adatt(['datasets', 'verify', 'adult', '--data-dir', tempDir('none')]);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/adult\/adult\.test\s+missing/);
  });

  it('downloads verified files, then finds them present', async () => {
    const dataDir = tempDir('download');
    const result = await adatt(['datasets', 'download', 'adult', '--base-url', `${base}/good`, '--data-dir', dataDir]);
    expect(result.stderr).not.toContain('error');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(path.join(dataDir, 'adult', 'adult.data'));
    expect(result.stdout).toContain('SHA-256 verified');
    expect((await adatt(['datasets', 'verify', 'adult', '--data-dir', dataDir])).code).toBe(0);
    const again = await adatt(['datasets', 'download', 'adult', '--base-url', `${base}/good`, '--data-dir', dataDir]);
    expect(again.stderr).toContain('already present');
  });

  it('rejects a download with the wrong checksum and keeps nothing', async () => {
    const dataDir = tempDir('corrupt');
    const result = await adatt(['datasets', 'download', 'adult', '--base-url', `${base}/bad`, '--data-dir', dataDir]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Checksum mismatch');
    expect(fs.readdirSync(path.join(dataDir, 'adult'))).toEqual([]);
  });

  it('checks its arguments', async () => {
    expect((await adatt(['datasets', 'fetch'])).code).toBe(2);
    expect((await adatt(['datasets', 'download', 'imagenet'])).stderr).toContain("unknown dataset 'imagenet'");
    const twoWithUrl = await adatt(['datasets', 'download', '--base-url', base]);
    expect(twoWithUrl.code).toBe(2);
    expect(twoWithUrl.stderr).toContain('name exactly one dataset');
  });
});
