"""The production Dagster instance (docs/deploy/): every file passes Dagster's own config schemas, the Helm values
use the chart's value names and render a valid instance, and the instance runs the `bootstrap` job on a real
Postgres (pgserver)."""

import importlib
import re
import shutil
import uuid
from pathlib import Path

import boto3
import dagster as dg
import pytest
import yaml
from dagster._config import validate_config
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

from logpilot_dagster.definitions import defs
from logpilot_dagster.ingest.sample_data import write_sample_home
from logpilot_dagster.storage.warehouse import connect
from logpilot_dagster_tests.pipeline import resources

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
INSTANCES = ("dagster.yaml", "dagster-docker.yaml")
ONE_RUN_PER_YEAR = {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}

#: Value names of the dagster/dagster chart (1.13's values.schema.json) for the sections values.yaml sets.
CHART_KEYS = {
    "": {"dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
         "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
         "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
         "telemetry", "serviceAccount", "global", "retention", "additionalInstanceConfig", "concurrency"},
    "concurrency": {"pools", "runs"},
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
    "global": {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"},
    "dagsterWebserver": {"replicaCount", "image", "nameOverride", "pathPrefix", "service", "workspace", "env",
                         "envConfigMaps", "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity",
                         "tolerations", "podSecurityContext", "securityContext", "resources", "readinessProbe",
                         "livenessProbe", "startupProbe", "annotations", "enableReadOnly", "dbStatementTimeout",
                         "dbPoolRecycle", "logLevel", "schedulerName", "volumeMounts", "volumes",
                         "initContainerResources"},
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "deployment": {"name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns",
                   "deploymentNamespace", "port", "env", "envConfigMaps", "envSecrets", "annotations", "nodeSelector",
                   "affinity", "tolerations", "podSecurityContext", "securityContext", "resources", "livenessProbe",
                   "readinessProbe", "startupProbe", "labels", "volumeMounts", "volumes", "schedulerName",
                   "initContainers", "sidecarContainers"},
    "postgresql": {"image", "enabled", "postgresqlHost", "postgresqlUsername", "postgresqlPassword",
                   "postgresqlDatabase", "postgresqlParams", "postgresqlScheme", "service"},
    "runLauncher": {"type", "config"},
    "k8sRunLauncher": {"image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
                       "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
                       "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig"},
    "runK8sConfig": {"containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata"},
    "dagsterDaemon": {"enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps",
                      "envSecrets", "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations",
                      "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe",
                      "startupProbe", "annotations", "runMonitoring", "runRetries", "sensors", "schedules",
                      "schedulerName", "volumeMounts", "volumes", "initContainerResources"},
    "runCoordinator": {"enabled", "type", "config"},
    "queuedRunCoordinator": {"maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
                             "dequeueNumWorkers", "dequeueUseThreads", "blockOpConcurrencyLimitedRuns"},
    "computeLogManager": {"type", "config"},
    "s3ComputeLogManager": {"bucket", "localDir", "prefix", "useSsl", "verify", "verifyCertPath", "endpointUrl",
                            "skipEmptyFiles", "uploadInterval", "uploadExtraArgs", "showUrlOnly", "region"},
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value):
    """camelCase Helm keys -> the snake_case config keys the chart's templates write."""
    if isinstance(value, dict):
        return {_snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def _class_config_errors(section: dict) -> list[str]:
    """Errors of a ``module``/``class``/``config`` section against that class's own config schema."""
    klass = getattr(importlib.import_module(section["module"]), section["class"])
    result = validate_config(klass.config_type(), section.get("config", {}))
    return [e.message for e in result.errors or []]


def _instance(directory: Path, name: str) -> dict:
    config, custom_class = dagster_instance_config(str(directory), name)  # raises on any schema error
    assert custom_class is None
    return config


@pytest.mark.parametrize("name", INSTANCES)
def test_instance_files_pass_dagsters_schemas(name):
    config = _instance(DEPLOY, name)
    assert config["event_log_storage"]["class"] == "PoolSafePostgresEventLogStorage"
    for section in ("run_storage", "event_log_storage", "schedule_storage"):
        assert config[section]["config"]["postgres_url"] == {"env": "DAGSTER_PG_URL"}, section
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert ONE_RUN_PER_YEAR in config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    for section in ("run_storage", "event_log_storage", "schedule_storage", "run_coordinator", "run_launcher",
                    "compute_logs"):
        assert _class_config_errors(config[section]) == [], section


def test_a_misspelt_launcher_setting_is_caught():
    config = _instance(DEPLOY, "dagster.yaml")
    launcher = {**config["run_launcher"], "config": {**config["run_launcher"]["config"], "job_namespce": "x"}}
    assert _class_config_errors(launcher)


def test_the_docker_launcher_is_built_from_its_section():
    section = _instance(DEPLOY, "dagster-docker.yaml")["run_launcher"]
    launcher = ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section["config"])).rehydrate()
    assert type(launcher).__name__ == "DockerRunLauncher"
    assert launcher.networks == ["logpilot"] and "DAGSTER_PG_URL" in launcher.env_vars


def _check_keys(values: dict, section: str, where: str = "") -> None:
    unknown = set(values) - CHART_KEYS[section]
    assert not unknown, f"not chart values under {where or 'the top level'}: {sorted(unknown)}"


def _helm_instance(values: dict) -> dict:
    """The dagster.yaml the chart renders from ``values`` (the parts values.yaml sets)."""
    pg = values["postgresql"]
    launcher = _snake_keys(values["runLauncher"]["config"]["k8sRunLauncher"])
    for key in ("env_config_maps", "env_secrets"):
        launcher[key] = [ref["name"] for ref in launcher.get(key, [])]
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    logs = values["computeLogManager"]
    return {
        "storage": {"postgres": {"postgres_db": {
            "hostname": pg["postgresqlHost"], "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"}, "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"], "params": pg.get("postgresqlParams", {})}}},
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": coordinator["type"],
                            "config": _snake_keys(coordinator["config"]["queuedRunCoordinator"])},
        "run_launcher": {"module": "dagster_k8s", "class": values["runLauncher"]["type"], "config": {
            **launcher, "instance_config_map": "logpilot-dagster-instance",
            "dagster_home": "/opt/dagster/dagster_home", "postgres_password_secret": "dagster-postgresql-secret",
            "service_account_name": values["global"]["serviceAccountName"]}},
        "compute_logs": {"module": "dagster_aws.s3.compute_log_manager", "class": logs["type"],
                         "config": _snake_keys(logs["config"]["s3ComputeLogManager"])},
        "run_monitoring": _snake_keys(values["dagsterDaemon"]["runMonitoring"]),
        "telemetry": values["telemetry"],
        "concurrency": {"pools": _snake_keys(values["concurrency"]["pools"]), "runs": {
            "max_concurrent_runs": values["concurrency"]["runs"]["maxConcurrentRuns"],
            "tag_concurrency_limits": values["concurrency"]["runs"]["tagConcurrencyLimits"]}},
    }


def test_helm_values_use_the_charts_names_and_render_a_valid_instance(tmp_path):
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text())
    _check_keys(values, "")
    for section in ("global", "dagsterWebserver", "dagster-user-deployments", "postgresql", "runLauncher",
                    "dagsterDaemon", "computeLogManager", "concurrency"):
        _check_keys(values[section], section, section)
    for deployment in values["dagster-user-deployments"]["deployments"]:
        _check_keys(deployment, "deployment", deployment["name"])
    _check_keys(values["runLauncher"]["config"]["k8sRunLauncher"], "k8sRunLauncher", "k8sRunLauncher")
    _check_keys(values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"], "runK8sConfig", "runK8sConfig")
    _check_keys(values["dagsterDaemon"]["runCoordinator"], "runCoordinator", "runCoordinator")
    _check_keys(values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"], "queuedRunCoordinator",
                "queuedRunCoordinator")
    _check_keys(values["computeLogManager"]["config"]["s3ComputeLogManager"], "s3ComputeLogManager",
                "s3ComputeLogManager")
    _check_keys(values["concurrency"]["pools"], "pools", "concurrency.pools")
    _check_keys(values["concurrency"]["runs"], "runs", "concurrency.runs")

    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(_helm_instance(values)))
    config = _instance(tmp_path, "dagster.yaml")
    assert ONE_RUN_PER_YEAR in config["concurrency"]["runs"]["tag_concurrency_limits"]
    for section in ("run_coordinator", "run_launcher", "compute_logs"):
        assert _class_config_errors(config[section]) == [], section
    # the same limits as the plain instance file
    assert config["concurrency"] == _instance(DEPLOY, "dagster.yaml")["concurrency"]


@pytest.mark.lake
def test_the_production_instance_runs_a_bootstrap_year_on_postgres(tmp_path, postgres, lake_home, moto_endpoint,
                                                                   monkeypatch):
    """The production layout on one machine: Dagster's storage and the DuckLake catalog are two databases of one
    real Postgres, lake data and step logs in S3 (moto)."""
    home = lake_home.home
    write_sample_home(home, total_lines=3_000, years=(2023,), bad_files=False)
    database = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres.psql(f"CREATE DATABASE {database};")
    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(DEPLOY / "dagster.yaml", dagster_home / "dagster.yaml")  # verbatim: K8s launcher and all
    for name, value in {"DAGSTER_PG_URL": postgres.get_uri(database), "LOGPILOT_OPS_BUCKET": "ops",
                        "LOGPILOT_S3_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="ops")

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PoolSafePostgresEventLogStorage"
        assert instance.event_log_storage.supports_global_concurrency_limits  # pools live in Postgres
        result = defs.resolve_job_def("bootstrap").execute_in_process(
            instance=instance, partition_key="2023", resources=resources(home))
        assert result.success
        run_id = result.run_id

    with connect(lake_home.db_path, read_only=True) as con:
        [(rows,)] = con.execute("SELECT count(*) FROM logs WHERE year = 2023").fetchall()
    assert rows > 0
    # a second instance from the same file (another machine) sees the run, its partition and its check
    with dg.DagsterInstance.from_config(str(dagster_home)) as other:
        run = other.get_run_by_id(run_id)
        assert run.is_success and run.tags["dagster/partition"] == "2023"
        materialized = other.get_materialized_partitions(dg.AssetKey("logs_table"))
        assert materialized == {"2023"}
        check = other.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("logs_table"), "line_accounting")])
        assert check[dg.AssetCheckKey(dg.AssetKey("logs_table"), "line_accounting")].run_id == run_id
    # the step logs went to the object store, where the webserver finds them after the run pod is gone
    logs = s3.list_objects_v2(Bucket="ops", Prefix="dagster/compute-logs/").get("Contents", [])
    assert any(run_id in obj["Key"] for obj in logs)
