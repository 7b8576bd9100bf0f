"""`python -m hashpivot.optimizer.cli`: the same as the `hashpivot` command (tests run it this way)."""

from hashpivot.optimizer.cli import main

main()
