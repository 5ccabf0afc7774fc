-- POST /page-views/multi with pre-generated bodies, one JSON body per line of a file
-- written by the harness; each thread rotates through them from its own offset.
-- Arguments after `--`: <deadline, Unix seconds> <bodies file> [progress file prefix] [requests/s per thread, 0: unpaced]
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local bench = dofile(here .. "common.lua")

local threads = bench.collect_threads()

local bodies, next_body, post_headers

function init(args)
  deadline = tonumber(args[1])
  bodies = {}
  local file = assert(io.open(args[2], "r"))
  for line in file:lines() do
    if #line > 0 then bodies[#bodies + 1] = line end
  end
  file:close()
  next_body = ((thread_number or 1) - 1) * 97 % #bodies + 1
  post_headers = {["Content-Type"] = "application/json"}
  bench.reset_counters()
  bench.pace(tonumber(args[4] or "0"))
  if args[3] and #args[3] > 0 then bench.open_progress(args[3] .. (thread_number or 1)) end
end

function delay()
  return bench.delay_ms()
end

function request()
  if bench.past_deadline() then
    return wrk.format("GET", "/health")
  end
  posts_sent = posts_sent + 1
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", "/page-views/multi", post_headers, body)
end

function response(status, headers, body)
  bench.count_response(status, body)
  bench.note_progress()
end

function done(summary, latency, requests)
  bench.report(threads, summary, latency)
end
