/**
 * The `adatt` command: `adatt <command> [options]`. Each command lives in commands/ with its spec
 * (options, help, examples); this file dispatches, prints errors and maps them to exit codes
 * (0 ok, 1 runtime failure, 2 usage or config error, 130 interrupted).
 */
import { closest, columns, formatHelp, parseArgs } from './args';
import type { Command } from './command';
import { benchCommand } from './commands/bench';
import { datasetsCommand } from './commands/datasets';
import { doctorCommand } from './commands/doctor';
import { evalCommand } from './commands/eval';
import { exportCommand } from './commands/export';
import { inspectCommand } from './commands/inspect';
import { launchCommand } from './commands/launch';
import { predictCommand } from './commands/predict';
import { reportCommand } from './commands/report';
import { serveCommand } from './commands/serve';
import { trainCommand } from './commands/train';
import { EXIT, exitCodeOf, fieldOf, FlaggedConfigError, UnsupportedError, UsageError } from './exit';
import { exitOnInterrupt } from './interrupts';
import { Output } from './output';

export const COMMANDS: readonly Command[] = [
  trainCommand,
  evalCommand,
  predictCommand,
  serveCommand,
  inspectCommand,
  reportCommand,
  exportCommand,
  datasetsCommand,
  benchCommand,
  launchCommand,
  doctorCommand,
];

function version(): string {
  return (require('../../package.json') as { version: string }).version;
}

function mainHelp(): string {
  return `adatt ${version()}: multi-task recommendation models (AdaTT, MMoE, PLE, …) on LibTorch

Usage: adatt <command> [options]

Commands:
${columns(COMMANDS.map((command) => [command.spec.name, command.spec.summary]))}

Run 'adatt <command> --help' for a command's options and examples.

Examples:
  adatt train --data census-income --tasks income-marital --epochs 3 --out runs/census
  adatt eval runs/census
  adatt predict runs/census --data new-rows.csv --output scores.parquet
  adatt serve runs/census --port 8080
  adatt inspect runs/census
  adatt datasets download census-income

Exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 130 interrupted.
Docs: docs/cli.md
`;
}

/** Runs the command line `argv` (without node and the script) and resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  const plain = new Output();
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.spec.name === rest[0]) : undefined;
    plain.print(topic ? formatHelp(topic.spec) : mainHelp());
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    plain.print(version());
    return EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.spec.name === name);
  if (!command) {
    const hint = closest(
      name,
      COMMANDS.map((c) => c.spec.name),
    );
    plain.error(new UsageError(`unknown command '${name}'${hint ? ` (did you mean '${hint}'?)` : ''}; run 'adatt --help'`));
    return EXIT.usage;
  }
  let out = plain;
  try {
    const args = parseArgs(command.spec, rest);
    if (args.options.help) {
      plain.print(formatHelp(command.spec));
      return EXIT.ok;
    }
    out = new Output({ json: Boolean(args.options.json) });
    // train saves a checkpoint on Ctrl-C and bench waits for its child; elsewhere Ctrl-C exits with 130.
    const release = command.handlesInterrupts ? () => undefined : exitOnInterrupt(out);
    try {
      return await command.run(args, out);
    } finally {
      release();
    }
  } catch (err) {
    const code = exitCodeOf(err);
    out.error(err, command.spec.name);
    if (err instanceof UsageError && !(err instanceof UnsupportedError)) out.info(`run 'adatt ${command.spec.name} --help' for usage`);
    out.event('error', {
      exitCode: code,
      message: (err as Error).message,
      ...(fieldOf(err) ? { field: fieldOf(err) } : {}),
      ...(err instanceof FlaggedConfigError ? { flag: err.flag } : {}),
      ...((err as { code?: unknown }).code ? { code: (err as { code: unknown }).code } : {}),
    });
    return code;
  }
}

/** Entry point of bin/adatt.js. */
export function runCli(): void {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`adatt: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = EXIT.failure;
    },
  );
}
