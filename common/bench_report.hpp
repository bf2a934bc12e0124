// Shared by every phase's benchmark programs: a per-operation counter, and a
// main() that runs the benchmarks and then prints how each of our figures
// compares with its peer, next to the target the project set for it.
//
// Why a custom main: Google Benchmark reports each benchmark on its own line;
// the question a reader asks ("is our yield really 2x faster than
// Boost.Fiber's?") needs two of those lines divided by each other. The
// reporter below passes every result through to the usual display, keeps a
// copy, and prints the ratios once all benchmarks have run. --benchmark_out,
// --benchmark_filter, --benchmark_repetitions and the other flags keep
// working; with repetitions, the ratios use the median.
//
// Figures are read from a benchmark's counter named "ns_per_<op>" (time per
// operation) or, if it has none, "kib_per_<thing>" (memory, e.g. resident
// KiB per thread: a plain counter, set to the measured value). A line of the
// table may also have an absolute target (goal::at_most, "<= 8 KiB") and no
// peer at all.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

/// A counter that reads "nanoseconds per operation", for a benchmark whose
/// every iteration performs `ops_per_iteration` operations (a ping-pong
/// round trip is two switches). Counter flags turn the value v into
/// 1 / (v * iterations / elapsed seconds); with v = ops * 1e-9 that is
/// elapsed nanoseconds / (iterations * ops). Elapsed is wall-clock time when
/// the benchmark is registered with UseRealTime(), CPU time otherwise. Name
/// the counter "ns_per_<op>": the ratio table looks for that prefix.
inline benchmark::Counter ns_per_op(double ops_per_iteration) {
    return benchmark::Counter(ops_per_iteration * 1e-9,
                              benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

/// One line of the ratio table: our benchmark against a peer's.
struct comparison {
    /// How the target reads: none, "at least N x faster than the peer",
    /// "at most N x the peer's time" (close enough to a peer we cannot beat),
    /// or "our figure at most N" in its own unit (ns or KiB), whatever the peer.
    enum class goal { none, faster_by, within, at_most };

    const char* label;     ///< e.g. "yield vs Boost.Fiber yield"
    const char* ours;      ///< benchmark function name, e.g. "BM_gt_yield_pingpong"
    const char* peer;      ///< the peer's benchmark function name; nullptr: none (only with goal::at_most)
    goal kind = goal::none;
    double factor = 0;     ///< N in the goal
    /// Non-null when the peer was not compiled in: why, and what to install.
    const char* unavailable = nullptr;
};

namespace detail {

/// The value of --name=value in argv, or "" when absent. Read before
/// benchmark::Initialize, which removes the flags it knows.
inline std::string flag_value(int argc, char** argv, std::string_view name) {
    std::string result;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg.size() > name.size() + 3 && arg.substr(0, 2) == "--" && arg.substr(2, name.size()) == name &&
            arg[2 + name.size()] == '=') {
            result = std::string(arg.substr(3 + name.size()));  // the last one wins, as in Google Benchmark
        }
    }
    return result;
}

inline bool is_false(const std::string& v) { return v == "false" || v == "no" || v == "0" || v == "never"; }

/// The display reporter Google Benchmark would have chosen from the flags;
/// a custom display reporter replaces its choice, so we make it ourselves.
inline std::unique_ptr<benchmark::BenchmarkReporter> make_display(const std::string& format, int argc,
                                                                  char** argv) {
    if (format == "json") return std::make_unique<benchmark::JSONReporter>();
    if (format == "csv") {
        // Deprecated upstream, but still a documented --benchmark_format.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
        return std::make_unique<benchmark::CSVReporter>();
#pragma GCC diagnostic pop
    }
    const std::string color = flag_value(argc, argv, "benchmark_color");
    const std::string tabular = flag_value(argc, argv, "benchmark_counters_tabular");
    int options = benchmark::ConsoleReporter::OO_None;
    // "auto" (the default) means: colour only on a terminal, so logs stay clean.
    if (!is_false(color) && (color.empty() || color == "auto" ? ::isatty(STDOUT_FILENO) != 0 : true)) {
        options |= benchmark::ConsoleReporter::OO_Color;
    }
    if (!tabular.empty() && !is_false(tabular)) options |= benchmark::ConsoleReporter::OO_Tabular;
    return std::make_unique<benchmark::ConsoleReporter>(
        static_cast<benchmark::ConsoleReporter::OutputOptions>(options));
}

/// The unit of a benchmark's figure: its counter's name prefix.
enum class unit { ns, kib };

/// Forwards every report to the display reporter and keeps, per benchmark
/// function, its "ns_per_*" (or else "kib_per_*") figure of each run.
class collecting_reporter final : public benchmark::BenchmarkReporter {
public:
    explicit collecting_reporter(std::unique_ptr<benchmark::BenchmarkReporter> display)
        : display_(std::move(display)) {}

    bool ReportContext(const Context& context) override { return display_->ReportContext(context); }

    void ReportRuns(const std::vector<Run>& runs) override {
        // The console marks an inverted rate counter with a unit of "s";
        // ours are already nanoseconds, so show them as plain numbers. The
        // values themselves (and the --benchmark_out file) are unchanged.
        std::vector<Run> shown = runs;
        for (Run& run : shown) {
            for (auto& [key, counter] : run.counters) {
                if (key.rfind("ns_per_", 0) == 0) counter.flags = benchmark::Counter::kDefaults;
            }
        }
        display_->ReportRuns(shown);
        for (const Run& run : runs) {
            if (run.error_occurred) continue;
            unit u = unit::ns;
            const double* value = per_op_value(run, u);
            if (value == nullptr) continue;
            const std::string& name = run.run_name.function_name;
            units_[name] = u;
            if (run.run_type == Run::RT_Iteration) {
                samples_[name].push_back(*value);
            } else if (run.aggregate_name == "median") {
                medians_[name] = *value;  // used only when the single runs were not displayed
            }
        }
    }

    void Finalize() override { display_->Finalize(); }

    /// True when no benchmark produced a figure (e.g. --benchmark_list_tests).
    bool empty() const noexcept { return samples_.empty() && medians_.empty(); }

    /// The median ns per operation of `name`, or a negative number if it did not run.
    double median(const std::string& name) const {
        if (auto it = samples_.find(name); it != samples_.end()) {
            std::vector<double> v = it->second;
            std::sort(v.begin(), v.end());
            const std::size_t n = v.size();
            return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        }
        if (auto it = medians_.find(name); it != medians_.end()) return it->second;
        return -1;
    }

    /// The unit of `name`'s figure (ns if it did not run).
    unit unit_of(const std::string& name) const {
        auto it = units_.find(name);
        return it == units_.end() ? unit::ns : it->second;
    }

private:
    static const double* per_op_value(const Run& run, unit& u) {
        for (const auto& [key, counter] : run.counters) {
            if (key.rfind("ns_per_", 0) == 0) {
                u = unit::ns;
                return &counter.value;
            }
        }
        for (const auto& [key, counter] : run.counters) {
            if (key.rfind("kib_per_", 0) == 0) {
                u = unit::kib;
                return &counter.value;
            }
        }
        return nullptr;
    }

    std::unique_ptr<benchmark::BenchmarkReporter> display_;
    std::map<std::string, std::vector<double>> samples_;
    std::map<std::string, double> medians_;
    std::map<std::string, unit> units_;
};

inline std::string format_ns(double ns) {
    char buf[32];
    if (ns >= 1000) {
        std::snprintf(buf, sizeof buf, "%.2f us", ns / 1000);
    } else {
        std::snprintf(buf, sizeof buf, "%.1f ns", ns);
    }
    return buf;
}

inline std::string format_value(double value, unit u) {
    if (u == unit::ns) return format_ns(value);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f KiB", value);
    return buf;
}

inline void print_table(std::ostream& out, const collecting_reporter& results,
                        const std::vector<comparison>& comparisons) {
    bool any_kib = false;
    for (const comparison& c : comparisons) any_kib = any_kib || results.unit_of(c.ours) == unit::kib;
    if (any_kib) {
        out << "\nRatios (medians: ns per operation, or KiB; \"Nx faster\" = peer's time / ours, "
               "\"Nx less\" = peer's KiB / ours)\n";
    } else {
        out << "\nRatios (median ns per operation; \"Nx faster\" = peer's time / ours)\n";
    }
    char line[256];
    std::snprintf(line, sizeof line, "  %-46s %10s %10s  %-16s %-16s %s\n", "comparison", "ours", "peer",
                  "ratio", "target", "met?");
    out << line;
    for (const comparison& c : comparisons) {
        const double ours = results.median(c.ours);
        const bool has_peer = c.peer != nullptr;
        const double peer = has_peer ? results.median(c.peer) : 0;
        const unit u = results.unit_of(c.ours);
        if (c.unavailable == nullptr && ours <= 0 && (!has_peer || peer <= 0)) continue;  // filtered out
        if (c.unavailable != nullptr || ours <= 0 || (has_peer && peer <= 0)) {
            std::snprintf(line, sizeof line, "  %-46s n/a: %s\n", c.label,
                          c.unavailable != nullptr ? c.unavailable : "not run (filtered out or failed)");
            out << line;
            continue;
        }
        char ratio[32] = "-";
        if (has_peer && peer >= ours) {
            std::snprintf(ratio, sizeof ratio, u == unit::ns ? "%.2fx faster" : "%.2fx less", peer / ours);
        } else if (has_peer) {
            std::snprintf(ratio, sizeof ratio, u == unit::ns ? "%.2fx slower" : "%.2fx more", ours / peer);
        }
        char target[32] = "-";
        const char* met = "";
        switch (has_peer || c.kind == comparison::goal::at_most ? c.kind : comparison::goal::none) {
            case comparison::goal::none: break;
            case comparison::goal::faster_by:
                std::snprintf(target, sizeof target, ">= %.4gx faster", c.factor);
                met = peer / ours >= c.factor ? "yes" : "NO";
                break;
            case comparison::goal::within:
                std::snprintf(target, sizeof target, "within %.4gx", c.factor);
                met = ours / peer <= c.factor ? "yes" : "NO";
                break;
            case comparison::goal::at_most:
                std::snprintf(target, sizeof target, "<= %s", format_value(c.factor, u).c_str());
                met = ours <= c.factor ? "yes" : "NO";
                break;
        }
        std::snprintf(line, sizeof line, "  %-46s %10s %10s  %-16s %-16s %s", c.label,
                      format_value(ours, u).c_str(), has_peer ? format_value(peer, u).c_str() : "-", ratio, target,
                      met);
        std::string text = line;
        text.erase(text.find_last_not_of(' ') + 1);  // no trailing blanks when there is no target
        out << text << '\n';
    }
}

}  // namespace detail

/// Runs the registered benchmarks as BENCHMARK_MAIN() would, then prints the
/// ratio table: to stdout after the console display, to stderr when
/// --benchmark_format=json|csv keeps stdout machine-readable.
inline int run_and_compare(int argc, char** argv, const std::vector<comparison>& comparisons) {
    const std::string format = detail::flag_value(argc, argv, "benchmark_format");
    auto display = detail::make_display(format, argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    detail::collecting_reporter reporter(std::move(display));
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    if (reporter.empty()) return 0;
    detail::print_table(format.empty() || format == "console" ? std::cout : std::cerr, reporter, comparisons);
    return 0;
}

}  // namespace bench
