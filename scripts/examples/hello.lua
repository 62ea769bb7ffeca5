-- hello.lua: the smallest tide program.  Async calls work at the top level
-- because the script runs as the main task.
print("hello ...")
tide.sleep(tonumber(os.getenv("TIDE_EXAMPLE_SCALE") or 1) * 0.5)
print("... world")
