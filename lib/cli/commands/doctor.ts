/** `adatt doctor`: checks the install (LibTorch, shared libraries, CUDA, NCCL, BLAS) and says how to fix what is wrong. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diagnose, probeSystem, type CheckStatus, type DoctorReport } from '../../doctor';
import { positionalsOf, type ParsedArgs } from '../args';
import { JSON_OPTION, type Command } from '../command';
import { EXIT, UsageError } from '../exit';
import type { Output, Style } from '../output';

export const doctorCommand: Command = {
  spec: {
    name: 'doctor',
    summary: "check the install: LibTorch, the addon's shared libraries, CUDA and driver, NCCL, BLAS",
    description: `Loads the native addon the way adatt does and reports, each as ok, warn or fail with a fix: the addon file
and whether it loads; the LibTorch found for builds (and by which rule) and the one loaded, with versions; every
shared library the addon needs, directly or through LibTorch, that the loader cannot find; CUDA build against
the NVIDIA driver; visible GPUs; NCCL; the BLAS mapped into the process and the thread split. Exit code 1 when
a check fails, 0 otherwise (warnings included).`,
    options: [
      {
        name: 'addon',
        type: 'string',
        value: 'FILE',
        description: 'check this .node file (e.g. a prebuild) instead of the one adatt loads',
      },
      JSON_OPTION,
    ],
    examples: ['adatt doctor', 'adatt doctor --json', 'adatt doctor --addon prebuilds/linux-x64/adatt.napi.node'],
  },
  run: doctor,
};

const LABELS: Readonly<Record<CheckStatus, (style: Style) => string>> = {
  ok: (style) => style.green('ok  '),
  warn: (style) => style.yellow('warn'),
  fail: (style) => style.red('FAIL'),
};

/** The report for a terminal: one line per check, its fix beneath, and the counts. */
export function formatReport(report: DoctorReport, style: Style): string {
  const width = Math.max(...report.checks.map((check) => check.title.length)) + 2;
  const lines = report.checks.flatMap((check) => [
    `${LABELS[check.status](style)}  ${style.bold(check.title.padEnd(width))}${check.message}`,
    ...(check.fix && check.status !== 'ok' ? [`${' '.repeat(width + 6)}${style.dim('fix:')} ${check.fix}`] : []),
  ]);
  const { ok, warn, fail } = report.counts;
  const counts = `${ok} ok, ${warn} warning${warn === 1 ? '' : 's'}, ${fail} failed`;
  return `${lines.join('\n')}\n\n${fail > 0 ? style.red(counts) : counts}`;
}

function version(): string {
  return (require('../../../package.json') as { version: string }).version;
}

async function doctor(args: ParsedArgs, out: Output): Promise<number> {
  positionalsOf(doctorCommand.spec, args);
  const addonFile = args.options.addon as string | undefined;
  if (addonFile !== undefined) {
    const stat = fs.statSync(addonFile, { throwIfNoEntry: false });
    if (!stat?.isFile()) throw new UsageError(`--addon ${addonFile}: ${stat ? 'not a file' : 'no such file'}`);
  }
  const report = diagnose(probeSystem(addonFile === undefined ? {} : { addonFile: path.resolve(addonFile) }));
  out.print(`adatt ${version()}, Node ${process.version}, ${process.platform}-${process.arch}\n\n${formatReport(report, out.style)}`);
  out.event('doctor', { adatt: version(), node: process.version, platform: `${process.platform}-${process.arch}`, ...report });
  return report.ok ? EXIT.ok : EXIT.failure;
}
