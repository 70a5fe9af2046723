// asio-workloads: the workloads of WORKLOADS.md on Boost.Asio (Debian's
// libboost-dev), an io_context run by one thread.
//
//   asio-workloads <workload> <N> [reps=5]     (the contract: contract.hpp)
//
// - call_soon is asio::post(io_context, handler). A steady_timer exists from
//   start-up: without an I/O object the io_context has no epoll reactor, never
//   polls, and W2 would measure a queue pop instead of a loop iteration.
// - call_soon_threadsafe is the same post, from the producer threads; an
//   executor_work_guard keeps run() going meanwhile.
// - timers: one steady_timer per timer + async_wait; a cancelled wait still
//   runs its handler (operation_aborted), which W4c counts.
// - futures: heap-allocated, one callback slot, posted on set_result.
// - tasks: co_spawn of an awaitable; sleep0 is co_await post(use_awaitable).
// - executor: asio::thread_pool(4); each job posts its result back.
// - tcp: completion handlers; the server echoes each read with async_write;
//   the client keeps at most one async_write in flight.
#include <array>
#include <chrono>
#include <cstdint>
#include <exception>
#include <latch>
#include <memory>
#include <optional>
#include <thread>
#include <utility>  // before Boost 1.74's awaitable.hpp, which uses std::exchange without it
#include <vector>

// Boost 1.74 looks for <experimental/coroutine> under clang, which libstdc++
// lacks; clang 14 builds asio's coroutines on the standard <coroutine>.
#if defined(__clang__) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "contract.hpp"

namespace {

namespace asio = boost::asio;
using boost::system::error_code;
using peers::check;
using peers::now_s;
using peers::Span;
using tcp = asio::ip::tcp;

/// A minimal future: heap-allocated, one done callback added before
/// set_result, which posts it; freed after the callback ran.
struct MiniFuture {
  std::int64_t result = 0;
  void (*done_callback)(MiniFuture& f, void* arg) = nullptr;
  void* arg = nullptr;

  void add_done_callback(void (*fn)(MiniFuture&, void*), void* a) {
    done_callback = fn;
    arg = a;
  }
  void set_result(asio::io_context& io, std::int64_t value) {
    result = value;
    asio::post(io, [this] {
      done_callback(*this, arg);
      delete this;
    });
  }
};

// Tasks run on the io_context's own executor type rather than the default
// type-erased any_io_executor, which costs each post a polymorphic call.
using Executor = asio::io_context::executor_type;

asio::awaitable<std::int64_t, Executor> sleep0_then_return(std::int64_t i) {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable_t<Executor>());
  co_return i;  // after the sleep0 above: resumed from the queue
}

/// Counts up to `expected`, then takes t1.
struct Counter {
  explicit Counter(std::int64_t e) : expected(e) {}
  std::int64_t expected;
  std::int64_t count = 0;
  Span span;
  bool add() {
    if (++count != expected) return false;
    span.t1 = now_s();
    return true;
  }
};

class AsioWorkloads {
 public:
  double call_soon(std::int64_t n) {
    Span span;
    asio::post(io_, [this, n, &span] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i)
        asio::post(io_, [] {});
      asio::post(io_, [&span] { span.t1 = now_s(); });
    });
    const std::size_t ran = run();
    check(ran == static_cast<std::size_t>(n) + 2, "call_soon: wrong number of handlers ran");
    return span.seconds();
  }

  double chain(std::int64_t n) {
    struct Chain {
      asio::io_context* io;
      std::int64_t left;
      Span span;
      void step() {
        if (--left != 0) {
          asio::post(*io, [this] { step(); });
        } else {
          span.t1 = now_s();
        }
      }
    } c{&io_, n, {}};
    asio::post(io_, [&c] {
      c.span.t0 = now_s();
      asio::post(*c.io, [&c] { c.step(); });
    });
    run();
    check(c.left == 0, "chain: steps did not run");
    return c.span.seconds();
  }

  double threadsafe(std::int64_t n) { return threadsafe_from(n, 1); }
  double threadsafe2(std::int64_t n) { return threadsafe_from(n, 2); }

  double timers(std::int64_t n) {
    prepare_timers(n);
    Counter fired{n};
    asio::post(io_, [this, &fired] {
      fired.span.t0 = now_s();
      for (std::chrono::microseconds d : delays_) {
        asio::steady_timer& t = timers_.emplace_back(io_);
        t.expires_after(d);
        t.async_wait([&fired](const error_code& ec) {
          if (!ec) fired.add();
        });
      }
    });
    run();
    timers_.clear();  // untimed
    check(fired.count == n, "timers: " + std::to_string(fired.count) + " timers fired");
    return fired.span.seconds();
  }

  // t1 once the sentinel and all n aborted handlers have run.
  double timers_cancel(std::int64_t n) {
    prepare_timers(n);
    Counter finished{n + 1};  // the aborted handlers and the sentinel
    std::int64_t fired = 0;
    asio::post(io_, [&, this] {
      finished.span.t0 = now_s();
      for (std::chrono::microseconds d : delays_) {
        asio::steady_timer& t = timers_.emplace_back(io_);
        t.expires_after(d);
        t.async_wait([&](const error_code& ec) {
          if (ec == asio::error::operation_aborted) {
            finished.add();
          } else {
            ++fired;
          }
        });
      }
      for (asio::steady_timer& t : timers_)
        t.cancel();
      asio::post(io_, [&finished] { finished.add(); });
    });
    run();
    timers_.clear();  // untimed
    check(fired == 0 && finished.count == n + 1, "timers_cancel: a cancelled timer fired");
    return finished.span.seconds();
  }

  double futures(std::int64_t n) {
    Span span;
    std::int64_t checksum = 0;
    asio::post(io_, [&, this] {
      span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        auto* f = new MiniFuture;
        f->add_done_callback(
            [](MiniFuture& done, void* sum) { *static_cast<std::int64_t*>(sum) += done.result; },
            &checksum);
        f->set_result(io_, i);
      }
      asio::post(io_, [&span] { span.t1 = now_s(); });
    });
    run();
    check(checksum == n * (n - 1) / 2, "futures: wrong checksum " + std::to_string(checksum));
    return span.seconds();
  }

  double tasks(std::int64_t n) {
    Counter finished{n};
    std::int64_t sum = 0;
    asio::post(io_, [&, this] {
      finished.span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        asio::co_spawn(io_.get_executor(), sleep0_then_return(i),
                       [&](std::exception_ptr e, std::int64_t result) {
                         if (e) std::rethrow_exception(e);
                         sum += result;
                         finished.add();
                       });
      }
    });
    run();
    check(finished.count == n && sum == n * (n - 1) / 2, "tasks: wrong results");
    return finished.span.seconds();
  }

  double executor(std::int64_t n) {
    if (!pool_) {  // created and warmed untimed: 4 jobs that wait for one another
      pool_.emplace(4);
      auto all_started = std::make_shared<std::latch>(5);  // outlives the last waiter
      for (int i = 0; i < 4; ++i)
        asio::post(*pool_, [all_started] { all_started->arrive_and_wait(); });
      all_started->arrive_and_wait();
    }
    Counter results{n};
    std::int64_t checksum = 0;
    auto guard = std::make_optional(asio::make_work_guard(io_));
    asio::post(io_, [&, this] {
      results.span.t0 = now_s();
      for (std::int64_t i = 0; i < n; ++i) {
        asio::post(*pool_, [&, this, i] {
          const std::int64_t r = i + 1;  // trivial(i)
          asio::post(io_, [&, r] {
            checksum += r;
            if (results.add()) guard.reset();
          });
        });
      }
    });
    run();
    check(results.count == n && checksum == n * (n + 1) / 2, "executor: wrong results");
    return results.span.seconds();
  }

  double tcp_pingpong(std::int64_t n) { return tcp_echo(n, 1); }
  double tcp_pipelined(std::int64_t n) { return tcp_echo(n, 100); }

 private:
  static constexpr std::size_t kMessage = 64;

  std::size_t run() {
    io_.restart();
    return io_.run();
  }

  double threadsafe_from(std::int64_t n, int producers) {
    Counter received{n};
    std::vector<std::thread> threads;
    auto guard = std::make_optional(asio::make_work_guard(io_));
    asio::post(io_, [&, this] {
      received.span.t0 = now_s();
      for (int p = 0; p < producers; ++p) {
        const std::int64_t share = n / producers + (p < n % producers ? 1 : 0);
        threads.emplace_back([&, this, share] {
          for (std::int64_t i = 0; i < share; ++i) {
            asio::post(io_, [&] {
              if (received.add()) guard.reset();
            });
          }
        });
      }
    });
    run();
    for (std::thread& t : threads)
      t.join();
    check(received.count == n, "threadsafe: wrong number of handlers ran");
    return received.span.seconds();
  }

  void prepare_timers(std::int64_t n) {
    timers_.clear();
    timers_.reserve(static_cast<std::size_t>(n));
    if (static_cast<std::int64_t>(delays_.size()) == n) return;
    delays_.clear();
    for (std::int64_t i = 0; i < n; ++i)
      delays_.push_back(peers::delay_of(i));
  }

  /// The server end: echoes every chunk it reads, one async_write at a time.
  struct Echo {
    tcp::socket socket;
    std::array<char, 64 * 1024> buffer{};
    void read() {
      socket.async_read_some(asio::buffer(buffer), [this](const error_code& ec, std::size_t got) {
        if (ec) return;  // closed after t1
        asio::async_write(socket, asio::buffer(buffer, got),
                          [this](const error_code& write_error, std::size_t) {
                            if (!write_error) read();
                          });
      });
    }
  };

  /// The client end: a window of messages outstanding, at most one async_write
  /// in flight; messages due meanwhile leave together in the next one.
  struct Client {
    Client(asio::io_context& io, Echo* e, std::int64_t count, std::int64_t w)
        : socket(io), server(e), n(count), window(w) {}
    tcp::socket socket;
    Echo* server;
    std::int64_t n, window;
    std::int64_t sent = 0, queued = 0, received = 0, received_msgs = 0;
    bool writing = false;
    Span span;
    std::vector<char> outgoing;
    std::array<char, 64 * 1024> buffer{};

    void start() {
      span.t0 = now_s();
      send(std::min(window, n));
      read();
    }
    void send(std::int64_t count) {
      sent += count;
      queued += count;
      if (!writing) write_queued();
    }
    void write_queued() {
      const auto bytes = static_cast<std::size_t>(queued) * kMessage;
      queued = 0;
      writing = true;
      asio::async_write(socket, asio::buffer(outgoing.data(), bytes),
                        [this](const error_code& ec, std::size_t) {
                          writing = false;
                          if (!ec && queued > 0) write_queued();
                        });
    }
    void read() {
      socket.async_read_some(asio::buffer(buffer), [this](const error_code& ec, std::size_t got) {
        if (ec) return;
        received += static_cast<std::int64_t>(got);
        const std::int64_t complete = received / static_cast<std::int64_t>(kMessage);
        const std::int64_t more = std::min(complete - received_msgs, n - sent);
        received_msgs = complete;
        if (more > 0) send(more);
        if (received == n * static_cast<std::int64_t>(kMessage)) {
          span.t1 = now_s();
          socket.close();  // untimed from here
          server->socket.close();
          return;
        }
        read();
      });
    }
  };

  double tcp_echo(std::int64_t n, std::int64_t window) {
    if (!acceptor_) acceptor_.emplace(io_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
    Echo server{tcp::socket(io_)};
    Client client(io_, &server, n, window);
    client.outgoing.assign(static_cast<std::size_t>(window) * kMessage, 'x');
    int ends_ready = 0;
    auto end_ready = [&] {
      if (++ends_ready == 2) client.start();
    };
    acceptor_->async_accept(server.socket, [&](const error_code& ec) {
      check(!ec, "accept: " + ec.message());
      server.socket.set_option(tcp::no_delay(true));
      server.read();
      end_ready();
    });
    client.socket.async_connect(acceptor_->local_endpoint(), [&](const error_code& ec) {
      check(!ec, "connect: " + ec.message());
      client.socket.set_option(tcp::no_delay(true));
      end_ready();
    });
    run();
    check(client.received == n * static_cast<std::int64_t>(kMessage), "tcp: wrong byte count");
    return client.span.seconds();
  }

  asio::io_context io_{1};
  asio::steady_timer reactor_{io_};                // gives io_ its epoll reactor (see above)
  std::vector<std::chrono::microseconds> delays_;  // W4, W4c: untimed table
  std::vector<asio::steady_timer> timers_;         // W4, W4c: reserved untimed
  std::optional<asio::thread_pool> pool_;          // W7: created once, untimed
  std::optional<tcp::acceptor> acceptor_;          // W8: created once, untimed
};

constexpr peers::Workload<AsioWorkloads> kWorkloads[] = {
    {"call_soon", &AsioWorkloads::call_soon},
    {"chain", &AsioWorkloads::chain},
    {"threadsafe", &AsioWorkloads::threadsafe},
    {"threadsafe2", &AsioWorkloads::threadsafe2},
    {"timers", &AsioWorkloads::timers},
    {"timers_cancel", &AsioWorkloads::timers_cancel},
    {"futures", &AsioWorkloads::futures},
    {"tasks", &AsioWorkloads::tasks},
    {"executor", &AsioWorkloads::executor},
    {"tcp_pingpong", &AsioWorkloads::tcp_pingpong},
    {"tcp_pipelined", &AsioWorkloads::tcp_pipelined},
};

}  // namespace

int main(int argc, char** argv) {
  return peers::contract_main(argc, argv, "asio", kWorkloads);
}
