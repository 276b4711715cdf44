# Strimzi cluster operator. It installs the kafka.strimzi.io CRDs (first install only:
# Helm never upgrades CRDs, README "Upgrades") and watches its own namespace and
# var.namespace, where the Kafka cluster and its topics live. Strimzi publishes its
# chart as an OCI artifact; the https://strimzi.io/charts/ repository is deprecated.
# Strimzi 1.2 needs Kubernetes 1.30 or newer (the floor of the whole stack: README).
resource "helm_release" "strimzi" {
  name       = "strimzi"
  repository = "oci://quay.io/strimzi-helm"
  chart      = "strimzi-kafka-operator"
  version    = var.strimzi_chart_version
  namespace  = kubernetes_namespace_v1.strimzi.metadata[0].name

  values = [yamlencode({
    watchAnyNamespace = false
    watchNamespaces   = [local.namespace]
  })]

  wait    = true
  timeout = 600
}

locals {
  kafka_pool_labels = { "strimzi.io/cluster" = var.kafka_cluster_name }
  # { class = ... } only when a StorageClass is named (else the cluster default).
  kafka_storage_class = { for key, value in { class = var.storage_class } : key => value if value != null }
}

# KRaft controllers in a pool of their own, so broker load never starves the quorum;
# the brokers in another. One resource for both: they differ only in these values.
locals {
  kafka_node_pools = {
    controller = {
      replicas  = var.kafka_controller_replicas
      size      = var.kafka_controller_storage_size
      resources = var.kafka_controller_resources
    }
    broker = {
      replicas  = var.kafka_broker_replicas
      size      = var.kafka_broker_storage_size
      resources = var.kafka_broker_resources
    }
  }
}

resource "kubernetes_manifest" "kafka_node_pool" {
  for_each = local.kafka_node_pools

  manifest = {
    apiVersion = "kafka.strimzi.io/v1"
    kind       = "KafkaNodePool"
    metadata = {
      name      = each.key
      namespace = local.namespace
      labels    = local.kafka_pool_labels
    }
    spec = {
      replicas = each.value.replicas
      roles    = [each.key]
      storage = {
        type = "jbod"
        volumes = [merge({
          id          = 0
          type        = "persistent-claim"
          size        = each.value.size
          deleteClaim = false
        }, local.kafka_storage_class)]
      }
      resources = each.value.resources
      template = {
        pod = {
          topologySpreadConstraints = [{
            maxSkew           = 1
            topologyKey       = "kubernetes.io/hostname"
            whenUnsatisfiable = "ScheduleAnyway"
            labelSelector     = { matchLabels = { "strimzi.io/pool-name" = each.key } }
          }]
        }
      }
    }
  }

  depends_on = [helm_release.strimzi]
}

# The Kafka cluster in KRaft mode, its nodes in the pools above. Strimzi 0.48+ uses
# KRaft and node pools always and ignores the two annotations; they stay so the
# intent is explicit (and older operators would not fall back to ZooKeeper mode).
resource "kubernetes_manifest" "kafka" {
  manifest = {
    apiVersion = "kafka.strimzi.io/v1"
    kind       = "Kafka"
    metadata = {
      name      = var.kafka_cluster_name
      namespace = local.namespace
      annotations = {
        "strimzi.io/node-pools" = "enabled"
        "strimzi.io/kraft"      = "enabled"
      }
    }
    spec = {
      kafka = {
        version = var.kafka_version
        listeners = [
          # The app speaks plain Kafka inside the cluster (KAFKA_BOOTSTRAP_SERVERS);
          # the chart's NetworkPolicy allows egress to this port.
          { name = "plain", port = 9092, type = "internal", tls = false },
        ]
        config = {
          # Topics come from KafkaTopic resources only: a typo in a topic name fails
          # loudly instead of creating a one-replica topic nobody reads.
          "auto.create.topics.enable"                = false
          "default.replication.factor"               = var.kafka_topic_replicas
          "min.insync.replicas"                      = var.kafka_min_insync_replicas
          "offsets.topic.replication.factor"         = var.kafka_topic_replicas
          "transaction.state.log.replication.factor" = var.kafka_topic_replicas
          "transaction.state.log.min.isr"            = var.kafka_min_insync_replicas
        }
      }
      entityOperator = {
        # Reconciles the KafkaTopic resources below (only in this namespace).
        topicOperator = {}
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
    create = "30m"
    update = "30m"
  }

  depends_on = [
    kubernetes_manifest.kafka_node_pool,
  ]
}

# The ONE home of the service's KafkaTopic resources (the chart has none). Deleting
# one deletes the topic and its messages in Kafka.
resource "kubernetes_manifest" "kafka_topic" {
  for_each = local.kafka_topic_specs

  manifest = {
    apiVersion = "kafka.strimzi.io/v1"
    kind       = "KafkaTopic"
    metadata = {
      # Kubernetes names cannot hold every topic name ('_', capitals): the
      # resource is named after the setting, spec.topicName is the real name.
      name      = "${var.kafka_cluster_name}-${replace(each.key, "_", "-")}"
      namespace = local.namespace
      labels = {
        "strimzi.io/cluster"        = var.kafka_cluster_name
        "app.kubernetes.io/part-of" = "order-service"
      }
    }
    spec = {
      topicName  = each.value.name
      partitions = var.kafka_topic_partitions
      replicas   = var.kafka_topic_replicas
      config = {
        "cleanup.policy"      = each.value.cleanup_policy
        "retention.ms"        = each.value.retention_ms
        "min.insync.replicas" = var.kafka_min_insync_replicas
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
    create = "10m"
    update = "10m"
  }

  depends_on = [kubernetes_manifest.kafka]
}
