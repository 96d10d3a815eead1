-- wrk script of the side-by-side kit: every side gets the same load generator.
-- REQ_FILE holds one request a line: METHOD <TAB> PATH <TAB> HEADERS <TAB> BODY, HEADERS being
-- "Name: value" pairs joined by "|" (the kit writes the file before the clock starts). Requests
-- are sent in turn, wrapping around at the end. A response is good when its status is 200 and
-- its body contains EXPECT (plain text, not a pattern). The last line printed is
--   RESULT good=N bad=N wrapped=N sockerr=N requests=N seconds=S rate=R p50_ms=X p99_ms=Y
local wanted
local prepared = {}
local next_index = 0
good, bad, wrapped = 0, 0, 0

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

local function split_headers(text)
  local headers = {}
  for pair in text:gmatch("[^|]+") do
    local name, value = pair:match("^([^:]+):%s*(.*)$")
    if name then headers[name] = value end
  end
  return headers
end

function init(args)
  wanted = os.getenv("EXPECT") or ""
  local file = assert(io.open(os.getenv("REQ_FILE"), "r"))
  for line in file:lines() do
    local method, path, headers, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]*)\t(.*)$")
    if method then
      if body == "" then body = nil end
      prepared[#prepared + 1] = wrk.format(method, path, split_headers(headers), body)
    end
  end
  file:close()
  assert(#prepared > 0, "no request in " .. os.getenv("REQ_FILE"))
end

function request()
  next_index = next_index + 1
  if next_index > #prepared then
    next_index = 1
    wrapped = wrapped + 1
  end
  return prepared[next_index]
end

function response(status, headers, body)
  if status == 200 and body ~= nil and body:find(wanted, 1, true) then
    good = good + 1
  else
    bad = bad + 1
    if bad <= 3 then
      io.stderr:write(string.format("bad response %d: %s\n", status, tostring(body):sub(1, 240)))
    end
  end
end

function done(summary, latency, requests)
  local g, b, w = 0, 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    b = b + t:get("bad")
    w = w + t:get("wrapped")
  end
  local e = summary.errors
  local seconds = summary.duration / 1e6
  io.write(string.format(
    "RESULT good=%d bad=%d wrapped=%d sockerr=%d requests=%d seconds=%.3f rate=%.1f " ..
    "p50_ms=%.2f p99_ms=%.2f\n",
    g, b, w, e.connect + e.read + e.write + e.timeout, summary.requests, seconds,
    summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
