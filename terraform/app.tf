# The order service (charts/order-service, from this repository). Installed after
# everything it talks to is Ready: the chart's pre-install hook runs migrations
# against PostgreSQL, and the consumer reads the user topics at once.
resource "helm_release" "app" {
  name      = var.app_release_name
  chart     = local.app_chart_dir
  namespace = local.namespace
  # The helm provider plans from its arguments only: a local chart at an unchanged
  # version plans "No changes" after a template edit. The chart's digest (chart.tf)
  # makes every change to its files a change of the release, so the apply upgrades it.
  description = "order-service chart sha256:${local.app_chart_digest}"

  values = [
    yamlencode(local.app_values),
    yamlencode(var.app_values_overrides),
  ]

  # Wait for the rollout; on failure Helm rolls back to the previous release.
  wait    = true
  atomic  = true
  timeout = var.app_release_timeout_seconds
  # Revisions kept for `helm rollback` (each is a Secret in the namespace).
  max_history = 10

  depends_on = [
    kubernetes_secret_v1.app,
    kubernetes_manifest.postgres,
    kubernetes_manifest.kafka,
    kubernetes_manifest.kafka_topic,
    helm_release.valkey,
  ]
}
