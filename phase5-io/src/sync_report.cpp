// The messages of src/sync_report.hpp.
#include "sync_report.hpp"

#include <cstdio>
#include <cstdlib>

#include "scheduler.hpp"
#include "trace.hpp"

namespace gt::detail {

std::string describe(const control_block& t) { return "thread " + std::to_string(t.id) + " \"" + scheduler::name_of(t) + "\""; }

std::string describe(const char* kind, const void* object, const char* name) {
    char address[32];
    std::snprintf(address, sizeof address, "%p", object);
    std::string text = kind;
    if (name != nullptr) text += std::string(" \"") + name + "\"";
    return text + " (" + address + ")";
}

std::string describe_caller() { return describe(*scheduler::current().running()); }

void misuse(const std::string& message) noexcept {
    std::fprintf(stderr, "gt: %s\n", message.c_str());
    trace::flush();
    std::abort();
}

}  // namespace gt::detail
