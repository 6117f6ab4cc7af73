"""A real single-node Apache Kafka (KRaft, broker and controller in one JVM) for tests and laptops.

The jars come from Maven Central through deploy/kafka/pom.xml into .cache/kafka/libs (fetched
once); the broker runs on the machine's Java 17 with settings for a one-node cluster and a fresh
data directory under .run/kafka/ that `stop` removes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ddas.infra import _process
from ddas.infra.config import InfraConfig, InfraError

MIN_JAVA = 17


@dataclass(frozen=True)
class KafkaStatus:
    running: bool
    bootstrap_servers: str
    pid: int | None = None
    started: bool = False
    """True when this call started it (False: it was already running)."""

    @property
    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}


def _state_file(cfg: InfraConfig) -> Path:
    return cfg.kafka_run_dir / "kafka.json"


def _pid_file(cfg: InfraConfig) -> Path:
    return cfg.kafka_run_dir / "kafka.pid"


def _properties_file(cfg: InfraConfig) -> Path:
    return cfg.kafka_run_dir / "server.properties"


def _log_file(cfg: InfraConfig) -> Path:
    return cfg.kafka_run_dir / "kafka.log"


def _bootstrap(port: int) -> str:
    return f"127.0.0.1:{port}"


# --- prerequisites -------------------------------------------------------------------------------


def find_java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not java or not Path(java).exists():
        raise InfraError(
            f"Java {MIN_JAVA}+ is needed to run the local Kafka broker and none was found "
            "(install openjdk-17-jre-headless, or set KAFKA_BOOTSTRAP_SERVERS to a running broker)"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if match:
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8" style
            major = int(match.group(2))
        if major < MIN_JAVA:
            raise InfraError(f"Kafka 4 needs Java {MIN_JAVA}+, but {java} is Java {major}")
    return java


def _pom_digest(cfg: InfraConfig) -> str:
    pom = cfg.kafka_pom
    if not pom.is_file():
        raise InfraError(f"{pom} is missing: run from a checkout of ddas-pipeline")
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def jars_ready(cfg: InfraConfig) -> bool:
    """Whether the cached jars were fetched, completely, for the current pom."""
    marker = cfg.kafka_libs / ".complete"
    return marker.is_file() and marker.read_text().strip() == _pom_digest(cfg)


def ensure_jars(cfg: InfraConfig) -> Path:
    """Fetch the broker's jars with Maven unless the cache already matches the pom."""
    libs, pom = cfg.kafka_libs, cfg.kafka_pom
    if jars_ready(cfg):
        return libs
    digest = _pom_digest(cfg)

    mvn = shutil.which("mvn")
    if not mvn:
        raise InfraError(
            "Maven (mvn) is needed once to fetch the Kafka broker's jars and was not found "
            "(install maven, or set KAFKA_BOOTSTRAP_SERVERS to a running broker)"
        )
    # Copy into a scratch folder and swap it in, so an interrupted fetch never looks complete.
    scratch = libs.with_name("libs.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    argv = [
        mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
        f"-DoutputDirectory={scratch}", "-DincludeScope=runtime",
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        errors = [ln for ln in result.stdout.splitlines() if "ERROR" in ln] or [""]
        raise InfraError(f"Maven could not fetch the Kafka jars: {errors[0].strip()}")
    shutil.rmtree(libs, ignore_errors=True)
    scratch.rename(libs)
    (libs / ".complete").write_text(digest + "\n")
    return libs


# --- the readiness probe -------------------------------------------------------------------------


async def probe(bootstrap_servers: str, *, timeout: float = 5.0) -> str | None:
    """The cluster id when a real client gets metadata with a live broker in it, else None."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaError

    # aiokafka logs every refused connection at ERROR; a probe expects refusals.
    quiet = logging.getLogger("aiokafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout * 1000),
        client_id="ddas-infra-probe",
    )
    try:
        await asyncio.wait_for(admin.start(), timeout)
        cluster = await asyncio.wait_for(admin.describe_cluster(), timeout)
        return str(cluster["cluster_id"]) if cluster.get("brokers") else None
    except (TimeoutError, KafkaError, OSError):
        return None
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
        quiet.setLevel(level)


def probe_sync(bootstrap_servers: str, *, timeout: float = 5.0) -> str | None:
    return _process.run_sync(probe(bootstrap_servers, timeout=timeout))


def wait_ready(bootstrap_servers: str, *, timeout: float, pid: int | None = None) -> str:
    """Block until the broker answers a metadata request; the cluster id."""
    deadline = time.monotonic() + timeout
    while True:
        cluster_id = probe_sync(bootstrap_servers, timeout=3.0)
        if cluster_id:
            return cluster_id
        if pid is not None and not _process.is_alive(pid):
            raise InfraError("the Kafka broker exited during start-up")
        if time.monotonic() >= deadline:
            raise InfraError(
                f"the Kafka broker at {bootstrap_servers} was not ready in {timeout:.0f}s"
            )
        time.sleep(0.5)


# --- start, status, stop -------------------------------------------------------------------------


def _server_properties(cfg: InfraConfig, data_dir: Path) -> str:
    port, cport = cfg.kafka_port, cfg.kafka_controller_port
    settings = {
        # One JVM is both the broker and the only KRaft controller (a static one-voter quorum).
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # A single node cannot replicate: every internal topic gets replication factor 1.
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        # Tuned for tests: __consumer_offsets with one partition is created in a blink, and a
        # consumer group forms at once instead of waiting 3 s for more members.
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.num.partitions": "1",
        "group.initial.rebalance.delay.ms": "0",
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
        "log.retention.hours": "24",
    }
    lines = ["# Written by ddas.infra.kafka for the local single-node broker; do not edit."]
    lines += [f"{key}={value}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _jvm_options(cfg: InfraConfig) -> list[str]:
    return [
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={cfg.kafka_log4j_config}",
        f"-Dkafka.logs.dir={cfg.kafka_run_dir}",
    ]


def _broker_heap_options(cfg: InfraConfig) -> list[str]:
    # A small heap: the broker shares a 2-core machine with the tests it serves.
    return [
        f"-Xmx{cfg.kafka_heap}",
        "-Xms128m",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:+ExitOnOutOfMemoryError",
    ]


def _random_cluster_id() -> str:
    # Kafka's Uuid in its base64 form; like Kafka's own generator, avoid a leading '-', which
    # command-line parsers would take for an option.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _ours(cfg: InfraConfig, pid: int) -> bool:
    cmd = _process.cmdline(pid)
    return "kafka.Kafka" in cmd and str(_properties_file(cfg)) in cmd


def status(cfg: InfraConfig) -> KafkaStatus:
    state = _process.read_state(_state_file(cfg)) or {}
    port = int(state.get("port", cfg.kafka_port))
    pid = state.get("pid")
    if isinstance(pid, int) and _process.is_alive(pid) and _ours(cfg, pid):
        return KafkaStatus(running=True, bootstrap_servers=_bootstrap(port), pid=pid)
    return KafkaStatus(running=False, bootstrap_servers=_bootstrap(cfg.kafka_port))


def start(cfg: InfraConfig) -> KafkaStatus:
    """Start the broker unless ours is already running; return once a client can use it."""
    current = status(cfg)
    if current.running:
        wait_ready(current.bootstrap_servers, timeout=cfg.kafka_start_timeout, pid=current.pid)
        return current
    stop(cfg)  # clear what a crashed or killed broker left behind

    java = find_java()
    libs = ensure_jars(cfg)
    assert cfg.kafka_controller_port is not None
    for port in (cfg.kafka_port, cfg.kafka_controller_port):
        if _process.port_in_use(port):
            raise InfraError(
                f"port {port} is already in use: set DDAS_KAFKA_PORT (the controller takes the "
                "next port) to free ones, or KAFKA_BOOTSTRAP_SERVERS to use a running broker"
            )

    run_dir = cfg.kafka_run_dir
    data_dir = run_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    properties = _properties_file(cfg)
    properties.write_text(_server_properties(cfg, data_dir))
    log = _log_file(cfg)
    log.write_bytes(b"")
    classpath = str(libs / "*")

    cluster_id = _random_cluster_id()
    fmt = subprocess.run(
        [java, "-Xmx256m", *_jvm_options(cfg), "-cp", classpath,
         "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if fmt.returncode != 0:
        last = (fmt.stderr or fmt.stdout).strip().splitlines()[-1:] or ["no output"]
        raise InfraError(f"formatting Kafka's storage failed: {last[0]}")

    pid = _process.spawn(
        [
            java,
            *_broker_heap_options(cfg),
            *_jvm_options(cfg),
            "-cp",
            classpath,
            "kafka.Kafka",
            str(properties),
        ],
        log=log,
        cwd=run_dir,
    )
    _pid_file(cfg).write_text(f"{pid}\n")
    bootstrap = _bootstrap(cfg.kafka_port)
    _process.write_state(
        _state_file(cfg),
        {"pid": pid, "port": cfg.kafka_port, "controller_port": cfg.kafka_controller_port,
         "cluster_id": cluster_id, "data_dir": str(data_dir), "log": str(log)},
    )  # fmt: skip
    try:
        answered = wait_ready(bootstrap, timeout=cfg.kafka_start_timeout, pid=pid)
    except InfraError as exc:
        errors = [ln for ln in _process.tail(log, 200).splitlines() if " ERROR " in ln]
        stop(cfg)
        hint = f" ({errors[-1].strip()[:300]})" if errors else ""
        raise InfraError(f"{exc}; see {log}{hint}") from None
    if answered != cluster_id:
        stop(cfg)
        raise InfraError(
            f"another Kafka answers on {bootstrap}: set DDAS_KAFKA_PORT to a free port"
        )
    return KafkaStatus(running=True, bootstrap_servers=bootstrap, pid=pid, started=True)


def stop(cfg: InfraConfig) -> bool:
    """Stop our broker (cleanly, then by force) and remove its data; True if one was running."""
    state = _process.read_state(_state_file(cfg)) or {}
    pid = state.get("pid")
    stopped = False
    if isinstance(pid, int) and _process.is_alive(pid) and _ours(cfg, pid):
        # A clean shutdown of a one-node KRaft broker takes a few seconds.
        _process.terminate(pid, timeout=30.0)
        stopped = True
    data_dir = state.get("data_dir")
    if data_dir:
        shutil.rmtree(data_dir, ignore_errors=True)
    for path in (_pid_file(cfg), _state_file(cfg)):
        path.unlink(missing_ok=True)
    return stopped
