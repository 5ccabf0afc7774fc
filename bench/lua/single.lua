-- POST /page-views/single: one view of a Zipf-like page (s=1.0 over PAGES pages), at a
-- moment drawn uniformly over the last 20 hours, as an ISO 'Z' timestamp.
-- Arguments after `--`: <deadline, Unix seconds> [pages] [page prefix]
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local bench = dofile(here .. "common.lua")

local threads = bench.collect_threads()

local cdf, prefix, post_headers
local SPAN_S = 20 * 3600

function init(args)
  deadline = tonumber(args[1])
  cdf = bench.zipf_cdf(tonumber(args[2] or "10000"), 1.0)
  prefix = args[3] or "bench/p"
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
  post_headers = {["Content-Type"] = "application/json"}
  bench.reset_counters()
end

function delay()
  return bench.delay_ms()
end

function request()
  if bench.past_deadline() then
    return wrk.format("GET", "/health")
  end
  posts_sent = posts_sent + 1
  local page = prefix .. (bench.zipf_rank(cdf) - 1)
  local stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() - math.random(0, SPAN_S - 1))
  return wrk.format("POST", "/page-views/single", post_headers,
    '{"page":"' .. page .. '","timestamp":"' .. stamp .. '"}')
end

function response(status, headers, body)
  bench.count_response(status, body)
end

function done(summary, latency, requests)
  bench.report(threads, summary, latency)
end
