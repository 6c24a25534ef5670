// taskMetrics(outputs, labels, taskTypes, where?, sampleWeights?, groups?): metrics of raw outputs gathered from
// several datasets (the chunks of a stream), computed like evaluate's on the compute thread.
#pragma once

#include <napi.h>

namespace adatt::binding {

Napi::Value TaskMetrics(const Napi::CallbackInfo& info);

}  // namespace adatt::binding
