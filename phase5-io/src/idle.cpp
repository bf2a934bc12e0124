// gt::on_idle and gt::idle_handle (gt/timer.hpp): registering and
// unregistering an idle callback. The registration (idle_entry) and the
// rounds that call the callbacks are in callback_thread.hpp/.cpp.
#include "gt/timer.hpp"

#include <memory>
#include <stdexcept>
#include <utility>

#include "callback_thread.hpp"

namespace gt {

idle_handle on_idle(std::function<bool()> callback) {
    using namespace detail;
    if (!callback) throw std::invalid_argument("gt::on_idle: the callback is empty");
    scheduler& s = scheduler::current();
    s.check_not_reentered();
    callback_thread& ct = callbacks_of(s);
    auto e = std::make_unique<idle_entry>();
    e->fn = std::move(callback);
    e->sched = &s;
    e->ct = &ct;
    const pin held(ct);
    ensure_callback_thread(ct);
    scheduler::critical_section cs(s);
    e->prev = ct.idle_tail;
    (ct.idle_tail != nullptr ? ct.idle_tail->next : ct.idle_head) = e.get();
    ct.idle_tail = e.get();
    ++ct.idle_count;
    s.set_idle_hook(&run_idle_callbacks);
    return idle_handle(e.release());
}

idle_handle& idle_handle::operator=(idle_handle&& other) noexcept {
    if (this != &other) {
        reset();
        entry_ = std::exchange(other.entry_, nullptr);
    }
    return *this;
}

void idle_handle::reset() noexcept {
    using namespace detail;
    idle_entry* e = std::exchange(entry_, nullptr);
    if (e == nullptr) return;
    scheduler* s = scheduler::current_if_any();
    if (s != e->sched) foreign_destruction("a gt::idle_handle");
    s->check_not_reentered();
    callback_thread& ct = *e->ct;
    bool free_now = true;
    {
        scheduler::critical_section cs(*s);
        if (ct.idle_cursor == e) ct.idle_cursor = e->next;  // a round that runs skips it
        (e->prev != nullptr ? e->prev->next : ct.idle_head) = e->next;
        (e->next != nullptr ? e->next->prev : ct.idle_tail) = e->prev;
        --ct.idle_count;
        if (e->running) {
            if (s->running() == ct.thread) {
                e->orphaned = true;  // by its own call: run_idle_round frees it when the call returns
                free_now = false;
            } else {
                while (e->running) s->block(ct.returned);
            }
        }
        let_go_if_unneeded(ct);
    }
    if (free_now) delete e;
}

std::uint64_t idle_handle::calls() const noexcept {
    if (entry_ == nullptr) return 0;
    detail::scheduler* s = entry_->sched;
    if (s != detail::scheduler::current_if_any()) return entry_->calls;
    detail::scheduler::critical_section cs(*s);
    return entry_->calls;
}

}  // namespace gt
