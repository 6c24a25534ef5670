/** Tensors as the API hands them over (what models, checkpoints and safetensors files exchange), and where they live. */
import type { RawTensor } from './addon';

/** A dense float tensor: row-major `data` of `shape`. */
export type Tensor = RawTensor;

/** Parameters by name, as `torch.nn.Module.state_dict()` would name them. */
export type StateDict = Record<string, Tensor>;

/** Where a model's parameters and computations live. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
