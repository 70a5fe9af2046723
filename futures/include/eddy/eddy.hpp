// The umbrella header: everything eddy offers.
#pragma once

#include "eddy/as_completed.hpp"
#include "eddy/clock.hpp"
#include "eddy/concurrent_future.hpp"
#include "eddy/errors.hpp"
#include "eddy/future.hpp"
#include "eddy/gather.hpp"
#include "eddy/handle.hpp"
#include "eddy/loop.hpp"
#include "eddy/shield.hpp"
#include "eddy/sleep.hpp"
#include "eddy/source_location.hpp"
#include "eddy/task.hpp"
#include "eddy/task_group.hpp"
#include "eddy/timeout.hpp"
#include "eddy/wait.hpp"
#include "eddy/wait_for.hpp"
