// gt::channel<T>: every value received exactly once and in order under
// preemption (rendezvous and buffered), a rendezvous send waits for its
// receiver, close wakes everyone and keeps undelivered values with their
// senders, receive drains after close, the timed and try variants, and
// destroying a channel that threads wait on.
#include <gt/channel.hpp>
#include <gt/thread.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "blocked_on.hpp"
#include "preemption_for_test.hpp"

using namespace std::chrono_literals;

class ChannelOfCapacity : public ::testing::TestWithParam<std::size_t> {};

// Why: the channel's promise. 4 senders × 10,000 distinct values, 4
// receivers, a 100 µs slice: each value is received exactly once (none
// lost, none twice), and each receiver sees each sender's values in the
// order they were sent (FIFO through handoffs and the buffer).
TEST_P(ChannelOfCapacity, FourSendersFourReceiversEveryValueReceivedExactlyOnceInOrder) {
    const preemption_for_test preemption(100us);
    constexpr int senders = 4, receivers = 4, per_sender = 10'000;
    gt::channel<int> ch(GetParam());
    std::vector<std::atomic<int>> seen(senders * per_sender);
    std::atomic<long> out_of_order{0}, received{0};
    std::vector<gt::thread> producers, consumers;
    for (int s = 0; s < senders; ++s) {
        producers.emplace_back([&, s] {
            for (int i = 0; i < per_sender; ++i) ch.send(s * per_sender + i);
        });
    }
    for (int r = 0; r < receivers; ++r) {
        consumers.emplace_back([&] {
            std::vector<int> last(senders, -1);
            while (std::optional<int> v = ch.receive()) {
                ++seen[*v];
                ++received;
                const int s = *v / per_sender, i = *v % per_sender;
                if (i <= last[s]) ++out_of_order;
                last[s] = i;
            }
        });
    }
    for (auto& t : producers) t.join();
    ch.close();
    for (auto& t : consumers) t.join();
    EXPECT_EQ(received.load(), senders * per_sender);
    long wrong = 0;
    for (auto& n : seen) wrong += n.load() != 1;
    EXPECT_EQ(wrong, 0) << "values received other than exactly once";
    EXPECT_EQ(out_of_order.load(), 0);
    EXPECT_EQ(ch.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(RendezvousAndBuffered, ChannelOfCapacity, ::testing::Values(0, 1, 16));

// Why: capacity 0 is a rendezvous: send returns only once a receiver has
// taken the value; until then the sender is BLOCKED on the channel.
TEST(Channel, ARendezvousSendWaitsUntilAReceiverTakesTheValue) {
    const preemption_for_test preemption(100us);
    gt::channel<std::string> ch(0);
    std::atomic<bool> sent{false};
    gt::thread sender([&] {
        ch.send(std::string("hello"));
        sent = true;
    });
    ASSERT_TRUE(wait_until_blocked_on("channel", 1));
    EXPECT_FALSE(sent.load());
    EXPECT_EQ(ch.receive(), std::optional<std::string>("hello"));
    sender.join();
    EXPECT_TRUE(sent.load());
    EXPECT_FALSE(ch.try_receive().has_value());
}

// Why: close must wake every waiter: blocked receivers return empty,
// blocked senders throw channel_closed and still have their values (not
// moved from), and the buffered values are still received afterwards.
TEST(Channel, CloseWakesEveryWaiterAndSendersKeepTheirValues) {
    const preemption_for_test preemption(100us);
    gt::channel<int> empty(0);
    gt::channel<std::string> full(1);
    full.send(std::string("buffered"));
    std::atomic<int> receivers_woken{0}, senders_woken{0}, values_kept{0};
    std::vector<gt::thread> threads;
    for (int i = 0; i < 3; ++i) {
        threads.emplace_back([&] {
            if (!empty.receive().has_value()) ++receivers_woken;
        });
        threads.emplace_back([&, i] {
            std::string mine = "value " + std::to_string(i);
            try {
                full.send(std::move(mine));
            } catch (const gt::channel_closed&) {
                ++senders_woken;
                if (mine == "value " + std::to_string(i)) ++values_kept;
            }
        });
    }
    ASSERT_TRUE(wait_until_blocked_on("channel", 6));
    empty.close();
    full.close();
    for (auto& t : threads) t.join();
    EXPECT_EQ(receivers_woken.load(), 3);
    EXPECT_EQ(senders_woken.load(), 3);
    EXPECT_EQ(values_kept.load(), 3);
    EXPECT_EQ(full.receive(), std::optional<std::string>("buffered"));
    EXPECT_FALSE(full.receive().has_value());
}

// Why: after close, receive drains what was sent before it, then says
// "closed" (empty) at once, every time, without blocking.
TEST(Channel, ReceiveAfterCloseDrainsTheBufferThenReturnsEmpty) {
    gt::channel<int> ch(8);
    for (int i = 1; i <= 5; ++i) ch.send(i);
    ch.close();
    EXPECT_TRUE(ch.closed());
    for (int i = 1; i <= 5; ++i) EXPECT_EQ(ch.receive(), std::optional<int>(i));
    EXPECT_FALSE(ch.receive().has_value());
    EXPECT_FALSE(ch.receive_for(1h).has_value());  // closed: at once
}

// Why: a send on a closed channel is a broken protocol, as in Go; it
// throws, and the caller keeps its value.
TEST(Channel, SendAfterCloseThrowsChannelClosedAndLeavesTheValue) {
    gt::channel<std::string> ch(4);
    ch.close();
    std::string v = "kept";
    EXPECT_THROW(ch.send(std::move(v)), gt::channel_closed);
    EXPECT_EQ(v, "kept");
    EXPECT_THROW(ch.try_send(std::move(v)), gt::channel_closed);
    EXPECT_THROW(ch.send_for(std::move(v), 1ms), gt::channel_closed);
    EXPECT_EQ(v, "kept");
    try {
        ch.send(v);
    } catch (const std::logic_error& e) {
        EXPECT_NE(std::string(e.what()).find("closed"), std::string::npos);
    }
}

// Why: the deadline variants give up at their deadline (on the timer list)
// and leave the value with the sender; a partner before the deadline wins;
// the try variants never block.
TEST(Channel, TimedAndTryVariantsGiveUpWithoutLosingAValue) {
    gt::channel<std::string> ch(1);
    std::string v = "one";
    EXPECT_TRUE(ch.try_send(std::move(v)));
    std::string w = "two";
    EXPECT_FALSE(ch.try_send(std::move(w)));
    EXPECT_EQ(w, "two");
    auto start = std::chrono::steady_clock::now();
    EXPECT_FALSE(ch.send_for(std::move(w), 5ms));
    EXPECT_GE(std::chrono::steady_clock::now() - start, 5ms);
    EXPECT_EQ(w, "two");
    EXPECT_EQ(ch.try_receive(), std::optional<std::string>("one"));
    EXPECT_FALSE(ch.try_receive().has_value());
    start = std::chrono::steady_clock::now();
    EXPECT_FALSE(ch.receive_until(std::chrono::steady_clock::now() + 5ms).has_value());
    EXPECT_GE(std::chrono::steady_clock::now() - start, 5ms);
    EXPECT_FALSE(ch.closed());

    gt::thread sender([&] { ch.send(std::string("in time")); });
    EXPECT_EQ(ch.receive_for(60s), std::optional<std::string>("in time"));
    sender.join();
    gt::channel<int> rendezvous(0);
    bool delivered = false;
    gt::thread slow_sender([&] { delivered = rendezvous.send_for(42, 60s); });
    EXPECT_EQ(rendezvous.receive(), std::optional<int>(42));
    slow_sender.join();
    EXPECT_TRUE(delivered);
}

// Why: a receiver that timed out is off the channel: the next value goes
// to a receiver that still waits, not to the one that left. The scene
// needs the quitter to time out while the stayer waits; a loaded machine
// can hold the quitter off past its deadline before it blocks, so a round
// in which the stayer was not yet waiting runs again with a ten times
// longer deadline.
TEST(Channel, AReceiverThatTimedOutIsNotHandedAValue) {
    const preemption_for_test preemption(0us);
    bool checked = false;
    for (std::chrono::milliseconds window = 2ms; window <= 2000ms && !checked; window *= 10) {
        gt::channel<int> ch(0);
        std::optional<int> quitter = 7, stayer;
        bool stayer_waited = false;
        gt::thread a([&] {
            quitter = ch.receive_for(window);
            stayer_waited = blocked_on("channel") == 1;
        });
        gt::thread b([&] { stayer = ch.receive(); });
        a.join();  // timed out (cooperative: b has run, and blocks on the channel)
        ASSERT_EQ(blocked_on("channel"), 1);
        ch.send(5);
        b.join();
        EXPECT_FALSE(quitter.has_value());
        EXPECT_EQ(stayer, std::optional<int>(5));
        checked = stayer_waited;
    }
    EXPECT_TRUE(checked) << "the stayer never waited before a 2 s deadline ended the quitter's wait";
}

namespace {

void destroy_a_channel_with_a_waiter() {
    auto ch = std::make_unique<gt::channel<int>>(0);
    gt::thread receiver([&] { ch->receive(); });
    if (!wait_until_blocked_on("channel", 1)) return;  // no report: the test fails
    ch.reset();
}

}  // namespace

// Why: destroying a channel that a thread waits on would leave it blocked
// on freed memory; the report names the waiting thread.
TEST(ChannelDeathTest, DestroyingAChannelThatThreadsWaitOnReportsThem) {
    EXPECT_DEATH(destroy_a_channel_with_a_waiter(),
                 "gt: gt::channel +\\(0x[0-9a-f]+\\) destroyed while threads wait on it: thread [0-9]+");
}
