"""What icehook does, step by step: submit, take callbacks in, judge them, confirm with ICE,
sweep, deliver webhooks, the worker loop, and stopping in time. Each flow's constructor
lists exactly what it uses; ``app.wiring`` builds them."""
