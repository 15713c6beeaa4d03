-- wrk script for bench/ocsp/run.sh: GET requests that cycle through the OCSP
-- request paths in the file named by the PATHS environment variable (one
-- `/<url-escaped base64 of a DER OCSP request>` per line), then one summary line.
--
-- Each wrk thread starts at a different place in the list, so that the threads
-- do not ask for the same serial at the same moment.

local paths = {}
for line in io.lines(os.getenv("PATHS")) do
  if line ~= "" then
    paths[#paths + 1] = line
  end
end
if #paths == 0 then
  error("no request paths in " .. tostring(os.getenv("PATHS")))
end

local threads = 0

function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end

local index = 0

function init(args)
  index = ((tonumber(id) or 0) * 7919) % #paths
end

function request()
  index = index % #paths + 1
  return wrk.format("GET", paths[index])
end

-- One machine-readable line for run.sh; latencies in microseconds.
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d mean_us=%.1f " ..
    "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d non2xx=%d paths=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency.mean,
    errors.connect, errors.read, errors.write, errors.timeout, errors.status, #paths))
end
