// channel.cpp — Stackless channels on the core's wait-queue primitive (reference §3).
#include <stackless/channel.hpp>
#include <stackless/select.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>

#include "core/switch.hpp"
#include "core/watchdog.hpp"

namespace stackless::detail {

struct channel_core {
  std::atomic<int> refs{1};  // handles
  bool orphaned = false;     // no handle left, but tasklets still wait on it: they keep it
  wait_queue waiters;  // all waiting in the same direction
  int preference = -1;
  bool schedule_all = false;
  bool closing = false;

  int balance() const noexcept {
    return waiters.head == nullptr ? 0 : static_cast<int>(waiters.count) * waiters.head->direction;
  }
  // partner: the first waiter an operation in `direction` can complete, or null.
  wait_node* partner(int direction) const noexcept {
    wait_node* h = waiters.head;
    return h != nullptr && h->direction == -direction ? h : nullptr;
  }
};

namespace {

// left_channel: a waiter has left c. The last waiter of a channel without handles frees it
// (waiters keep their channel alive without counting references on every wait).
void left_channel(channel_core* c) noexcept {
  if (c->orphaned && c->waiters.empty()) delete c;
}

// channel_stay keeps a channel alive while a tasklet waits on it.
struct channel_stay {
  channel_core* c;
  ~channel_stay() { left_channel(c); }
};

// switches_on_hand_off: whether completing a partner makes the acting tasklet switch (§3.2).
bool switches_on_hand_off(const channel_core& c, int direction) noexcept {
  return c.schedule_all || c.preference == -direction;
}

// hand_off completes the waiting partner b of the acting tasklet's operation `op` in `direction`
// and places b in the run queue as §3.2 says (switching if the channel prefers it). The value
// moves straight from the sender's object into the receiver's slot before any switch, so nothing
// can run between the transfer and the receiver's claim. Returns the exception the acting
// receiver must throw (sent with send_exception), if any.
__attribute__((always_inline)) inline std::exception_ptr hand_off(thread_state& ts,
                                                                 channel_core& c, wait_node& b,
                                                                 channel_op& op, int direction) {
  if (switches_on_hand_off(c, direction)) check_trap(ts);
  auto* theirs = static_cast<channel_op*>(b.payload);
  std::exception_ptr to_throw;
  tasklet_impl* partner = b.tasklet;
  if (direction > 0) {  // we send to a waiting receiver
    if (op.exception)
      partner->bomb = op.exception;
    else
      op.transfer(theirs->value, op.value);
  } else {  // we receive from a waiting sender
    if (theirs->exception)
      to_throw = theirs->exception;
    else
      theirs->transfer(op.value, theirs->value);
  }
  tasklet_impl* a = ts.current;
  b.state->fired = &b;
  b.state->outcome = wait_outcome::completed;
  unblock(partner);
  if (c.schedule_all) {
    ts.append(partner);
    // Not a preferred hand-off: a pending soft interrupt goes to the watchdog here.
    detail::switch_to(ts, ts.irq.soft_pending ? take_soft_interrupt(ts) : a->next);
    claim(a);
  } else if (c.preference == -direction) {
    ts.insert_after(a, partner);
    detail::switch_to(ts, partner);
    claim(a);
  } else {
    ts.append(partner);
  }
  return to_throw;
}

// enter starts every channel operation: a tick point (a tasklet that loops on operations that
// never block can still be pre-empted), and the recursion check.
void enter(thread_state& ts) {
  if (ts.in_channel_callback) throw runtime_error("Recursive channel call due to callbacks!");
  tick();
}

// block_on waits in c's queue; returns the outcome.
__attribute__((always_inline)) inline wait_outcome block_on(thread_state& ts, channel_core* c,
                                                           channel_op& op, int direction,
                                                           std::int64_t deadline) {
  check_can_block(ts);
  channel_stay keep{c};
  wait_node n;
  n.direction = direction;
  n.kind = wait_kind::channel;
  n.payload = &op;
  wait_state ws;
  ws.nodes = &n;
  c->waiters.push_back(n);
  return wait(ts, ws, deadline);
}

}  // namespace

channel_core* channel_create() { return new channel_core(); }
void channel_add_ref(channel_core* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }
void channel_release(channel_core* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (c->waiters.empty())
    delete c;
  else
    c->orphaned = true;  // the last waiter to leave frees it
}

bool channel_send(channel_core* c, channel_op& op, std::int64_t deadline) {
  thread_state& ts = state();
  enter(ts);
  wait_node* b = c->partner(+1);
  if (g_has_channel_callback.load(std::memory_order_relaxed)) [[unlikely]]
    call_channel_callback(ts, ts.current, true, b == nullptr);
  if (b != nullptr) {
    hand_off(ts, *c, *b, op, +1);
    return true;
  }
  if (ts.current->block_trap) throw runtime_error("this tasklet does not like to be blocked.");
  if (c->closing) throw channel_closed();
  if (deadline != no_deadline && deadline <= now_ns()) return false;
  return block_on(ts, c, op, +1, deadline) == wait_outcome::completed;
}

bool channel_receive(channel_core* c, channel_op& op, std::int64_t deadline) {
  thread_state& ts = state();
  enter(ts);
  wait_node* b = c->partner(-1);
  if (op.iterating && c->closing && b == nullptr) return false;  // end of iteration
  if (g_has_channel_callback.load(std::memory_order_relaxed)) [[unlikely]]
    call_channel_callback(ts, ts.current, false, b == nullptr);
  if (b != nullptr) {
    if (std::exception_ptr e = hand_off(ts, *c, *b, op, -1)) std::rethrow_exception(e);
    return true;
  }
  if (ts.current->block_trap) throw runtime_error("this tasklet does not like to be blocked.");
  if (c->closing) throw channel_closed();
  if (deadline != no_deadline && deadline <= now_ns()) return false;
  return block_on(ts, c, op, -1, deadline) == wait_outcome::completed;
}

int channel_balance(const channel_core* c) noexcept { return c->balance(); }
int channel_preference(const channel_core* c) noexcept { return c->preference; }
void channel_set_preference(channel_core* c, int p) noexcept {
  c->preference = p < -1 ? -1 : (p > 1 ? 1 : p);
}
bool channel_schedule_all(const channel_core* c) noexcept { return c->schedule_all; }
void channel_set_schedule_all(channel_core* c, bool v) noexcept { c->schedule_all = v; }

tasklet channel_queue(const channel_core* c) {
  if (c->waiters.head == nullptr) return {};
  tasklet_impl* t = c->waiters.head->tasklet;
  add_ref(t);
  return tasklet::adopt(t);
}

void channel_close(channel_core* c) noexcept {
  c->closing = true;
  // Receivers blocked in range-for iteration end their loop (Stackless leaves them blocked).
  thread_state* ts = state_if_any();
  if (ts == nullptr) return;
  for (wait_node* n = c->waiters.head; n != nullptr;) {
    wait_node* next = n->next;
    if (n->direction < 0 && static_cast<channel_op*>(n->payload)->iterating)
      end_wait(*ts, n->tasklet, wait_outcome::closed);
    n = next;
  }
}

void channel_open(channel_core* c) noexcept { c->closing = false; }
bool channel_closing(const channel_core* c) noexcept { return c->closing; }

// --- select ---

std::size_t select_impl(select_case* cases, std::size_t n) {
  thread_state& ts = state();
  enter(ts);
  std::size_t after_index = n, else_index = n;
  std::size_t ready = 0;
  for (std::size_t i = 0; i < n; ++i) {
    select_case& c = cases[i];
    switch (c.kind) {
      case select_kind::after:
        if (after_index != n) throw std::invalid_argument("select: more than one after() case");
        after_index = i;
        break;
      case select_kind::or_else:
        if (else_index != n) throw std::invalid_argument("select: more than one or_else() case");
        else_index = i;
        break;
      default:
        for (std::size_t j = 0; j < i; ++j)
          if (cases[j].core == c.core)
            throw std::invalid_argument("select: a channel appears in more than one case");
        if (c.core->partner(c.kind == select_kind::send ? +1 : -1) != nullptr) ++ready;
    }
  }
  auto direction = [](const select_case& c) { return c.kind == select_kind::send ? +1 : -1; };
  if (ready > 0) {
    // Several cases ready at once: pick one uniformly at random (Go's rule).
    std::size_t pick = ready == 1 ? 0 : static_cast<std::size_t>(ts.random() % ready);
    for (std::size_t i = 0; i < n; ++i) {
      select_case& c = cases[i];
      if (c.core == nullptr) continue;
      wait_node* b = c.core->partner(direction(c));
      if (b == nullptr || pick-- != 0) continue;
      if (std::exception_ptr e = hand_off(ts, *c.core, *b, c.op, direction(c)))
        std::rethrow_exception(e);
      return i;
    }
  }
  if (else_index != n) return else_index;
  const std::int64_t deadline = after_index != n ? cases[after_index].deadline : no_deadline;
  // Wait on every channel that is not closing.
  std::size_t waiting = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (cases[i].core != nullptr && !cases[i].core->closing) ++waiting;
  if (waiting == 0 && after_index == n) throw channel_closed();
  if (deadline != no_deadline && deadline <= now_ns()) return after_index;
  check_can_block(ts);
  // One node per waiting case; each keeps its channel alive while we wait on it.
  struct case_wait {
    wait_node node;
    channel_core* core = nullptr;
    ~case_wait() {
      if (core != nullptr) left_channel(core);
    }
  };
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
    if (c.core == nullptr || c.core->closing) continue;
    case_wait& w = waits[k++];
    w.node.direction = direction(c);
    w.node.kind = wait_kind::channel;
    w.node.payload = &c.op;
    c.core->waiters.push_back(w.node);
    w.core = c.core;
    *link = &w.node;
    link = &w.node.group_next;
  }
  const wait_outcome outcome = wait(ts, ws, deadline);
  if (outcome == wait_outcome::timed_out) return after_index;
  // completed: find the case whose node fired
  const auto* fired_op = static_cast<const channel_op*>(ws.fired->payload);
  for (std::size_t i = 0; i < n; ++i)
    if (&cases[i].op == fired_op) return i;
  return n;  // not reached
}

}  // namespace stackless::detail
