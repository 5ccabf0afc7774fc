-- GET <template> with {n} replaced by a page number drawn uniformly at random from 0..pages-1
-- and {s} by its site number (n % sites): /report?page=s{s}.test/p{n}, /pages?from=..., ...
-- Arguments after `--`: <pages> <sites> <template>
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local bench = dofile(here .. "common.lua")

local threads = bench.collect_threads()

local pages, sites, template

function init(args)
  pages = tonumber(args[1])
  sites = tonumber(args[2])
  template = args[3]
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
  bench.reset_counters()
end

function request()
  posts_sent = posts_sent + 1  -- here: reports sent
  local n = math.random(0, pages - 1)
  local path = template:gsub("{n}", tostring(n)):gsub("{s}", tostring(n % sites))
  return wrk.format("GET", path)
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
