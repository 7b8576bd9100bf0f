"""The fleet as a feed: the inventory of machines, their telemetry read through pyasic, a simulated farm."""
