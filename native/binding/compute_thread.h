// The thread that runs the addon's native jobs.
#pragma once

#include <functional>

namespace adatt::binding {

// Runs `job` on the process's one compute thread, after the jobs queued before it, and waits for
// it; rethrows what it threw. libuv hands each job to whichever of its worker threads is free, and
// glibc gives each thread its own malloc arena: a job landing on a thread for the first time faulted
// in all its buffers again (training epochs a third slower) and every arena kept a working set of
// memory. One thread keeps one warm arena, and the per-thread OpenMP count is applied in one place.
void run_on_compute_thread(const std::function<void()>& job);

}  // namespace adatt::binding
