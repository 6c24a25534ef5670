#include "compute_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "threads.h"

namespace adatt::binding {
namespace {

class ComputeThread {
 public:
  ComputeThread() : thread_([this] { serve(); }) { thread_.detach(); }

  void run(const std::function<void()>& job) {
    Task task;
    task.job = &job;
    std::unique_lock<std::mutex> lock(mutex_);
    queue_.push_back(&task);
    work_.notify_one();
    done_.wait(lock, [&task] { return task.finished; });
    if (task.error) std::rethrow_exception(task.error);
  }

 private:
  struct Task {
    const std::function<void()>* job = nullptr;
    bool finished = false;
    std::exception_ptr error;
  };

  void serve() {
    for (;;) {
      Task* task = nullptr;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        work_.wait(lock, [this] { return !queue_.empty(); });
        task = queue_.front();
        queue_.pop_front();
      }
      try {
        apply_thread_count();
        (*task->job)();
      } catch (...) {
        task->error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        task->finished = true;
      }
      done_.notify_all();
    }
  }

  std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable done_;
  std::deque<Task*> queue_;
  std::thread thread_;  // last: starts once the members it uses exist
};

}  // namespace

void run_on_compute_thread(const std::function<void()>& job) {
  // Never destroyed: the thread serves until the process exits, and no static destructor may pull
  // its mutex away while it waits.
  static auto* const compute = new ComputeThread();
  compute->run(job);
}

}  // namespace adatt::binding
