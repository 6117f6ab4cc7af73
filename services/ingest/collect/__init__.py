"""The collector: periodic collection over the suppliers' DDAS pull API (DDAS-SHV.yaml), into
ingest's own way in (`Intake.submit(raw, principal, "pull")`).

- `config`: the TOML configuration (DDAS_COLLECTOR_CONFIG) and the periods;
- `client`: one endpoint over HTTP: token, pages, retries, Digest and signature checks;
- `collector`: runs (resumable page by page), endpoint health, the schedule, status;
- `metrics`: ddas_collector_* on ingest's /metrics.

The service runs the schedule when `collector_config` is set (services/ingest/main.py);
`ddas collect now` and `ddas collect status` are the operator's commands.
"""

from .client import CollectError, PullClient
from .collector import Collector, EndpointStatus, Outcome, status
from .config import CollectorConfig, ConfigError, Endpoint, Periode, load_config, parse_periode

__all__ = [
    "CollectError",
    "Collector",
    "CollectorConfig",
    "ConfigError",
    "Endpoint",
    "EndpointStatus",
    "Outcome",
    "Periode",
    "PullClient",
    "load_config",
    "parse_periode",
    "status",
]
