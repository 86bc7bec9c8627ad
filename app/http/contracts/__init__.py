"""The request and response contract of each resource, and what they share."""
