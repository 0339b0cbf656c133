// Interrupted runs leave nothing behind: every catchable signal whose default action ends the
// process (kHandled) removes the staging folders of the outputs being written (StagedOutputs
// registers them here), then ends the process with the signal's default action. A signal
// ignored when perfq started (nohup, a script's background job) stays ignored. The handler is
// async-signal-safe: paths live in preallocated slots, and it only lists (getdents64),
// unlinks and removes folders. SIGKILL cannot be caught: the next run into the same folder
// removes what it left (StagedOutputs).
#pragma once

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace perfq_cli {
namespace interrupt {

constexpr int kSlots = 64;

/// The signals handled: those whose default action ends the process, but for SIGKILL and
/// SIGSTOP (which cannot be caught) and the synchronous faults (SIGSEGV, SIGBUS, SIGFPE,
/// SIGILL, SIGABRT, SIGTRAP, SIGSYS), where running more code is unsafe.
constexpr int kHandled[] = {SIGINT,  SIGTERM, SIGHUP,    SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM,
                            SIGXCPU, SIGXFSZ, SIGVTALRM, SIGPROF, SIGPIPE};
constexpr std::size_t kPathBytes = 4096;

struct Slot {
  std::atomic<int> state{0};  ///< 0 free, 1 claimed (path being written), 2 to purge
  char path[kPathBytes];
};

inline Slot g_slots[kSlots];

/// Removes everything inside the folder open as `fd` (depth bounded), without closing it.
inline void purge_inside(int fd, int depth) {
  struct Entry {  // struct linux_dirent64
    unsigned long long ino;
    long long off;
    unsigned short reclen;
    unsigned char type;
    char name[1];
  };
  alignas(8) char buffer[4096];
  // Removing entries while listing may hide some: list again until a pass removes nothing.
  for (int pass = 0; pass < 16; ++pass) {
    bool removed = false;
    ::lseek(fd, 0, SEEK_SET);
    for (;;) {
      const long got = ::syscall(SYS_getdents64, fd, buffer, sizeof buffer);
      if (got <= 0) break;
      for (long at = 0; at < got;) {
        const Entry* e = reinterpret_cast<const Entry*>(buffer + at);
        at += e->reclen;
        if (std::strcmp(e->name, ".") == 0 || std::strcmp(e->name, "..") == 0) continue;
        if (::unlinkat(fd, e->name, 0) == 0) {
          removed = true;
          continue;
        }
        if (depth > 0) {  // a folder: empty it, then remove it
          const int sub = ::openat(fd, e->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
          if (sub >= 0) {
            purge_inside(sub, depth - 1);
            ::close(sub);
          }
        }
        if (::unlinkat(fd, e->name, AT_REMOVEDIR) == 0) removed = true;
      }
    }
    if (!removed) break;
  }
}

/// Removes the folder `path` and everything in it (async-signal-safe).
inline void purge(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
  if (fd >= 0) {
    purge_inside(fd, 8);
    ::close(fd);
  }
  ::rmdir(path);
}

/// Nonzero while outputs are being moved into place; a signal then waits (g_pending).
inline std::atomic<int> g_deferred{0};
inline std::atomic<int> g_pending{0};

extern "C" inline void on_signal(int sig) {
  if (g_deferred.load(std::memory_order_acquire) > 0) {
    g_pending.store(sig, std::memory_order_release);  // handled when the moves are done
    return;
  }
  const int saved = errno;
  for (Slot& slot : g_slots) {
    if (slot.state.load(std::memory_order_acquire) == 2) purge(slot.path);
  }
  errno = saved;
  // Back to the default action, then raise again: the process ends by the signal once this
  // handler returns (the signal is blocked until then), as its parent expects.
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = SIG_DFL;
  sigemptyset(&action.sa_mask);
  ::sigaction(sig, &action, nullptr);
  ::raise(sig);
}

/// Installs the handlers (once per process), except for signals that were ignored when the
/// process started: those stay ignored (the POSIX convention: `nohup perfq …` must survive a
/// logout, a background job of a script the terminal's Ctrl-C).
inline void install() {
  static std::atomic<bool> done{false};
  if (done.exchange(true)) return;
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  for (int sig : kHandled) sigaddset(&action.sa_mask, sig);
  for (int sig : kHandled) {
    struct sigaction before;
    if (::sigaction(sig, nullptr, &before) != 0) continue;
    if (!(before.sa_flags & SA_SIGINFO) && before.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &action, nullptr);
  }
}

/// Registers a folder to remove on a signal; returns its slot, or -1 when none is free or the
/// path is too long (the run then goes on, unprotected).
inline int add(const std::string& path) {
  if (path.size() + 1 > kPathBytes) return -1;
  for (int k = 0; k < kSlots; ++k) {
    int expected = 0;
    if (!g_slots[k].state.compare_exchange_strong(expected, 1, std::memory_order_acquire)) {
      continue;
    }
    std::memcpy(g_slots[k].path, path.c_str(), path.size() + 1);
    g_slots[k].state.store(2, std::memory_order_release);
    return k;
  }
  return -1;
}

inline void remove(int slot) {
  if (slot >= 0 && slot < kSlots) g_slots[slot].state.store(0, std::memory_order_release);
}

/// Defers the handled signals for its lifetime (while outputs are moved into place, so that
/// they appear all together or not at all); a signal that arrives meanwhile is handled after.
class Deferred {
 public:
  Deferred() { g_deferred.fetch_add(1, std::memory_order_acq_rel); }
  ~Deferred() {
    if (g_deferred.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      const int sig = g_pending.exchange(0);
      if (sig != 0) ::raise(sig);
    }
  }
  Deferred(const Deferred&) = delete;
  Deferred& operator=(const Deferred&) = delete;
};

}  // namespace interrupt
}  // namespace perfq_cli
