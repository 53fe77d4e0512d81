-- wrk script: cycles through pre-signed DescribeCaptchaResult requests, one per issued ticket.
-- BENCH_REQUESTS names a file of complete raw HTTP requests separated by NUL bytes (bench/servers.py
-- writes it right before the measurement: the signatures' timestamps are fresh).
local requests, n, i = {}, 0, 0

function init(args)
  local f = assert(io.open(os.getenv("BENCH_REQUESTS"), "rb"))
  local data = f:read("*a")
  f:close()
  for req in string.gmatch(data, "([^%z]+)") do
    n = n + 1
    requests[n] = req
  end
  i = math.random(n) - 1  -- where this thread starts in the cycle
end

function request()
  i = i % n + 1
  return requests[i]
end
