"""Turn raw signals into events and KPIs: pure functions over arrays, no I/O."""
