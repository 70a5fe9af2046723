#!/usr/bin/python3
"""The workloads of WORKLOADS.md on Python's asyncio and on uvloop.

    asyncio_workloads.py asyncio|uvloop <workload> <N> [reps=5]

Runs the workload `reps` times on one event loop and prints the peers' one
line (bench/peers/README.md):
    <workload> <asyncio|uvloop> <ops_per_sec> <ns_per_op> n=<N> samples_s=<s1,...>
Exit status: 0, 1 if a result does not check out, 2 for a usage error.

Needs Debian's /usr/bin/python3 for uvloop (python3-uvloop). Every workload
uses the loop's public API the way an application would.
"""

import asyncio
import concurrent.futures
import socket
import statistics
import sys
import threading
import time

now = time.perf_counter
MESSAGE = b"x" * 64


class ValidationError(Exception):
    """A workload's result did not check out: the measurement means nothing."""


def check(ok, what):
    if not ok:
        raise ValidationError(what)


class Span:
    """Where a workload takes t0 and t1."""

    def __init__(self):
        self.t0 = self.t1 = 0.0

    def seconds(self):
        check(self.t1 > self.t0, "the workload did not take t1 after t0")
        return self.t1 - self.t0


def run_from_loop(loop, start):
    """Runs start() as a callback of the loop; returns when it calls loop.stop()."""
    loop.call_soon(start)
    loop.run_forever()


class Workloads:
    def __init__(self, loop):
        self.loop = loop
        self.delays = []  # W4, W4c: the untimed table of delays, in seconds
        self.executor_pool = None  # W7: created and warmed once, untimed
        self.server = None  # W8: listening once, untimed
        self.accepted = None  # W8: resolves to the server end of the connection

    # W1: t0; call_soon(noop) n times; call_soon(sentinel), which takes t1.
    def call_soon(self, n):
        loop, span = self.loop, Span()

        def noop():
            pass

        def sentinel():
            span.t1 = now()
            loop.stop()

        def start():
            span.t0 = now()
            call_soon = loop.call_soon
            for _ in range(n):
                call_soon(noop)
            call_soon(sentinel)

        run_from_loop(loop, start)
        return span.seconds()

    # W2: each step schedules the next, which runs on the next iteration.
    def chain(self, n):
        loop, span = self.loop, Span()
        left = n

        def step():
            nonlocal left
            left -= 1
            if left != 0:
                loop.call_soon(step)
            else:
                span.t1 = now()
                loop.stop()

        def start():
            span.t0 = now()
            loop.call_soon(step)

        run_from_loop(loop, start)
        check(left == 0, "chain: steps did not run")
        return span.seconds()

    # W3, W3b: producer threads call call_soon_threadsafe(cb) n times in all.
    def threadsafe_from(self, n, producers):
        loop, span = self.loop, Span()
        received = 0
        threads = []

        def cb():
            nonlocal received
            received += 1
            if received == n:
                span.t1 = now()
                loop.stop()

        def produce(share):
            call_soon_threadsafe = loop.call_soon_threadsafe
            for _ in range(share):
                call_soon_threadsafe(cb)

        def start():
            span.t0 = now()
            for p in range(producers):
                share = n // producers + (1 if p < n % producers else 0)
                threads.append(threading.Thread(target=produce, args=(share,)))
                threads[-1].start()

        run_from_loop(loop, start)
        for t in threads:
            t.join()
        check(received == n, "threadsafe: wrong number of callbacks ran")
        return span.seconds()

    def threadsafe(self, n):
        return self.threadsafe_from(n, 1)

    def threadsafe2(self, n):
        return self.threadsafe_from(n, 2)

    def prepare_delays(self, n):
        if len(self.delays) != n:
            self.delays = [(i * 7919) % 10000 / 1e6 for i in range(n)]

    # W4: call_later(delay(i), cb) for every i; the n-th cb takes t1.
    def timers(self, n):
        self.prepare_delays(n)
        loop, span, delays = self.loop, Span(), self.delays
        fired = 0

        def cb():
            nonlocal fired
            fired += 1
            if fired == n:
                span.t1 = now()
                loop.stop()

        def start():
            span.t0 = now()
            call_later = loop.call_later
            for d in delays:
                call_later(d, cb)

        run_from_loop(loop, start)
        check(fired == n, "timers: wrong number of timers fired")
        return span.seconds()

    # W4c: create n timers as W4, cancel them all in creation order, then a
    # sentinel (after the loop's housekeeping of that iteration) takes t1.
    def timers_cancel(self, n):
        self.prepare_delays(n)
        loop, span, delays = self.loop, Span(), self.delays
        fired = 0

        def cb():
            nonlocal fired
            fired += 1

        def sentinel():
            span.t1 = now()
            loop.stop()

        def start():
            span.t0 = now()
            call_later = loop.call_later
            handles = [call_later(d, cb) for d in delays]
            for h in handles:
                h.cancel()
            loop.call_soon(sentinel)

        run_from_loop(loop, start)
        check(fired == 0, "timers_cancel: cancelled timers fired")
        return span.seconds()

    # W5: create_future, add_done_callback, set_result, n times; a sentinel.
    def futures(self, n):
        loop, span = self.loop, Span()
        checksum = 0

        def cb(f):
            nonlocal checksum
            checksum += f.result()

        def sentinel():
            span.t1 = now()
            loop.stop()

        def start():
            span.t0 = now()
            create_future = loop.create_future
            for i in range(n):
                f = create_future()
                f.add_done_callback(cb)
                f.set_result(i)
            loop.call_soon(sentinel)

        run_from_loop(loop, start)
        check(checksum == n * (n - 1) // 2, "futures: wrong checksum")
        return span.seconds()

    # W6: n tasks of `await sleep(0); return i`, gathered.
    def tasks(self, n):
        loop, span = self.loop, Span()

        async def t(i):
            await asyncio.sleep(0)
            return i

        async def main():
            span.t0 = now()
            create_task = loop.create_task
            results = await asyncio.gather(*[create_task(t(i)) for i in range(n)])
            span.t1 = now()
            return results

        results = loop.run_until_complete(main())
        check(sum(results) == n * (n - 1) // 2, "tasks: wrong results")
        return span.seconds()

    # W7: n calls of trivial(i) = i + 1 on a pool of 4 threads, gathered.
    def executor(self, n):
        loop, span = self.loop, Span()
        if self.executor_pool is None:
            self.executor_pool = concurrent.futures.ThreadPoolExecutor(4)
            all_started = threading.Barrier(4)  # 4 busy jobs: 4 threads
            warm = [self.executor_pool.submit(all_started.wait) for _ in range(4)]
            concurrent.futures.wait(warm)
        pool = self.executor_pool

        def trivial(i):
            return i + 1

        async def main():
            span.t0 = now()
            run_in_executor = loop.run_in_executor
            results = await asyncio.gather(*[run_in_executor(pool, trivial, i) for i in range(n)])
            span.t1 = now()
            return results

        results = loop.run_until_complete(main())
        check(sum(results) == n * (n + 1) // 2, "executor: wrong results")
        return span.seconds()

    # W8: an echo server and one client with a window of messages outstanding.
    def tcp_echo(self, n, window):
        loop, span = self.loop, Span()

        async def main():
            if self.server is None:
                self.server = await loop.create_server(lambda: Echo(self), "127.0.0.1", 0)
            port = self.server.sockets[0].getsockname()[1]
            self.accepted = loop.create_future()  # the server end's Echo
            transport, client = await loop.create_connection(
                lambda: Client(loop, span, n, window), "127.0.0.1", port)
            served = await self.accepted
            client.start()
            await client.done
            transport.close()  # untimed from here
            await served.closed
            return client.received

        received = loop.run_until_complete(main())
        check(received == n * 64, "tcp: wrong byte count")
        return span.seconds()

    def tcp_pingpong(self, n):
        return self.tcp_echo(n, 1)

    def tcp_pipelined(self, n):
        return self.tcp_echo(n, 100)

    def close(self):
        if self.server is not None:
            self.server.close()
            self.loop.run_until_complete(self.server.wait_closed())
        if self.executor_pool is not None:
            self.executor_pool.shutdown()
        self.loop.close()


class Echo(asyncio.Protocol):
    """The server end: writes back every chunk it reads."""

    def __init__(self, workloads):
        self.workloads = workloads
        self.closed = workloads.loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        set_nodelay(transport)
        self.workloads.accepted.set_result(self)

    def data_received(self, data):
        self.transport.write(data)

    def connection_lost(self, exc):
        self.closed.set_result(None)


class Client(asyncio.Protocol):
    """The client end: 64-byte messages, `window` of them outstanding."""

    def __init__(self, loop, span, n, window):
        self.span, self.n, self.window = span, n, window
        self.sent = self.received = self.received_msgs = 0
        self.done = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport
        set_nodelay(transport)

    def start(self):
        self.span.t0 = now()
        self.send(min(self.window, self.n))

    def send(self, count):
        write = self.transport.write
        for _ in range(count):
            write(MESSAGE)
        self.sent += count

    def data_received(self, data):
        self.received += len(data)
        complete = self.received // 64
        more = min(complete - self.received_msgs, self.n - self.sent)
        self.received_msgs = complete
        if more > 0:
            self.send(more)
        if self.received == self.n * 64:
            self.span.t1 = now()
            self.done.set_result(None)


def set_nodelay(transport):
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


WORKLOADS = ["call_soon", "chain", "threadsafe", "threadsafe2", "timers", "timers_cancel",
             "futures", "tasks", "executor", "tcp_pingpong", "tcp_pipelined"]


def usage():
    print(f"usage: {sys.argv[0]} asyncio|uvloop <workload> <N> [reps=5]\n"
          f"  workloads: {' '.join(WORKLOADS)}", file=sys.stderr)
    return 2


def parse_int(text, low, high):
    try:
        v = int(text)
    except ValueError:
        return None
    return v if low <= v <= high else None


def main(argv):
    if len(argv) not in (4, 5) or argv[1] not in ("asyncio", "uvloop") or argv[2] not in WORKLOADS:
        return usage()
    peer, workload = argv[1], argv[2]
    n = parse_int(argv[3], 1, 1 << 40)
    reps = parse_int(argv[4], 1, 1000) if len(argv) == 5 else 5
    if n is None or reps is None:
        return usage()
    if peer == "uvloop":
        import uvloop  # Debian's python3-uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    workloads = Workloads(loop)
    try:
        samples = [getattr(workloads, workload)(n) for _ in range(reps)]
        workloads.close()
    except Exception as e:  # a failed check, or the loop's own error
        print(f"{peer}: {workload}: {e!r}", file=sys.stderr)
        return 1
    med = statistics.median(samples)
    print(f"{workload} {peer} {n / med:.0f} {med / n * 1e9:.1f} n={n} samples_s="
          + ",".join(f"{s:.6f}" for s in samples))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
