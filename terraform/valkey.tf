# Valkey (Redis protocol) from the Valkey project's own chart: standalone, one pod
# with a persistent append-only file, password auth, noeviction (locals.tf).
# Standalone on purpose: the app connects to one REDIS_HOST and cannot follow a
# Sentinel failover; a restart costs seconds of cache/broker outage, not data.
resource "helm_release" "valkey" {
  name       = var.valkey_name
  repository = "https://valkey.io/valkey-helm/"
  chart      = "valkey"
  version    = var.valkey_chart_version
  namespace  = local.namespace

  values = [yamlencode(local.valkey_values)]

  wait    = true
  timeout = 600

  depends_on = [kubernetes_secret_v1.valkey_users]
}
