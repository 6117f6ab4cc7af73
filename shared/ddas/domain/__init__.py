"""The DDAS domain core: the delivery model, the rules, the findings and every figure.

One implementation each, used by `ddas check` and by the services alike. Trajectories are
handled as the plain JSON objects of the official SHV v1.0 format (dicts with the official keys),
so that the same code serves a file read from disk and a pseudonymised chunk from Kafka.
"""
