// Descriptors for the gt::io tests: pipes, loopback TCP and Unix socket
// pairs made in one green thread, and CPU time from getrusage.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>

#include "gt/io.hpp"

namespace io_test {

/// A pipe whose ends are closed through gt::io::close (-1: not made).
struct pipe_pair {
    int r = -1, w = -1;
    pipe_pair() {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) == 0) r = fds[0], w = fds[1];
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() {
        if (r >= 0) gt::io::close(r);
        if (w >= 0) gt::io::close(w);
    }
};

/// A listening TCP socket on 127.0.0.1 and an ephemeral port (written to
/// `address`), or -1.
inline int listen_loopback(sockaddr_in& address, int backlog = 128) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    address = {};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd, backlog) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// A new socket connected to `address` through gt::io::connect, or -1.
inline int connect_loopback(const sockaddr_in& address) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (gt::io::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        gt::io::close(fd);
        return -1;
    }
    return fd;
}

/// Both ends of one loopback TCP connection, made by the calling green
/// thread alone (the kernel completes the handshake before accept).
struct tcp_pair {
    int client = -1, server = -1;
    tcp_pair() {
        sockaddr_in address;
        const int listener = listen_loopback(address);
        if (listener < 0) return;
        client = connect_loopback(address);
        if (client >= 0) server = gt::io::accept(listener, nullptr, nullptr);
        gt::io::close(listener);
    }
    tcp_pair(const tcp_pair&) = delete;
    tcp_pair& operator=(const tcp_pair&) = delete;
    ~tcp_pair() {
        if (client >= 0) gt::io::close(client);
        if (server >= 0) gt::io::close(server);
    }
};

/// socketpair(AF_UNIX, `type`): both ends, closed through gt::io::close.
struct unix_pair {
    int a = -1, b = -1;
    explicit unix_pair(int type = SOCK_STREAM) {
        int fds[2];
        if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) == 0) a = fds[0], b = fds[1];
    }
    unix_pair(const unix_pair&) = delete;
    unix_pair& operator=(const unix_pair&) = delete;
    ~unix_pair() {
        if (a >= 0) gt::io::close(a);
        if (b >= 0) gt::io::close(b);
    }
};

/// CPU time (user + system) in µs of `who` (RUSAGE_SELF, RUSAGE_THREAD).
inline std::int64_t cpu_us(int who = RUSAGE_SELF) {
    rusage r{};
    ::getrusage(who, &r);
    return (std::int64_t{r.ru_utime.tv_sec} + r.ru_stime.tv_sec) * 1'000'000 + r.ru_utime.tv_usec +
           r.ru_stime.tv_usec;
}

/// A deadline that has passed: a call with it returns at once if it can
/// make progress without waiting, and fails with ETIMEDOUT otherwise.
inline gt::io::deadline already_passed() {
    return std::chrono::steady_clock::now() - std::chrono::seconds(1);
}

/// Fills `fd` (a pipe's write end or a socket) until the kernel takes no
/// more: afterwards its write token is clear and a write would wait.
/// Returns the bytes written.
inline std::size_t fill(int fd) {
    static const char chunk[4096] = {};
    std::size_t total = 0;
    for (;;) {
        const ssize_t n = gt::io::write(fd, chunk, sizeof chunk, already_passed());
        if (n <= 0) return total;
        total += static_cast<std::size_t>(n);
        if (static_cast<std::size_t>(n) < sizeof chunk) return total;
    }
}

}  // namespace io_test
