-- /sync serves `unsigned.transaction_id` to the sending device: look txn IDs up by event.
CREATE INDEX event_txn_ids_event ON event_txn_ids (event_id);
