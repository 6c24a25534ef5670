/**
 * What native models (`Model`) and TorchScript models (`ScriptModel`) share as task models: where
 * they live, their size, and the calibration `predict`, `evaluate` and serving apply.
 */
import type { RawCalibrator, RawTaskModel } from './addon';
import { rawCalibrators, readCalibration, type Calibration } from './calibration';
import type { TaskConfig } from './config';
import { callNative, callNativeAsync } from './errors';
import type { Device } from './tensor';
import { NativeHandle } from './native-handle';
import { readBoolean, readDevice } from './validation';

export abstract class TaskModel<Raw extends RawTaskModel> extends NativeHandle<Raw> {
  #calibration: Calibration | undefined;

  /** The model's tasks, in output order. */
  abstract get tasks(): readonly TaskConfig[];

  /**
   * Per binary task, the calibrator `predict`, `evaluate`, `reliabilityCurves` and serving apply to
   * its probabilities (undefined: none; `{ calibrated: false }` there gives raw ones). Set by
   * `calibrate` through `fit({ calibration })` or by hand; stored in checkpoints; `fit` clears it
   * (it was fitted to the old weights).
   */
  get calibration(): Calibration | undefined {
    return this.#calibration;
  }

  set calibration(value: Calibration | undefined) {
    this.#calibration = value === undefined ? undefined : readCalibration(value, this.tasks);
  }

  /**
   * @internal Per task, the raw calibrator the addon applies for a call's `calibrated` option
   * (default true), or undefined when none applies; a non-boolean option is a ValidationError.
   */
  _calibratorsFor(calibrated: unknown): (RawCalibrator | null)[] | undefined {
    return readBoolean(calibrated, 'calibrated', true) ? rawCalibrators(this.#calibration, this.tasks) : undefined;
  }

  /** Where the parameters live: 'cpu' or 'cuda:<index>'. */
  get device(): string {
    const raw = this._raw();
    return callNative(() => raw.device());
  }

  parameterCount(): number {
    const raw = this._raw();
    return callNative(() => raw.parameterCount());
  }

  /** Moves the parameters to `device` ('cpu', 'cuda' or 'cuda:<index>'); resolves to this model. */
  async to(device: Device): Promise<this> {
    const raw = this._raw();
    const checked = readDevice(device);
    await callNativeAsync(() => raw.to(checked));
    return this;
  }
}
