// The umbrella header: everything eddy offers.
#pragma once

#include "eddy/clock.hpp"
#include "eddy/concurrent_future.hpp"
#include "eddy/errors.hpp"
#include "eddy/executor.hpp"
#include "eddy/future.hpp"
#include "eddy/handle.hpp"
#include "eddy/loop.hpp"
#include "eddy/loop_thread.hpp"
#include "eddy/source_location.hpp"
