"""Template analytics: hourly series, new-template alerts, frequency anomalies, what changed, cost."""
