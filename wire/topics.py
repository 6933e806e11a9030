"""Topic namespace: ``sf/v1/{tenant}/{site}/{line}/{machine}/telemetry``.

The tenant is the third level so that a broker ACL such as ``sf/v1/<tenant>/#`` confines a
gateway to its own SME. The version is a level too, so a v2 can run beside v1 during an
upgrade without either side parsing the other's payloads.
"""

from __future__ import annotations

from plant import InvalidIdentifier, MachineRef

TOPIC_ROOT = "sf"
VERSION = "v1"
TELEMETRY = "telemetry"
STATUS = "status"
#: The line level of a gateway's own status topic. It starts with '_', which no identifier
#: may, so it can never collide with a real line.
GATEWAY_LEVEL = "_gateway"


def telemetry_topic(machine: MachineRef) -> str:
    return f"{TOPIC_ROOT}/{VERSION}/{machine.tenant}/{machine.site}/{machine.line}/{machine.machine}/{TELEMETRY}"


def telemetry_subscription(tenant: str = "+", shared_group: str | None = None) -> str:
    """Filter for every machine's telemetry (of one tenant, or of all with '+')."""
    topic_filter = f"{TOPIC_ROOT}/{VERSION}/{tenant}/+/+/+/{TELEMETRY}"
    return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter


def parse_telemetry_topic(topic: str) -> MachineRef:
    """Return the machine a telemetry topic names; ValueError says what is wrong."""
    levels = topic.split("/")
    if len(levels) != 7 or levels[0] != TOPIC_ROOT or levels[-1] != TELEMETRY:
        raise ValueError(
            f"topic {topic!r} is not a telemetry topic: expected "
            f"'{TOPIC_ROOT}/{VERSION}/<tenant>/<site>/<line>/<machine>/{TELEMETRY}'"
        )
    if levels[1] != VERSION:
        raise ValueError(f"topic {topic!r} has contract version {levels[1]!r}; this collector reads {VERSION!r}")
    try:
        return MachineRef(*levels[2:6])
    except InvalidIdentifier as exc:
        raise ValueError(f"topic {topic!r}: {exc}") from None


def device_status_topic(machine: MachineRef) -> str:
    """Retained online/offline and health of one polled device (machine)."""
    return f"{TOPIC_ROOT}/{VERSION}/{machine.tenant}/{machine.site}/{machine.line}/{machine.machine}/{STATUS}"


def gateway_status_topic(tenant: str, site: str, gateway_id: str) -> str:
    """Retained birth/status of a gateway; its Last Will overwrites it with 'offline'."""
    return f"{TOPIC_ROOT}/{VERSION}/{tenant}/{site}/{GATEWAY_LEVEL}/{gateway_id}/{STATUS}"


def status_subscription(tenant: str = "+") -> str:
    """Filter for every gateway's and device's status (of one tenant, or of all with '+')."""
    return f"{TOPIC_ROOT}/{VERSION}/{tenant}/+/+/+/{STATUS}"
