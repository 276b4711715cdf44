"""PostgreSQL backups as terraform/ declares them (backups.tf, variables_backups.tf), read
offline: off, the Cluster has no plugin and nothing is backed up; on, an ObjectStore per
provider, the Cluster archiving WAL to it and a ScheduledBackup; and the production
profile refuses to plan without backups unless the operator says why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from devstack.deploy.expressions import evaluate
from devstack.deploy.terraform import EXAMPLE_TFVARS, Module, hcl_load, module_with_tfvars
from devstack.deploy.terraform_console import terraform_locals, variable_errors
from tests.support.terraform import needs_terraform

PLUGIN = "barman-cloud.cloudnative-pg.io"
SECRET = 'backup_credentials_secret_name = "orders-db-backup-credentials"\n'
S3 = 'backup_destination_path = "s3://orders-backups/pg"\n'
REFUSED_WITHOUT_DESTINATION = "production profile needs PostgreSQL backups"
REFUSED_WITHOUT_REASON = "needs backups_disabled_reason"


# What every case sets besides backups, so only the backup validations speak (the
# defaults trust one proxy in front of the app, which must then be named).
OTHERWISE_VALID = 'app_extra_config = { FORWARDED_ALLOW_IPS = "10.0.0.0/8" }\n'


def tfvars(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "case.tfvars"
    path.write_text(OTHERWISE_VALID + text)
    return path


def instances(module: Module, resource_type: str, name: str) -> int:
    """How many instances `count` makes of this resource."""
    return int(evaluate(module.resources[resource_type][name]["count"], module))


def manifest(module: Module, kind: str) -> dict[str, Any]:
    return dict(evaluate(module.only_manifest(kind), module))


def test_without_a_destination_nothing_is_backed_up_and_the_cluster_has_no_plugin(tmp_path: Path) -> None:
    module = module_with_tfvars(tfvars(tmp_path, 'deployment_profile = "development"\n'))

    assert instances(module, "kubernetes_manifest", "postgres_backup_store") == 0
    assert instances(module, "kubernetes_manifest", "postgres_backup_schedule") == 0
    assert instances(module, "helm_release", "barman_cloud") == 0
    assert manifest(module, "Cluster")["spec"]["plugins"] == []


def test_backups_off_with_a_destination_set_is_off(tmp_path: Path) -> None:
    module = module_with_tfvars(
        tfvars(tmp_path, 'backups_enabled = false\nbackup_destination_path = "s3://bucket/orders"\n' + SECRET)
    )
    assert instances(module, "kubernetes_manifest", "postgres_backup_store") == 0
    assert manifest(module, "Cluster")["spec"]["plugins"] == []


S3_KEYS = {
    "s3Credentials": {
        "accessKeyId": {"name": "orders-db-backup-credentials", "key": "ACCESS_KEY_ID"},
        "secretAccessKey": {"name": "orders-db-backup-credentials", "key": "ACCESS_SECRET_KEY"},
    }
}
PROVIDERS = {
    "aws-s3": (S3, {"destinationPath": "s3://orders-backups/pg", **S3_KEYS}),
    "s3-compatible": (
        'backup_destination_path = "s3://orders-backups/pg"\nbackup_endpoint_url = "https://fsn1.your-objectstorage.com"\n',
        {"destinationPath": "s3://orders-backups/pg", "endpointURL": "https://fsn1.your-objectstorage.com", **S3_KEYS},
    ),
    "gcs": (
        'backup_destination_path = "gs://orders-backups/pg"\n',
        {
            "destinationPath": "gs://orders-backups/pg",
            "googleCredentials": {
                "applicationCredentials": {"name": "orders-db-backup-credentials", "key": "gcsCredentials"}
            },
        },
    ),
    "azure": (
        'backup_destination_path = "https://ordersacct.blob.core.windows.net/backups/pg"\n',
        {
            "destinationPath": "https://ordersacct.blob.core.windows.net/backups/pg",
            "azureCredentials": {
                "connectionString": {"name": "orders-db-backup-credentials", "key": "AZURE_CONNECTION_STRING"}
            },
        },
    ),
}
COMPRESSED = {"wal": {"compression": "gzip", "maxParallel": 4}, "data": {"compression": "gzip"}}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_gets_its_object_store_and_the_cluster_archives_to_it(tmp_path: Path, provider: str) -> None:
    settings, configuration = PROVIDERS[provider]
    module = module_with_tfvars(tfvars(tmp_path, settings + SECRET))

    assert instances(module, "kubernetes_manifest", "postgres_backup_store") == 1
    assert instances(module, "helm_release", "barman_cloud") == 1
    store = manifest(module, "ObjectStore")
    assert store["apiVersion"] == "barmancloud.cnpg.io/v1"
    assert store["spec"] == {"configuration": {**configuration, **COMPRESSED}, "retentionPolicy": "30d"}

    cluster = manifest(module, "Cluster")
    assert store["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert cluster["spec"]["plugins"] == [
        {"name": PLUGIN, "isWALArchiver": True, "parameters": {"barmanObjectName": store["metadata"]["name"]}}
    ]

    schedule = manifest(module, "ScheduledBackup")
    assert instances(module, "kubernetes_manifest", "postgres_backup_schedule") == 1
    assert schedule["metadata"]["namespace"] == cluster["metadata"]["namespace"]
    assert schedule["spec"] == {
        "schedule": "0 0 3 * * *",  # CloudNativePG's cron: seconds first, daily at 03:00
        "immediate": True,
        "backupOwnerReference": "self",
        "cluster": {"name": cluster["metadata"]["name"]},
        "method": "plugin",
        "pluginConfiguration": {"name": PLUGIN},
    }


@needs_terraform
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_terraform_builds_the_same_object_store_configuration(tmp_path: Path, provider: str) -> None:
    settings, configuration = PROVIDERS[provider]
    path = tfvars(tmp_path, settings + SECRET)
    assert variable_errors(path) == ""
    built = terraform_locals(["backup_configuration"], var_file=path)["backup_configuration"]
    assert built == {**configuration, **COMPRESSED}
    assert built == evaluate("${local.backup_configuration}", module_with_tfvars(path))


def test_the_example_backs_up_with_a_schedule_and_retention_of_its_own() -> None:
    example = hcl_load(EXAMPLE_TFVARS)
    assert example["deployment_profile"] == "production"
    module = module_with_tfvars(EXAMPLE_TFVARS)
    assert manifest(module, "ObjectStore")["spec"]["retentionPolicy"] == example["backup_retention_policy"]
    assert manifest(module, "ScheduledBackup")["spec"]["schedule"] == example["backup_schedule"]


@needs_terraform
@pytest.mark.parametrize(
    "settings, refusal",
    [
        ("", REFUSED_WITHOUT_DESTINATION),  # the defaults: production, no destination
        ('deployment_profile = "production"\nbackup_credentials_secret_name = "creds"\n', REFUSED_WITHOUT_DESTINATION),
        ("backups_enabled = false\n", REFUSED_WITHOUT_REASON),
        ('backups_enabled = false\nbackups_disabled_reason = "   "\n', REFUSED_WITHOUT_REASON),
        ('backup_destination_path = "s3://orders-backups/pg"\n', "Backups need backup_credentials_secret_name"),
        (S3 + SECRET + 'backup_schedule = "0 3 * * *"\n', "6 fields"),
        ('backup_destination_path = "gs://b/pg"\n' + SECRET + 'backup_endpoint_url = "https://x.example"\n', "s3://"),
        (S3 + SECRET + 'backup_retention_policy = "30"\n', "30d"),
        ('backup_destination_path = "ftp://host/pg"\n' + SECRET, "backup_destination_path must be"),
    ],
    ids=[
        "defaults",
        "production-no-destination",
        "off-no-reason",
        "off-blank-reason",
        "no-credentials",
        "five-field-cron",
        "endpoint-not-s3",
        "retention-no-unit",
        "unknown-scheme",
    ],
)
def test_terraform_refuses(tmp_path: Path, settings: str, refusal: str) -> None:
    assert refusal in " ".join(variable_errors(tfvars(tmp_path, settings)).split())


@needs_terraform
@pytest.mark.parametrize(
    "settings",
    [
        'backups_enabled = false\nbackups_disabled_reason = "volume snapshots by the storage layer, see runbook 12"\n',
        'deployment_profile = "staging"\n',
        'deployment_profile = "development"\nbackups_enabled = false\n',
        'backup_destination_path = "s3://orders-backups/pg"\n' + SECRET,
    ],
    ids=["off-with-a-reason", "staging-without-backups", "development-off", "production-with-backups"],
)
def test_terraform_accepts(tmp_path: Path, settings: str) -> None:
    assert variable_errors(tfvars(tmp_path, settings)) == ""


@needs_terraform
def test_terraform_accepts_the_example() -> None:
    assert variable_errors(EXAMPLE_TFVARS) == ""
