# PostgreSQL backups with the Barman Cloud plugin (CloudNativePG 1.26+ moved object
# store backups out of the Cluster into this plugin): WAL archived continuously, a base
# backup on a schedule, old ones deleted by the retention policy. On when
# backup_destination_path is set and backups_enabled is true (variables_backups.tf).
# Restoring is docs/deploy.md "Restore PostgreSQL to a point in time".

locals {
  backups_on = var.backups_enabled && var.backup_destination_path != ""
  # The plugin's name, as the Cluster, the ScheduledBackup and a restore refer to it.
  barman_cloud_plugin = "barman-cloud.cloudnative-pg.io"
  backup_object_store = "${var.postgres_cluster_name}-backups"
  # Barman picks the provider from which credentials block is set; the scheme names it.
  backup_provider = (
    startswith(var.backup_destination_path, "s3://") ? "s3" :
    startswith(var.backup_destination_path, "gs://") ? "gcs" : "azure"
  )
  backup_secret = var.backup_credentials_secret_name

  # One credentials block per provider, every key read from backup_credentials_secret_name.
  backup_credentials = {
    s3 = {
      s3Credentials = {
        accessKeyId     = { name = local.backup_secret, key = "ACCESS_KEY_ID" }
        secretAccessKey = { name = local.backup_secret, key = "ACCESS_SECRET_KEY" }
      }
    }
    gcs = {
      googleCredentials = {
        applicationCredentials = { name = local.backup_secret, key = "gcsCredentials" }
      }
    }
    azure = {
      azureCredentials = {
        connectionString = { name = local.backup_secret, key = "AZURE_CONNECTION_STRING" }
      }
    }
  }
  backup_endpoint = { for key, value in { endpointURL = var.backup_endpoint_url } : key => value if value != "" }

  backup_configuration = merge(
    { destinationPath = var.backup_destination_path },
    local.backup_endpoint,
    local.backup_credentials[local.backup_provider],
    {
      # WAL segments are 16 MiB and mostly compressible; gzip is understood by every
      # barman-cloud release. Parallel archiving keeps up with write bursts.
      wal  = { compression = "gzip", maxParallel = 4 }
      data = { compression = "gzip" }
    },
  )

  # The Cluster's plugins: the WAL archiver, or none without backups.
  postgres_plugins = [for store in(local.backups_on ? [local.backup_object_store] : []) : {
    name          = local.barman_cloud_plugin
    isWALArchiver = true
    parameters    = { barmanObjectName = store }
  }]
}

# The plugin's operator (serves the ObjectStore CRD, injects the sidecar into instance
# pods). Same namespace as the CloudNativePG operator, as the plugin requires; its
# certificates come from cert-manager, which must already run in the cluster.
resource "helm_release" "barman_cloud" {
  count      = local.backups_on ? 1 : 0
  name       = "barman-cloud"
  repository = "https://cloudnative-pg.github.io/charts"
  chart      = "plugin-barman-cloud"
  version    = var.barman_cloud_chart_version
  namespace  = kubernetes_namespace_v1.cnpg.metadata[0].name

  wait    = true
  timeout = 600

  depends_on = [helm_release.cloudnative_pg]
}

resource "kubernetes_manifest" "postgres_backup_store" {
  count = local.backups_on ? 1 : 0
  manifest = {
    apiVersion = "barmancloud.cnpg.io/v1"
    kind       = "ObjectStore"
    metadata = {
      name      = local.backup_object_store
      namespace = local.namespace
      labels = {
        "app.kubernetes.io/part-of" = "order-service"
      }
    }
    spec = {
      configuration   = local.backup_configuration
      retentionPolicy = var.backup_retention_policy
    }
  }

  depends_on = [helm_release.barman_cloud]
}

resource "kubernetes_manifest" "postgres_backup_schedule" {
  count = local.backups_on ? 1 : 0
  manifest = {
    apiVersion = "postgresql.cnpg.io/v1"
    kind       = "ScheduledBackup"
    metadata = {
      name      = "${var.postgres_cluster_name}-scheduled"
      namespace = local.namespace
      labels = {
        "app.kubernetes.io/part-of" = "order-service"
      }
    }
    spec = {
      schedule = var.backup_schedule
      # A first base backup right away: without one, the archived WAL restores nothing.
      immediate            = true
      backupOwnerReference = "self"
      cluster              = { name = var.postgres_cluster_name }
      method               = "plugin"
      pluginConfiguration  = { name = local.barman_cloud_plugin }
    }
  }

  depends_on = [kubernetes_manifest.postgres]
}
