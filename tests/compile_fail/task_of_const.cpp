#include <eddy/task.hpp>

// expect-error: eddy::Task<const T> is not supported
eddy::Task<const int> refused() {
  co_return 1;
}
int main() {}
