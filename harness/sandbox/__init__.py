"""The worker sandbox: policy (what bwrap exposes), launcher (parent side), protocol
(binary framing), worker (runs inside, the only place submission code runs), logs."""
