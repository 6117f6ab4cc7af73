"""The DDAS domain library: the delivery model, rules, counting, and the common plumbing
(settings, Kafka, PostgreSQL) shared by `ddas check` and the four services."""
