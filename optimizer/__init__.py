"""The decision side of hashpivot, in layers that import one way (README: Layout):
`forecast` ← `milp` (problem, model, solve, explain) ← `pipeline` (one decision, its document) ←
`studies` (backtests, what-ifs, sweeps) and `service` (daemon, publishing, metrics) ← `cli`."""
