"""The plant model and its services: the database of tenants, sites, lines, machines, users,
credentials, broker accounts, alarm rules and orders, and what is derived from it (the
analytics policy a tenant's reports and dashboards use, mosquitto's account files).

It is not HTTP code: the API, the CLI and the benchmarks all use it, so it sits below ``api``.
"""
