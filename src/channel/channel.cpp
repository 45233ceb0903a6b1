// channel.cpp — Stackless channels on the core's wait-queue primitive (reference §3, §5).
//
// Every access to a channel's queue happens inside a queue_guard (core/mt.hpp): no lock while the
// process has one runtime thread, the channel's spinlock after that. The guard is never held
// across a switch, and never together with another channel's guard except in select, which takes
// its channels' guards in address order.
#include <stackless/channel.hpp>
#include <stackless/select.hpp>

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <vector>

#include "core/mt.hpp"
#include "core/switch.hpp"
#include "core/watchdog.hpp"

namespace stackless::detail {

struct channel_core {
  std::atomic<int> refs{1};  // handles
  wait_queue waiters;        // all waiting in the same direction (plus stale nodes, see partner)
  // Guarded by waiters' guard:
  int blockers = 0;          // tasklets inside a wait on this channel (they keep it alive)
  bool orphaned = false;     // no handle left: the last blocker frees it
  // Settable from any thread:
  std::atomic<int> preference{-1};
  std::atomic<bool> schedule_all{false};
  std::atomic<bool> closing{false};

  // partner: the first waiter an operation in `direction` can complete, or null. Nodes whose
  // wait another thread has already ended (stale) are unlinked on the way. Under the guard.
  wait_node* partner(int direction) noexcept {
    for (;;) {
      wait_node* h = waiters.head;
      if (h == nullptr || h->direction != -direction) return nullptr;
      if (!h->state->claimed.load(std::memory_order_acquire)) return h;
      waiters.unlink(*h);
    }
  }
  // balance: waiting senders (> 0) or minus waiting receivers (< 0). Under the guard.
  int balance() noexcept {
    for (wait_node* n = waiters.head; n != nullptr;) {  // stale nodes do not count
      wait_node* next = n->next;
      if (n->state->claimed.load(std::memory_order_acquire)) waiters.unlink(*n);
      n = next;
    }
    return waiters.head == nullptr ? 0 : static_cast<int>(waiters.count) * waiters.head->direction;
  }
};

namespace {

// A tasklet waiting on a channel keeps it alive: blockers is counted under the guard, so a wait
// costs no atomic instruction. end_block: the last blocker of a channel without handles frees it.
void end_block(thread_state& ts, channel_core* c) noexcept {
  bool free = false;
  {
    queue_guard g(ts, c->waiters);
    free = --c->blockers == 0 && c->orphaned;
  }
  if (free) delete c;
}

struct blocker {
  thread_state& ts;
  channel_core* c;
  ~blocker() { end_block(ts, c); }
};

// enter starts every channel operation: a tick point (a tasklet that loops on operations that
// never block can still be pre-empted), and the recursion check.
void enter(thread_state& ts) {
  if (ts.in_channel_callback) throw runtime_error("Recursive channel call due to callbacks!");
  tick();
}

// transfer moves the value (or the exception) of a send into a receive. `sender`/`receiver` are
// the two operations; the caller holds the guard and has claimed the waiting one's wait.
inline void transfer(channel_op& sender, channel_op& receiver) {
  if (sender.exception)
    receiver.exception = sender.exception;  // the receiver throws it
  else
    sender.transfer(receiver.value, sender.value);
}

// place puts partner b, whose wait this thread has claimed (guard left), where §3.2 says; a
// partner of another thread is made runnable there and the caller continues (§5).
__attribute__((always_inline)) inline void place(thread_state& ts, tasklet_impl* b,
                                                int direction, bool schedule_all,
                                                int preference) {
  if (b->owner != &ts) {
    resume_claimed(ts, b);
    return;
  }
  finish_wait(ts, b);
  tasklet_impl* a = ts.current;
  if (schedule_all) {
    ts.append(b);
    // Not a preferred hand-off: a pending soft interrupt goes to the watchdog here.
    detail::switch_to(ts, ts.irq.soft_pending ? take_soft_interrupt(ts) : a->next);
    claim(a);
  } else if (preference == -direction) {
    ts.insert_after(a, b);
    detail::switch_to(ts, b);
    claim(a);
  } else {
    ts.append(b);
  }
}

// complete_with: the acting tasklet's operation `op` in `direction` completes the waiting node b.
// Called under the guard, which it leaves. False if b's wait was ended by someone else first
// (the caller looks for another partner).
template <class Guard>
__attribute__((always_inline)) inline bool complete_with(thread_state& ts, channel_core& c,
                                                        Guard& g, wait_node& b, channel_op& op,
                                                        int direction) {
  const bool schedule_all = c.schedule_all.load(std::memory_order_relaxed);
  const int preference = c.preference.load(std::memory_order_relaxed);
  tasklet_impl* partner = b.tasklet;
  // A switching hand-off under a switch_trap fails before anything changes.
  if (partner->owner == &ts && (schedule_all || preference == -direction)) check_trap(ts);
  auto* theirs = static_cast<channel_op*>(b.payload);
  if (!claim_node(b, wait_outcome::completed)) return false;
  if (direction > 0)
    transfer(op, *theirs);
  else
    transfer(*theirs, op);
  g.leave();
  place(ts, partner, direction, schedule_all, preference);
  return true;
}

// operate: send (direction +1) or receive (-1) on c.
// Inlined into channel_send/channel_receive so that a switch returns through one frame only
// (see context.hpp on why frames on the switch path are expensive).
__attribute__((always_inline)) inline bool operate(channel_core* c, channel_op& op, int direction,
                                                   std::int64_t deadline) {
  thread_state& ts = state();
  enter(ts);
  if (g_has_channel_callback.load(std::memory_order_relaxed)) [[unlikely]] {
    bool will_block;
    {
      queue_guard g(ts, c->waiters);
      will_block = c->partner(direction) == nullptr;
    }
    call_channel_callback(ts, ts.current, direction > 0, will_block);
  }
  queue_guard g(ts, c->waiters);
  for (;;) {
    wait_node* b = c->partner(direction);
    if (b == nullptr) break;
    if (complete_with(ts, *c, g, *b, op, direction)) {
      if (direction < 0 && op.exception) std::rethrow_exception(op.exception);  // send_exception
      return true;
    }
  }
  if (op.iterating && c->closing.load(std::memory_order_relaxed)) return false;  // loop ends
  if (ts.current->block_trap) throw runtime_error("this tasklet does not like to be blocked.");
  if (c->closing.load(std::memory_order_relaxed)) throw channel_closed();
  if (deadline != no_deadline && deadline <= now_ns()) return false;
  check_can_block(ts);
  wait_node n;
  n.direction = direction;
  n.kind = wait_kind::channel;
  n.payload = &op;
  wait_state ws;
  ws.nodes = &n;
  prepare_node(ts, ws, n);
  c->waiters.push_back(n);
  ++c->blockers;
  g.leave();
  blocker keep{ts, c};
  const wait_outcome outcome = wait(ts, ws, deadline);
  if (direction < 0 && op.exception) std::rethrow_exception(op.exception);
  return outcome == wait_outcome::completed;
}

}  // namespace

channel_core* channel_create() { return new channel_core(); }
void channel_add_ref(channel_core* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }
void channel_release(channel_core* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  bool free = false;
  {
    queue_guard g(state(), c->waiters);
    free = c->blockers == 0;
    c->orphaned = true;
  }
  if (free) delete c;
}

bool channel_send(channel_core* c, channel_op& op, std::int64_t deadline) {
  return operate(c, op, +1, deadline);
}

bool channel_receive(channel_core* c, channel_op& op, std::int64_t deadline) {
  return operate(c, op, -1, deadline);
}

int channel_balance(const channel_core* c) noexcept {
  auto* m = const_cast<channel_core*>(c);
  queue_guard g(state(), m->waiters);
  return m->balance();
}
int channel_preference(const channel_core* c) noexcept {
  return c->preference.load(std::memory_order_relaxed);
}
void channel_set_preference(channel_core* c, int p) noexcept {
  c->preference.store(p < -1 ? -1 : (p > 1 ? 1 : p), std::memory_order_relaxed);
}
bool channel_schedule_all(const channel_core* c) noexcept {
  return c->schedule_all.load(std::memory_order_relaxed);
}
void channel_set_schedule_all(channel_core* c, bool v) noexcept {
  c->schedule_all.store(v, std::memory_order_relaxed);
}

tasklet channel_queue(const channel_core* c) {
  auto* m = const_cast<channel_core*>(c);
  queue_guard g(state(), m->waiters);
  m->balance();  // drops stale nodes
  if (m->waiters.head == nullptr) return {};
  tasklet_impl* t = m->waiters.head->tasklet;
  add_ref(t);
  return tasklet::adopt(t);
}

void channel_close(channel_core* c) noexcept {
  c->closing.store(true, std::memory_order_relaxed);
  // Receivers blocked in range-for iteration end their loop (Stackless leaves them blocked).
  thread_state& ts = state();
  for (;;) {
    queue_guard g(ts, c->waiters);
    wait_node* n = c->waiters.head;
    while (n != nullptr &&
           !(n->direction < 0 && static_cast<channel_op*>(n->payload)->iterating))
      n = n->next;
    if (n == nullptr) return;
    tasklet_impl* t = n->tasklet;
    const bool claimed = claim_node(*n, wait_outcome::closed);
    g.leave();
    if (claimed) resume_claimed(ts, t);
  }
}

void channel_open(channel_core* c) noexcept { c->closing.store(false, std::memory_order_relaxed); }
bool channel_closing(const channel_core* c) noexcept {
  return c->closing.load(std::memory_order_relaxed);
}

// --- select ---

namespace {

int direction_of(const select_case& c) { return c.kind == select_kind::send ? +1 : -1; }

// select_lock: the guards of every channel of a select at once — one unlocked region in a
// single-threaded process, else the channels' spinlocks taken in address order.
class select_lock {
 public:
  select_lock(thread_state& ts, select_case* cases, std::size_t n) : region_(ts) {
    if (region_.active()) return;
    for (std::size_t i = 0; i < n; ++i)
      if (cases[i].core != nullptr) channels_.push_back(cases[i].core);
    std::sort(channels_.begin(), channels_.end());
    for (channel_core* c : channels_) c->waiters.lock.lock();
    locked_ = true;
  }
  ~select_lock() { leave(); }
  select_lock(const select_lock&) = delete;
  select_lock& operator=(const select_lock&) = delete;
  void leave() noexcept {
    if (locked_) {
      locked_ = false;
      for (auto it = channels_.rbegin(); it != channels_.rend(); ++it) (*it)->waiters.lock.unlock();
    } else if (region_.active()) {
      region_.exit();
    }
  }

 private:
  unlocked_region region_;
  std::vector<channel_core*> channels_;
  bool locked_ = false;
};

// case_wait: one waiting case of a select; keeps its channel alive while linked (see blocker).
struct case_wait {
  wait_node node;
  thread_state* ts = nullptr;
  channel_core* core = nullptr;
  ~case_wait() {
    if (core != nullptr) end_block(*ts, core);
  }
};

}  // namespace

std::size_t select_impl(select_case* cases, std::size_t n) {
  thread_state& ts = state();
  enter(ts);
  std::size_t after_index = n, else_index = n;
  for (std::size_t i = 0; i < n; ++i) {
    select_case& c = cases[i];
    if (c.kind == select_kind::after) {
      if (after_index != n) throw std::invalid_argument("select: more than one after() case");
      after_index = i;
    } else if (c.kind == select_kind::or_else) {
      if (else_index != n) throw std::invalid_argument("select: more than one or_else() case");
      else_index = i;
    } else {
      for (std::size_t j = 0; j < i; ++j)
        if (cases[j].core == c.core)
          throw std::invalid_argument("select: a channel appears in more than one case");
    }
  }
  select_lock lock(ts, cases, n);
  // Cases ready at once: pick one uniformly at random (Go's rule).
  for (;;) {
    std::size_t ready = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (cases[i].core != nullptr && cases[i].core->partner(direction_of(cases[i])) != nullptr)
        ++ready;
    if (ready == 0) break;
    std::size_t pick = ready == 1 ? 0 : static_cast<std::size_t>(ts.random() % ready);
    for (std::size_t i = 0; i < n; ++i) {
      select_case& c = cases[i];
      if (c.core == nullptr) continue;
      wait_node* b = c.core->partner(direction_of(c));
      if (b == nullptr || pick-- != 0) continue;
      if (complete_with(ts, *c.core, lock, *b, c.op, direction_of(c))) {
        if (c.kind == select_kind::receive && c.op.exception)
          std::rethrow_exception(c.op.exception);
        return i;
      }
      break;  // its wait ended elsewhere meanwhile: look again
    }
  }
  if (else_index != n) return else_index;
  const std::int64_t deadline = after_index != n ? cases[after_index].deadline : no_deadline;
  // Wait on every channel that is not closing.
  std::size_t waiting = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (cases[i].core != nullptr && !cases[i].core->closing.load(std::memory_order_relaxed))
      ++waiting;
  if (waiting == 0 && after_index == n) throw channel_closed();
  if (deadline != no_deadline && deadline <= now_ns()) return after_index;
  check_can_block(ts);
  constexpr std::size_t kInline = 8;
  case_wait inline_waits[kInline];
  std::unique_ptr<case_wait[]> heap_waits;
  case_wait* waits = inline_waits;
  if (waiting > kInline) {
    heap_waits = std::make_unique<case_wait[]>(waiting);
    waits = heap_waits.get();
  }
  wait_state ws;
  wait_node** link = &ws.nodes;
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    select_case& c = cases[i];
    if (c.core == nullptr || c.core->closing.load(std::memory_order_relaxed)) continue;
    case_wait& w = waits[k++];
    w.node.direction = direction_of(c);
    w.node.kind = wait_kind::channel;
    w.node.payload = &c.op;
    prepare_node(ts, ws, w.node);
    c.core->waiters.push_back(w.node);
    ++c.core->blockers;
    w.ts = &ts;
    w.core = c.core;
    *link = &w.node;
    link = &w.node.group_next;
  }
  lock.leave();
  const wait_outcome outcome = wait(ts, ws, deadline);
  if (outcome == wait_outcome::timed_out) return after_index;
  for (std::size_t i = 0; i < n; ++i) {  // the case whose node fired
    if (&cases[i].op != ws.fired->payload) continue;
    if (cases[i].kind == select_kind::receive && cases[i].op.exception)
      std::rethrow_exception(cases[i].op.exception);
    return i;
  }
  return n;  // not reached
}

}  // namespace stackless::detail
