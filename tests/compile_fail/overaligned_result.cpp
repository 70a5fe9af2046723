#include <eddy/future.hpp>

struct alignas(32) Wide {
  char bytes[32];
};

// expect-error: aligned to more than 16 bytes is not supported
void make(eddy::Loop& loop) {
  (void)loop.create_future<Wide>();
}
int main() {}
