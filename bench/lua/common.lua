-- Shared by the bench's wrk scripts (loaded with dofile from init): a Zipf-like page
-- sampler, per-thread counters and the deadline that ends the POST phase.
--
-- Why a deadline: when wrk's -d ends it drops the connections, so a POST it sent in the
-- last moment may be processed by the server while its answer is never seen. Exact
-- accounting needs every POST answered, so after the deadline (a few seconds before -d
-- ends) request() sends only GET /health, and only about once a second per connection
-- (delay()), so the health checks barely touch the latency histogram.

local M = {}

-- Wall-clock seconds with sub-second precision (wrk's Lua is LuaJIT, which has ffi);
-- os.time() is whole seconds, too coarse for pacing and progress lines.
local has_ffi, ffi = pcall(require, "ffi")
if has_ffi then
  pcall(ffi.cdef, [[
    typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
    int clock_gettime(int clock_id, bench_timespec *tp);
  ]])
  local ts = ffi.new("bench_timespec")
  function M.now()
    ffi.C.clock_gettime(0, ts)  -- CLOCK_REALTIME, the harness's time.time()
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
  end
else
  M.now = os.time
end

-- Pacing: at most `rate` requests per second from this thread (0: as fast as answers come).
-- delay() is called before each request of each connection; every call takes the next
-- free slot of the thread's schedule.
local interval, next_slot = 0, 0

function M.pace(rate)
  interval = (rate and rate > 0) and 1 / rate or 0
end

function M.delay_ms()
  if M.past_deadline() then return 1000 end
  if interval == 0 then return 0 end
  local now = M.now()
  next_slot = math.max(next_slot + interval, now)
  return math.floor((next_slot - now) * 1000)
end

-- Progress: this thread's running totals, at most every 0.1 s, to a file of its own, so
-- the harness knows how many views had been accepted at any moment of the run.
local progress, last_progress = nil, 0

function M.open_progress(path)
  if path and #path > 0 then progress = assert(io.open(path, "w")) end
end

function M.note_progress()
  if not progress then return end
  local now = M.now()
  if now - last_progress >= 0.1 then
    progress:write(string.format("%.3f %d %d\n", now, views_ok, posts_ok))
    progress:flush()
    last_progress = now
  end
end

function M.zipf_cdf(n, s)
  local cdf, total = {}, 0
  for k = 1, n do
    total = total + 1 / (k ^ s)
    cdf[k] = total
  end
  for k = 1, n do cdf[k] = cdf[k] / total end
  return cdf
end

-- Rank 1..n with probability proportional to 1/rank^s.
function M.zipf_rank(cdf)
  local u = math.random()
  local lo, hi = 1, #cdf
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

-- Counters live as globals of each thread's Lua state so that done() can read them
-- with thread:get(name).
M.counter_names = {"posts_sent", "posts_ok", "posts_bad", "views_ok", "health_ok", "health_bad", "other"}

function M.reset_counters()
  for _, name in ipairs(M.counter_names) do _G[name] = 0 end
end

-- A POST answers {"accepted":N}; /health answers {"status":"ok"}: the body tells them apart.
function M.count_response(status, body)
  local accepted = body and body:match('"accepted":%s*(%d+)')
  if status >= 200 and status < 300 then
    if accepted then
      posts_ok = posts_ok + 1
      views_ok = views_ok + tonumber(accepted)
    elseif body and body:find('"status"') then
      health_ok = health_ok + 1
    else
      other = other + 1
    end
  elseif body and body:find('"status"') then
    health_bad = health_bad + 1
  else
    posts_bad = posts_bad + 1
  end
end

-- wrk calls the global setup(thread) once per thread before the run; this one numbers the
-- threads (for their random seeds) and returns the list done() reads the counters from.
function M.collect_threads()
  local threads, counter = {}, 0
  _G.setup = function(thread)
    counter = counter + 1
    thread:set("thread_number", counter)
    threads[#threads + 1] = thread
  end
  return threads
end

-- wrk's delay, request, response and done for a script that POSTs `path` until the deadline
-- and then only checks /health; post() gives the headers and body of the next POST.
function M.install_posting(path, post, threads)
  _G.delay = M.delay_ms
  _G.request = function()
    if M.past_deadline() then
      return wrk.format("GET", "/health")
    end
    posts_sent = posts_sent + 1
    local headers, body = post()
    return wrk.format("POST", path, headers, body)
  end
  _G.response = function(status, headers, body) M.count_response(status, body) end
  _G.done = function(summary, latency, requests) M.report(threads, summary, latency) end
end

function M.past_deadline()
  return os.time() >= deadline
end

-- One parseable line: "BENCH key=value ...", summed over threads, plus wrk's latency.
function M.report(threads, summary, latency)
  local totals = {}
  for _, name in ipairs(M.counter_names) do totals[name] = 0 end
  for _, thread in ipairs(threads) do
    for _, name in ipairs(M.counter_names) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
  end
  -- wrk calls request() once in the first thread to check the script, and sends nothing.
  totals.posts_sent = totals.posts_sent - 1
  local parts = {}
  for _, name in ipairs(M.counter_names) do
    parts[#parts + 1] = string.format("%s=%d", name, totals[name])
  end
  local e = summary.errors
  parts[#parts + 1] = string.format("requests=%d duration_us=%d", summary.requests, summary.duration)
  parts[#parts + 1] = string.format("err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d",
    e.connect, e.read, e.write, e.status, e.timeout)
  parts[#parts + 1] = string.format("lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_mean_us=%.0f lat_max_us=%d",
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max)
  io.write("BENCH " .. table.concat(parts, " ") .. "\n")
end

return M
