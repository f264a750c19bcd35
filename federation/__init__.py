"""The server-server API: key ring, and (to come) transport, sender and inbound PDU handling."""
