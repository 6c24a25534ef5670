#include "compute_thread.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "threads.h"

namespace adatt::binding {
namespace {

// Threads serving one queue in order of arrival; thread i takes jobs only while i < active().
class JobThreads {
 public:
  explicit JobThreads(int active) : active_(active) {}

  void post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
    // Threads are started on demand: a process that never runs a job of this kind starts none.
    if (started_ < active_) start_thread();
    work_.notify_all();
  }

  void set_active(int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = std::max(1, count);
    work_.notify_all();
  }

  int active() {
    std::lock_guard<std::mutex> lock(mutex_);
    return active_;
  }

 private:
  void start_thread() {
    const int index = started_++;
    std::thread([this, index] { serve(index); }).detach();
  }

  void serve(int index) {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_.wait(lock, [this, index] { return !queue_.empty() && index < active_; });
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      apply_thread_count();
      job();  // jobs catch their own exceptions
    }
  }

  std::mutex mutex_;
  std::condition_variable work_;
  std::deque<std::function<void()>> queue_;
  int active_;
  int started_ = 0;
};

// Never destroyed: the threads serve until the process exits, and no static destructor may pull
// their mutex away while they wait.
JobThreads& compute_threads() {
  static auto* const threads = new JobThreads(1);
  return *threads;
}

JobThreads& inference_threads_pool() {
  static auto* const threads = new JobThreads(
      static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u)));
  return *threads;
}

}  // namespace

void post_to_compute_thread(std::function<void()> job) { compute_threads().post(std::move(job)); }

void post_to_inference_threads(std::function<void()> job) { inference_threads_pool().post(std::move(job)); }

void set_inference_threads(int count) { inference_threads_pool().set_active(count); }

int inference_threads() { return inference_threads_pool().active(); }

}  // namespace adatt::binding
