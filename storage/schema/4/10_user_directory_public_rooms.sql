-- Rooms whose members the user directory shows to everyone (search_all_users: false):
-- join rule `public` or history `world_readable` in the current state, as Synapse's
-- users_in_public_rooms. Kept by StateStore.update_current_state_txn.
CREATE TABLE user_directory_public_rooms (
    room_id TEXT NOT NULL PRIMARY KEY
);
