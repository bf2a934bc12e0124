// An HTTP/1.1 keep-alive server written the simplest way there is, one
// thread per connection, each thread a loop of blocking read and write, and
// it still holds ten thousand connections: each thread is a green thread,
// and gt::io::read parks only that thread until the poller says its socket
// has data. Every answer is the same 13-byte "Hello, world".
//
//   build/examples/http_server                     the tour: the server and 100 clients, one process, checked
//   build/examples/http_server --port 8080         serve 127.0.0.1:8080 until SIGTERM or SIGINT (Ctrl-C)
//   build/examples/http_server --port 0 --seconds 10    any free port, for 10 s
//
// then, for instance: curl -i http://127.0.0.1:8080/ or
// wrk -c1000 -d5s http://127.0.0.1:8080/ (bench/http_bench.cpp measures it
// that way, beside libuv and nginx: make bench-phase5).
//
// The tour starts the server on a green thread and 100 client green
// threads (also gt::io) that each send 10 keep-alive requests on one
// connection, the last with "Connection: close"; it checks every answer and
// that the server closed each connection, prints what it cost, and exits
// with status 0 only if everything was right.
//
// Loopback only: the listener is bound to 127.0.0.1.
#include <gt/io.hpp>
#include <gt/thread.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::string_view hello =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello, world\n";
constexpr std::string_view too_large =
    "HTTP/1.1 431 Request Header Fields Too Large\r\n"
    "Content-Length: 0\r\n"
    "Connection: close\r\n"
    "\r\n";

// What the server did, for the summary (atomic: a tick may switch threads
// in the middle of a plain ++).
std::atomic<long> connections_accepted{0};
std::atomic<long> requests_answered{0};
std::atomic<long> accept_backoffs{0};

// ---- the server ------------------------------------------------------------------

/// Does the header block `head` ask to close the connection ("Connection:
/// close", in any case)? Enough HTTP for keep-alive; a real server also
/// reads HTTP/1.0's default and the Content-Length of a body.
bool asks_to_close(std::string_view head) {
    constexpr std::string_view header = "\r\nconnection: close";
    // Header names are ASCII and case-insensitive (RFC 9110, 5.1).
    auto same = [](char a, char b) { return (a >= 'A' && a <= 'Z' ? a + ('a' - 'A') : a) == b; };
    return std::search(head.begin(), head.end(), header.begin(), header.end(), same) != head.end();
}

/// One connection's thread: read requests, answer each, until the client
/// closes, asks to close, or the connection fails.
void serve(int fd) {
    char buf[2048];
    std::size_t have = 0;  // bytes of buf holding a request not answered yet
    for (bool open = true; open;) {
        const ssize_t n = gt::io::read(fd, buf + have, sizeof buf - have);  // parks this thread only
        if (n <= 0) break;                                                  // 0: the client closed; -1: reset
        have += static_cast<std::size_t>(n);
        // Answer every complete request in the buffer: a request ends at
        // the first empty line (GET has no body).
        std::size_t start = 0;
        for (;;) {
            const std::string_view rest(buf + start, have - start);
            const std::size_t end = rest.find("\r\n\r\n");
            if (end == std::string_view::npos) break;
            open = !asks_to_close(rest.substr(0, end + 2));
            if (gt::io::write(fd, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size())) open = false;
            requests_answered.fetch_add(1, std::memory_order_relaxed);
            start += end + 4;
            if (!open) break;
        }
        if (start == 0 && have == sizeof buf) {  // no end in sight: refuse it
            gt::io::write(fd, too_large.data(), too_large.size());
            break;
        }
        std::memmove(buf, buf + start, have - start);
        have -= start;
    }
    gt::io::close(fd);
}

/// Accepts connections until the listener is closed, one thread each. At
/// the descriptor limit (EMFILE, ENFILE) accept fails while the connection
/// waits in the backlog: wait 5 ms, doubling up to 1 s, and try again, as
/// Go's net/http does (Server.Serve), instead of retrying at once forever.
void accept_loop(int listener) {
    std::chrono::milliseconds backoff{0};
    for (;;) {
        const int fd = gt::io::accept(listener, nullptr, nullptr);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                backoff = std::clamp(backoff * 2, std::chrono::milliseconds{5}, std::chrono::milliseconds{1s});
                accept_backoffs.fetch_add(1, std::memory_order_relaxed);
                gt::this_thread::sleep_for(backoff);
                continue;
            }
            if (errno == ECONNABORTED || errno == EINTR) continue;
            return;  // EBADF: the listener was closed, we are done
        }
        backoff = 0ms;
        connections_accepted.fetch_add(1, std::memory_order_relaxed);
        gt::thread(serve, fd).detach();
    }
}

/// A TCP listener on 127.0.0.1:port (0: any free port), with room for 4,096
/// connections waiting to be accepted (wrk opens thousands at once); -1 on
/// failure, with a message.
int listen_on(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 4096) != 0) {
        std::fprintf(stderr, "http_server: 127.0.0.1:%d: %s\n", port, std::strerror(errno));
        if (fd >= 0) ::close(fd);
        return -1;
    }
    return fd;
}

int bound_port(int fd) {
    sockaddr_in addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    return ntohs(addr.sin_port);
}

/// Serves until SIGTERM or SIGINT, or until `seconds` have passed (if
/// given). The signals arrive through a signalfd, a descriptor like any
/// other: a green thread waits on it with gt::io::read (and a deadline),
/// then closes the listener, which ends the accept loop.
int serve_until_stopped(int port, std::optional<int> seconds) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    ::pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);  // delivered to the signalfd instead
    const int signals = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
    const int listener = listen_on(port);
    if (listener < 0 || signals < 0) return 1;
    std::printf("http_server: listening on 127.0.0.1:%d\n", bound_port(listener));
    std::fflush(stdout);

    gt::thread stopper([&] {
        signalfd_siginfo info{};
        const auto deadline = seconds ? std::chrono::steady_clock::now() + std::chrono::seconds(*seconds)
                                      : std::chrono::steady_clock::time_point::max();
        gt::io::read(signals, &info, sizeof info, deadline);  // a signal, or -1/ETIMEDOUT
        gt::io::close(listener);                              // wakes accept with EBADF
    });
    accept_loop(listener);
    stopper.join();
    std::printf("http_server: %ld connections, %ld requests\n", connections_accepted.load(),
                requests_answered.load());
    return 0;  // connection threads still open end with the process
}

// ---- the tour ----------------------------------------------------------------------

constexpr int clients = 100;
constexpr int requests_each = 10;

/// One client thread: connect, send requests_each requests one at a time
/// on the one connection (the last says "Connection: close"), check each
/// answer, check that the server then closes. Returns the answers that were right.
int client(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (gt::io::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        std::fprintf(stderr, "client: connect: %s\n", std::strerror(errno));
        gt::io::close(fd);
        return 0;
    }
    int right = 0;
    for (int i = 0; i < requests_each; ++i) {
        const std::string_view request = i + 1 < requests_each
                                             ? "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                                             : "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        if (gt::io::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) break;
        char answer[hello.size()];
        std::size_t got = 0;
        while (got < sizeof answer) {  // TCP may deliver the answer in pieces
            const ssize_t n = gt::io::read(fd, answer + got, sizeof answer - got);
            if (n <= 0) break;
            got += static_cast<std::size_t>(n);
        }
        if (std::string_view(answer, got) != hello) break;
        ++right;
    }
    char extra;
    const bool closed = gt::io::read(fd, &extra, 1) == 0;  // end of stream: the server honoured "close"
    gt::io::close(fd);
    return closed ? right : 0;
}

double seconds_of(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

int tour() {
    const int listener = listen_on(0);
    if (listener < 0) return 1;
    const int port = bound_port(listener);
    std::printf("A server on 127.0.0.1:%d, one green thread per connection, and %d client threads,\n"
                "each sending %d keep-alive requests on one connection, all on one OS thread.\n",
                port, clients, requests_each);
    rusage before{};
    ::getrusage(RUSAGE_SELF, &before);
    const gt::io::poller_counters polled_before = gt::io::poller_stats();
    const auto start = std::chrono::steady_clock::now();

    gt::thread server(accept_loop, listener);
    std::vector<int> right(clients);
    std::vector<gt::thread> threads;
    for (int i = 0; i < clients; ++i) threads.emplace_back([&right, i, port] { right[i] = client(port); });
    for (gt::thread& t : threads) t.join();
    gt::io::close(listener);  // the accept loop ends
    server.join();

    const auto elapsed = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    rusage after{};
    ::getrusage(RUSAGE_SELF, &after);
    const gt::io::poller_counters polled = gt::io::poller_stats();
    long all_right = 0;
    for (int r : right) all_right += r;
    const long expected = long{clients} * requests_each;
    const double cpu_us = (seconds_of(after.ru_utime) - seconds_of(before.ru_utime) + seconds_of(after.ru_stime) -
                           seconds_of(before.ru_stime)) *
                          1e6;
    std::printf("The server accepted %ld connections and answered %ld requests; the clients got %ld of %ld\n"
                "answers right and saw every connection closed after \"Connection: close\".\n",
                connections_accepted.load(), requests_answered.load(), all_right, expected);
    std::printf("It took %.1f ms and %.0f us of CPU (user + system, both sides of every request:\n"
                "%.1f us per request), %ld voluntary context switches of the OS thread.\n",
                elapsed.count(), cpu_us, cpu_us / static_cast<double>(expected),
                after.ru_nvcsw - before.ru_nvcsw);
    std::printf("The poller asked epoll %llu times (%llu of them with nothing else to run); it reported\n"
                "%llu readiness events, which woke %llu waiting green threads.\n",
                static_cast<unsigned long long>(polled.polls - polled_before.polls),
                static_cast<unsigned long long>(polled.idle_waits - polled_before.idle_waits),
                static_cast<unsigned long long>(polled.events - polled_before.events),
                static_cast<unsigned long long>(polled.wakeups - polled_before.wakeups));
    const bool ok = connections_accepted == clients && requests_answered == expected && all_right == expected;
    std::printf("%s\n", ok ? "All right." : "WRONG: see the counts above.");
    return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    std::optional<int> port, seconds;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--port") == 0) {
            port = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--seconds") == 0) {
            seconds = std::atoi(argv[i + 1]);
        } else {
            port = -1;
        }
    }
    if (argc == 1) return tour();
    if (!port || *port < 0 || *port > 65535 || argc % 2 == 0) {
        std::fprintf(stderr, "usage: %s                    (the tour)\n       %s --port N [--seconds S]\n", argv[0],
                     argv[0]);
        return 2;
    }
    return serve_until_stopped(*port, seconds);
}
