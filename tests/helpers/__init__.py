"""What the tests share: servers, processes, the stack, receivers, misbehaving peers, waiting,
and reading the history."""
