-- wrk script: the page tag's beacon, POST /e/click from an allowed landing
-- origin (load.sh sets it on link `b`), a browser's user agent and a
-- landing URL with ad click IDs and UTM: each 200 is a stored click.
wrk.method = "POST"
wrk.headers["Origin"] = "https://lp.bench.example"
wrk.headers["Content-Type"] = "text/plain;charset=UTF-8"
wrk.headers["User-Agent"] =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
wrk.body = '{"link":"b","url":"https://lp.bench.example/landing?gclid=G-1&utm_source=google&utm_campaign=bench",'
  .. '"referrer":"https://www.google.com/","fbp":"fb.1.1700000000000.555"}'
