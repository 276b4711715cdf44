# What the app release (app.tf) is made from: the chart in this repository, and a
# digest of its files. Only functions here, no resources: tests/deploy runs
# `terraform console` on this file alone to check the digest follows the files.
locals {
  app_chart_dir = "${path.module}/../charts/order-service"
  # One "<path> <sha256>" line per file of the chart, hashed: an edit to a template,
  # values.yaml, the schema or Chart.yaml changes it.
  app_chart_digest = sha256(join("\n", [
    for file in sort(fileset(local.app_chart_dir, "**")) : "${file} ${filesha256("${local.app_chart_dir}/${file}")}"
  ]))
}
