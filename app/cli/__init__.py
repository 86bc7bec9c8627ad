"""The ``icehook`` command (``main``): serving, the worker, migrating, the simulator, the demo,
and the operator commands."""
