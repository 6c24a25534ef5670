/** The hand-written argument parser and the help text generated from the same spec. */
import { describe, expect, it } from 'vitest';
import { closest, formatHelp, parseArgs, positionalsOf, type CommandSpec } from '../../lib/cli/args';
import { UsageError } from '../../lib/cli/exit';

const SPEC: CommandSpec = {
  name: 'demo',
  summary: 'a demo command',
  positionals: [{ name: 'config', description: 'a config file' }],
  options: [
    { name: 'batch-size', type: 'integer', value: 'N', description: 'batch size' },
    { name: 'lr', type: 'number', value: 'RATE', description: 'learning rate' },
    { name: 'out', short: 'o', type: 'string', value: 'DIR', description: 'output' },
    { name: 'json', type: 'boolean', description: 'JSON' },
    { name: 'gates', type: 'boolean', description: 'gates' },
    { name: 'set', type: 'string', repeatable: true, description: 'set' },
  ],
  examples: ['adatt demo config.yaml --lr 0.1'],
};

function usageError(argv: string[]): UsageError {
  try {
    parseArgs(SPEC, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error('expected a UsageError');
}

describe('parseArgs', () => {
  it('reads long, short, inline, negated, repeated options and positionals', () => {
    const parsed = parseArgs(SPEC, [
      'c.yaml',
      '--batch-size',
      '64',
      '--lr=-1e-3',
      '-o',
      'runs/x',
      '--json',
      '--no-gates',
      '--set',
      'a.b=1',
      '--set=c.d=2',
      '--',
      '--not-an-option',
    ]);
    expect(parsed.options).toEqual({ batchSize: 64, lr: -1e-3, out: 'runs/x', json: true, gates: false, set: ['a.b=1', 'c.d=2'] });
    expect(parsed.positionals).toEqual(['c.yaml', '--not-an-option']);
  });

  it('names the option and the expected type in errors, with a did-you-mean hint', () => {
    expect(usageError(['--batch-size', '1.5']).message).toBe("--batch-size needs an integer, got '1.5'");
    expect(usageError(['--lr', 'fast']).message).toBe("--lr needs a number, got 'fast'");
    expect(usageError(['--batchsize', '3']).message).toBe('unknown option --batchsize (did you mean --batch-size?)');
    expect(usageError(['--out']).message).toBe('--out needs a value (DIR)');
    expect(usageError(['--json=yes']).message).toBe('--json takes no value');
    expect(usageError(['--out', 'a', '--out', 'b']).message).toBe('--out is given twice');
    expect(usageError(['-x']).message).toBe('unknown option -x');
  });

  it('checks positionals against the spec', () => {
    expect(positionalsOf(SPEC, parseArgs(SPEC, ['c.yaml']))).toEqual({ config: 'c.yaml' });
    expect(() => positionalsOf(SPEC, parseArgs(SPEC, ['a', 'b']))).toThrow("unexpected argument 'b'");
  });

  it('suggests only close words', () => {
    expect(closest('trian', ['train', 'eval'])).toBe('train');
    expect(closest('zzzzzz', ['train', 'eval'])).toBeUndefined();
  });
});

describe('formatHelp', () => {
  it('lists usage, arguments, every option with its value name, and examples', () => {
    const help = formatHelp(SPEC);
    expect(help).toContain('Usage: adatt demo [options] [CONFIG]');
    expect(help).toMatch(/--batch-size N\s+batch size/);
    expect(help).toMatch(/-o, --out DIR\s+output/);
    expect(help).toMatch(/-h, --help\s+show this help/);
    expect(help).toContain('Examples:\n  adatt demo config.yaml --lr 0.1');
  });
});
