"""The continuous-training loop replayed on a real timeline (``basketry simulate``): a
transaction history month by month through the real server, monitored and retrained by a
policy. Composes the training side, the monitoring and a server process; imports no serving
code (the server is a ``basketry serve`` process)."""
