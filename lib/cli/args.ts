/**
 * A small command-line parser: `--name value`, `--name=value`, `-n value`, `--flag` / `--no-flag`,
 * `--` to end options, typed values, and help text generated from the same spec, so the two never
 * disagree.
 */
import { UsageError } from './exit';

export type OptionType = 'string' | 'number' | 'integer' | 'boolean';

export interface OptionSpec {
  /** Long name without dashes, e.g. 'batch-size'; parsed values are keyed by its camelCase form. */
  name: string;
  short?: string;
  type: OptionType;
  /** Placeholder in the help text, e.g. 'FILE'. */
  value?: string;
  description: string;
  /** Collect every occurrence into an array (e.g. --set). */
  repeatable?: boolean;
}

export interface PositionalSpec {
  name: string;
  description: string;
  required?: boolean;
  /** Takes all remaining positionals. */
  variadic?: boolean;
}

export interface CommandSpec {
  name: string;
  /** One line, shown in `adatt --help`. */
  summary: string;
  /** Paragraphs shown in the command's help. */
  description?: string;
  positionals?: PositionalSpec[];
  options: OptionSpec[];
  examples: string[];
}

export interface ParsedArgs {
  options: Record<string, unknown>;
  positionals: string[];
}

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', type: 'boolean', description: 'show this help' };

export function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The closest of `candidates` to `word`, when it is close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = distance(word, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function convert(option: OptionSpec, text: string, flag: string, command: string): unknown {
  if (option.type === 'string') return text;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new UsageError(`${flag} needs a number, got '${text}'`, command);
  }
  if (option.type === 'integer' && !Number.isInteger(value)) {
    throw new UsageError(`${flag} needs an integer, got '${text}'`, command);
  }
  return value;
}

/** Parses `argv` (the words after the command name) against `spec`; throws UsageError. */
export function parseArgs(spec: CommandSpec, argv: readonly string[]): ParsedArgs {
  const options = [...spec.options, HELP_OPTION];
  const command = spec.name;
  const byName = new Map(options.map((option) => [option.name, option]));
  const byShort = new Map(options.filter((option) => option.short).map((option) => [option.short!, option]));
  const parsed: ParsedArgs = { options: {}, positionals: [] };

  const store = (option: OptionSpec, value: unknown, flag: string): void => {
    const key = camelCase(option.name);
    if (option.repeatable) {
      parsed.options[key] ??= [];
      (parsed.options[key] as unknown[]).push(value);
    } else if (key in parsed.options && option.type !== 'boolean') {
      throw new UsageError(`${flag} is given twice`, command);
    } else {
      parsed.options[key] = value;
    }
  };

  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--') {
      parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    const isLong = arg.startsWith('--');
    const isShort = !isLong && /^-[A-Za-z]$/.test(arg);
    if (!isLong && !isShort) {
      if (arg.startsWith('-') && arg.length > 1 && !/^-\d/.test(arg)) {
        throw new UsageError(`unknown option ${arg}`, command);
      }
      parsed.positionals.push(arg);
      continue;
    }
    const [rawName, inlineValue] = isLong ? splitOnce(arg.slice(2), '=') : [arg.slice(1), undefined];
    let option = isLong ? byName.get(rawName) : byShort.get(rawName);
    let negated = false;
    if (!option && isLong && rawName.startsWith('no-')) {
      const positive = byName.get(rawName.slice(3));
      if (positive?.type === 'boolean') {
        option = positive;
        negated = true;
      }
    }
    if (!option) {
      const hint = isLong
        ? closest(
            rawName,
            options.map((o) => o.name),
          )
        : undefined;
      throw new UsageError(`unknown option ${arg}${hint ? ` (did you mean --${hint}?)` : ''}`, command);
    }
    const flag = isLong ? `--${rawName}` : arg;
    if (option.type === 'boolean') {
      if (inlineValue !== undefined) throw new UsageError(`${flag} takes no value`, command);
      store(option, !negated, flag);
      continue;
    }
    let text = inlineValue;
    if (text === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`${flag} needs a value${option.value ? ` (${option.value})` : ''}`, command);
      i += 1;
      text = argv[i]!;
    }
    store(option, convert(option, text, flag, command), flag);
  }
  return parsed;
}

function splitOnce(text: string, separator: string): [string, string | undefined] {
  const at = text.indexOf(separator);
  return at < 0 ? [text, undefined] : [text.slice(0, at), text.slice(at + 1)];
}

/** Checks the positional count against the spec and returns them by name. */
export function positionalsOf(spec: CommandSpec, parsed: ParsedArgs): Record<string, string | string[] | undefined> {
  const specs = spec.positionals ?? [];
  const values = [...parsed.positionals];
  const named: Record<string, string | string[] | undefined> = {};
  for (const positional of specs) {
    if (positional.variadic) {
      named[positional.name] = values.splice(0);
    } else {
      named[positional.name] = values.shift();
    }
    const value = named[positional.name];
    if (positional.required && (value === undefined || (Array.isArray(value) && value.length === 0))) {
      throw new UsageError(`missing ${positional.name.toUpperCase()}: ${positional.description}`, spec.name);
    }
  }
  if (values.length > 0) throw new UsageError(`unexpected argument '${values[0]}'`, spec.name);
  return named;
}

function optionLabel(option: OptionSpec): string {
  const short = option.short ? `-${option.short}, ` : '    ';
  const value = option.type === 'boolean' ? '' : ` ${option.value ?? option.type.toUpperCase()}`;
  return `${short}--${option.name}${value}`;
}

function usageLine(spec: CommandSpec): string {
  const positionals = (spec.positionals ?? []).map((p) => {
    const name = `${p.name.toUpperCase()}${p.variadic ? '...' : ''}`;
    return p.required ? name : `[${name}]`;
  });
  return ['adatt', spec.name, '[options]', ...positionals].join(' ');
}

/** Aligned two-column rows, wrapping nothing (descriptions are written to fit). */
export function columns(rows: readonly [string, string][], indent = 2): string {
  const width = Math.max(...rows.map(([left]) => left.length)) + 3;
  return rows.map(([left, right]) => `${' '.repeat(indent)}${left.padEnd(width)}${right}`.trimEnd()).join('\n');
}

export function formatHelp(spec: CommandSpec): string {
  const sections = [`adatt ${spec.name}: ${spec.summary}`, `Usage: ${usageLine(spec)}`];
  if (spec.description) sections.push(spec.description.trim());
  if (spec.positionals?.length) {
    sections.push(`Arguments:\n${columns(spec.positionals.map((p) => [p.name.toUpperCase(), p.description]))}`);
  }
  sections.push(`Options:\n${columns([...spec.options, HELP_OPTION].map((o) => [optionLabel(o), o.description]))}`);
  if (spec.examples.length) sections.push(`Examples:\n${spec.examples.map((example) => `  ${example}`).join('\n')}`);
  return `${sections.join('\n\n')}\n`;
}
