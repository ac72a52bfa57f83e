"""Training engine: runner, hooks, optimizers, schedules, checkpoints."""
