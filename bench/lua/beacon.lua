-- POST /page-views/beacon as the tracker sends it: text/plain JSON {"url": ...} of a Zipf-like
-- page (s=1.0 over PAGES pages), from a desktop browser, through a trusted proxy that names
-- one of 100,000 client addresses in X-Forwarded-For (so visitor ids vary as on a real site).
-- The time is the server's: no timestamp. The page <prefix><rank> is sent as the URL
-- http://<prefix><rank>, whose page is the same text.
-- Arguments after `--`: <deadline, Unix seconds> [pages] [page prefix]
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local bench = dofile(here .. "common.lua")

local threads = bench.collect_threads()
local cdf, prefix
local AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

function init(args)
  deadline = tonumber(args[1])
  cdf = bench.zipf_cdf(tonumber(args[2] or "10000"), 1.0)
  prefix = args[3] or "bench/p"
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
  bench.reset_counters()
end

local function next_beacon()
  local client = math.random(0, 99999)
  local headers = {
    ["Content-Type"] = "text/plain;charset=UTF-8",
    ["User-Agent"] = AGENT,
    ["Origin"] = "http://bench.example",
    ["X-Forwarded-For"] = string.format("10.%d.%d.%d", math.floor(client / 65536), math.floor(client / 256) % 256, client % 256),
  }
  return headers, '{"url":"http://' .. prefix .. (bench.zipf_rank(cdf) - 1) .. '"}'
end

bench.install_posting("/page-views/beacon", next_beacon, threads)
