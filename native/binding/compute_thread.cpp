#include "compute_thread.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "threads.h"

namespace adatt::binding {
namespace {

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { serve(); }) { thread_.detach(); }

  void post(std::function<void()> job) {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
    work_.notify_one();
  }

 private:
  void serve() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_.wait(lock, [this] { return !queue_.empty(); });
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
  std::thread thread_;  // last: starts once the members it uses exist
};

}  // namespace

void post_to_compute_thread(std::function<void()> job) {
  // Never destroyed: the thread serves until the process exits, and no static destructor may pull
  // its mutex away while it waits.
  static auto* const compute = new ComputeThread();
  compute->post(std::move(job));
}

}  // namespace adatt::binding
