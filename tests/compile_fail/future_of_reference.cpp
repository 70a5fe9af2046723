#include <eddy/future.hpp>

// expect-error: eddy::Future<T&> is not supported
eddy::Future<int&>* refused = nullptr;
int main() {
  return sizeof(*refused) == 0;
}
