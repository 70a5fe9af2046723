/* libuv-workloads: the workloads of WORKLOADS.md on raw libuv, in C.
 *
 *   libuv-workloads <workload> <N> [reps=5]
 *
 * Prints the peers' one-line contract (see bench/peers/README.md):
 *   <workload> libuv <ops_per_sec> <ns_per_op> n=<N> samples_s=<s1,...>
 * Exit status: 0, 1 if a result does not check out, 2 for a usage error.
 *
 * libuv has no call_soon, future or task, so this program carries the
 * thinnest C equivalents, the design a libuv-backed asyncio would use:
 * - call_soon: a FIFO ring of {fn, arg} pairs (no allocation per item) drained
 *   by a uv_idle_t that is active while the ring is non-empty; one drain runs
 *   only the items present when it starts, so what they schedule runs in the
 *   next loop iteration, after a zero-timeout poll.
 * - call_soon_threadsafe: a mutex-guarded array + uv_async_send, sent only
 *   when the array goes from empty to non-empty; the async callback swaps the
 *   array out under the lock and runs the items outside it.
 * - timers: one uv_timer_t per timer (millisecond resolution).
 * - futures: heap-allocated, one callback slot; set_result posts the callback
 *   through call_soon; freed after the callback ran.
 * - tasks: a heap-allocated two-state machine whose steps go through call_soon.
 * - executor: uv_queue_work on libuv's pool, UV_THREADPOOL_SIZE=4.
 * - tcp: uv_read_start; uv_try_write, uv_write for what it did not take.
 */
#define _POSIX_C_SOURCE 200809L /* setenv, and the pthread types uv.h uses, under -std=c11 */
#include <uv.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ basics */

static uv_loop_t loop;

static void fail(const char* format, ...) {
  va_list args;
  va_start(args, format);
  fputs("libuv-workloads: ", stderr);
  vfprintf(stderr, format, args);
  fputc('\n', stderr);
  va_end(args);
  exit(1);
}

static void check_uv(int rc, const char* what) {
  if (rc < 0) fail("%s: %s", what, uv_strerror(rc));
}

static void* allocate(size_t bytes) {
  void* p = malloc(bytes);
  if (p == NULL) fail("out of memory (%zu bytes)", bytes);
  return p;
}

/* Monotonic seconds. */
static double now_s(void) {
  return (double)uv_hrtime() * 1e-9;
}

/* Where each workload takes t0 and t1. */
static double t0, t1;

/* ------------------------------------------------------------------ call_soon */

typedef void (*callback_fn)(void* arg);

typedef struct {
  callback_fn fn;
  void* arg;
} callback;

/* Invariant: idle is active exactly while count > 0; capacity is a power of two. */
static struct {
  callback* items;
  size_t capacity;
  size_t head;
  size_t count;
  uint64_t ran; /* callbacks run, ever */
  uv_idle_t idle;
} ready;

static void run_ready(uv_idle_t* idle);

static void ready_grow(void) {
  size_t capacity = ready.capacity != 0 ? ready.capacity * 2 : 1024;
  callback* items = allocate(capacity * sizeof *items);
  for (size_t i = 0; i < ready.count; ++i)
    items[i] = ready.items[(ready.head + i) & (ready.capacity - 1)];
  free(ready.items);
  ready.items = items;
  ready.capacity = capacity;
  ready.head = 0;
}

static void call_soon(callback_fn fn, void* arg) {
  if (ready.count == ready.capacity) ready_grow();
  callback* slot = &ready.items[(ready.head + ready.count) & (ready.capacity - 1)];
  slot->fn = fn;
  slot->arg = arg;
  if (ready.count++ == 0) uv_idle_start(&ready.idle, run_ready);
}

/* One pass: only the callbacks present now; what they schedule waits a pass. */
static void run_ready(uv_idle_t* idle) {
  size_t n = ready.count;
  for (size_t i = 0; i < n; ++i) {
    callback c = ready.items[ready.head];
    ready.head = (ready.head + 1) & (ready.capacity - 1);
    --ready.count;
    c.fn(c.arg);
  }
  ready.ran += n;
  if (ready.count == 0) uv_idle_stop(idle);
}

/* ------------------------------------------------------------------ call_soon_threadsafe */

/* items/count/capacity are guarded by lock; spare belongs to the loop thread.
 * async is referenced only while a workload waits for other threads. */
static struct {
  uv_mutex_t lock;
  callback* items;
  size_t count;
  size_t capacity;
  callback* spare;
  size_t spare_capacity;
  uv_async_t async;
} inbox;

static void call_soon_threadsafe(callback_fn fn, void* arg) {
  uv_mutex_lock(&inbox.lock);
  if (inbox.count == inbox.capacity) {
    size_t capacity = inbox.capacity != 0 ? inbox.capacity * 2 : 1024;
    callback* items = realloc(inbox.items, capacity * sizeof *items);
    if (items == NULL) fail("out of memory");
    inbox.items = items;
    inbox.capacity = capacity;
  }
  inbox.items[inbox.count].fn = fn;
  inbox.items[inbox.count].arg = arg;
  int was_empty = inbox.count++ == 0;
  uv_mutex_unlock(&inbox.lock);
  if (was_empty) check_uv(uv_async_send(&inbox.async), "uv_async_send");
}

static void run_inbox(uv_async_t* async) {
  (void)async;
  uv_mutex_lock(&inbox.lock);
  callback* batch = inbox.items;
  size_t batch_capacity = inbox.capacity;
  size_t n = inbox.count;
  inbox.items = inbox.spare;
  inbox.capacity = inbox.spare_capacity;
  inbox.count = 0;
  uv_mutex_unlock(&inbox.lock);
  for (size_t i = 0; i < n; ++i)
    batch[i].fn(batch[i].arg);
  inbox.spare = batch;
  inbox.spare_capacity = batch_capacity;
}

/* ------------------------------------------------------------------ W1 call_soon */

static int64_t n_ops;    /* N of the running workload */
static int64_t counter;  /* what the running workload counts */
static int64_t checksum; /* what the running workload adds up */

static void noop(void* arg) {
  (void)arg;
}

static void take_t1(void* arg) {
  (void)arg;
  t1 = now_s();
}

static void call_soon_start(void* arg) {
  (void)arg;
  t0 = now_s();
  for (int64_t i = 0; i < n_ops; ++i)
    call_soon(noop, NULL);
  call_soon(take_t1, NULL);
}

static double w_call_soon(int64_t n) {
  n_ops = n;
  uint64_t ran_before = ready.ran;
  call_soon(call_soon_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (ready.ran - ran_before != (uint64_t)n + 2)
    fail("call_soon: %llu callbacks ran, expected %lld",
         (unsigned long long)(ready.ran - ran_before), (long long)n + 2);
  return t1 - t0;
}

/* ------------------------------------------------------------------ W2 chain */

static void chain_step(void* arg) {
  if (--counter != 0) {
    call_soon(chain_step, arg);
  } else {
    t1 = now_s();
  }
}

static void chain_start(void* arg) {
  (void)arg;
  t0 = now_s();
  call_soon(chain_step, NULL);
}

static double w_chain(int64_t n) {
  counter = n;
  call_soon(chain_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (counter != 0) fail("chain: %lld steps did not run", (long long)counter);
  return t1 - t0;
}

/* ------------------------------------------------------------------ W3 threadsafe, W3b threadsafe2
 */

static uv_thread_t producers[2];
static int64_t producer_share[2];
static int producer_count;

static void threadsafe_received(void* arg) {
  (void)arg;
  if (++counter == n_ops) {
    t1 = now_s();
    uv_unref((uv_handle_t*)&inbox.async);
  }
}

static void produce(void* arg) {
  int64_t share = *(int64_t*)arg;
  for (int64_t i = 0; i < share; ++i)
    call_soon_threadsafe(threadsafe_received, NULL);
}

static void threadsafe_start(void* arg) {
  (void)arg;
  t0 = now_s();
  for (int p = 0; p < producer_count; ++p)
    check_uv(uv_thread_create(&producers[p], produce, &producer_share[p]), "uv_thread_create");
}

static double threadsafe(int64_t n, int producer_threads) {
  n_ops = n;
  counter = 0;
  producer_count = producer_threads;
  for (int p = 0; p < producer_threads; ++p)
    producer_share[p] = n / producer_threads + (p < n % producer_threads ? 1 : 0);
  uv_ref((uv_handle_t*)&inbox.async);
  call_soon(threadsafe_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (int p = 0; p < producer_threads; ++p)
    check_uv(uv_thread_join(&producers[p]), "uv_thread_join");
  if (counter != n)
    fail("threadsafe: %lld callbacks ran, expected %lld", (long long)counter, (long long)n);
  return t1 - t0;
}

static double w_threadsafe(int64_t n) {
  return threadsafe(n, 1);
}

static double w_threadsafe2(int64_t n) {
  return threadsafe(n, 2);
}

/* ------------------------------------------------------------------ W4 timers, W4c timers_cancel
 */

/* Caller-owned timers and the table of delays: prepared untimed. */
static uv_timer_t* timers;
static uint64_t* delays_ms;
static int64_t timers_prepared;

static void prepare_timers(int64_t n) {
  if (timers_prepared == n) return;
  free(timers);
  free(delays_ms);
  timers = allocate((size_t)n * sizeof *timers);
  delays_ms = allocate((size_t)n * sizeof *delays_ms);
  for (int64_t i = 0; i < n; ++i)
    delays_ms[i] = (uint64_t)((i * 7919) % 10000) / 1000; /* delay_us(i), in whole ms */
  timers_prepared = n;
}

static void close_timers(int64_t n) { /* untimed */
  for (int64_t i = 0; i < n; ++i)
    uv_close((uv_handle_t*)&timers[i], NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
}

static void timer_fired(uv_timer_t* timer) {
  (void)timer;
  if (++counter == n_ops) t1 = now_s();
}

static void start_timers(void) {
  for (int64_t i = 0; i < n_ops; ++i) {
    uv_timer_init(&loop, &timers[i]);
    check_uv(uv_timer_start(&timers[i], timer_fired, delays_ms[i], 0), "uv_timer_start");
  }
}

static void timers_start(void* arg) {
  (void)arg;
  t0 = now_s();
  start_timers();
}

static double w_timers(int64_t n) {
  prepare_timers(n);
  n_ops = n;
  counter = 0;
  call_soon(timers_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (counter != n)
    fail("timers: %lld timers fired, expected %lld", (long long)counter, (long long)n);
  close_timers(n);
  return t1 - t0;
}

static void timers_cancel_start(void* arg) {
  (void)arg;
  t0 = now_s();
  start_timers();
  for (int64_t i = 0; i < n_ops; ++i)
    uv_timer_stop(&timers[i]);
  call_soon(take_t1, NULL);
}

static double w_timers_cancel(int64_t n) {
  prepare_timers(n);
  n_ops = n;
  counter = 0;
  call_soon(timers_cancel_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (counter != 0) fail("timers_cancel: %lld cancelled timers fired", (long long)counter);
  close_timers(n);
  return t1 - t0;
}

/* ------------------------------------------------------------------ W5 futures */

/* A minimal future: one done callback, added before set_result. */
typedef struct future {
  int64_t result;
  void (*done_callback)(struct future* f);
} future;

static future* future_create(void) {
  future* f = allocate(sizeof *f);
  f->result = 0;
  f->done_callback = NULL;
  return f;
}

static void future_add_done_callback(future* f, void (*fn)(future* f)) {
  f->done_callback = fn;
}

static void future_run_done_callback(void* arg) {
  future* f = arg;
  f->done_callback(f);
  free(f);
}

/* The done callback goes through the ready queue, never inline. */
static void future_set_result(future* f, int64_t result) {
  f->result = result;
  call_soon(future_run_done_callback, f);
}

static void add_result(future* f) {
  checksum += f->result;
}

static void futures_start(void* arg) {
  (void)arg;
  t0 = now_s();
  for (int64_t i = 0; i < n_ops; ++i) {
    future* f = future_create();
    future_add_done_callback(f, add_result);
    future_set_result(f, i);
  }
  call_soon(take_t1, NULL);
}

static double w_futures(int64_t n) {
  n_ops = n;
  checksum = 0;
  call_soon(futures_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (checksum != n * (n - 1) / 2)
    fail("futures: checksum %lld, expected %lld", (long long)checksum,
         (long long)(n * (n - 1) / 2));
  return t1 - t0;
}

/* ------------------------------------------------------------------ W6 tasks */

/* `async def t(i): await sleep0(); return i` as a state machine stepped through
 * call_soon, like asyncio's Task.__step; the gather is a counter and a sum. */
typedef struct {
  enum { TASK_START, TASK_AFTER_SLEEP } state;
  int64_t i;
} task;

static void task_step(void* arg) {
  task* t = arg;
  switch (t->state) {
    case TASK_START:
      t->state = TASK_AFTER_SLEEP;
      call_soon(task_step, t); /* sleep0: resume on a later iteration */
      break;
    case TASK_AFTER_SLEEP:
      checksum += t->i; /* the result, delivered to the gather */
      free(t);
      if (++counter == n_ops) t1 = now_s();
      break;
  }
}

static void tasks_start(void* arg) {
  (void)arg;
  t0 = now_s();
  for (int64_t i = 0; i < n_ops; ++i) {
    task* t = allocate(sizeof *t);
    t->state = TASK_START;
    t->i = i;
    call_soon(task_step, t); /* create_task: the first step goes through the loop */
  }
}

static double w_tasks(int64_t n) {
  n_ops = n;
  counter = 0;
  checksum = 0;
  call_soon(tasks_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (counter != n || checksum != n * (n - 1) / 2)
    fail("tasks: %lld results adding up to %lld, expected %lld adding up to %lld",
         (long long)counter, (long long)checksum, (long long)n, (long long)(n * (n - 1) / 2));
  return t1 - t0;
}

/* ------------------------------------------------------------------ W7 executor */

typedef struct {
  uv_work_t request;
  int64_t argument;
  int64_t result;
} work;

static work* works; /* caller-owned requests, reserved untimed */
static int64_t works_prepared;
static uv_barrier_t warm_barrier;

static void trivial(uv_work_t* request) {
  work* w = (work*)request;
  w->result = w->argument + 1;
}

static void work_done(uv_work_t* request, int status) {
  check_uv(status, "uv_queue_work");
  checksum += ((work*)request)->result;
  if (++counter == n_ops) t1 = now_s();
}

static void wait_for_all_workers(uv_work_t* request) {
  (void)request;
  uv_barrier_wait(&warm_barrier);
}

static void warmed(uv_work_t* request, int status) {
  (void)request;
  check_uv(status, "uv_queue_work");
}

/* Starts the pool's 4 threads, untimed: 4 jobs that wait for one another. */
static void warm_pool(void) {
  static int warm;
  if (warm) return;
  uv_work_t requests[4];
  check_uv(uv_barrier_init(&warm_barrier, 4), "uv_barrier_init");
  for (int i = 0; i < 4; ++i)
    check_uv(uv_queue_work(&loop, &requests[i], wait_for_all_workers, warmed), "uv_queue_work");
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_barrier_destroy(&warm_barrier);
  warm = 1;
}

static void executor_start(void* arg) {
  (void)arg;
  t0 = now_s();
  for (int64_t i = 0; i < n_ops; ++i) {
    works[i].argument = i;
    check_uv(uv_queue_work(&loop, &works[i].request, trivial, work_done), "uv_queue_work");
  }
}

static double w_executor(int64_t n) {
  warm_pool();
  if (works_prepared != n) {
    free(works);
    works = allocate((size_t)n * sizeof *works);
    works_prepared = n;
  }
  n_ops = n;
  counter = 0;
  checksum = 0;
  call_soon(executor_start, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (counter != n || checksum != n * (n + 1) / 2)
    fail("executor: %lld results adding up to %lld, expected %lld adding up to %lld",
         (long long)counter, (long long)checksum, (long long)n, (long long)(n * (n + 1) / 2));
  return t1 - t0;
}

/* ------------------------------------------------------------------ W8 tcp_pingpong, tcp_pipelined
 */

enum { MESSAGE = 64, MAX_WINDOW = 100, READ_BUFFER = 64 * 1024 };

typedef struct {
  uv_write_t request;
  char data[]; /* what uv_try_write did not take, when the caller's buffer is reused */
} pending_write;

/* The listener lives from the first repetition to the end, unreferenced; each
 * repetition connects client to served. */
static struct {
  int listening;
  uv_tcp_t listener;
  struct sockaddr_in address;
  uv_tcp_t client;
  uv_tcp_t served;
  uv_connect_t connect_request;
  int ends_ready; /* 2 once connected and accepted */
  int64_t window;
  int64_t sent;          /* messages */
  int64_t received;      /* bytes */
  int64_t received_msgs; /* complete messages in received */
  char outgoing[MESSAGE * MAX_WINDOW];
  char client_buffer[READ_BUFFER];
  char served_buffer[READ_BUFFER];
} tcp;

static void written(uv_write_t* request, int status) {
  check_uv(status, "uv_write");
  free(request);
}

/* Writes data now if the socket takes it, queues the rest; copy: whether the
 * rest must be copied because the caller reuses its buffer. */
static void write_bytes(uv_tcp_t* socket, const char* data, size_t length, int copy) {
  uv_buf_t buffer = uv_buf_init((char*)data, (unsigned)length);
  int taken = uv_try_write((uv_stream_t*)socket, &buffer, 1);
  if (taken == UV_EAGAIN) taken = 0;
  check_uv(taken, "uv_try_write");
  if ((size_t)taken == length) return;
  size_t rest = length - (size_t)taken;
  pending_write* w = allocate(sizeof *w + (copy ? rest : 0));
  buffer = uv_buf_init((char*)data + taken, (unsigned)rest);
  if (copy) {
    memcpy(w->data, buffer.base, rest);
    buffer.base = w->data;
  }
  check_uv(uv_write(&w->request, (uv_stream_t*)socket, &buffer, 1, written), "uv_write");
}

static void allocate_read_buffer(uv_handle_t* handle, size_t suggested, uv_buf_t* buffer) {
  (void)suggested;
  char* base = handle == (uv_handle_t*)&tcp.client ? tcp.client_buffer : tcp.served_buffer;
  *buffer = uv_buf_init(base, READ_BUFFER);
}

static void served_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
  if (nread > 0) {
    write_bytes((uv_tcp_t*)stream, buffer->base, (size_t)nread, 1); /* the echo */
  } else if (nread < 0 && nread != UV_EOF) {
    check_uv((int)nread, "server read");
  }
}

static void send_messages(int64_t count) {
  write_bytes(&tcp.client, tcp.outgoing, (size_t)count * MESSAGE, 0);
  tcp.sent += count;
}

static void client_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buffer) {
  (void)buffer;
  if (nread < 0) check_uv((int)nread, "client read");
  tcp.received += nread;
  int64_t complete = tcp.received / MESSAGE;
  int64_t grown = complete - tcp.received_msgs;
  tcp.received_msgs = complete;
  int64_t more = n_ops - tcp.sent < grown ? n_ops - tcp.sent : grown;
  if (more > 0) send_messages(more);
  if (tcp.received == n_ops * MESSAGE) {
    t1 = now_s();
    uv_read_stop(stream); /* closing is untimed */
    uv_close((uv_handle_t*)&tcp.client, NULL);
    uv_close((uv_handle_t*)&tcp.served, NULL);
  }
}

/* Both ends are ready: t0, and the first window of messages. */
static void end_ready(void) {
  if (++tcp.ends_ready < 2) return;
  t0 = now_s();
  send_messages(tcp.window < n_ops ? tcp.window : n_ops);
}

static void accepted(uv_stream_t* listener, int status) {
  check_uv(status, "listen");
  check_uv(uv_tcp_init(&loop, &tcp.served), "uv_tcp_init");
  check_uv(uv_accept(listener, (uv_stream_t*)&tcp.served), "uv_accept");
  check_uv(uv_tcp_nodelay(&tcp.served, 1), "uv_tcp_nodelay");
  check_uv(uv_read_start((uv_stream_t*)&tcp.served, allocate_read_buffer, served_read),
           "uv_read_start");
  end_ready();
}

static void connected(uv_connect_t* request, int status) {
  (void)request;
  check_uv(status, "uv_tcp_connect");
  check_uv(uv_tcp_nodelay(&tcp.client, 1), "uv_tcp_nodelay");
  check_uv(uv_read_start((uv_stream_t*)&tcp.client, allocate_read_buffer, client_read),
           "uv_read_start");
  end_ready();
}

static void listen_once(void) {
  if (tcp.listening) return;
  check_uv(uv_tcp_init(&loop, &tcp.listener), "uv_tcp_init");
  check_uv(uv_ip4_addr("127.0.0.1", 0, &tcp.address), "uv_ip4_addr");
  check_uv(uv_tcp_bind(&tcp.listener, (const struct sockaddr*)&tcp.address, 0), "uv_tcp_bind");
  check_uv(uv_listen((uv_stream_t*)&tcp.listener, 16, accepted), "uv_listen");
  int length = sizeof tcp.address;
  check_uv(uv_tcp_getsockname(&tcp.listener, (struct sockaddr*)&tcp.address, &length),
           "uv_tcp_getsockname");
  uv_unref((uv_handle_t*)&tcp.listener); /* the loop runs while a connection does */
  memset(tcp.outgoing, 'x', sizeof tcp.outgoing);
  tcp.listening = 1;
}

static double tcp_echo(int64_t n, int64_t window) {
  listen_once();
  n_ops = n;
  tcp.window = window;
  tcp.ends_ready = 0;
  tcp.sent = 0;
  tcp.received = 0;
  tcp.received_msgs = 0;
  check_uv(uv_tcp_init(&loop, &tcp.client), "uv_tcp_init");
  check_uv(uv_tcp_connect(&tcp.connect_request, &tcp.client, (const struct sockaddr*)&tcp.address,
                          connected),
           "uv_tcp_connect");
  uv_run(&loop, UV_RUN_DEFAULT);
  if (tcp.received != n * MESSAGE)
    fail("tcp: %lld bytes came back, expected %lld", (long long)tcp.received,
         (long long)(n * MESSAGE));
  return t1 - t0;
}

static double w_tcp_pingpong(int64_t n) {
  return tcp_echo(n, 1);
}

static double w_tcp_pipelined(int64_t n) {
  return tcp_echo(n, MAX_WINDOW);
}

/* ------------------------------------------------------------------ the contract */

static const struct {
  const char* name;
  double (*run)(int64_t n);
} workloads[] = {
    {"call_soon", w_call_soon},
    {"chain", w_chain},
    {"threadsafe", w_threadsafe},
    {"threadsafe2", w_threadsafe2},
    {"timers", w_timers},
    {"timers_cancel", w_timers_cancel},
    {"futures", w_futures},
    {"tasks", w_tasks},
    {"executor", w_executor},
    {"tcp_pingpong", w_tcp_pingpong},
    {"tcp_pipelined", w_tcp_pipelined},
};

static int parse_int(const char* text, long long min, long long max, int64_t* out) {
  char* end = NULL;
  long long v = strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < min || v > max) return 0;
  *out = v;
  return 1;
}

static int compare_doubles(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static int usage(const char* argv0) {
  fprintf(stderr, "usage: %s <workload> <N> [reps=5]\n  workloads:", argv0);
  for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; ++i)
    fprintf(stderr, " %s", workloads[i].name);
  fputc('\n', stderr);
  return 2;
}

int main(int argc, char** argv) {
  int64_t n = 0, reps = 5;
  if (argc < 3 || argc > 4) return usage(argv[0]);
  if (!parse_int(argv[2], 1, 1LL << 40, &n) || (argc > 3 && !parse_int(argv[3], 1, 1000, &reps)))
    return usage(argv[0]);
  double (*run)(int64_t) = NULL;
  for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; ++i)
    if (strcmp(argv[1], workloads[i].name) == 0) run = workloads[i].run;
  if (run == NULL) {
    fprintf(stderr, "libuv-workloads: unknown workload '%s'\n", argv[1]);
    return usage(argv[0]);
  }

  /* Before libuv's pool starts (W7 wants 4 workers). */
  setenv("UV_THREADPOOL_SIZE", "4", 1);
  check_uv(uv_loop_init(&loop), "uv_loop_init");
  check_uv(uv_idle_init(&loop, &ready.idle), "uv_idle_init");
  check_uv(uv_mutex_init(&inbox.lock), "uv_mutex_init");
  check_uv(uv_async_init(&loop, &inbox.async, run_inbox), "uv_async_init");
  uv_unref((uv_handle_t*)&inbox.async);

  double* samples = allocate((size_t)reps * sizeof *samples);
  for (int64_t r = 0; r < reps; ++r) {
    samples[r] = run(n);
    if (!(samples[r] > 0)) fail("%s: t1 was not taken after t0", argv[1]);
  }

  double* sorted = allocate((size_t)reps * sizeof *sorted);
  memcpy(sorted, samples, (size_t)reps * sizeof *sorted);
  qsort(sorted, (size_t)reps, sizeof *sorted, compare_doubles);
  double median =
      reps % 2 != 0 ? sorted[reps / 2] : 0.5 * (sorted[reps / 2 - 1] + sorted[reps / 2]);
  printf("%s libuv %.0f %.1f n=%lld samples_s=", argv[1], (double)n / median,
         median / (double)n * 1e9, (long long)n);
  for (int64_t r = 0; r < reps; ++r)
    printf("%s%.6f", r != 0 ? "," : "", samples[r]);
  printf("\n");

  uv_close((uv_handle_t*)&ready.idle, NULL);
  uv_close((uv_handle_t*)&inbox.async, NULL);
  if (tcp.listening) uv_close((uv_handle_t*)&tcp.listener, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0) fail("uv_loop_close: handles still open");
  uv_mutex_destroy(&inbox.lock);
  free(samples);
  free(sorted);
  free(ready.items);
  free(inbox.items);
  free(inbox.spare);
  free(timers);
  free(delays_ms);
  free(works);
  return fflush(stdout) == 0 ? 0 : 1;
}
