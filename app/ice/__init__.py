"""The ICE adapter: the client of the six ICE calls icehook makes, and ICE's signing schemes
(requests, V3 and V2; callbacks). ICE's answers, as the rules read them, are
``core.answers``."""
