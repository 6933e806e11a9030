"""Machine state codes: the values of the machine-state register, defined once for the pipeline.

The simulated PLCs serve them in their ``state`` holding register, ground-truth files use the
same numbers, and the default analytics policy (``analytics.policy.DEFAULT_STATES``)
classifies them; a tenant whose PLCs use other codes declares its own map in its policy.

| code | state | meaning |
|---:|---|---|
| 0 | IDLE | scheduled, ready, no part in the machine (operator handling, waiting) |
| 1 | LOADING | material input: the ``material_input`` coil is on |
| 2 | PROCESSING | value-adding work (pressing, cutting, injecting, filling, assembling) |
| 3 | UNLOADING | part being taken out; the part counter steps when it ends |
| 4 | FAULT | unplanned stop from the MTBF/MTTR model |
| 5 | PLANNED_STOP | scheduled break, cleaning at shift end |
| 6 | MICRO_STOP | short unplanned stop (always under 2 min): a speed loss |
| 7 | CHANGEOVER | product/die/mould change between lots |
| 8 | NOT_SCHEDULED | outside the shift calendar (nights, weekends, holidays) |

Codes 0-5 are the walking skeleton's and keep their meaning.
"""

from __future__ import annotations

from enum import IntEnum


class MachineState(IntEnum):
    """Values of the machine-state register (see the module docstring)."""

    IDLE = 0
    LOADING = 1
    PROCESSING = 2
    UNLOADING = 3
    FAULT = 4
    PLANNED_STOP = 5
    MICRO_STOP = 6
    CHANGEOVER = 7
    NOT_SCHEDULED = 8
