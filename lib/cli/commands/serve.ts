/** `adatt serve`: a model over HTTP with micro-batching, /health and /metrics, until SIGTERM or Ctrl-C. */
import { Predictor } from '../../serving/predictor';
import { ValidationError } from '../../errors';
import { PredictionServer, type ServerOptions } from '../../serving/server';
import { positionalsOf, type ParsedArgs } from '../args';
import { applyThreads, DEVICE_OPTION, deviceOf, JSON_OPTION, THREADS_OPTION, UNCALIBRATED_OPTION, type Command } from '../command';
import { EXIT, UsageError } from '../exit';
import { openModel } from '../model-source';
import type { Output } from '../output';
import { schemaOf } from './eval';

export const serveCommand: Command = {
  spec: {
    name: 'serve',
    summary: 'serve a model over HTTP: JSON rows in, predictions out, micro-batched',
    description: `POST /predict {"rows": [{column: value, …}]} and POST /score {"user": {…}, "candidates": [{…}]} answer
{"predictions": [{task: value, …}]}; GET /health and GET /metrics (Prometheus). Requests that arrive
while the model is busy share its next call (up to --max-batch rows); --max-wait makes an idle model
wait for company. Beyond --max-queue waiting requests the answer is 503. SIGTERM or Ctrl-C stops
accepting, answers what is in flight, then exits 0.`,
    positionals: [{ name: 'model', description: 'run directory or .adatt checkpoint', required: true }],
    options: [
      { name: 'port', short: 'p', type: 'integer', value: 'N', description: 'TCP port (default 8080; 0 picks a free one)' },
      { name: 'host', type: 'string', value: 'HOST', description: 'address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)' },
      {
        name: 'max-batch',
        type: 'integer',
        value: 'ROWS',
        description: 'most rows per model call (default 256; 1 turns micro-batching off)',
      },
      {
        name: 'max-wait',
        type: 'integer',
        value: 'MS',
        description: 'how long an idle model waits for more requests (default 0: batches form while it is busy)',
      },
      { name: 'max-queue', type: 'integer', value: 'N', description: 'most requests waiting for the model before 503 (default 256)' },
      { name: 'max-rows', type: 'integer', value: 'N', description: 'most rows or candidates in one request (default 10000)' },
      UNCALIBRATED_OPTION,
      DEVICE_OPTION,
      THREADS_OPTION,
      JSON_OPTION,
    ],
    examples: [
      'adatt serve runs/census --port 8080',
      'adatt serve runs/events --max-batch 512 --max-wait 1',
      'adatt serve model.adatt --port 0 --json',
    ],
  },
  handlesInterrupts: true,
  run: serve,
};

/** Resolves at the first SIGTERM or SIGINT; a second one exits at once. */
function stopSignal(out: Output): { stopped: Promise<NodeJS.Signals>; release: () => void } {
  let first: NodeJS.Signals | undefined;
  let resolve: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((done) => {
    resolve = done;
  });
  const listener = (signal: NodeJS.Signals): void => {
    if (first !== undefined) {
      out.info(`${signal} again: exiting without waiting for requests in flight`);
      process.exit(EXIT.interrupted);
    }
    first = signal;
    resolve(signal);
  };
  process.on('SIGTERM', listener);
  process.on('SIGINT', listener);
  return {
    stopped,
    release: () => {
      process.off('SIGTERM', listener);
      process.off('SIGINT', listener);
    },
  };
}

/** The flag behind each server option, for errors. */
const FLAGS: Readonly<Record<string, string>> = {
  maxBatchRows: '--max-batch',
  maxWaitMs: '--max-wait',
  maxQueue: '--max-queue',
  maxRequestRows: '--max-rows',
};

function serverOf(predictor: Predictor, options: ServerOptions): PredictionServer {
  try {
    return new PredictionServer(predictor, options);
  } catch (err) {
    if (err instanceof ValidationError && Object.hasOwn(FLAGS, err.field))
      throw new UsageError(`${FLAGS[err.field] as string}: ${err.message}`);
    throw err;
  }
}

async function serve(args: ParsedArgs, out: Output): Promise<number> {
  const { model: modelPath } = positionalsOf(serveCommand.spec, args) as { model: string };
  const {
    port = 8080,
    host = '127.0.0.1',
    maxBatch,
    maxWait,
    maxQueue,
    maxRows,
  } = args.options as {
    port?: number;
    host?: string;
    maxBatch?: number;
    maxWait?: number;
    maxQueue?: number;
    maxRows?: number;
  };
  if (port < 0 || port > 65535) throw new UsageError(`--port must be in [0, 65535], got ${port}`);
  applyThreads(args.options);
  const signals = stopSignal(out);
  try {
    const opened = await openModel(modelPath, deviceOf(args.options));
    using model = opened.checkpoint.model;
    if (args.options.uncalibrated === true) model.calibration = undefined;
    const predictor = new Predictor(model, schemaOf(opened));
    const server = serverOf(predictor, { maxBatchRows: maxBatch, maxWaitMs: maxWait, maxQueue, maxRequestRows: maxRows });
    const address = await server.listen(port, host);
    const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
    const tasks = predictor.schema.tasks.map((task) => task.name);
    out.info(`serving ${predictor.model.config.kind} (${tasks.join(', ')}) from ${opened.file} on ${url}`);
    out.event('listening', { url, port: address.port, model: opened.file, tasks, columns: predictor.columns });
    const signal = await signals.stopped;
    out.info(`${signal}: draining requests in flight…`);
    await server.close();
    out.info('stopped');
    out.event('stopped', { signal });
    return EXIT.ok;
  } finally {
    signals.release();
  }
}
