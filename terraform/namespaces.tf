# The service and its data stores share one namespace: the Strimzi entity operator
# only watches its Kafka cluster's namespace, and CloudNativePG and Valkey read
# their Secrets from their own namespace. The operators get namespaces of their own.
resource "kubernetes_namespace_v1" "app" {
  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "order-service"
      # Strimzi's broker pods and the Valkey chart meet "baseline"; report (not
      # refuse) anything short of "restricted".
      "pod-security.kubernetes.io/enforce" = "baseline"
      "pod-security.kubernetes.io/warn"    = "restricted"
      "pod-security.kubernetes.io/audit"   = "restricted"
    }
  }
}

resource "kubernetes_namespace_v1" "strimzi" {
  metadata {
    name = var.strimzi_namespace
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
    }
  }
}

resource "kubernetes_namespace_v1" "cnpg" {
  metadata {
    name = var.cnpg_namespace
    labels = {
      "pod-security.kubernetes.io/enforce" = "baseline"
    }
  }
}
