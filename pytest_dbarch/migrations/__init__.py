"""Migration checks: runners, schema snapshots and diffs, round trips, lock-safety lint."""
