"""Running a task's independent jobs (chain groups, AIS particle groups) as Ray tasks."""
