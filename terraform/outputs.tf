output "namespace" {
  description = "Namespace of the service, its Kafka cluster, PostgreSQL cluster and Valkey."
  value       = local.namespace
}

output "api_service_name" {
  description = "ClusterIP Service of the web API (the chart's <fullname>-web), e.g. for `kubectl port-forward svc/<name> 8000:80`."
  value       = "${var.app_release_name}-web"
}

output "api_url" {
  description = "Public URL of the API when an Ingress host is set, else null."
  value       = var.app_ingress_host == "" ? null : "${var.app_ingress_tls_secret_name == "" ? "http" : "https"}://${var.app_ingress_host}/api/v1/"
}

output "kafka_bootstrap_servers" {
  description = "In-cluster Kafka bootstrap address given to the app (KAFKA_BOOTSTRAP_SERVERS)."
  value       = local.kafka_bootstrap_servers
}

output "kafka_topics" {
  description = "Topic names by app setting key (KAFKA_TOPIC_<KEY>)."
  value       = var.kafka_topics
}

output "postgres_rw_service" {
  description = "In-cluster host of PostgreSQL's read-write Service, which follows the primary (POSTGRES_SERVER)."
  value       = local.postgres_rw_host
}

output "redis_host" {
  description = "In-cluster host of Valkey (REDIS_HOST)."
  value       = local.valkey_host
}

output "app_secret_name" {
  description = "Secret with DJANGO_SECRET_KEY, POSTGRES_PASSWORD and REDIS_PASSWORD that every app container reads (chart secret.existingSecret)."
  value       = kubernetes_secret_v1.app.metadata[0].name
}

output "postgres_app_secret_name" {
  description = "basic-auth Secret with the database owner's credentials, used by CloudNativePG's bootstrap."
  value       = kubernetes_secret_v1.postgres_app.metadata[0].name
}

output "valkey_users_secret_name" {
  description = "Secret with the Valkey ACL passwords (key `default`)."
  value       = kubernetes_secret_v1.valkey_users.metadata[0].name
}
