// The threads that run the addon's native jobs.
#pragma once

#include <functional>

namespace adatt::binding {

// Queues `job` for the process's one compute thread, after the jobs queued before it, and returns
// at once; `job` must not throw. No caller's thread waits for it, so libuv's pool stays free for
// the process's file, DNS, zlib and crypto work. One thread, not libuv's: glibc gives each thread
// its own malloc arena, and a job landing on a thread for the first time faulted in all its buffers
// again (training epochs a third slower) while every arena kept a working set of memory. One
// thread keeps one warm arena, and the per-thread OpenMP count is applied in one place. Training
// and anything whose order matters across processes (collectives) runs here.
void post_to_compute_thread(std::function<void()> job);

// Queues `job` for the inference threads: jobs that only read a model (forward, predict, evaluate
// without collectives) or none (metrics), up to inference_threads() of them at once, in order of
// arrival. Its threads are started when first needed and kept, each with its own warm arena.
void post_to_inference_threads(std::function<void()> job);

// How many inference jobs may run at once (>= 1). Lowering it lets surplus threads sleep.
void set_inference_threads(int count);
int inference_threads();

}  // namespace adatt::binding
