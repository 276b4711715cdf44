"""The deployment files read offline, for `make deploy-check`, `make deploy-smoke`,
`make chaos` and tests/deploy: the chart rendered, linted and validated (chart.py);
terraform/ read (terraform.py), its expressions evaluated (expressions.py), the chart
values its app release passes (terraform_values.py), and Terraform itself asked where a
binary exists (terraform_console.py)."""
