# Generated credentials, kept in the Terraform state (encrypt and restrict the state
# backend) and in Kubernetes Secrets. Rotate one with
# `terraform apply -replace=random_password.<name>` (README "Secrets").

# Django signs sessions and tokens with it; the app refuses fewer than 50 characters.
resource "random_password" "django_secret_key" {
  length           = 64
  special          = true
  override_special = "!#%&*()-_=+[]{}<>:?"
}

# Letters and digits only: the password ends up in redis:// URLs (the app's cache
# and Celery broker, redis-cli, exporters), safe there escaped or not.
resource "random_password" "valkey" {
  length  = 48
  special = false
}

resource "random_password" "postgres_app" {
  length  = 40
  special = false
}

# The app's Secret, read by every container of the chart (secret.existingSecret).
resource "kubernetes_secret_v1" "app" {
  metadata {
    name      = "${var.app_release_name}-secrets"
    namespace = local.namespace
    labels = {
      "app.kubernetes.io/part-of"    = "order-service"
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }

  type = "Opaque"
  data = {
    DJANGO_SECRET_KEY = random_password.django_secret_key.result
    POSTGRES_PASSWORD = random_password.postgres_app.result
    REDIS_PASSWORD    = random_password.valkey.result
  }
}

# The database owner's credentials for CloudNativePG's initdb bootstrap (basic-auth,
# username = owner). The reload label makes the operator apply a changed password.
resource "kubernetes_secret_v1" "postgres_app" {
  metadata {
    name      = "${var.postgres_cluster_name}-app-credentials"
    namespace = local.namespace
    labels = {
      "cnpg.io/reload"               = "true"
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }

  type = "kubernetes.io/basic-auth"
  data = {
    username = var.postgres_owner
    password = random_password.postgres_app.result
  }
}

# Valkey ACL passwords, one key per user (the chart's auth.usersExistingSecret).
resource "kubernetes_secret_v1" "valkey_users" {
  metadata {
    name      = "${var.valkey_name}-users"
    namespace = local.namespace
    labels = {
      "app.kubernetes.io/managed-by" = "terraform"
    }
  }

  type = "Opaque"
  data = {
    default = random_password.valkey.result
  }
}
