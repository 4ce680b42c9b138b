"""`qa sweep`: many ordinary runs from one TOML file, on a local process pool or on Ray.

    spec.py       the sweep file: base run options, the axes, grid or random expansion into trials
    manifest.py   sweep.json: trial id -> options -> run directory -> status (the resume record)
    trial.py      one trial as an ordinary `qa run` subprocess: its run.toml, its log, its status
    local.py      the local backend: N worker processes, threads split so cores are not oversubscribed
    ray_backend.py the Ray backend: trials as Ray Tune trials (optional extra qa-core[ray])
    results.py    the end table (CSV, JSON) and the seed groups
    commands.py   the `qa sweep` command

Only the standard library is imported at module level (and numpy inside functions), so `qa --help`
stays fast; Ray is imported only by the Ray backend.
"""
