/**
 * Where the command's words go. Results (tables, file names) go to stdout, status and progress to
 * stderr, so `adatt eval … > metrics.txt` captures only the result. With --json, stdout carries
 * only JSON lines (one event per line) and the human text still goes to stderr.
 */
import { describeError } from './exit';

type Stream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

export interface OutputOptions {
  json?: boolean;
  stdout?: Stream;
  stderr?: Stream;
  env?: NodeJS.ProcessEnv;
}

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  red(text: string): string;
}

function makeStyle(enabled: boolean): Style {
  const wrap =
    (open: number, close: number) =>
    (text: string): string =>
      enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return { bold: wrap(1, 22), dim: wrap(2, 22), green: wrap(32, 39), yellow: wrap(33, 39), red: wrap(31, 39) };
}

export class Output {
  readonly json: boolean;
  /** stderr is a terminal: progress can redraw one line in place. */
  readonly interactive: boolean;
  readonly style: Style;
  readonly #stdout: Stream;
  readonly #stderr: Stream;
  #statusShown = false;

  constructor(options: OutputOptions = {}) {
    const env = options.env ?? process.env;
    this.json = options.json ?? false;
    this.#stdout = options.stdout ?? process.stdout;
    this.#stderr = options.stderr ?? process.stderr;
    this.interactive = Boolean(this.#stderr.isTTY) && env.TERM !== 'dumb';
    // https://no-color.org and FORCE_COLOR, as most Node tools honour them.
    const color = env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' ? true : this.interactive && !env.NO_COLOR;
    this.style = makeStyle(color);
  }

  /** Terminal width for the progress line (100 when the terminal does not say). */
  get width(): number {
    return this.#stderr.columns || 100;
  }

  /** A result for humans (stdout); in JSON mode results are events instead, so this goes to stderr. */
  print(text: string): void {
    this.#write(this.json ? this.#stderr : this.#stdout, text);
  }

  info(text: string): void {
    this.#write(this.#stderr, text);
  }

  warn(text: string): void {
    this.#write(this.#stderr, `${this.style.yellow('warning:')} ${text}`);
  }

  error(err: unknown, command?: string): void {
    const prefix = command ? `adatt ${command}: ` : 'adatt: ';
    this.#write(this.#stderr, `${prefix}${this.style.red('error:')} ${describeError(err)}`);
  }

  /** A JSON-lines event on stdout (JSON mode only). */
  event(name: string, data: Record<string, unknown> = {}): void {
    if (!this.json) return;
    this.#stdout.write(`${JSON.stringify({ event: name, time: new Date().toISOString(), ...data }, jsonReplacer)}\n`);
  }

  /** Replaces the status line in place (interactive terminals only). */
  status(text: string): void {
    if (!this.interactive) return;
    const width = Math.max(20, this.width - 1);
    const clipped = visibleLength(text) > width ? `${stripAnsi(text).slice(0, width - 1)}…` : text;
    this.#stderr.write(`\r\x1b[2K${clipped}`);
    this.#statusShown = true;
  }

  clearStatus(): void {
    if (!this.#statusShown) return;
    this.#stderr.write('\r\x1b[2K');
    this.#statusShown = false;
  }

  #write(stream: Stream, text: string): void {
    if (stream === this.#stderr) this.clearStatus();
    stream.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** Typed arrays become plain arrays; NaN and infinities become null (JSON has neither). */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number>);
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  return value;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: ESC starts every ANSI colour sequence.
const ANSI = /\x1b\[[0-9;]*m/g;

function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

function visibleLength(text: string): number {
  return stripAnsi(text).length;
}
