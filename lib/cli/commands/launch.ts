/** `adatt launch --nproc N -- <command> …`: starts N local workers of a distributed job (torchrun's variables). */
import type { ParsedArgs } from '../args';
import type { Command } from '../command';
import { EXIT, UsageError } from '../exit';
import type { Output } from '../output';
import { launchWorkers } from '../../distributed';

export const launchCommand: Command = {
  spec: {
    name: 'launch',
    summary: 'start N local worker processes of a distributed job (MASTER_ADDR, RANK, WORLD_SIZE… set)',
    description:
      'Each worker gets RANK = LOCAL_RANK = 0..N-1, WORLD_SIZE = N, MASTER_ADDR and MASTER_PORT, ' +
      'as torchrun sets them; a failing worker stops the others. See docs/distributed.md.',
    positionals: [
      { name: 'command', description: 'the worker command and its arguments (put them after --)', variadic: true, required: true },
    ],
    options: [
      { name: 'nproc', type: 'integer', value: 'N', description: 'workers to start on this host (required)' },
      { name: 'master-addr', type: 'string', value: 'HOST', description: 'rendezvous address (default 127.0.0.1)' },
      { name: 'master-port', type: 'integer', value: 'PORT', description: 'rendezvous port (default: a random port from 29500)' },
    ],
    examples: ['adatt launch --nproc 2 -- node train.js', 'adatt launch --nproc 4 --master-port 29600 -- node train.js --epochs 3'],
  },
  run: run,
  handlesInterrupts: true,
};

async function run(args: ParsedArgs, out: Output): Promise<number> {
  const nproc = args.options.nproc as number | undefined;
  if (nproc === undefined || nproc < 1) throw new UsageError('--nproc must be a positive integer');
  const [command, ...rest] = args.positionals;
  if (command === undefined) throw new UsageError('give the worker command after --, e.g. adatt launch --nproc 2 -- node train.js');
  out.info(`launching ${nproc} workers: ${[command, ...rest].join(' ')}`);
  // Ctrl-C reaches the workers too (same process group): wait for them rather than exit first.
  const ignore = (): void => undefined;
  process.on('SIGINT', ignore);
  try {
    const workers = await launchWorkers({
      nproc,
      command,
      args: rest,
      masterAddr: args.options.masterAddr as string | undefined,
      masterPort: args.options.masterPort as number | undefined,
    });
    const failed = workers.filter((worker) => worker.code !== 0);
    for (const worker of failed) {
      const how = worker.signal ? `was killed by ${worker.signal} (exit code ${worker.code})` : `exited with code ${worker.code}`;
      const tail = worker.stderrTail.length
        ? `; its last lines on stderr:\n${worker.stderrTail.map((line) => `  ${line}`).join('\n')}`
        : '';
      out.error(`worker ${worker.rank} ${how}${tail}`, 'launch');
    }
    return failed.length === 0 ? EXIT.ok : EXIT.failure;
  } finally {
    process.off('SIGINT', ignore);
  }
}
