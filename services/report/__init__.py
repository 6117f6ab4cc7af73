"""The report service: the op-orde-rapport (OOR) of each validated delivery, its renderings
(JSON, CSV, HTML), its API, and the notifications that it is ready. See README.md."""
