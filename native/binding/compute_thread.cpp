#include "compute_thread.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "threads.h"

namespace adatt::binding {
namespace {

// Threads serving one queue in order of arrival, at most active() at once. A job goes to the thread
// that went idle last (its arena and caches are the warmest); a thread is started only when none
// is idle.
class JobThreads {
 public:
  explicit JobThreads(int active) : active_(active) {}

  void post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
    if (idle_.empty()) {
      if (started_ < active_) start_thread();
      return;  // a busy thread takes it when it is done
    }
    wake_newest_idle();
  }

  void set_active(int count) {
    std::lock_guard<std::mutex> lock(mutex_);
    active_ = std::max(1, count);
    // Raised: put waiting jobs to work on idle threads, or new ones, up to the new limit.
    for (size_t waiting = queue_.size(); waiting > 0 && running_ < active_; --waiting) {
      if (idle_.empty()) {
        start_thread();
      } else {
        wake_newest_idle();
      }
    }
  }

  int active() {
    std::lock_guard<std::mutex> lock(mutex_);
    return active_;
  }

 private:
  struct Waiter {
    std::condition_variable wake;
    bool woken = false;
  };

  // Under mutex_.
  void start_thread() {
    ++started_;
    ++running_;
    std::thread([this] { serve(); }).detach();
  }

  // Under mutex_: the last thread to go idle takes the next job.
  void wake_newest_idle() {
    Waiter* waiter = idle_.back();
    idle_.pop_back();
    waiter->woken = true;
    ++running_;
    waiter->wake.notify_one();
  }

  void serve() {
    Waiter waiter;
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        // Over the limit (it was lowered) or nothing to do: wait to be handed work.
        while (queue_.empty() || running_ > active_) {
          --running_;
          waiter.woken = false;
          idle_.push_back(&waiter);
          waiter.wake.wait(lock, [&waiter] { return waiter.woken; });
        }
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      apply_thread_count();
      job();  // jobs catch their own exceptions
    }
  }

  std::mutex mutex_;
  std::deque<std::function<void()>> queue_;
  std::vector<Waiter*> idle_;  // threads waiting for work, the most recently idle last
  int active_;
  int started_ = 0;
  int running_ = 0;  // threads started and not idle
};

// Never destroyed: the threads serve until the process exits, and no static destructor may pull
// their mutex away while they wait.
JobThreads& compute_threads() {
  static auto* const threads = new JobThreads(1);
  return *threads;
}

// One by default: each job already uses setNumThreads' threads; concurrent reads are opted into
// with setNumThreads(n, { inferenceThreads }) (typically n = 1 and one inference thread per core).
JobThreads& inference_threads_pool() {
  static auto* const threads = new JobThreads(1);
  return *threads;
}

}  // namespace

void post_to_compute_thread(std::function<void()> job) { compute_threads().post(std::move(job)); }

void post_to_inference_threads(std::function<void()> job) { inference_threads_pool().post(std::move(job)); }

void set_inference_threads(int count) { inference_threads_pool().set_active(count); }

int inference_threads() { return inference_threads_pool().active(); }

}  // namespace adatt::binding
