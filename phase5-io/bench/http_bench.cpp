// Ten thousand connections, measured: the green-thread HTTP server
// (examples/http_server.cpp) beside a single-threaded libuv server
// (bench/http_libuv.c) and nginx with one worker, all three answering every
// keep-alive request with the same 13-byte body, under wrk:
//
//   make bench-phase5     (or, in the phase folder: build/bench/http_bench)
//
// Each server runs pinned to CPU 0 and wrk (-t1, one thread) pinned to CPU 1
// (sched_setaffinity in the child before exec, which is what taskset does),
// at 100, 1,000 and 10,000 connections. wrk saturates its own core near the
// servers' rate, so requests per second says more about wrk than about the
// server; the fair figure is the server's CPU time per request, in two
// versions:
//   - steady state (the ratio table's): while every connection is open and
//     busy, the server's CPU time (/proc/PID/task/*/schedstat, ns, summed
//     over its process tree, so nginx's worker counts) over the requests it
//     answered meanwhile (the bytes it wrote, /proc/PID/io wchar, over the
//     size of one answer). Sampled every 100 ms from the moment all
//     connections are open until 0.2 s before wrk stops, so it leaves out
//     wrk connecting and closing 10,000 connections (about 7 us of server
//     CPU each, accept and close), which would otherwise count as requests'.
//   - whole run: utime + stime (/proc/PID/stat) from before wrk starts to
//     after it exits, over the requests wrk counted.
// Also requests per second, p50/p99 latency (wrk --latency), socket errors,
// and the resident memory each idle keep-alive connection costs the server
// (VmRSS with K idle connections open, each after one request, minus VmRSS
// with one). The machine is shared and noisy: each configuration runs
// three times, the three servers taking turns, and the tables show medians.
//
// The run ends with our own table and the ratio table of the issue's
// targets: CPU per request at c1000 at most 1.0x libuv's and at most 0.85x
// nginx's; ours at c10000 within 1.1x of ours at c1000; at most 8 KiB per
// idle connection.
//
// Each run is one Google Benchmark "iteration" with manual time (the wrk
// duration), so --benchmark_filter=gt, --benchmark_out and the ratio table
// of bench_report.hpp work as in the other benchmark programs.
// --benchmark_min_time below 0.5 (CI's smoke run passes 0.01) makes it one
// round of 2 s runs, measured over the whole run only (a smoke test: wrk
// may need most of a second to open 10,000 connections on a busy machine),
// and 500 idle connections, instead of three rounds of 3 s and 2,000.
//
// A peer whose Debian package is missing is skipped with one line saying
// what to install (tools/deps.sh bench installs them: wrk, libuv1-dev,
// nginx-light); without wrk only the memory figures run. The benchmark raises its
// descriptor limit (RLIMIT_NOFILE, inherited by the servers and wrk) to the
// hard limit; c10000 needs about 10,100 descriptors in the server and in
// wrk, and is skipped with a message when the hard limit is lower.
//
// What the peers do, as far as this benchmark relies on it: both answer
// a request with one read(2) and one write(2) and no epoll_ctl, as ours
// does (counted with strace -c -f: see the walkthrough's "Ten thousand
// connections, measured"); libuv's loop is level-triggered and nginx's
// edge-triggered (../shared/design/phases-4-6.md, 3.1, and nginx's
// ngx_epoll_module.c). nginx 1.19.10 and later close a keep-alive
// connection after 1,000 requests by default (keepalive_requests), which
// the configuration below lifts so that wrk's connections stay open.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.hpp"

namespace {

using namespace std::chrono_literals;

// ---- settings ---------------------------------------------------------------------

struct settings {
    int seconds = 3;            // per wrk run
    int rounds = 3;             // runs of each configuration
    bool steady_state = true;   // sample the server during the runs
    int idle_connections = 2000;
    rlim_t fd_limit = 0;        // RLIMIT_NOFILE after raising it
    std::string dir;            // the folder of this program (build/bench)
    std::string servers_dir;    // build/bench-servers: the servers, nginx's config, the logs
};
settings config;

constexpr int server_cpu = 0;
constexpr int client_cpu = 1;
constexpr int connection_counts[] = {100, 1000, 10000};
// Descriptors a server or wrk needs beyond one per connection.
constexpr rlim_t fd_margin = 100;

// ---- small helpers ------------------------------------------------------------------

bool executable(const std::string& path) { return ::access(path.c_str(), X_OK) == 0; }

/// The path of `name` on $PATH, or "".
std::string on_path(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
    for (std::string d; std::getline(dirs, d, ':');) {
        if (!d.empty() && executable(d + "/" + name)) return d + "/" + name;
    }
    for (const char* d : {"/usr/sbin", "/sbin"}) {  // nginx lives in sbin, often off a user's PATH
        if (executable(std::string(d) + "/" + name)) return std::string(d) + "/" + name;
    }
    return "";
}

/// A TCP port on 127.0.0.1 that nobody listens on right now.
int free_port() {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
        port = ntohs(a.sin_port);
    }
    ::close(s);
    return port;
}

/// A blocking TCP connection to 127.0.0.1:port with 5 s send/receive timeouts, or -1.
int connect_to(int port) {
    const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) return -1;
    timeval tv{5, 0};
    ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(s);
        return -1;
    }
    return s;
}

/// Sends one keep-alive GET on `s` and reads until a whole 200 answer with
/// its 13-byte body is in; returns its size in bytes, 0 on anything else.
std::size_t one_request(int s) {
    static const char request[] = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(s, request, sizeof request - 1, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof request - 1)) {
        return 0;
    }
    std::string got;
    char buf[1024];
    for (;;) {
        const ssize_t n = ::recv(s, buf, sizeof buf, 0);
        if (n <= 0) return 0;
        got.append(buf, static_cast<std::size_t>(n));
        const std::size_t end = got.find("\r\n\r\n");
        if (end != std::string::npos && got.size() >= end + 4 + 13) {
            return got.compare(0, 12, "HTTP/1.1 200") == 0 ? got.size() : 0;
        }
    }
}

/// The size of an answer once 127.0.0.1:port answers a request (polls up
/// to 5 s); 0 if it does not.
std::size_t wait_until_serving(int port, pid_t pid) {
    for (int i = 0; i < 500; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return 0;  // it exited
        const int s = connect_to(port);
        if (s >= 0) {
            const std::size_t size = one_request(s);
            ::close(s);
            return size;
        }
        std::this_thread::sleep_for(10ms);
    }
    return 0;
}

// ---- processes ------------------------------------------------------------------

/// Starts argv[0] with the arguments, pinned to `cpu` (none when cpu < 0),
/// stdout and stderr into `log` (a pipe's write end when log_fd >= 0).
pid_t spawn(const std::vector<std::string>& argv, int cpu, const std::string& log, int log_fd = -1) {
    const pid_t pid = ::fork();
    if (pid != 0) return pid;
    // The child: pin, redirect, exec.
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        ::sched_setaffinity(0, sizeof set, &set);
    }
    const int out = log_fd >= 0 ? log_fd : ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (out >= 0) {
        ::dup2(out, STDOUT_FILENO);
        ::dup2(out, STDERR_FILENO);
    }
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
}

/// SIGTERM, then SIGKILL if it has not exited within 5 s; reaps it.
void stop(pid_t pid) {
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 500; ++i) {
        if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
        std::this_thread::sleep_for(10ms);
    }
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
}

/// `pid` and its descendants (nginx's worker is the master's child).
std::vector<pid_t> process_tree(pid_t pid) {
    std::vector<pid_t> all{pid};
    for (std::size_t i = 0; i < all.size(); ++i) {
        std::ifstream children("/proc/" + std::to_string(all[i]) + "/task/" + std::to_string(all[i]) + "/children");
        for (pid_t c; children >> c;) all.push_back(c);
    }
    return all;
}

/// utime + stime of the process tree of `pid`, in nanoseconds (resolution:
/// one clock tick, 10 ms).
double cpu_ns(pid_t root) {
    static const double ns_per_tick = 1e9 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    double total = 0;
    for (pid_t pid : process_tree(root)) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
        std::string line;
        std::getline(f, line);
        const std::size_t paren = line.rfind(')');  // the command name may hold spaces
        if (paren == std::string::npos) continue;
        std::istringstream rest(line.substr(paren + 2));
        std::string field;
        // Fields after the name: state(3) ... utime(14) stime(15), counted from 1 at pid.
        for (int i = 3; i <= 13 && rest >> field; ++i) {}
        unsigned long long utime = 0, stime = 0;
        rest >> utime >> stime;
        total += static_cast<double>(utime + stime) * ns_per_tick;
    }
    return total;
}

/// VmRSS of the process tree of `pid`, in KiB.
double rss_kib(pid_t root) {
    double total = 0;
    for (pid_t pid : process_tree(root)) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/status");
        for (std::string line; std::getline(f, line);) {
            if (line.rfind("VmRSS:", 0) == 0) total += std::strtod(line.c_str() + 6, nullptr);
        }
    }
    return total;
}

/// CPU time of the process tree of `pid` in ns, from the scheduler's own
/// accounting (/proc/PID/task/TID/schedstat, first field), which unlike
/// /proc/PID/stat is not rounded to clock ticks.
double cpu_ns_exact(pid_t root) {
    double total = 0;
    for (pid_t pid : process_tree(root)) {
        const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
        std::ifstream list;
        // The threads: the runtime's servers have one, but count any.
        if (DIR* d = ::opendir(tasks.c_str())) {
            while (dirent* e = ::readdir(d)) {
                if (e->d_name[0] == '.') continue;
                std::ifstream f(tasks + "/" + e->d_name + "/schedstat");
                double ns = 0;
                if (f >> ns) total += ns;
            }
            ::closedir(d);
        }
    }
    return total;
}

/// Bytes the process tree of `pid` has written with write(2) and friends,
/// sockets included (/proc/PID/io, wchar).
double bytes_written(pid_t root) {
    double total = 0;
    for (pid_t pid : process_tree(root)) {
        std::ifstream f("/proc/" + std::to_string(pid) + "/io");
        for (std::string line; std::getline(f, line);) {
            if (line.rfind("wchar:", 0) == 0) total += std::strtod(line.c_str() + 6, nullptr);
        }
    }
    return total;
}

/// Open descriptors of the process tree of `pid`.
long open_descriptors(pid_t root) {
    long n = 0;
    for (pid_t pid : process_tree(root)) {
        if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
            while (::readdir(d) != nullptr) ++n;
            ::closedir(d);
        }
    }
    return n;
}

// ---- the servers ----------------------------------------------------------------

struct server_kind {
    std::string name;         // gt, libuv, nginx
    std::string missing;      // non-empty: why it is skipped
    std::vector<std::string> (*command)(const std::string& binary, int port);
    std::string binary;
};

std::vector<std::string> plain_command(const std::string& binary, int port) {
    return {binary, "--port", std::to_string(port)};
}

/// nginx with one worker serving the same body, its configuration, pid
/// file, logs and temporary folders under build/bench-servers/nginx (nginx
/// otherwise wants /var/lib/nginx and /run, which a user cannot write).
std::vector<std::string> nginx_command(const std::string& binary, int port) {
    const std::string dir = config.servers_dir + "/nginx";
    ::mkdir(dir.c_str(), 0755);
    std::ofstream conf(dir + "/nginx.conf");
    conf << "# Written by bench/http_bench.cpp for one run; rewritten every run.\n"
            "worker_processes 1;\n"
            "daemon off;\n"
            "pid "
         << dir << "/nginx.pid;\n"
         << "error_log " << dir << "/error.log warn;\n"
         << "worker_rlimit_nofile " << config.fd_limit << ";\n"
         << "events { worker_connections " << config.fd_limit << "; use epoll; }\n"
         << "http {\n"
            "  access_log off;\n"
            "  server_tokens off;\n"
            "  default_type text/plain;\n"
            "  keepalive_requests 1000000000;\n"  // the default, 1000, would close wrk's connections
            "  keepalive_timeout 300s;\n"
            "  client_body_temp_path "
         << dir << "/body;\n"
         << "  proxy_temp_path " << dir << "/proxy;\n"
         << "  fastcgi_temp_path " << dir << "/fastcgi;\n"
         << "  uwsgi_temp_path " << dir << "/uwsgi;\n"
         << "  scgi_temp_path " << dir << "/scgi;\n"
         << "  server {\n"
            "    listen 127.0.0.1:"
         << port << " backlog=4096;\n"
         << "    location / { return 200 \"Hello, world\\n\"; }\n"
            "  }\n"
            "}\n";
    return {binary, "-p", dir, "-c", dir + "/nginx.conf", "-e", dir + "/error.log"};
}

std::vector<server_kind> servers;
std::string wrk_binary;
std::string wrk_missing;

/// A running server: started (and checked to answer) by the constructor.
class running_server {
public:
    running_server(const server_kind& kind, std::string& error) : port_(free_port()) {
        log_ = config.servers_dir + "/" + kind.name + ".log";
        pid_ = spawn(kind.command(kind.binary, port_), server_cpu, log_);
        answer_bytes_ = wait_until_serving(port_, pid_);
        if (answer_bytes_ == 0) {
            error = kind.name + " did not start serving on 127.0.0.1:" + std::to_string(port_) + " (see " + log_ + ")";
            stop(pid_);
            pid_ = -1;
        }
    }
    ~running_server() {
        if (pid_ > 0) stop(pid_);
    }
    running_server(const running_server&) = delete;
    running_server& operator=(const running_server&) = delete;
    bool ok() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    int port() const { return port_; }
    /// The size of one answer, headers included.
    std::size_t answer_bytes() const { return answer_bytes_; }

private:
    int port_;
    std::size_t answer_bytes_ = 0;
    pid_t pid_ = -1;
    std::string log_;
};

// ---- wrk ------------------------------------------------------------------------

struct wrk_result {
    double requests = 0;
    double requests_per_s = 0;
    double p50_us = -1, p99_us = -1;
    long socket_errors = 0;  // connect + read + write + timeout
    long non_2xx = 0;
    std::string errors_line;  // wrk's own line, when it printed one
    std::string output;
    // The steady state, from the server's side (see the top of the file):
    // CPU ns and bytes written over the window; 0 when there was none.
    double window_cpu_ns = 0, window_bytes = 0;
};

/// "302.00us", "1.23ms", "2.00s" in microseconds.
double to_us(const std::string& v) {
    const double x = std::strtod(v.c_str(), nullptr);
    if (v.ends_with("us")) return x;
    if (v.ends_with("ms")) return x * 1e3;
    if (v.ends_with("s")) return x * 1e6;
    return x;
}

/// Runs wrk against 127.0.0.1:port while sampling the server `server`
/// every 100 ms for the steady-state window.
std::optional<wrk_result> run_wrk(int port, int connections, pid_t server, std::string& error) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        error = "pipe: " + std::string(std::strerror(errno));
        return std::nullopt;
    }
    const std::vector<std::string> argv = {wrk_binary,
                                           "-t1",
                                           "-c" + std::to_string(connections),
                                           "-d" + std::to_string(config.seconds) + "s",
                                           "--timeout",
                                           "5s",
                                           "--latency",
                                           "http://127.0.0.1:" + std::to_string(port) + "/"};
    const auto start = std::chrono::steady_clock::now();
    const pid_t pid = spawn(argv, client_cpu, "", fds[1]);
    ::close(fds[1]);
    wrk_result r;
    // The window: from the first sample with every connection open (the
    // server holds one descriptor for each) to the last sample 0.2 s before
    // wrk's end. Counting descriptors stops once they are all there.
    const auto last = start + std::chrono::seconds(config.seconds) - 200ms;
    bool all_open = false;
    double cpu0 = 0, bytes0 = 0, cpu1 = 0, bytes1 = 0;
    for (auto t = start + 100ms; config.steady_state && t <= last; t += 100ms) {
        std::this_thread::sleep_until(t);
        if (!all_open) {
            all_open = open_descriptors(server) >= connections;
            if (all_open) {
                cpu0 = cpu1 = cpu_ns_exact(server);
                bytes0 = bytes1 = bytes_written(server);
            }
            continue;
        }
        cpu1 = cpu_ns_exact(server);
        bytes1 = bytes_written(server);
    }
    r.window_cpu_ns = cpu1 - cpu0;
    r.window_bytes = bytes1 - bytes0;
    char buf[4096];
    for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) r.output.append(buf, static_cast<std::size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        error = "wrk failed: " + r.output;
        return std::nullopt;
    }
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        std::string first, second;
        words >> first >> second;
        if (first == "50%") r.p50_us = to_us(second);
        if (first == "99%") r.p99_us = to_us(second);
        if (first == "Requests/sec:") r.requests_per_s = std::strtod(second.c_str(), nullptr);
        if (second == "requests" && line.find(" in ") != std::string::npos) r.requests = std::strtod(first.c_str(), nullptr);
        if (first == "Socket" && second == "errors:") {
            // "Socket errors: connect 0, read 0, write 0, timeout 0"
            r.errors_line = line.substr(line.find_first_not_of(' '));
            std::string word;
            long n = 0;
            std::istringstream rest(line.substr(line.find(':') + 1));
            while (rest >> word >> n) {
                r.socket_errors += n;
                rest.ignore(1);  // the comma
            }
        }
        if (first == "Non-2xx") r.non_2xx = std::strtol(line.substr(line.find(':') + 1).c_str(), nullptr, 10);
    }
    if (r.requests <= 0) {
        error = "wrk completed no request: " + r.output;
        return std::nullopt;
    }
    return r;
}

// ---- the benchmarks ---------------------------------------------------------------

struct row {
    std::string server;
    int connections = 0;
    double requests_per_s = 0, ns_per_request = 0, ns_per_request_whole = 0, p50_us = 0, p99_us = 0;
    long errors = 0;
    std::string note;
};
std::vector<row> rows;
std::map<std::string, double> rss_per_connection;  // server -> KiB
std::vector<std::string> skipped;                   // one line each, printed before the table

void BM_http(benchmark::State& state, const server_kind* kind, int connections) {
    for (auto _ : state) {
        std::string error;
        running_server server(*kind, error);
        if (!server.ok()) {
            state.SkipWithError(error.c_str());
            break;
        }
        const double cpu_before = cpu_ns(server.pid());
        const auto r = run_wrk(server.port(), connections, server.pid(), error);
        const double cpu_after = cpu_ns(server.pid());
        if (!r) {
            state.SkipWithError(error.c_str());
            break;
        }
        state.SetIterationTime(config.seconds);
        const double whole = (cpu_after - cpu_before) / r->requests;
        // Without a window (a 1 s smoke run, or connections that never all
        // opened), the whole run's figure stands in.
        const double answered = r->window_bytes / static_cast<double>(server.answer_bytes());
        const double ns = answered >= 1000 ? r->window_cpu_ns / answered : whole;
        state.counters["ns_per_request"] = ns;
        state.counters["ns_per_request_whole_run"] = whole;
        state.counters["req_per_s"] = r->requests_per_s;
        state.counters["p50_us"] = r->p50_us;
        state.counters["p99_us"] = r->p99_us;
        state.counters["socket_errors"] = static_cast<double>(r->socket_errors);
        state.counters["non_2xx"] = static_cast<double>(r->non_2xx);
        row line{kind->name, connections, r->requests_per_s, ns, whole, r->p50_us, r->p99_us,
                 r->socket_errors + r->non_2xx, ""};
        if (!r->errors_line.empty()) line.note = r->errors_line;
        if (r->non_2xx > 0) line.note += (line.note.empty() ? "" : "; ") + std::to_string(r->non_2xx) + " non-2xx";
        rows.push_back(line);
    }
}

/// Resident memory per idle keep-alive connection: VmRSS with one connection
/// that has made a request, then with `idle_connections` more, each after
/// one request (so the server has set up everything a connection needs),
/// left open and idle.
void BM_idle_rss(benchmark::State& state, const server_kind* kind) {
    for (auto _ : state) {
        std::string error;
        running_server server(*kind, error);
        if (!server.ok()) {
            state.SkipWithError(error.c_str());
            break;
        }
        std::vector<int> open;
        open.push_back(connect_to(server.port()));
        if (open[0] < 0 || !one_request(open[0])) {
            state.SkipWithError("the first connection failed");
            break;
        }
        std::this_thread::sleep_for(100ms);
        const double before = rss_kib(server.pid());
        bool ok = true;
        for (int i = 0; i < config.idle_connections && ok; ++i) {
            const int s = connect_to(server.port());
            ok = s >= 0 && one_request(s);
            if (s >= 0) open.push_back(s);
        }
        std::this_thread::sleep_for(200ms);
        const double after = rss_kib(server.pid());
        for (int s : open) ::close(s);
        if (!ok) {
            state.SkipWithError(("connection " + std::to_string(open.size()) + " failed").c_str());
            break;
        }
        const double kib = (after - before) / config.idle_connections;
        state.counters["kib_per_connection"] = kib;
        rss_per_connection[kind->name] = kib;
        state.SetIterationTime(1);
    }
}

// ---- the report -------------------------------------------------------------------

std::string load_average() {
    std::ifstream f("/proc/loadavg");
    std::string one, five;
    f >> one >> five;
    return one + " " + five;
}

std::string machine() {
    std::string model = "unknown CPU";
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
        if (line.rfind("model name", 0) == 0) {
            model = line.substr(line.find(':') + 2);
            break;
        }
    }
    utsname u{};
    ::uname(&u);
    return model + ", " + std::to_string(std::thread::hardware_concurrency()) + " CPUs, Linux " + u.release;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n == 0 ? 0 : n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

void print_rows() {
    char date[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof date, "%Y-%m-%d", std::localtime(&now));
    std::printf("\nHTTP/1.1 keep-alive, 13-byte body: server on CPU %d, wrk -t1 on CPU %d, %d s per run,\n"
                "medians of %d runs; CPU/request in the steady state and over the whole run\n",
                server_cpu, client_cpu, config.seconds, config.rounds);
    std::printf("(%s, %s, load average %s)\n", date, machine().c_str(), load_average().c_str());
    for (const std::string& s : skipped) std::printf("  skipped: %s\n", s.c_str());
    std::printf("  %-6s %6s %9s %11s %11s %10s %10s %7s\n", "server", "conns", "req/s", "CPU/req", "(whole)", "p50",
                "p99", "errors");
    for (const server_kind& kind : servers) {
        for (int c : connection_counts) {
            std::vector<double> rps, ns, whole, p50, p99;
            long errors = 0;
            std::string notes;
            for (const row& r : rows) {
                if (r.server != kind.name || r.connections != c) continue;
                rps.push_back(r.requests_per_s);
                ns.push_back(r.ns_per_request);
                whole.push_back(r.ns_per_request_whole);
                p50.push_back(r.p50_us);
                p99.push_back(r.p99_us);
                errors += r.errors;
                if (!r.note.empty()) notes += "  " + r.note;
            }
            if (rps.empty()) continue;
            std::printf("  %-6s %6d %9.0f %8.2f us %8.2f us %7.0f us %7.0f us %7ld%s\n", kind.name.c_str(), c,
                        median(rps), median(ns) / 1000, median(whole) / 1000, median(p50), median(p99), errors,
                        notes.c_str());
        }
    }
    for (const auto& [name, kib] : rss_per_connection) {
        std::printf("  %-6s RSS per idle keep-alive connection: %.2f KiB (%d connections)\n", name.c_str(), kib,
                    config.idle_connections);
    }
}

/// Finds the tools and servers, and says which are missing.
void discover() {
    wrk_binary = on_path("wrk");
    if (wrk_binary.empty()) wrk_missing = "wrk is not installed (tools/deps.sh bench, or apt-get install wrk)";
    server_kind gt{"gt", "", plain_command, config.servers_dir + "/http_server"};
    if (!executable(gt.binary)) gt.missing = "examples/http_server.cpp is not built into bench-servers/ (make benches)";
    server_kind uv{"libuv", "", plain_command, config.servers_dir + "/http_libuv"};
    if (!executable(uv.binary)) uv.missing = "libuv1-dev is not installed (tools/deps.sh bench), so bench/http_libuv.c is not built";
    server_kind ngx{"nginx", "", nginx_command, on_path("nginx")};
    if (ngx.binary.empty()) ngx.missing = "nginx is not installed (tools/deps.sh bench, or apt-get install nginx-light)";
    servers = {gt, uv, ngx};
}

/// Raises RLIMIT_NOFILE to the hard limit (and the hard limit to 20,000 if
/// it is lower and we may); the servers and wrk inherit it.
void raise_fd_limit() {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < 20000) {
        rlimit more{20000, 20000};
        if (::setrlimit(RLIMIT_NOFILE, &more) == 0) lim = more;  // root only (CAP_SYS_RESOURCE)
    }
    lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? 1 << 20 : lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
    config.fd_limit = lim.rlim_cur;
}

std::string directory_of_this_program() {
    char path[4096];
    const ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    if (n <= 0) return ".";
    std::string p(path, static_cast<std::size_t>(n));
    return p.substr(0, p.rfind('/'));
}

}  // namespace

int main(int argc, char** argv) {
    const std::string min_time = bench::detail::flag_value(argc, argv, "benchmark_min_time");
    if (!min_time.empty() && std::strtod(min_time.c_str(), nullptr) < 0.5) {
        config.seconds = 2;
        config.rounds = 1;
        config.steady_state = false;
        config.idle_connections = 500;
    }
    config.dir = directory_of_this_program();
    config.servers_dir = config.dir + "/../bench-servers";
    ::mkdir(config.servers_dir.c_str(), 0755);
    ::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    discover();
    if (std::thread::hardware_concurrency() < 2) {
        skipped.push_back("this machine has one CPU: server and wrk cannot have a core each; nothing pinned");
    }

    if (!wrk_missing.empty()) skipped.push_back(wrk_missing + ": no wrk runs");
    std::vector<const server_kind*> present;
    for (const server_kind& kind : servers) {
        if (kind.missing.empty()) {
            present.push_back(&kind);
        } else {
            skipped.push_back(kind.name + ": " + kind.missing);
        }
    }
    std::vector<int> counts;
    for (int c : connection_counts) {
        if (static_cast<rlim_t>(c) + fd_margin <= config.fd_limit) {
            counts.push_back(c);
        } else {
            skipped.push_back("c" + std::to_string(c) + ": needs " + std::to_string(c + fd_margin) +
                              " descriptors in the server and in wrk, the limit is " +
                              std::to_string(config.fd_limit) + " (ulimit -Hn)");
        }
    }
    // Rounds outermost and the servers taking turns inside: a change in the
    // machine's load then hits every server alike. Runs of one name make
    // one median in the ratio table.
    for (int round = 0; round < config.rounds && wrk_missing.empty(); ++round) {
        for (int c : counts) {
            for (const server_kind* kind : present) {
                benchmark::RegisterBenchmark(("BM_http_" + kind->name + "_c" + std::to_string(c)).c_str(), BM_http,
                                             kind, c)
                    ->Iterations(1)
                    ->UseManualTime()
                    ->Unit(benchmark::kMillisecond);
            }
        }
    }
    for (const server_kind* kind : present) {
        benchmark::RegisterBenchmark(("BM_http_" + kind->name + "_idle_rss").c_str(), BM_idle_rss, kind)
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
    }
    for (const std::string& s : skipped) std::fprintf(stderr, "http_bench: skipped: %s\n", s.c_str());

    auto missing = [](const char* name) -> const char* {
        for (const server_kind& k : servers) {
            if (k.name == name && !k.missing.empty()) return k.missing.c_str();
        }
        return nullptr;
    };
    const char* gt_missing = missing("gt");
    const char* uv_missing = gt_missing != nullptr ? gt_missing : missing("libuv");
    const char* ngx_missing = gt_missing != nullptr ? gt_missing : missing("nginx");
    using goal = bench::comparison::goal;
    const std::vector<bench::comparison> comparisons = {
        {"CPU/request c100 vs libuv", "BM_http_gt_c100", "BM_http_libuv_c100", goal::none, 0, uv_missing},
        {"CPU/request c1000 vs libuv", "BM_http_gt_c1000", "BM_http_libuv_c1000", goal::within, 1.0, uv_missing},
        {"CPU/request c1000 vs nginx", "BM_http_gt_c1000", "BM_http_nginx_c1000", goal::within, 0.85, ngx_missing},
        {"CPU/request c10000 vs libuv", "BM_http_gt_c10000", "BM_http_libuv_c10000", goal::none, 0, uv_missing},
        {"CPU/request c10000 vs nginx", "BM_http_gt_c10000", "BM_http_nginx_c10000", goal::none, 0, ngx_missing},
        {"CPU/request c10000 vs ours at c1000", "BM_http_gt_c10000", "BM_http_gt_c1000", goal::within, 1.1,
         gt_missing},
        {"RSS per idle connection", "BM_http_gt_idle_rss", nullptr, goal::at_most, 8, gt_missing},
        {"RSS per idle connection vs libuv", "BM_http_gt_idle_rss", "BM_http_libuv_idle_rss", goal::none, 0,
         uv_missing},
        {"RSS per idle connection vs nginx", "BM_http_gt_idle_rss", "BM_http_nginx_idle_rss", goal::none, 0,
         ngx_missing},
    };

    // bench::run_and_compare, with our table between the runs and the ratios.
    const std::string format = bench::detail::flag_value(argc, argv, "benchmark_format");
    auto display = bench::detail::make_display(format, argc, argv);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    bench::detail::collecting_reporter reporter(std::move(display));
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    if (reporter.empty()) return 0;
    std::fflush(stdout);
    if (format.empty() || format == "console") {
        print_rows();
        std::fflush(stdout);
        bench::detail::print_table(std::cout, reporter, comparisons);
    } else {
        bench::detail::print_table(std::cerr, reporter, comparisons);
    }
    return 0;
}
