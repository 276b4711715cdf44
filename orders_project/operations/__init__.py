"""The admin's operations page (/admin/operations/): the service's health at a glance."""
