// fitCalibrators(outputs, labels, sampleWeights?, methods) and reliabilityCurves(outputs, labels,
// sampleWeights?, calibrators?): calibration of binary tasks' raw outputs gathered in JS (a
// dataset's or a stream's), on the inference threads.
#pragma once

#include <napi.h>

namespace adatt::binding {

Napi::Value FitCalibrators(const Napi::CallbackInfo& info);
Napi::Value ReliabilityCurves(const Napi::CallbackInfo& info);

}  // namespace adatt::binding
