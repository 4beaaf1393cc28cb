-- wrk: GET /users/{random user}/recommendations?n=10, users drawn from ml-latest-small's 610.
-- With WRK_RATE (requests/s) and WRK_CONNECTIONS set, each connection waits between requests so
-- that all of them together offer that rate (wrk's latencies exclude the wait); without, wrk
-- sends as fast as the service answers.
math.randomseed(42)
local rate = tonumber(os.getenv("WRK_RATE") or "")
local connections = tonumber(os.getenv("WRK_CONNECTIONS") or "")
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 610) .. "/recommendations?n=10")
end
if rate and connections then
  local gap = 1000 * connections / rate
  delay = function()
    return gap
  end
end
