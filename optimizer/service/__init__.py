"""Running unattended: one interval's decision from the store (safe allocation, kept decision), the
APScheduler daemon, the one-instance lock, publishing and Prometheus metrics."""
