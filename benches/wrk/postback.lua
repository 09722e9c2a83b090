-- wrk script: matched postbacks, each with a unique transaction ID, all on
-- the click ID given in the environment (CLICK) for the source key (KEY).
local counter = 0
local threads = {}
local key = os.getenv("KEY")
local click = os.getenv("CLICK")
-- Unique per wrk run, so a second run's transactions are new conversions.
local run = os.getenv("RUN") or tostring(os.time())

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  return wrk.format("GET", "/p/" .. key .. "?click_id=" .. click .. "&amount=1.50&transaction_id=" .. run .. "w" .. tid .. "-" .. counter)
end
