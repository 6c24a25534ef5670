/** scripts/debian-mirror.sh: the LibTorch 2.x scripts fetch Debian from the machine's own mirror. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeTempDir, REPO_ROOT } from './helpers/reference';

function mirrorFor(files: Record<string, string>, env: Record<string, string> = {}): string {
  const etc = makeTempDir('apt-etc');
  fs.mkdirSync(path.join(etc, 'sources.list.d'));
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(etc, name), content);
  const { ADATT_DEBIAN_MIRROR: _ignored, ...rest } = process.env;
  return execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'debian-mirror.sh')], {
    encoding: 'utf8',
    env: { ...rest, APT_ETC: etc, ...env },
  }).trim();
}

describe('debian-mirror.sh', () => {
  it('reads the main archive of a deb822 file, skipping comments, deb-src, security and disabled stanzas', () => {
    const sources = [
      'Types: deb-src',
      'URIs: http://src.example/debian',
      'Suites: bookworm',
      'Components: main',
      '',
      'Types: deb',
      'URIs: http://off.example/debian',
      'Suites: bookworm',
      'Enabled: no',
      '',
      'Types: deb',
      '# URIs: http://commented.example/debian',
      'URIs: http://security.example/debian-security',
      'Suites: bookworm-security',
      '',
      'Types: deb',
      'URIs: http://mirror.example/debian/ http://second.example/debian',
      'Suites: bookworm bookworm-updates',
      'Components: main',
    ].join('\n');
    expect(mirrorFor({ 'sources.list.d/debian.sources': sources })).toBe('http://mirror.example/debian');
  });

  it('reads one-line sources (with options) before deb822 files', () => {
    const list =
      '# local\ndeb [arch=amd64 signed-by=/k.gpg] http://security.example/debian-security bookworm-security main\ndeb [arch=amd64] http://line.example/debian bookworm main\n';
    expect(
      mirrorFor({
        'sources.list': list,
        'sources.list.d/debian.sources': 'Types: deb\nURIs: http://other.example/debian\nSuites: bookworm\n',
      }),
    ).toBe('http://line.example/debian');
  });

  it('falls back to deb.debian.org, and ADATT_DEBIAN_MIRROR wins over everything', () => {
    expect(mirrorFor({})).toBe('http://deb.debian.org/debian');
    expect(
      mirrorFor(
        { 'sources.list': 'deb http://line.example/debian bookworm main\n' },
        { ADATT_DEBIAN_MIRROR: 'http://chosen.example/debian' },
      ),
    ).toBe('http://chosen.example/debian');
  });
});
