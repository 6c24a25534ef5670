/** `adatt export`: a model's weights as a torch.save state dict or safetensors, for PyTorch. */
import * as path from 'node:path';
import { normalizeModelConfig } from '../../config';
import { writeFileAtomic } from '../../files';
import type { WeightFormat, WeightLayout } from '../../model';
import { positionalsOf, type ParsedArgs } from '../args';
import { JSON_OPTION, type Command } from '../command';
import { UnsupportedError, UsageError } from '../exit';
import { openModel } from '../model-source';
import type { Output } from '../output';

const FORMATS = ['torch', 'safetensors', 'torchscript'] as const;
const LAYOUTS: readonly WeightLayout[] = ['reference', 'native'];

export const TORCHSCRIPT_UNSUPPORTED = `TorchScript export of adatt's native models is not possible: they are C++ LibTorch modules, which
torch.jit cannot compile (it compiles Python nn.Modules). Instead, export the weights in the reference layout
(--format torch or safetensors) and load them into the PyTorch reference model scripts/reference/adatt_reference.py
(ReferenceModel(config) with the .config.json written next to the weights); torch.jit.script that module if you
need TorchScript. See docs/pytorch-interop.md.`;

export const exportCommand: Command = {
  spec: {
    name: 'export',
    summary: "export a model's weights for PyTorch: torch.save state dict (.pt) or safetensors",
    description: `The reference layout (default) uses the parameter names of Meta's AdaTT code (CentralTaskArch), so
torch.load'ed weights fit scripts/reference/adatt_reference.py; the native layout is adatt's stacked storage.
Next to the weights, <name>.config.json holds the normalised model config that ReferenceModel takes.`,
    positionals: [{ name: 'model', description: 'run directory or .adatt checkpoint', required: true }],
    options: [
      { name: 'output', short: 'o', type: 'string', value: 'FILE', description: 'weights file: .pt / .pth (torch) or .safetensors' },
      {
        name: 'format',
        type: 'string',
        value: 'FORMAT',
        description: 'torch or safetensors (default: from the file name); torchscript is not possible',
      },
      { name: 'layout', type: 'string', value: 'LAYOUT', description: 'reference (default) or native' },
      { name: 'config', type: 'boolean', description: 'write <name>.config.json beside the weights (default on; --no-config)' },
      JSON_OPTION,
    ],
    examples: [
      'adatt export runs/census --output census.safetensors',
      'adatt export runs/census/model.adatt --output census.pt --layout reference',
    ],
  },
  run: exportWeights,
};

function formatOf(requested: string | undefined, file: string): WeightFormat {
  if (requested === 'torchscript') throw new UnsupportedError(TORCHSCRIPT_UNSUPPORTED);
  if (requested !== undefined) {
    if (!(FORMATS as readonly string[]).includes(requested))
      throw new UsageError(`--format must be one of ${FORMATS.join(', ')}, got '${requested}'`);
    return requested as WeightFormat;
  }
  if (/\.safetensors$/i.test(file)) return 'safetensors';
  if (/\.(pt|pth|bin)$/i.test(file)) return 'torch';
  throw new UsageError(`cannot tell the format from ${path.basename(file)}: use a .pt or .safetensors name, or --format`);
}

async function exportWeights(args: ParsedArgs, out: Output): Promise<number> {
  const { model: modelPath } = positionalsOf(exportCommand.spec, args) as { model: string };
  const output = args.options.output as string | undefined;
  if (args.options.format === 'torchscript') throw new UnsupportedError(TORCHSCRIPT_UNSUPPORTED);
  if (output === undefined) throw new UsageError('--output FILE is required (.pt or .safetensors)');
  const file = path.resolve(output);
  const format = formatOf(args.options.format as string | undefined, file);
  const layout = (args.options.layout as WeightLayout | undefined) ?? 'reference';
  if (!LAYOUTS.includes(layout)) throw new UsageError(`--layout must be one of ${LAYOUTS.join(', ')}, got '${layout}'`);
  const opened = await openModel(modelPath);
  using model = opened.checkpoint.model;
  await model.saveWeights(file, { format, layout });
  const written = [file];
  if (args.options.config !== false) {
    const configFile = `${file.replace(/\.[^./]+$/, '')}.config.json`;
    await writeFileAtomic(configFile, [Buffer.from(`${JSON.stringify(normalizeModelConfig(model.config), null, 2)}\n`)]);
    written.push(configFile);
  }
  out.info(`${model.config.kind} weights (${layout} layout, ${format}) from ${opened.file}`);
  for (const f of written) out.print(f);
  out.event('exported', { model: opened.file, format, layout, files: written });
  return 0;
}
