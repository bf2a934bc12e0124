#include "report.hpp"

#include <unistd.h>

#include <cstring>

#include "control_block.hpp"

namespace gt::detail::report {

void text(const char* text) noexcept {
    for (std::size_t left = std::strlen(text); left > 0;) {
        const ssize_t n = ::write(STDERR_FILENO, text, left);
        if (n <= 0) return;
        text += n;
        left -= static_cast<std::size_t>(n);
    }
}

void number(std::uint64_t n) noexcept {
    char digits[21];  // 2^64 - 1 has 20
    char* p = digits + sizeof digits - 1;
    *p = '\0';
    do {
        *--p = static_cast<char>('0' + n % 10);
        n /= 10;
    } while (n != 0);
    text(p);
}

void thread(const control_block& t) noexcept {
    text("thread ");
    number(t.id);
    text(" \"");
    if (t.name.empty()) {
        text("thread-");
        number(t.id);
    } else {
        text(t.name.c_str());
    }
    text("\"");
}

}  // namespace gt::detail::report
