"""Jobs: work that runs outside the web server, owned by one worker at a time.

`queue` carries job keys (Huey), `lease` claims and keeps a job, `runs` executes runs as shard
jobs, `kinds` maps a key to its executor, `worker` is the `workbench worker` process.
"""
