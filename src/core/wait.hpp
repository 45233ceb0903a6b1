// wait — the wait-queue primitive: "block the current tasklet here / wake that one".
//
// Every client that blocks (join, channels, locks, timers) links a wait_node into a wait_queue and
// calls block(); a waker unlinks the node and makes the tasklet runnable with wake(). Killing or
// throwing into a blocked tasklet cancels its wait through the same node, so nobody needs to know
// who a tasklet is waiting for.
#pragma once

#include <cstddef>

namespace stackless::detail {

struct tasklet_impl;
struct wait_queue;

// wait_kind: what a tasklet waits for; decides the text of the error its run()-caller or main gets
// when the last other tasklet ends while it waits (reference §1.7).
enum class wait_kind : unsigned char { channel, other };

struct wait_node {
  tasklet_impl* tasklet = nullptr;
  wait_queue* queue = nullptr;
  wait_node* next = nullptr;
  wait_node* prev = nullptr;
  int direction = -1;  // -1 waiting to receive (or for an event), +1 waiting to send
  wait_kind kind = wait_kind::other;
  void* payload = nullptr;  // client data (a channel's value slot, …)
};

// wait_queue: FIFO of wait nodes.
struct wait_queue {
  wait_node* head = nullptr;
  wait_node* tail = nullptr;
  std::size_t count = 0;

  bool empty() const noexcept { return head == nullptr; }
  void push_back(wait_node& n) noexcept {
    n.queue = this;
    n.next = nullptr;
    n.prev = tail;
    if (tail != nullptr)
      tail->next = &n;
    else
      head = &n;
    tail = &n;
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
