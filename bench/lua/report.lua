-- GET /report?page=<a page of the filled set, uniformly at random>.
-- Arguments after `--`: <pages> <page prefix>
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local bench = dofile(here .. "common.lua")

local threads = bench.collect_threads()

local pages, prefix

function init(args)
  pages = tonumber(args[1])
  prefix = args[2]
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
  bench.reset_counters()
end

function request()
  posts_sent = posts_sent + 1  -- here: reports sent
  return wrk.format("GET", "/report?page=" .. prefix .. math.random(0, pages - 1))
end

function response(status, headers, body)
  if status == 200 and body and body:find('"data"') then
    posts_ok = posts_ok + 1
  else
    posts_bad = posts_bad + 1
  end
end

function done(summary, latency, requests)
  bench.report(threads, summary, latency)
end
