locals {
  namespace = kubernetes_namespace_v1.app.metadata[0].name

  # In-cluster addresses the app is given (tests/deploy/test_terraform_*.py read these).
  kafka_bootstrap_servers = "${var.kafka_cluster_name}-kafka-bootstrap.${local.namespace}.svc:9092"
  postgres_rw_host        = "${var.postgres_cluster_name}-rw.${local.namespace}.svc"
  valkey_host             = "${var.valkey_name}.${local.namespace}.svc"

  # One KafkaTopic per entry (kafka.tf). The keys are those of var.kafka_topics; the
  # user.* topics feed a replica of each user (users_cache) that must be rebuildable
  # from the beginning, so they are compacted (latest event per user kept forever).
  # retention.ms only applies to the delete policy. order.voided is written only after
  # a database restore (manage.py outbox_reconcile --publish, docs/events.md).
  kafka_topic_specs = {
    order_created   = { name = var.kafka_topics.order_created, cleanup_policy = "delete", retention_ms = var.kafka_event_retention_ms }
    order_confirmed = { name = var.kafka_topics.order_confirmed, cleanup_policy = "delete", retention_ms = var.kafka_event_retention_ms }
    order_shipped   = { name = var.kafka_topics.order_shipped, cleanup_policy = "delete", retention_ms = var.kafka_event_retention_ms }
    order_cancelled = { name = var.kafka_topics.order_cancelled, cleanup_policy = "delete", retention_ms = var.kafka_event_retention_ms }
    order_voided    = { name = var.kafka_topics.order_voided, cleanup_policy = "delete", retention_ms = var.kafka_event_retention_ms }
    user_created    = { name = var.kafka_topics.user_created, cleanup_policy = "compact", retention_ms = -1 }
    user_updated    = { name = var.kafka_topics.user_updated, cleanup_policy = "compact", retention_ms = -1 }
    user_deleted    = { name = var.kafka_topics.user_deleted, cleanup_policy = "compact", retention_ms = -1 }
    # Bad messages copied by the consumer: kept for inspection, several per key possible.
    user_events_dlq = { name = var.kafka_topics.user_events_dlq, cleanup_policy = "delete", retention_ms = var.kafka_dlq_retention_ms }
  }

  # Non-secret settings of the app (the chart's `config`, rendered into its ConfigMap).
  # Names: orders_project/settings.py. Every value is a string.
  app_config = {
    DJANGO_ALLOWED_HOSTS           = join(",", var.app_allowed_hosts)
    DJANGO_CSRF_TRUSTED_ORIGINS    = join(",", var.app_csrf_trusted_origins)
    DJANGO_SECURE_PROXY_SSL_HEADER = tostring(var.app_trust_forwarded_proto)
    DJANGO_SECURE_SSL_REDIRECT     = tostring(var.app_ssl_redirect)
    # Rate limits and login lockout count clients by X-Forwarded-For, walked this many
    # entries from the end through the proxies FORWARDED_ALLOW_IPS names (app_extra_config).
    API_NUM_PROXIES = tostring(var.app_num_proxies)

    POSTGRES_SERVER = local.postgres_rw_host
    POSTGRES_PORT   = "5432"
    POSTGRES_USER   = var.postgres_owner
    POSTGRES_DB     = var.postgres_database
    # Straight to PostgreSQL's rw Service, no PgBouncer in transaction mode, so Django's
    # server-side cursors (.iterator()) work (README "PostgreSQL").
    POSTGRES_DISABLE_SERVER_SIDE_CURSORS = "false"

    KAFKA_BOOTSTRAP_SERVERS         = local.kafka_bootstrap_servers
    KAFKA_CONSUMER_GROUP_ID         = var.kafka_consumer_group_id
    KAFKA_TOPIC_ORDER_CREATED       = var.kafka_topics.order_created
    KAFKA_TOPIC_ORDER_CONFIRMED     = var.kafka_topics.order_confirmed
    KAFKA_TOPIC_ORDER_SHIPPED       = var.kafka_topics.order_shipped
    KAFKA_TOPIC_ORDER_CANCELLED     = var.kafka_topics.order_cancelled
    KAFKA_TOPIC_ORDER_VOIDED        = var.kafka_topics.order_voided
    KAFKA_TOPIC_USER_CREATED        = var.kafka_topics.user_created
    KAFKA_TOPIC_USER_UPDATED        = var.kafka_topics.user_updated
    KAFKA_TOPIC_USER_DELETED        = var.kafka_topics.user_deleted
    KAFKA_TOPIC_USER_EVENTS_DLQ     = var.kafka_topics.user_events_dlq
    KAFKA_TOPIC_PARTITIONS          = tostring(var.kafka_topic_partitions)
    KAFKA_TOPIC_REPLICATION_FACTOR  = tostring(var.kafka_topic_replicas)
    KAFKA_TOPIC_MIN_INSYNC_REPLICAS = tostring(var.kafka_min_insync_replicas)

    REDIS_HOST = local.valkey_host
    REDIS_PORT = "6379"
  }

  # NetworkPolicy peers that may reach the web port: the ingress controller's pods in its
  # namespace (both selectors in one peer: those pods, not the whole namespace), or any
  # source without var.app_ingress_controller.
  app_ingress_from = var.app_ingress_controller == null ? [] : [{
    namespaceSelector = { matchLabels = { "kubernetes.io/metadata.name" = var.app_ingress_controller.namespace } }
    podSelector       = { matchLabels = var.app_ingress_controller.pod_labels }
  }]

  # Values of the order-service chart (charts/order-service/values.yaml); app.tf
  # passes them, then var.app_values_overrides on top.
  app_values = {
    fullnameOverride = var.app_release_name
    image = {
      repository = var.app_image_repository
      tag        = var.app_image_tag
    }
    imagePullSecrets = [for name in var.app_image_pull_secrets : { name = name }]
    config           = merge(local.app_config, var.app_extra_config)
    secret = {
      create         = false
      existingSecret = kubernetes_secret_v1.app.metadata[0].name
      # Pods read the Secret only when they start. The checksum of its data is a pod
      # annotation, so a rotated password or key rolls every Deployment in the same
      # apply. A hash of random passwords reveals nothing: shown in plans, not hidden.
      existingSecretChecksum = nonsensitive(sha256(jsonencode(kubernetes_secret_v1.app.data)))
    }
    kafka = {
      userTopicPartitions = var.kafka_topic_partitions
    }
    ingress = {
      enabled   = var.app_ingress_host != ""
      className = var.app_ingress_class_name
      host      = var.app_ingress_host
      tls = {
        secretName = var.app_ingress_tls_secret_name
      }
    }
    networkPolicy = {
      enabled     = var.app_network_policy_enabled
      ingressFrom = local.app_ingress_from
    }
  }

  # Valkey configuration appended to the chart's valkey.conf. The app keeps a replica
  # of every user and Celery's queue in Valkey: nothing may be evicted, and the
  # append-only file (fsync every second) makes the data survive a restart. Same
  # settings as the dev stack (devstack/valkey.py).
  valkey_config = <<-EOT
    appendonly yes
    appendfsync everysec
    aof-load-truncated yes
    save ""
    maxmemory ${var.valkey_maxmemory}
    maxmemory-policy noeviction
  EOT

  valkey_values = {
    fullnameOverride = var.valkey_name
    auth = {
      enabled             = true
      usersExistingSecret = kubernetes_secret_v1.valkey_users.metadata[0].name
      aclUsers = {
        # The app authenticates with a password only (AUTH <password>): the default user.
        default = {
          permissions = "~* &* +@all"
          passwordKey = "default"
        }
      }
    }
    persistence = {
      enabled         = true
      size            = var.valkey_storage_size
      storageClass    = var.storage_class == null ? "" : var.storage_class
      keepOnUninstall = true
    }
    extraConfig = local.valkey_config
    resources   = var.valkey_resources
    # Valkey builds its ACL from the users Secret when the pod starts, and the chart
    # does not watch that Secret: without this a rotated password would reach the app
    # pods (their own checksum) but not Valkey, and every app connection would fail.
    podAnnotations = {
      "checksum/users-secret" = nonsensitive(sha256(jsonencode(kubernetes_secret_v1.valkey_users.data)))
    }
  }
}
