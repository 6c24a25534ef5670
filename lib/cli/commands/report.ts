/** `adatt report`: rebuilds report.html from the files of a run directory (no model, no data). */
import * as path from 'node:path';
import { writeFileAtomic } from '../../files';
import { positionalsOf, type ParsedArgs } from '../args';
import type { Command } from '../command';
import type { Output } from '../output';
import { buildReport } from '../report/html';
import { RunDirectory } from '../run-dir';

export const reportCommand: Command = {
  spec: {
    name: 'report',
    summary: "rebuild a run's report.html (curves, metrics, expert utilisation) from its files",
    description: 'Reads config.json, run.json, metrics.jsonl and gates.json; the page is self-contained (no network).',
    positionals: [{ name: 'run', description: 'run directory', required: true }],
    options: [{ name: 'output', short: 'o', type: 'string', value: 'FILE', description: 'where to write it (default <run>/report.html)' }],
    examples: ['adatt report runs/census', 'adatt report runs/census --output /tmp/census.html'],
  },
  run: rebuildReport,
};

async function rebuildReport(args: ParsedArgs, out: Output): Promise<number> {
  const { run: dir } = positionalsOf(reportCommand.spec, args) as { run: string };
  const run = await RunDirectory.open(dir);
  const html = buildReport(await run.readArtifacts());
  const output = args.options.output as string | undefined;
  if (output === undefined) {
    await run.writeReport(html);
  } else {
    await writeFileAtomic(path.resolve(output), [Buffer.from(html)]);
  }
  out.print(output === undefined ? run.path('report') : path.resolve(output));
  return 0;
}
