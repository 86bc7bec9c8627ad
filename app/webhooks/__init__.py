"""The webhooks adapter: where icehook may send (the address checks), how a webhook is signed
(Standard Webhooks), and sending one."""
