// wait — the wait-queue primitive: "block the current tasklet here / wake that one".
//
// Every client that blocks (join, channels, select, timers, later locks) describes the wait in a
// wait_state: zero or more wait_nodes, each linked into some wait_queue, plus an optional
// deadline. A waker completes one node with wake(); the deadline fires through the thread's timer
// heap; a kill or throw cancels the whole wait. Either way every node leaves its queue at once, so
// nobody needs to know who a tasklet is waiting for.
#pragma once

#include <cstddef>
#include <cstdint>

#include <atomic>

#include "threads/spinlock.hpp"
#include "timer/timer_heap.hpp"

namespace stackless::detail {

struct tasklet_impl;
struct wait_queue;
struct wait_state;

// wait_kind: what a tasklet waits for; decides the text of the error its run()-caller or main gets
// when the last other tasklet ends while it waits (reference §1.7).
enum class wait_kind : unsigned char { channel, other };

struct wait_node {
  tasklet_impl* tasklet = nullptr;
  wait_state* state = nullptr;
  wait_queue* queue = nullptr;  // the queue it is linked in; null once unlinked
  wait_queue* home = nullptr;   // the queue it was pushed to (stays set: whose lock guards it)
  wait_node* next = nullptr;    // in the queue
  wait_node* prev = nullptr;
  wait_node* group_next = nullptr;  // the other nodes of the same wait (select)
  int direction = -1;  // -1 waiting to receive (or for an event), +1 waiting to send
  wait_kind kind = wait_kind::other;
  void* payload = nullptr;  // client data (a channel operation, …)
};

// wait_outcome: how a wait ended.
enum class wait_outcome : unsigned char {
  pending,    // still waiting
  completed,  // a partner completed `fired`
  timed_out,  // the deadline passed
  closed,     // the client ended it (a channel closed under an iterating receiver)
  cancelled,  // kill/throw: the exception is delivered separately
};

struct wait_state {
  // claimed: set by whoever ends the wait first — a partner completing a node, the deadline, a
  // kill — so that exactly one of them does (partners in other threads race with the owner).
  std::atomic<bool> claimed{false};
  wait_node* nodes = nullptr;  // chain through group_next; may be empty (a pure sleep)
  timer_entry timer;           // armed when the wait has a deadline
  wait_node* fired = nullptr;  // the node that completed
  wait_outcome outcome = wait_outcome::pending;

  int direction() const noexcept { return nodes != nullptr ? nodes->direction : -1; }
};

// wait_queue: FIFO of wait nodes. `lock` guards it once the process has more than one runtime
// thread (see queue_guard in core/mt.hpp).
struct wait_queue {
  spinlock lock;
  wait_node* head = nullptr;
  wait_node* tail = nullptr;
  std::size_t count = 0;

  bool empty() const noexcept { return head == nullptr; }
  void push_back(wait_node& n) noexcept {
    n.queue = this;
    n.home = this;
    n.next = nullptr;
    n.prev = tail;
    if (tail != nullptr)
      tail->next = &n;
    else
      head = &n;
    tail = &n;
    ++count;
  }
  void push_front(wait_node& n) noexcept {
    n.queue = this;
    n.home = this;
    n.prev = nullptr;
    n.next = head;
    if (head != nullptr)
      head->prev = &n;
    else
      tail = &n;
    head = &n;
    ++count;
  }
  void unlink(wait_node& n) noexcept {
    if (n.prev != nullptr)
      n.prev->next = n.next;
    else
      head = n.next;
    if (n.next != nullptr)
      n.next->prev = n.prev;
    else
      tail = n.prev;
    n.next = n.prev = nullptr;
    n.queue = nullptr;
    --count;
  }
};

}  // namespace stackless::detail
