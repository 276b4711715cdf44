terraform {
  # 1.9+: variable validations may refer to other variables.
  required_version = ">= 1.9.0, < 2.0.0"

  required_providers {
    kubernetes = {
      source = "hashicorp/kubernetes"
      # 3.x: the versioned (_v1) resources and kubernetes_manifest's wait blocks.
      version = "~> 3.2"
    }
    helm = {
      source = "hashicorp/helm"
      # 3.x: provider `kubernetes = {...}` attribute and list-typed `set`. 3.1.1 is the
      # newest published 3.x release this was written against; ~> lets patches in.
      version = "~> 3.1.1"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}
