-- wrk: GET /users/{random user}/recommendations?n=10, users drawn from ml-latest-small's 610.
math.randomseed(42)
request = function()
  return wrk.format("GET", "/users/" .. math.random(1, 610) .. "/recommendations?n=10")
end
