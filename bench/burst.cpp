// sluice-bench-burst: the Lambda pattern against a PostgreSQL endpoint (a proxy or the server).
// One process, one thread, epoll over libpq's non-blocking API: every client is a PGconn driven
// by PQconnectStart/PQconnectPoll, then PQsendQuery and PQconsumeInput/PQisBusy/PQgetResult.
//
//   sluice-bench-burst [--burst | --hold | --loop] -n N [options] CONNINFO
//
//   --burst (default)  N clients connect at once (TLS and SCRAM as CONNINFO says), each runs SQL
//                      once and disconnects. Prints one JSON line: ok, failed, the 3 most common
//                      errors with counts, p50/p99/max ms from a client's start to its first
//                      result and to its login, wall time and this process's CPU time.
//   --hold             N clients connect and log in (and run SQL once unless --no-query), then
//                      stay idle until stdin closes or SIGTERM. Prints a JSON line when every
//                      attempt has ended ("held"), another on exit (clients the server dropped).
//                      For memory measurements: 10,000 idle clients cost no Python objects.
//   --loop             N clients connect, then each runs SQL over and over. Prints a JSON line
//                      once all are connected ("ready"); every line read on stdin prints the
//                      latency percentiles of the queries completed since the previous one, and
//                      stdin's end (or SIGTERM) prints the last window and exits.
//
// Options: --concurrency K  clients starting or logging in at once (default: all N)
//          --sql SQL         the transaction (default "select 1")
//          --timeout S       seconds a client may take to connect and get its result (default 60)
//          --no-query        --hold without running SQL after login
//
// The open-file limit is raised to the hard limit first.
#include <libpq-fe.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Mode { kBurst, kHold, kLoop };

enum class State { kPending, kConnecting, kQuerying, kIdle, kDone, kFailed };

struct Client {
  PGconn* conn = nullptr;
  State state = State::kPending;
  int fd = -1;          // the socket registered with epoll
  uint32_t events = 0;  // what it is registered for
  Clock::time_point start;
  Clock::time_point query_start;
  Clock::time_point deadline;
  bool got_result = false;
  bool query_failed = false;
};

struct Options {
  Mode mode = Mode::kBurst;
  size_t clients = 0;
  size_t concurrency = 0;
  std::string sql = "select 1";
  double timeout_seconds = 60;
  bool query_in_hold = true;
  std::string conninfo;
};

[[noreturn]] void usage(const char* program, const char* problem) {
  if (problem) std::fprintf(stderr, "%s: %s\n", program, problem);
  std::fprintf(stderr,
               "usage: %s [--burst|--hold|--loop] -n N [--concurrency K] [--sql SQL] "
               "[--timeout SECONDS] [--no-query] CONNINFO\n",
               program);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(argv[0], "missing value");
      return argv[++i];
    };
    if (arg == "--burst") {
      options.mode = Mode::kBurst;
    } else if (arg == "--hold") {
      options.mode = Mode::kHold;
    } else if (arg == "--loop") {
      options.mode = Mode::kLoop;
    } else if (arg == "-n" || arg == "--clients") {
      options.clients = std::strtoul(value(), nullptr, 10);
    } else if (arg == "--concurrency") {
      options.concurrency = std::strtoul(value(), nullptr, 10);
    } else if (arg == "--sql") {
      options.sql = value();
    } else if (arg == "--timeout") {
      options.timeout_seconds = std::strtod(value(), nullptr);
    } else if (arg == "--no-query") {
      options.query_in_hold = false;
    } else if (arg == "-h" || arg == "--help") {
      usage(argv[0], nullptr);
    } else if (!arg.empty() && arg[0] == '-') {
      usage(argv[0], "unknown option");
    } else if (options.conninfo.empty()) {
      options.conninfo = argv[i];
    } else {
      usage(argv[0], "more than one CONNINFO");
    }
  }
  if (options.clients == 0) usage(argv[0], "-n N (N > 0) is required");
  if (options.conninfo.empty()) usage(argv[0], "CONNINFO is required");
  if (options.concurrency == 0 || options.concurrency > options.clients) {
    options.concurrency = options.clients;
  }
  return options;
}

void raise_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

double ms_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// One line of an error message: libpq's multi-line messages joined by " | ".
std::string one_line(const char* message) {
  std::string out;
  std::string_view text = message ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  for (char c : text) {
    if (c == '\n') {
      out += " | ";
    } else {
      out += c;
    }
  }
  return out.empty() ? "unknown error" : out;
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

// Percentile by nearest rank over a sorted vector; null when empty.
std::string percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return "null";
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", sorted[rank - 1]);
  return text;
}

std::string stats_json(const char* prefix, std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  std::string p = prefix;
  return "\"" + p + "p50_ms\":" + percentile(samples, 50) + ",\"" + p +
         "p99_ms\":" + percentile(samples, 99) + ",\"" + p + "max_ms\":" + percentile(samples, 100);
}

std::string errors_json(const std::map<std::string, size_t>& errors) {
  std::vector<std::pair<size_t, std::string>> kinds;
  for (const auto& [message, count] : errors) kinds.emplace_back(count, message);
  std::sort(kinds.begin(), kinds.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  std::string out = "\"error_kinds\":" + std::to_string(kinds.size()) + ",\"errors\":[";
  for (size_t i = 0; i < kinds.size() && i < 3; ++i) {
    if (i) out += ",";
    out += "{\"message\":" + json_string(kinds[i].second) +
           ",\"count\":" + std::to_string(kinds[i].first) + "}";
  }
  return out + "]";
}

double cpu_ms() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

class Bench {
 public:
  explicit Bench(Options options) : options_(std::move(options)), clients_(options_.clients) {
    epoll_ = epoll_create1(EPOLL_CLOEXEC);
    timeout_ = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options_.timeout_seconds));
  }

  int run() {
    if (options_.mode != Mode::kBurst) watch_stdin_and_sigterm();
    begin_ = Clock::now();
    cpu_begin_ = cpu_ms();
    start_more();
    std::vector<epoll_event> ready(256);
    Clock::time_point next_sweep = Clock::now() + std::chrono::milliseconds(100);
    while (!stop_) {
      if (options_.mode == Mode::kBurst && ended_ == clients_.size()) break;
      int count = epoll_wait(epoll_, ready.data(), static_cast<int>(ready.size()), 100);
      if (count < 0 && errno != EINTR) {
        std::perror("epoll_wait");
        return 1;
      }
      for (int i = 0; i < count; ++i) {
        const uint32_t tag = ready[static_cast<size_t>(i)].data.u32;
        if (tag == kStdinTag) {
          read_stdin();
        } else if (tag == kSignalTag) {
          stop_ = true;
        } else {
          on_ready(tag);
        }
      }
      const auto now = Clock::now();
      if (now >= next_sweep) {
        sweep_deadlines(now);
        next_sweep = now + std::chrono::milliseconds(100);
      }
      start_more();
      maybe_announce();
    }
    finish();
    return 0;
  }

 private:
  static constexpr uint32_t kStdinTag = 0xffffffffu;
  static constexpr uint32_t kSignalTag = 0xfffffffeu;

  void watch_stdin_and_sigterm() {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.u32 = kStdinTag;
    // A regular file or /dev/null cannot be polled (EPERM): then only SIGTERM ends the wait.
    epoll_ctl(epoll_, EPOLL_CTL_ADD, STDIN_FILENO, &event);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, nullptr);
    signal_fd_ = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    event.data.u32 = kSignalTag;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, signal_fd_, &event);
  }

  void read_stdin() {
    char buffer[4096];
    ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n <= 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, STDIN_FILENO, nullptr);
      stop_ = true;
      return;
    }
    for (ssize_t i = 0; i < n; ++i) {
      if (buffer[i] == '\n' && options_.mode == Mode::kLoop) print_window();
    }
  }

  // Registers (or re-registers: libpq may open a new socket for a new attempt) the client's
  // socket for the events libpq waits for.
  void watch(uint32_t index, uint32_t events) {
    Client& client = clients_[index];
    const int fd = PQsocket(client.conn);
    if (fd < 0) return;
    epoll_event event{};
    event.events = events;
    event.data.u32 = index;
    // While connecting, libpq may have closed the socket and opened another with the same number:
    // MOD then fails and the new one is added.
    if (fd == client.fd && events == client.events && client.state != State::kConnecting) return;
    if (fd != client.fd || epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event) != 0) {
      if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0 && errno == EEXIST) {
        epoll_ctl(epoll_, EPOLL_CTL_MOD, fd, &event);
      }
    }
    client.fd = fd;
    client.events = events;
  }

  void unwatch(Client& client) {
    if (client.fd >= 0) epoll_ctl(epoll_, EPOLL_CTL_DEL, client.fd, nullptr);
    client.fd = -1;
    client.events = 0;
  }

  void start_more() {
    while (in_flight_ < options_.concurrency && next_ < clients_.size()) {
      const auto index = static_cast<uint32_t>(next_++);
      Client& client = clients_[index];
      client.start = Clock::now();
      client.deadline = client.start + timeout_;
      client.conn = PQconnectStart(options_.conninfo.c_str());
      ++in_flight_;
      if (client.conn == nullptr || PQstatus(client.conn) == CONNECTION_BAD) {
        fail(index, client.conn ? PQerrorMessage(client.conn) : "out of memory");
        continue;
      }
      client.state = State::kConnecting;
      // As if PQconnectPoll had returned PGRES_POLLING_WRITING.
      watch(index, EPOLLOUT);
    }
  }

  void on_ready(uint32_t index) {
    if (index >= clients_.size()) return;
    Client& client = clients_[index];
    switch (client.state) {
      case State::kConnecting:
        poll_connect(index);
        break;
      case State::kQuerying:
        poll_query(index);
        break;
      case State::kIdle:
        // An idle client hears from the server only when it is being dropped.
        if (!PQconsumeInput(client.conn) || PQstatus(client.conn) == CONNECTION_BAD) {
          ++dropped_;
          drop_errors_[one_line(PQerrorMessage(client.conn))]++;
          unwatch(client);
          PQfinish(client.conn);
          client.conn = nullptr;
          client.state = State::kFailed;
        } else {
          while (PGnotify* notify = PQnotifies(client.conn)) PQfreemem(notify);
        }
        break;
      default:
        break;
    }
  }

  void poll_connect(uint32_t index) {
    Client& client = clients_[index];
    switch (PQconnectPoll(client.conn)) {
      case PGRES_POLLING_READING:
        watch(index, EPOLLIN);
        return;
      case PGRES_POLLING_WRITING:
        watch(index, EPOLLOUT);
        return;
      case PGRES_POLLING_FAILED:
        fail(index, PQerrorMessage(client.conn));
        return;
      case PGRES_POLLING_OK:
        break;
      default:
        return;
    }
    login_ms_.push_back(ms_between(client.start, Clock::now()));
    PQsetnonblocking(client.conn, 1);
    if (options_.mode == Mode::kHold && !options_.query_in_hold) {
      become_idle(index);
      return;
    }
    send_query(index);
  }

  void send_query(uint32_t index) {
    Client& client = clients_[index];
    client.state = State::kQuerying;
    client.got_result = false;
    client.query_failed = false;
    client.query_start = Clock::now();
    if (!PQsendQuery(client.conn, options_.sql.c_str())) {
      fail(index, PQerrorMessage(client.conn));
      return;
    }
    flush_and_watch(index);
  }

  void flush_and_watch(uint32_t index) {
    Client& client = clients_[index];
    const int pending = PQflush(client.conn);
    if (pending < 0) {
      fail(index, PQerrorMessage(client.conn));
      return;
    }
    watch(index, pending ? EPOLLIN | EPOLLOUT : EPOLLIN);
  }

  void poll_query(uint32_t index) {
    Client& client = clients_[index];
    if (client.events & EPOLLOUT) {
      flush_and_watch(index);
      if (client.state != State::kQuerying) return;
    }
    if (!PQconsumeInput(client.conn)) {
      fail(index, PQerrorMessage(client.conn));
      return;
    }
    while (!PQisBusy(client.conn)) {
      PGresult* result = PQgetResult(client.conn);
      if (result == nullptr) {
        query_done(index);
        return;
      }
      const auto status = PQresultStatus(result);
      if (!client.got_result) {
        client.got_result = true;
        const auto now = Clock::now();
        if (options_.mode == Mode::kLoop) {
          window_ms_.push_back(ms_between(client.query_start, now));
        } else {
          first_result_ms_.push_back(ms_between(client.start, now));
        }
      }
      if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY &&
          !client.query_failed) {
        client.query_failed = true;
        query_error_ = one_line(PQresultErrorMessage(result));
      }
      PQclear(result);
    }
  }

  void query_done(uint32_t index) {
    Client& client = clients_[index];
    if (PQstatus(client.conn) == CONNECTION_BAD) {
      fail(index, PQerrorMessage(client.conn));
      return;
    }
    if (client.query_failed) {
      if (options_.mode == Mode::kLoop) {
        window_errors_[query_error_]++;
        send_query(index);
        return;
      }
      fail(index, query_error_.c_str());
      return;
    }
    switch (options_.mode) {
      case Mode::kBurst:
        unwatch(client);
        PQfinish(client.conn);
        client.conn = nullptr;
        client.state = State::kDone;
        ++ok_;
        end_attempt();
        break;
      case Mode::kHold:
        become_idle(index);
        break;
      case Mode::kLoop:
        if (!ready_) {
          ++ok_;
          end_attempt();
          // Until every client is connected the loop clients wait: the windows measure a
          // steady state of N clients.
          become_idle(index);
          if (ended_ == clients_.size()) start_loop();
          return;
        }
        send_query(index);
        break;
    }
  }

  void become_idle(uint32_t index) {
    Client& client = clients_[index];
    client.state = State::kIdle;
    if (options_.mode == Mode::kHold) {
      ++ok_;
      end_attempt();
    }
    watch(index, EPOLLIN);
  }

  void start_loop() {
    ready_ = true;
    window_start_ = Clock::now();
    window_ms_.clear();
    for (uint32_t i = 0; i < clients_.size(); ++i) {
      if (clients_[i].state == State::kIdle) send_query(i);
    }
  }

  void fail(uint32_t index, const char* message) {
    Client& client = clients_[index];
    // A loop client's attempt ended at its first result; later failures lose a bystander.
    const bool past_attempt = options_.mode == Mode::kLoop && ready_;
    if (past_attempt) {
      ++lost_;
      window_errors_[one_line(message)]++;
    } else {
      errors_[one_line(message)]++;
    }
    unwatch(client);
    if (client.conn) PQfinish(client.conn);
    client.conn = nullptr;
    client.state = State::kFailed;
    if (!past_attempt) {
      ++failed_;
      end_attempt();
      if (options_.mode == Mode::kLoop && ended_ == clients_.size()) start_loop();
    }
  }

  void end_attempt() {
    ++ended_;
    --in_flight_;
  }

  void sweep_deadlines(Clock::time_point now) {
    for (uint32_t i = 0; i < clients_.size(); ++i) {
      Client& client = clients_[i];
      const bool attempting =
          client.state == State::kConnecting ||
          (client.state == State::kQuerying && !(options_.mode == Mode::kLoop && ready_));
      if (attempting && now >= client.deadline) {
        fail(i, client.state == State::kConnecting ? "timeout: no login within --timeout"
                                                   : "timeout: no result within --timeout");
      }
    }
  }

  void maybe_announce() {
    if (announced_ || ended_ != clients_.size()) return;
    if (options_.mode == Mode::kHold) {
      announced_ = true;
      std::printf(
          "{\"mode\":\"hold\",\"event\":\"held\",\"clients\":%zu,\"ok\":%zu,\"failed\":%zu,%s,%s,"
          "\"wall_ms\":%.1f,\"cpu_ms\":%.1f}\n",
          clients_.size(), ok_, failed_, errors_json(errors_).c_str(),
          stats_json("login_", login_ms_).c_str(), ms_between(begin_, Clock::now()),
          cpu_ms() - cpu_begin_);
      std::fflush(stdout);
    } else if (options_.mode == Mode::kLoop && ready_) {
      announced_ = true;
      std::printf(
          "{\"mode\":\"loop\",\"event\":\"ready\",\"clients\":%zu,\"ok\":%zu,\"failed\":%zu,%s}\n",
          clients_.size(), ok_, failed_, errors_json(errors_).c_str());
      std::fflush(stdout);
    }
  }

  void print_window() {
    const auto now = Clock::now();
    const double seconds = ready_ ? ms_between(window_start_, now) / 1e3 : 0;
    // A query that never completes has no latency sample: the oldest one still running shows it.
    double outstanding = 0;
    for (const Client& client : clients_) {
      if (client.state == State::kQuerying) {
        outstanding = std::max(outstanding, ms_between(client.query_start, now));
      }
    }
    std::printf(
        "{\"mode\":\"loop\",\"event\":\"window\",\"window\":%zu,\"queries\":%zu,\"seconds\":%.3f,"
        "%s,\"outstanding_max_ms\":%.2f,\"lost\":%zu,%s}\n",
        window_++, window_ms_.size(), seconds, stats_json("", window_ms_).c_str(), outstanding,
        lost_, errors_json(window_errors_).c_str());
    std::fflush(stdout);
    window_ms_.clear();
    window_errors_.clear();
    window_start_ = now;
  }

  void finish() {
    const double wall = ms_between(begin_, Clock::now());
    const double cpu = cpu_ms() - cpu_begin_;
    switch (options_.mode) {
      case Mode::kBurst:
        std::printf(
            "{\"mode\":\"burst\",\"clients\":%zu,\"ok\":%zu,\"failed\":%zu,%s,%s,%s,"
            "\"wall_ms\":%.1f,\"cpu_ms\":%.1f}\n",
            clients_.size(), ok_, failed_, errors_json(errors_).c_str(),
            stats_json("", first_result_ms_).c_str(), stats_json("login_", login_ms_).c_str(), wall,
            cpu);
        break;
      case Mode::kHold:
        maybe_announce();
        std::printf("{\"mode\":\"hold\",\"event\":\"exit\",\"held\":%zu,\"dropped\":%zu,%s}\n",
                    ok_ - dropped_, dropped_, errors_json(drop_errors_).c_str());
        break;
      case Mode::kLoop:
        print_window();
        break;
    }
    std::fflush(stdout);
    for (Client& client : clients_) {
      if (client.conn) PQfinish(client.conn);
      client.conn = nullptr;
    }
  }

  Options options_;
  std::vector<Client> clients_;
  int epoll_ = -1;
  int signal_fd_ = -1;
  bool stop_ = false;
  Clock::duration timeout_{};
  Clock::time_point begin_;
  double cpu_begin_ = 0;
  size_t next_ = 0;
  size_t in_flight_ = 0;
  size_t ended_ = 0;
  size_t ok_ = 0;
  size_t failed_ = 0;
  size_t dropped_ = 0;
  size_t lost_ = 0;
  bool announced_ = false;
  bool ready_ = false;
  std::map<std::string, size_t> errors_;
  std::map<std::string, size_t> drop_errors_;
  std::map<std::string, size_t> window_errors_;
  std::string query_error_;
  std::vector<double> first_result_ms_;
  std::vector<double> login_ms_;
  std::vector<double> window_ms_;
  size_t window_ = 0;
  Clock::time_point window_start_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  raise_file_limit();
  std::signal(SIGPIPE, SIG_IGN);
  Bench bench(std::move(options));
  return bench.run();
}
