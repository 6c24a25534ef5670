import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadVerified, loadAdult, loadDataset, uncompressedSha256 } from '../../lib/data';
import { FileError } from '../../lib/errors';
import { rejectionOf, SHARED_DATA_DIR, temporaryFolder } from './helpers';

/**
 * A loopback server: '/census/<file>' and '/adult/<file>' serve the shared files, '/tampered/<file>'
 * the first kilobyte of an adult file, '/broken/…' answers 500.
 */
let server: Server;
let baseUrl = '';
const requests: string[] = [];

beforeAll(async () => {
  server = createServer((request, response) => {
    const url = request.url ?? '';
    requests.push(url);
    const [, folder, name] = url.split('/');
    const sharedFolder = { census: 'census-income', adult: 'adult', tampered: 'adult' }[folder ?? ''];
    if (!sharedFolder || !name) {
      response.writeHead(500).end('internal error');
      return;
    }
    try {
      const content = readFileSync(path.join(SHARED_DATA_DIR, sharedFolder, name));
      response.writeHead(200).end(folder === 'tampered' ? content.subarray(0, 1000) : content);
    } catch {
      response.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

describe('downloading built-in datasets', () => {
  it('fetches census-income into the data folder, verifies it and loads it; the next load reads the cache', async () => {
    const dataDir = temporaryFolder();
    const options = { dataDir, download: true, baseUrl: `${baseUrl}/census`, tasks: 'income-marital' as const };
    const dataset = await loadDataset('census-income', options);
    expect([dataset.train.size, dataset.validation.size + dataset.test.size]).toEqual([199_523, 99_762]);
    expect(readdirSync(path.join(dataDir, 'census-income')).sort()).toEqual(['census-income.data.gz', 'census-income.test.gz']);
    expect(await uncompressedSha256(path.join(dataDir, 'census-income', 'census-income.data.gz'))).toBe(
      '3676a81db7d3528f3f8b9f3c699d0f0aa28db45e6e994fa0b8ed38327539ee86',
    );
    const before = requests.length;
    await loadAdult({ dataDir: SHARED_DATA_DIR, download: true, baseUrl: `${baseUrl}/broken` });
    expect(requests.length).toBe(before);
  });

  it('rejects a checksum mismatch and keeps no partial file', async () => {
    const dataDir = temporaryFolder();
    const err = await rejectionOf(loadAdult({ dataDir, download: true, baseUrl: `${baseUrl}/tampered` }), FileError);
    expect(err.message).toMatch(
      /^Checksum mismatch for .*\/tampered\/adult.data: its content has SHA-256 [0-9a-f]{64}, expected 5b002646.*; the download was discarded$/,
    );
    expect(readdirSync(path.join(dataDir, 'adult'))).toEqual([]);
  });

  it('reports server errors and unreachable servers, leaving nothing behind', async () => {
    const dataDir = temporaryFolder();
    const err = await rejectionOf(loadAdult({ dataDir, download: true, baseUrl: `${baseUrl}/broken` }), FileError);
    expect(err.message).toBe(`Cannot download ${baseUrl}/broken/adult.data: the server answered HTTP 500 Internal Server Error`);
    expect(readdirSync(path.join(dataDir, 'adult'))).toEqual([]);
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await rejectionOf(downloadVerified(`http://127.0.0.1:${port}/x`, path.join(dataDir, 'x'), '0'.repeat(64)), FileError);
    expect(refused.message).toMatch(/Cannot download http:\/\/127.0.0.1:\d+\/x: fetch failed \(.*ECONNREFUSED/);
  });
});
