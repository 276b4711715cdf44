# --- Cluster access ----------------------------------------------------------

variable "kubeconfig_path" {
  type        = string
  description = "Path of the kubeconfig file the kubernetes and helm providers use (~ is expanded)."
  default     = "~/.kube/config"
}

variable "kubeconfig_context" {
  type        = string
  description = "Context in the kubeconfig to use; null uses the file's current context."
  default     = null
}

# --- Namespaces and storage --------------------------------------------------

variable "namespace" {
  type        = string
  description = "Namespace of the service and its data stores (Kafka cluster and topics, PostgreSQL cluster, Valkey, the app release)."
  default     = "orders"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS-1123 label (lowercase letters, digits and '-', at most 63 characters)."
  }
}

variable "strimzi_namespace" {
  type        = string
  description = "Namespace of the Strimzi cluster operator. It watches only this namespace and var.namespace."
  default     = "strimzi"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.strimzi_namespace))
    error_message = "strimzi_namespace must be a DNS-1123 label."
  }
}

variable "cnpg_namespace" {
  type        = string
  description = "Namespace of the CloudNativePG operator (it watches all namespaces, as the chart installs it)."
  default     = "cnpg-system"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.cnpg_namespace))
    error_message = "cnpg_namespace must be a DNS-1123 label."
  }
}

variable "storage_class" {
  type        = string
  description = "StorageClass of every PersistentVolumeClaim (Kafka, PostgreSQL, Valkey); null uses the cluster's default class. Prefer one with allowVolumeExpansion."
  default     = null
}

# --- Kafka (Strimzi) -----------------------------------------------------------

variable "strimzi_chart_version" {
  type        = string
  description = "Version of the strimzi-kafka-operator Helm chart (oci://quay.io/strimzi-helm). 1.2 needs Kubernetes 1.30+. 1.x serves only the kafka.strimzi.io/v1 API used here. Helm installs CRDs on first install only: apply the new release's CRDs before raising this."
  default     = "1.2.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.strimzi_chart_version))
    error_message = "strimzi_chart_version must be an exact version such as 1.2.0, not a range."
  }
}

variable "kafka_cluster_name" {
  type        = string
  description = "Name of the Strimzi Kafka resource; the bootstrap Service is <name>-kafka-bootstrap."
  default     = "orders-kafka"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", var.kafka_cluster_name))
    error_message = "kafka_cluster_name must be lowercase letters, digits and '-', at most 40 characters (Strimzi appends suffixes)."
  }
}

variable "kafka_version" {
  type        = string
  description = "Apache Kafka version the brokers run; must be one the pinned Strimzi release supports (Strimzi 1.2.0: 4.2.x, 4.3.x)."
  default     = "4.3.1"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.kafka_version))
    error_message = "kafka_version must be an exact version such as 4.3.1."
  }
}

variable "kafka_controller_replicas" {
  type        = number
  description = "KRaft controller nodes (their own node pool). An odd number: 3 survives the loss of one."
  default     = 3

  validation {
    condition     = var.kafka_controller_replicas >= 1 && var.kafka_controller_replicas % 2 == 1
    error_message = "kafka_controller_replicas must be an odd number >= 1 (a KRaft quorum needs a majority)."
  }
}

variable "kafka_broker_replicas" {
  type        = number
  description = "Kafka broker nodes (their own node pool). At least kafka_topic_replicas."
  default     = 3

  validation {
    condition     = var.kafka_broker_replicas >= 1
    error_message = "kafka_broker_replicas must be at least 1."
  }
}

variable "kafka_broker_storage_size" {
  type        = string
  description = "Persistent volume size of each broker (Kubernetes quantity, e.g. 20Gi). Can grow later if the StorageClass allows expansion, never shrink."
  default     = "20Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|Ti)$", var.kafka_broker_storage_size))
    error_message = "kafka_broker_storage_size must be a quantity such as 20Gi."
  }
}

variable "kafka_controller_storage_size" {
  type        = string
  description = "Persistent volume size of each KRaft controller (metadata log only)."
  default     = "5Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|Ti)$", var.kafka_controller_storage_size))
    error_message = "kafka_controller_storage_size must be a quantity such as 5Gi."
  }
}

variable "kafka_broker_resources" {
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  description = "CPU and memory requests and limits of each broker pod."
  default = {
    requests = { cpu = "500m", memory = "2Gi" }
    limits   = { cpu = "2", memory = "2Gi" }
  }
}

variable "kafka_controller_resources" {
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  description = "CPU and memory requests and limits of each KRaft controller pod."
  default = {
    requests = { cpu = "250m", memory = "1Gi" }
    limits   = { cpu = "1", memory = "1Gi" }
  }
}

variable "kafka_topics" {
  type        = map(string)
  description = "Kafka topic names, keyed by the app setting they feed: key k is passed to the app as KAFKA_TOPIC_<K> and gets a KafkaTopic. The defaults are the app's defaults (orders_project/settings.py). user_* topics are compacted."
  default = {
    order_created   = "order.created"
    order_confirmed = "order.confirmed"
    order_shipped   = "order.shipped"
    order_cancelled = "order.cancelled"
    order_voided    = "order.voided"
    user_created    = "user.created"
    user_updated    = "user.updated"
    user_deleted    = "user.deleted"
    user_events_dlq = "user.events.dlq"
  }

  validation {
    condition = (
      length(var.kafka_topics) == 9 &&
      alltrue([for key in ["order_created", "order_confirmed", "order_shipped", "order_cancelled", "order_voided", "user_created", "user_updated", "user_deleted", "user_events_dlq"] : contains(keys(var.kafka_topics), key)])
    )
    error_message = "kafka_topics must name exactly these keys: order_created, order_confirmed, order_shipped, order_cancelled, order_voided, user_created, user_updated, user_deleted, user_events_dlq (override the whole map)."
  }

  validation {
    condition     = alltrue([for name in values(var.kafka_topics) : can(regex("^[a-zA-Z0-9._-]{1,249}$", name))]) && length(distinct(values(var.kafka_topics))) == length(var.kafka_topics)
    error_message = "Topic names must be distinct and use only letters, digits, '.', '_' and '-' (Kafka's rule)."
  }
}

variable "kafka_topic_partitions" {
  type        = number
  description = "Partitions of every topic. Also the upper bound of consumer pods (the chart's kafka.userTopicPartitions); raising it later is possible, lowering it is not."
  default     = 3

  validation {
    condition     = var.kafka_topic_partitions >= 1
    error_message = "kafka_topic_partitions must be at least 1."
  }
}

variable "kafka_topic_replicas" {
  type        = number
  description = "Replication factor of every topic (and of Kafka's internal topics). 3 in production."
  default     = 3

  validation {
    condition     = var.kafka_topic_replicas >= 1 && var.kafka_topic_replicas <= var.kafka_broker_replicas
    error_message = "kafka_topic_replicas must be between 1 and kafka_broker_replicas."
  }
}

variable "kafka_min_insync_replicas" {
  type        = number
  description = "min.insync.replicas of every topic and the brokers' default: an acks=all write needs this many replicas. 2 with 3 replicas tolerates one broker down without losing acknowledged writes."
  default     = 2

  validation {
    condition     = var.kafka_min_insync_replicas >= 1 && (var.kafka_min_insync_replicas < var.kafka_topic_replicas || var.kafka_topic_replicas == 1)
    error_message = "kafka_min_insync_replicas must be at least 1 and below kafka_topic_replicas (otherwise one broker restart stops every write); 1 only with a single replica."
  }
}

variable "kafka_event_retention_ms" {
  type        = number
  description = "retention.ms of the order.* topics (delete policy). Default 7 days."
  default     = 604800000

  validation {
    condition     = var.kafka_event_retention_ms == -1 || var.kafka_event_retention_ms >= 3600000
    error_message = "kafka_event_retention_ms must be -1 (forever) or at least one hour."
  }
}

variable "kafka_dlq_retention_ms" {
  type        = number
  description = "retention.ms of the user-event dead-letter topic (delete policy): how long a bad message stays for inspection. Default 30 days."
  default     = 2592000000

  validation {
    condition     = var.kafka_dlq_retention_ms == -1 || var.kafka_dlq_retention_ms >= 3600000
    error_message = "kafka_dlq_retention_ms must be -1 (forever) or at least one hour."
  }
}

variable "kafka_consumer_group_id" {
  type        = string
  description = "Consumer group of the user-event consumer (KAFKA_CONSUMER_GROUP_ID)."
  default     = "order-service"

  validation {
    condition     = length(var.kafka_consumer_group_id) > 0
    error_message = "kafka_consumer_group_id must not be empty."
  }
}

# --- PostgreSQL (CloudNativePG) ------------------------------------------------

variable "cnpg_chart_version" {
  type        = string
  description = "Version of the cloudnative-pg operator Helm chart (https://cloudnative-pg.github.io/charts); 0.29.0 ships operator 1.30.0."
  default     = "0.29.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.cnpg_chart_version))
    error_message = "cnpg_chart_version must be an exact version such as 0.29.0."
  }
}

variable "postgres_cluster_name" {
  type        = string
  description = "Name of the CloudNativePG Cluster; the app connects to its read-write Service <name>-rw."
  default     = "orders-db"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$", var.postgres_cluster_name))
    error_message = "postgres_cluster_name must be lowercase letters, digits and '-', at most 50 characters."
  }
}

variable "postgres_image" {
  type        = string
  description = "PostgreSQL operand image. Pinned so an operator upgrade never changes the PostgreSQL version by itself; the tag must start with the major version (CloudNativePG reads it)."
  default     = "ghcr.io/cloudnative-pg/postgresql:18.4-standard-trixie"

  validation {
    condition     = can(regex(":[0-9]+(\\.[0-9]+)?(-|$)", var.postgres_image))
    error_message = "postgres_image must have a tag starting with the PostgreSQL version, e.g. ...:18.4-standard-trixie."
  }
}

variable "postgres_instances" {
  type        = number
  description = "PostgreSQL instances: one primary and instances-1 streaming standbys. CloudNativePG promotes a standby when the primary fails."
  default     = 3

  validation {
    condition     = var.postgres_instances >= 1
    error_message = "postgres_instances must be at least 1 (3 in production)."
  }
}

variable "postgres_synchronous_standbys" {
  type        = number
  description = "Standbys that must confirm each commit (synchronous replication, method any), so a failover never loses an acknowledged order. 0 = asynchronous replication."
  default     = 1

  validation {
    condition     = var.postgres_synchronous_standbys >= 0 && var.postgres_synchronous_standbys < var.postgres_instances
    error_message = "postgres_synchronous_standbys must be between 0 and postgres_instances - 1."
  }
}

variable "postgres_storage_size" {
  type        = string
  description = "Persistent volume size of each PostgreSQL instance (data and WAL)."
  default     = "20Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|Ti)$", var.postgres_storage_size))
    error_message = "postgres_storage_size must be a quantity such as 20Gi."
  }
}

variable "postgres_database" {
  type        = string
  description = "Database created at bootstrap (POSTGRES_DB)."
  default     = "orders"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.postgres_database))
    error_message = "postgres_database must be a lowercase PostgreSQL identifier."
  }
}

variable "postgres_owner" {
  type        = string
  description = "Role that owns the database and that the app logs in as (POSTGRES_USER)."
  default     = "orders"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.postgres_owner)) && var.postgres_owner != "postgres"
    error_message = "postgres_owner must be a lowercase PostgreSQL identifier other than the superuser 'postgres'."
  }
}

variable "postgres_max_connections" {
  type        = number
  description = "max_connections of PostgreSQL. With no pooler every app thread keeps one connection: web pods x GUNICORN_WORKERS x GUNICORN_THREADS + worker pods x CELERY_WORKER_CONCURRENCY + beat + consumers + the migrations Job, plus headroom for rollouts (old and new pods overlap)."
  default     = 200

  validation {
    condition     = var.postgres_max_connections >= 50
    error_message = "postgres_max_connections must be at least 50."
  }
}

variable "postgres_resources" {
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  description = "CPU and memory requests and limits of each PostgreSQL instance pod."
  default = {
    requests = { cpu = "500m", memory = "1Gi" }
    limits   = { cpu = "2", memory = "1Gi" }
  }
}

# --- Valkey (Redis) ------------------------------------------------------------

variable "valkey_chart_version" {
  type        = string
  description = "Version of the official Valkey Helm chart (https://valkey.io/valkey-helm/). 1.x uses the persistence and extraConfig values set here."
  default     = "1.0.0"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+$", var.valkey_chart_version))
    error_message = "valkey_chart_version must be an exact version such as 1.0.0."
  }
}

variable "valkey_name" {
  type        = string
  description = "Name of the Valkey release and of its Service (REDIS_HOST)."
  default     = "orders-valkey"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$", var.valkey_name))
    error_message = "valkey_name must be lowercase letters, digits and '-', at most 50 characters."
  }
}

variable "valkey_storage_size" {
  type        = string
  description = "Persistent volume size of Valkey's append-only file."
  default     = "5Gi"

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|Ti)$", var.valkey_storage_size))
    error_message = "valkey_storage_size must be a quantity such as 5Gi."
  }
}

variable "valkey_maxmemory" {
  type        = string
  description = "Valkey maxmemory (e.g. 768mb). With maxmemory-policy noeviction a full Valkey refuses writes instead of dropping users or queued tasks: keep it well below the memory limit and alert on used_memory."
  default     = "768mb"

  validation {
    condition     = can(regex("^[0-9]+(kb|mb|gb)$", var.valkey_maxmemory))
    error_message = "valkey_maxmemory must be a Valkey size such as 768mb or 2gb."
  }
}

variable "valkey_resources" {
  type = object({
    requests = map(string)
    limits   = map(string)
  })
  description = "CPU and memory requests and limits of the Valkey pod; the memory limit must leave room above valkey_maxmemory (AOF rewrite forks)."
  default = {
    requests = { cpu = "100m", memory = "1Gi" }
    limits   = { cpu = "1", memory = "1536Mi" }
  }
}

# --- The order service ---------------------------------------------------------

variable "app_release_name" {
  type        = string
  description = "Helm release name of the order service; also its resource name prefix (fullnameOverride), so the API Service is <name>-web."
  default     = "order-service"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$", var.app_release_name))
    error_message = "app_release_name must be lowercase letters, digits and '-', at most 50 characters."
  }
}

variable "app_image_repository" {
  type        = string
  description = "Image repository of the order service (one image runs web, worker, beat, consumer and migrations)."
  default     = "registry.example.com/orders/order-service"

  validation {
    condition     = length(var.app_image_repository) > 0 && !can(regex(":[^/]*$", var.app_image_repository))
    error_message = "app_image_repository must be a repository without a tag (the tag is app_image_tag)."
  }
}

variable "app_image_tag" {
  type        = string
  description = "Image tag to deploy (required): an immutable tag such as a release version or git SHA, so a rollback redeploys exactly the old image."
  nullable    = false

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.app_image_tag)) && var.app_image_tag != "latest"
    error_message = "app_image_tag must be a valid image tag other than 'latest'."
  }
}

variable "app_image_pull_secrets" {
  type        = list(string)
  description = "Names of existing docker-registry Secrets in var.namespace for pulling the app image."
  default     = []
}

variable "app_allowed_hosts" {
  type        = list(string)
  description = "Host names the API answers to (DJANGO_ALLOWED_HOSTS), e.g. [\"orders.example.com\"]. Health probes work whatever the host."
  nullable    = false

  validation {
    condition     = length(var.app_allowed_hosts) > 0 && alltrue([for host in var.app_allowed_hosts : length(host) > 0 && !strcontains(host, ",")])
    error_message = "app_allowed_hosts must list at least one non-empty host name (without commas)."
  }
}

variable "app_csrf_trusted_origins" {
  type        = list(string)
  description = "Origins trusted for unsafe requests with session auth (DJANGO_CSRF_TRUSTED_ORIGINS), e.g. [\"https://orders.example.com\"]; the admin behind HTTPS needs its own."
  default     = []

  validation {
    condition     = alltrue([for origin in var.app_csrf_trusted_origins : can(regex("^https?://", origin))])
    error_message = "Each CSRF trusted origin must start with http:// or https://."
  }
}

variable "app_trust_forwarded_proto" {
  type        = bool
  description = "Trust X-Forwarded-Proto from the ingress (DJANGO_SECURE_PROXY_SSL_HEADER). Only true when every request reaches the pods through a proxy that overwrites that header."
  default     = true
}

variable "app_ssl_redirect" {
  type        = bool
  description = "Let Django redirect plain HTTP to HTTPS (DJANGO_SECURE_SSL_REDIRECT). Set false when the ingress already redirects."
  default     = true
}

variable "app_num_proxies" {
  type        = number
  description = "Proxies in front of the app that append to X-Forwarded-For (API_NUM_PROXIES): 1 behind one ingress controller, 2 with a cloud load balancer in front of it too, 0 when clients reach the pods directly. Above 0, app_extra_config must set FORWARDED_ALLOW_IPS to those proxies' addresses: the app reads X-Forwarded-For only from them, and refuses to start without it."
  default     = 1

  validation {
    condition     = var.app_num_proxies >= 0 && var.app_num_proxies <= 10
    error_message = "app_num_proxies must be between 0 and 10."
  }

  validation {
    condition     = var.app_num_proxies == 0 || trimspace(lookup(var.app_extra_config, "FORWARDED_ALLOW_IPS", "")) != ""
    error_message = "app_num_proxies above 0 needs FORWARDED_ALLOW_IPS in app_extra_config (the ingress controller's addresses or CIDRs): the app reads X-Forwarded-For only from the proxies it names, and refuses to start without it."
  }
}

variable "app_ingress_host" {
  type        = string
  description = "Host of the chart's Ingress; empty = no Ingress. Must be in app_allowed_hosts."
  default     = ""

  validation {
    condition     = var.app_ingress_host == "" || contains(var.app_allowed_hosts, var.app_ingress_host)
    error_message = "app_ingress_host must also be listed in app_allowed_hosts."
  }
}

variable "app_ingress_class_name" {
  type        = string
  description = "IngressClass of the Ingress (empty = the cluster's default class)."
  default     = ""
}

variable "app_ingress_tls_secret_name" {
  type        = string
  description = "TLS Secret for app_ingress_host (e.g. made by cert-manager); empty = no TLS block."
  default     = ""
}

variable "app_network_policy_enabled" {
  type        = bool
  description = "Render the chart's NetworkPolicies (ingress to the web port only; egress to DNS, PostgreSQL, Redis and Kafka ports). Needs a CNI that enforces them."
  default     = true
}

variable "app_ingress_controller" {
  type = object({
    namespace  = string
    pod_labels = optional(map(string), {})
  })
  description = "The ingress controller's namespace and pod labels: the only pods the NetworkPolicy lets reach the web port (with app_network_policy_enabled). null = any pod or address may, and then FORWARDED_ALLOW_IPS = \"*\" is refused by the chart."
  default     = null

  validation {
    condition     = var.app_ingress_controller == null || try(var.app_ingress_controller.namespace != "", false)
    error_message = "app_ingress_controller.namespace must name the ingress controller's namespace."
  }
}

variable "app_extra_config" {
  type        = map(string)
  description = "More non-secret settings for the app's ConfigMap (e.g. GUNICORN_WORKERS, FORWARDED_ALLOW_IPS, LOG_LEVEL); they win over the ones Terraform sets. Secrets never go here."
  default     = {}

  validation {
    condition     = length(setintersection(keys(var.app_extra_config), ["DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD"])) == 0
    error_message = "DJANGO_SECRET_KEY, POSTGRES_PASSWORD and REDIS_PASSWORD come from the app Secret Terraform generates, not from the ConfigMap."
  }
}

variable "app_values_overrides" {
  type        = any
  description = "Extra values for the order-service chart, merged over the ones Terraform sets (e.g. web.replicas, web.autoscaling, consumer.replicas, metrics.podMonitor.enabled, metrics.grafanaDashboard.enabled). Shape: charts/order-service/values.yaml."
  default     = {}
}

variable "app_release_timeout_seconds" {
  type        = number
  description = "How long the app release may take (migrations hook Job plus rollout) before Helm fails it and rolls it back."
  default     = 900

  validation {
    condition     = var.app_release_timeout_seconds >= 120
    error_message = "app_release_timeout_seconds must be at least 120."
  }
}
