"""``icehook demo``: the whole product at work, in one process (see ``drive``)."""
