-- Enreach-sized events (the spec's example request, 656-byte class) with a unique Id each.
-- Ids look like Enreach's random GUIDs, as the dedup index sees them in production (in
-- counter order they would only ever be appended to its end): random leading fields from a
-- per-run seed (BENCH_SEED), a counter in the last field so no Id repeats within a run.
-- PACE_MS (env) makes each connection wait that long between requests: a fixed offered rate.
local counter = 0
local thread_id = 0
local pace = tonumber(os.getenv("PACE_MS") or "0")
local token = os.getenv("BENCH_TOKEN")
math.randomseed(tonumber(os.getenv("BENCH_SEED") or "0"))
local run_tag = math.random(0, 0xffff)

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local id = string.format("%08x-%04x-4%03x-%04x-%04x%08x", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), run_tag, thread_id, counter)
  local call = string.format("9cae633f-68d0-4315-%04x-%012x", run_tag, counter)
  local body = '{"RootEntityType":"Organization","RootEntityId":"fd434d24-f685-431d-8df5-386b5d5ffa73",'
    .. '"EventType":"QueueCallInUserAllocated","EntityType":"Queue",'
    .. '"EntityId":"6cb31d7d-9cd9-41dc-a096-62cf31fd0281","CallId":"' .. call .. '",'
    .. '"QueueId":"6cb31d7d-9cd9-41dc-a096-62cf31fd0281","OrganizationId":"fd434d24-f685-431d-8df5-386b5d5ffa73",'
    .. '"QueueName":"Sample queue 1","QueueNumber":"+358101231234","UserId":"b4df099e-70dc-4ff5-b4ea-c2c3547d97fb",'
    .. '"Username":"sample.agent@customer.com","CallerNumber":"+358501231234","TargetNumber":"+35810123",'
    .. '"Id":"' .. id .. '","Timestamp":"2018-01-01T08:01:23.45"}'
  return wrk.format("POST", "/enreach", {
    ["X-Benemen-Event"] = "QueueCallInUserAllocated",
    ["X-Benemen-Token"] = token,
    ["Content-Type"] = "application/json; charset=utf-8",
  }, body)
end

function delay()
  if pace > 0 then
    -- wrk's timer takes whole milliseconds: alternate to reach a fractional average.
    local base = math.floor(pace)
    if math.random() < pace - base then return base + 1 end
    return base
  end
  return 0
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
