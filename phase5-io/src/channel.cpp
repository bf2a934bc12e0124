// gt::channel's synchronisation (include/gt/channel.hpp), without the type
// of its values: Go's chan.go in the shape of this runtime. Every
// operation runs inside the scheduler's critical section. The order of
// choices is Go's chansend/chanrecv:
//
//   send:    closed -> channel_closed; a receiver waits -> hand the value
//            to it; room in the buffer -> put it there; else block.
//   receive: a value buffered -> take the oldest, and refill its place
//            from the first blocked sender; no buffer but a sender waits
//            -> take its value; closed -> empty; else block.
//
// A waiter blocks on the channel's wait queue (ordered by priority, FIFO
// within a level: what the dump and the deadlock report see) and leaves a
// channel_waiter record on its stack saying where its value is. The thread
// that serves it moves the value and wakes it with wake_reason::handoff:
// done. close() wakes the rest with wake_reason::notified: closed. A
// timeout removes the waiter's record itself.
#include "gt/channel.hpp"

#include "gt/detail/sync_point.hpp"
#include "invariant.hpp"
#include "scheduler.hpp"
#include "sync_report.hpp"
#include "wait_queue.hpp"

namespace gt::detail {
namespace {

void append(channel_waiter_list& list, channel_waiter& w) noexcept {
    w.prev = list.tail;
    w.next = nullptr;
    (list.tail != nullptr ? list.tail->next : list.head) = &w;
    list.tail = &w;
    w.linked = true;
}

void remove(channel_waiter_list& list, channel_waiter& w) noexcept {
    (w.prev != nullptr ? w.prev->next : list.head) = w.next;
    (w.next != nullptr ? w.next->prev : list.tail) = w.prev;
    w.prev = w.next = nullptr;
    w.linked = false;
}

// The next waiter to serve: the wait queue's first thread (highest
// priority, then longest waiting), found in the records, and unlinked
// from them. Among threads of one priority that is the first record, so
// the search is one step unless priorities differ.
channel_waiter* pop_first(wait_queue& q, channel_waiter_list& list) noexcept {
    control_block* t = front(q);
    if (t == nullptr) return nullptr;
    channel_waiter* w = list.head;
    while (w != nullptr && w->thread != t) w = w->next;
    GT_INVARIANT_ON(w != nullptr, *t, "every thread on a channel's wait queue has a record");
    remove(list, *w);
    return w;
}

// Blocks the running thread on `q` with record `me` until served, closed or
// the deadline; returns which.
channel_result wait_for_partner(scheduler& s, wait_queue& q, channel_waiter_list& list, channel_waiter& me,
                                std::int64_t deadline_ns) noexcept {
    append(list, me);
    const wake_reason why = s.block(q, deadline_ns);
    if (me.linked) remove(list, me);  // timed out (or the deadline had passed): nobody served it
    switch (why) {
        case wake_reason::handoff: return channel_result::done;
        case wake_reason::timeout: return channel_result::timeout;
        default: return channel_result::closed;
    }
}

}  // namespace

channel_core::~channel_core() {
    if (senders_.head != nullptr) destroyed_while_waited(this, "gt::channel", senders_);
    if (receivers_.head != nullptr) destroyed_while_waited(this, "gt::channel", receivers_);
}

void channel_core::destroy_buffered() noexcept {
    if (senders_.head != nullptr) destroyed_while_waited(this, "gt::channel", senders_);
    if (receivers_.head != nullptr) destroyed_while_waited(this, "gt::channel", receivers_);
    for (; count_ > 0; --count_, head_ = (head_ + 1) % capacity_) destroy(head_);
}

channel_result channel_core::send(void* value, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::send);
    const scheduler::critical_section cs(s);
    if (closed_) return channel_result::closed;
    if (channel_waiter* r = pop_first(receivers_, receiver_records_)) {
        // A receiver waits only while the buffer is empty: straight to it.
        hand_over(value, r->value);
        s.wake(r->thread, wake_reason::handoff);
        return channel_result::done;
    }
    if (count_ < capacity_) {
        put((head_ + count_) % capacity_, value);
        ++count_;
        return channel_result::done;
    }
    if (deadline_ns == 0) return channel_result::timeout;
    channel_waiter me{s.running(), value};
    return wait_for_partner(s, senders_, sender_records_, me, deadline_ns);
}

channel_result channel_core::receive(void* slot, std::int64_t deadline_ns) {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::receive);
    const scheduler::critical_section cs(s);
    if (count_ > 0) {
        take(head_, slot);
        head_ = (head_ + 1) % capacity_;
        --count_;
        // A sender waits only while the buffer is full: its value takes
        // the place just freed, behind every value buffered before it.
        if (channel_waiter* w = pop_first(senders_, sender_records_)) {
            put((head_ + count_) % capacity_, w->value);
            ++count_;
            s.wake(w->thread, wake_reason::handoff);
        }
        return channel_result::done;
    }
    if (channel_waiter* w = pop_first(senders_, sender_records_)) {  // a rendezvous
        hand_over(w->value, slot);
        s.wake(w->thread, wake_reason::handoff);
        return channel_result::done;
    }
    if (closed_) return channel_result::closed;
    if (deadline_ns == 0) return channel_result::timeout;
    channel_waiter me{s.running(), slot};
    return wait_for_partner(s, receivers_, receiver_records_, me, deadline_ns);
}

void channel_core::close() noexcept {
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    sync_point(debug::schedule_event::close);
    const scheduler::critical_section cs(s);
    closed_ = true;
    while (channel_waiter* w = pop_first(receivers_, receiver_records_)) s.wake(w->thread, wake_reason::notified);
    while (channel_waiter* w = pop_first(senders_, sender_records_)) s.wake(w->thread, wake_reason::notified);
}

bool channel_core::closed() const noexcept {
    scheduler& s = scheduler::current();
    const scheduler::critical_section cs(s);
    return closed_;
}

std::size_t channel_core::size() const noexcept {
    scheduler& s = scheduler::current();
    const scheduler::critical_section cs(s);
    return count_;
}

}  // namespace gt::detail
