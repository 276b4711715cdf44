# --- Profile and PostgreSQL backups (backups.tf) --------------------------------
# Only variable blocks here: tests/deploy copy every such file into a scratch folder
# and ask `terraform console` whether a set of values passes the validations.

variable "deployment_profile" {
  type        = string
  description = "What this deployment is: production, staging or development. production refuses to plan without PostgreSQL backups (backup_destination_path) unless backups_enabled = false says why in backups_disabled_reason; the others only relax that."
  default     = "production"

  validation {
    condition     = contains(["production", "staging", "development"], var.deployment_profile)
    error_message = "deployment_profile must be production, staging or development."
  }

  validation {
    condition     = var.deployment_profile != "production" || !var.backups_enabled || var.backup_destination_path != ""
    error_message = "The production profile needs PostgreSQL backups: set backup_destination_path (and backup_credentials_secret_name), or set backups_enabled = false with backups_disabled_reason saying why."
  }
}

variable "backups_enabled" {
  type        = bool
  description = "Back up PostgreSQL (WAL archiving, a ScheduledBackup, retention) to backup_destination_path. false turns backups off even with a destination set; in the production profile it needs backups_disabled_reason."
  default     = true
}

variable "backups_disabled_reason" {
  type        = string
  description = "Why backups are off (backups_enabled = false), required in the production profile. Kept in the code review and the plan, not in the cluster."
  default     = ""

  # Here, not on backups_enabled: two validations that read each other's variable are a cycle.
  validation {
    condition     = var.backups_enabled || var.deployment_profile != "production" || trimspace(var.backups_disabled_reason) != ""
    error_message = "backups_enabled = false in the production profile needs backups_disabled_reason: why this production database may lose every order since it was created (e.g. \"backed up by the storage layer, see <runbook>\")."
  }
}

variable "backup_destination_path" {
  type        = string
  description = "Where Barman Cloud writes base backups and WAL, which also picks the provider: s3://bucket/path (AWS S3 or S3-compatible with backup_endpoint_url), gs://bucket/path (Google Cloud Storage), https://<account>.blob.core.windows.net/<container>/path (Azure Blob Storage). Empty = no backups. Each cluster writes under <path>/<cluster name>/."
  default     = ""

  validation {
    condition     = var.backup_destination_path == "" || can(regex("^(s3|gs)://[a-z0-9][a-z0-9._-]*[a-z0-9](/.*)?$", var.backup_destination_path)) || can(regex("^https?://[^/]+/[^/]+", var.backup_destination_path))
    error_message = "backup_destination_path must be s3://bucket[/path], gs://bucket[/path] or an Azure Blob URL https://<account>.blob.core.windows.net/<container>[/path]."
  }
}

variable "backup_endpoint_url" {
  type        = string
  description = "S3-compatible endpoint (MinIO, Ceph RGW, Hetzner, Linode, DigitalOcean Spaces), e.g. https://fsn1.your-objectstorage.com; empty = AWS S3. Only with an s3:// destination."
  default     = ""

  validation {
    condition     = var.backup_endpoint_url == "" || (can(regex("^https?://[^/]+", var.backup_endpoint_url)) && startswith(var.backup_destination_path, "s3://"))
    error_message = "backup_endpoint_url must be an http(s) URL, and only goes with an s3:// backup_destination_path."
  }
}

variable "backup_credentials_secret_name" {
  type        = string
  description = "Existing Secret in var.namespace with the object store's credentials, made outside Terraform (kubectl, External Secrets, Sealed Secrets), so cloud keys never enter the Terraform state. Keys: S3 ACCESS_KEY_ID and ACCESS_SECRET_KEY; GCS gcsCredentials (a service account JSON key); Azure AZURE_CONNECTION_STRING. Label it cnpg.io/reload=true so a rotated key reaches the instances."
  default     = ""

  validation {
    condition     = var.backup_credentials_secret_name == "" || can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.backup_credentials_secret_name))
    error_message = "backup_credentials_secret_name must be a Kubernetes Secret name."
  }

  validation {
    condition     = var.backup_destination_path == "" || !var.backups_enabled || var.backup_credentials_secret_name != ""
    error_message = "Backups need backup_credentials_secret_name: the Secret holding the object store's keys (see its description)."
  }
}

variable "backup_schedule" {
  type        = string
  description = "When the ScheduledBackup takes a base backup: CloudNativePG's cron with SECONDS first (6 fields). Default daily at 03:00 UTC. WAL is archived continuously in between, so any point since the oldest kept backup can be restored."
  default     = "0 0 3 * * *"

  validation {
    condition     = can(regex("^\\S+( \\S+){5}$", trimspace(var.backup_schedule)))
    error_message = "backup_schedule must have 6 fields, seconds first (e.g. \"0 0 3 * * *\" = daily at 03:00): CloudNativePG reads 5 fields as starting with seconds."
  }
}

variable "backup_retention_policy" {
  type        = string
  description = "How far back a restore can go: base backups and WAL older than the newest backup before this window are deleted (Barman's recovery window, <n>d, <n>w or <n>m)."
  default     = "30d"

  validation {
    condition     = can(regex("^[1-9][0-9]*[dwm]$", var.backup_retention_policy))
    error_message = "backup_retention_policy must be a number and d, w or m, such as 30d."
  }
}

variable "barman_cloud_chart_version" {
  type        = string
  description = "Version of the plugin-barman-cloud Helm chart (https://cloudnative-pg.github.io/charts), installed in cnpg_namespace when backups are on; 0.8.0 ships plugin v0.15.0 for CloudNativePG 1.30. Needs cert-manager in the cluster."
  default     = "0.8.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.barman_cloud_chart_version))
    error_message = "barman_cloud_chart_version must be an exact version such as 0.8.0."
  }
}
