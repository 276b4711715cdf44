"""Helpers the tests share, as plain modules: test files and conftest.py files import
them from here. conftest.py files hold fixtures and hooks only, and no test imports a
conftest (pytest loads those itself; importing one as a module runs it twice).

Factories stay beside their app (`<app>/tests/factories.py`); the chart and Terraform
readers stay in tests/deploy.
"""
