# CloudNativePG operator (cluster-wide; installs the postgresql.cnpg.io CRDs).
resource "helm_release" "cloudnative_pg" {
  name       = "cnpg"
  repository = "https://cloudnative-pg.github.io/charts"
  chart      = "cloudnative-pg"
  version    = var.cnpg_chart_version
  namespace  = kubernetes_namespace_v1.cnpg.metadata[0].name

  values = [yamlencode({
    crds = { create = true }
  })]

  wait    = true
  timeout = 600
}

locals {
  # Synchronous replication only when asked for (var.postgres_synchronous_standbys > 0).
  postgres_synchronous = {
    for key, value in {
      synchronous = {
        method = "any"
        number = var.postgres_synchronous_standbys
        # Refuse commits rather than acknowledge one that a failover could lose.
        dataDurability = "required"
      }
    } : key => value if var.postgres_synchronous_standbys > 0
  }
  postgres_storage_class = { for key, value in { storageClass = var.storage_class } : key => value if value != null }
}

# PostgreSQL: one primary and streaming standbys. The operator fails over to a
# standby when the primary goes, and moves the <name>-rw Service with it.
resource "kubernetes_manifest" "postgres" {
  manifest = {
    apiVersion = "postgresql.cnpg.io/v1"
    kind       = "Cluster"
    metadata = {
      name      = var.postgres_cluster_name
      namespace = local.namespace
      labels = {
        "app.kubernetes.io/part-of" = "order-service"
      }
    }
    spec = {
      instances = var.postgres_instances
      imageName = var.postgres_image
      # A rolling update (new image, a parameter that needs a restart, new resources)
      # updates the standbys one by one, then switches over to an updated standby and
      # updates the old primary as a standby: writes pause for the switchover only.
      # CloudNativePG's default method, "restart", restarts the primary in place (no
      # writes, every web pod unready, until it is back). With "switchover" the
      # operator refuses an update that changes imageName and postgresql.parameters at
      # once: change postgres_image and the parameters in separate applies.
      primaryUpdateStrategy = "unsupervised"
      primaryUpdateMethod   = "switchover"
      enableSuperuserAccess = false

      storage = merge({ size = var.postgres_storage_size }, local.postgres_storage_class)

      postgresql = merge({
        parameters = {
          max_connections = tostring(var.postgres_max_connections)
        }
      }, local.postgres_synchronous)

      bootstrap = {
        initdb = {
          database = var.postgres_database
          owner    = var.postgres_owner
          secret   = { name = kubernetes_secret_v1.postgres_app.metadata[0].name }
        }
      }

      resources = var.postgres_resources

      # The Barman Cloud plugin as WAL archiver when backups are on (backups.tf); none
      # otherwise. Adding it rolls the instances once (each pod gains the sidecar).
      plugins = local.postgres_plugins

      # Instances on different nodes when the cluster has enough of them.
      affinity = {
        enablePodAntiAffinity = true
        topologyKey           = "kubernetes.io/hostname"
        podAntiAffinityType   = "preferred"
      }
    }
  }

  wait {
    condition {
      type   = "Ready"
      status = "True"
    }
  }

  timeouts {
    create = "20m"
    update = "20m"
  }

  depends_on = [helm_release.cloudnative_pg]
}
