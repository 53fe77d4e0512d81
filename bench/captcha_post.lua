-- wrk script: the same signed DescribeCaptchaResult request every time (headers from env via init)
local body = os.getenv("BENCH_BODY")
local headers = {}
for k, v in string.gmatch(os.getenv("BENCH_HEADERS"), "([^\n:]+): ([^\n]+)") do headers[k] = v end
wrk.method = "POST"
wrk.body = body
wrk.headers = headers
