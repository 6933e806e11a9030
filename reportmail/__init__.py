"""Scheduled report delivery: schedules and send records in the plant model, SMTP out, run by the API leader."""
