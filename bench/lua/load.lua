-- Relay benchmark load script for wrk.
--
-- Arguments (after `--`): a spec file and a token file.
--   spec:   one request per line, "METHOD<TAB>PATH<TAB>BODY" (BODY may be empty)
--   tokens: one JWT per line, or "-" for none
-- Every (spec line x token) pair is formatted once in init(), so request()
-- only rotates through prepared strings and wrk stays cheap. Each thread starts
-- at a different offset so threads do not send the same token in lockstep.
-- done() prints one line, "WRK_JSON {...}", that bench/wrk.py parses.

local prepared = {}
local position = 0
local threads_seen = 0

local function read_lines(path)
  local out = {}
  if path == nil or path == "-" or path == "" then
    return out
  end
  for line in io.lines(path) do
    if line ~= "" then
      out[#out + 1] = line
    end
  end
  return out
end

local function format_one(method, path, body, token)
  local headers = {}
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  if body ~= "" then
    headers["Content-Type"] = "application/json"
    return wrk.format(method, path, headers, body)
  end
  return wrk.format(method, path, headers, nil)
end

function setup(thread)
  threads_seen = threads_seen + 1
  thread:set("thread_number", threads_seen)
end

function init(args)
  local specs = read_lines(args[1])
  local tokens = read_lines(args[2])
  for _, spec in ipairs(specs) do
    local method, path, body = spec:match("^(%u+)\t([^\t]+)\t?(.*)$")
    if method == nil then
      error("bad spec line: " .. spec)
    end
    if #tokens == 0 then
      prepared[#prepared + 1] = format_one(method, path, body, nil)
    else
      for _, token in ipairs(tokens) do
        prepared[#prepared + 1] = format_one(method, path, body, token)
      end
    end
  end
  if #prepared == 0 then
    error("no requests in " .. tostring(args[1]))
  end
  position = ((thread_number or 1) * 7) % #prepared
end

function request()
  position = position % #prepared + 1
  return prepared[position]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max
  ))
end
