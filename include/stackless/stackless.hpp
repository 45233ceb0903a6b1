// stackless/stackless.hpp — the umbrella header: includes every public header.
#pragma once

#include <stackless/atomic.hpp>
#include <stackless/call_async.hpp>
#include <stackless/channel.hpp>
#include <stackless/config.hpp>
#include <stackless/debug.hpp>
#include <stackless/errors.hpp>
#include <stackless/scheduler.hpp>
#include <stackless/select.hpp>
#include <stackless/stack.hpp>
#include <stackless/sync.hpp>
#include <stackless/tasklet.hpp>
#include <stackless/timer.hpp>
