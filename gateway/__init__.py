"""Edge gateway: polls PLCs over Modbus and publishes their values to MQTT."""
