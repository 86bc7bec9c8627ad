-- wrk script of the intake benchmark (bench/load.py runs it): POSTs ICE callbacks whose
-- bodies all differ, and prints a one-line JSON summary at the end.
--
-- Arguments after "--": a file of targets, one per line "path<TAB>body before EventTime<TAB>
-- body after it"; the first EventTime (seconds since the epoch); the number of wrk threads.
-- Request n of thread t carries EventTime first + t + n * threads: no two bodies are alike.

local targets = {}
local step = 1
local counter = 0

local threads = 0
function setup(thread)
  thread:set("thread_index", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(args[1]) do
    local path, before, after = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)$")
    targets[#targets + 1] = { path, before, after }
  end
  step = tonumber(args[3])
  counter = tonumber(args[2]) + thread_index
end

function request()
  local target = targets[(counter % #targets) + 1]
  local body = target[2] .. os.date("!%Y-%m-%dT%H:%M:%SZ", counter) .. target[3]
  counter = counter + step
  return wrk.format("POST", target[1], { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
