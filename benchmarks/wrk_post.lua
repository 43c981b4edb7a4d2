-- POST one signed webhook body again and again, each with a new X-GitHub-Delivery id.
-- usage: wrk -s wrk_post.lua URL -- BODY_FILE SIGNATURE
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-GitHub-Event"] = "pull_request"
  wrk.headers["X-Hub-Signature-256"] = args[2]
  math.randomseed(os.time() + thread_id)
  run_id = tostring(math.random(1, 1000000000))
end

function request()
  counter = counter + 1
  wrk.headers["X-GitHub-Delivery"] = run_id .. "-" .. thread_id .. "-" .. counter
  return wrk.format()
end

function done(summary, latency, requests)
  local out = io.open(os.getenv("WRK_JSON") or "/dev/stdout", "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "errors_status": %d, "errors_connect": %d, "errors_read": %d, "errors_timeout": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  out:close()
end
